//! What every session handler starts from, extracted once (the wastebin `Uids` way): the caller's
//! origin, the credentials the request presents (cookies, page key), the time, and the one way to
//! find, create and answer about the session they reach.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::clock::Clock;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::cookie::{self, RequestCookies};
use crate::error::ApiError;
use crate::metrics::{Metrics, bump};
use crate::origin::Origin;
use crate::session::{
    AdoptOutcome, IdHash, PageKey, Session, SessionId, SessionStore, SetOutcome, Uid,
};

/// The origin the request acts for, once the API's `guard` has allowed it.
#[derive(Clone, Debug)]
pub struct Caller(pub Origin);

/// Request header: the partner page a page-mode request acts for.
pub const PAGE_ORIGIN: &str = "baton-page-origin";
/// Request header: the page key that page holds.
pub const PAGE_KEY: &str = "baton-page-key";

/// The partner page a page-mode request acts for, and the page key that page holds.
pub struct Page {
    pub origin: Origin,
    key: Option<PageKey>,
}

/// What a request presents to reach a session: the broker's cookies and, in page mode (header
/// `Baton-Page-Origin`, only while `session.page_keys` is on), the page it acts for and its
/// page key (`Baton-Page-Key`).
///
/// Page mode is the iframe's choice: it asks for it only where the browser keeps none of the
/// broker's cookies (its own test cookies do not stick), so elsewhere nothing changes. The page
/// origin is checked like a redeem's: the broker's own iframe names the page whose message it
/// answers, which must be trusted; a trusted page calling directly can only name itself.
pub struct Credentials {
    cookies: RequestCookies,
    pub page: Option<Page>,
    /// The browser says this request's context has no access to unpartitioned cookies
    /// (`Sec-Fetch-Storage-Access: none`, Chromium with third-party cookies blocked and no
    /// storage-access grant): an unpartitioned cookie set in the answer would be refused.
    unpartitioned_refused: bool,
}

/// What the browser says of the request's access to unpartitioned cookies
/// (`Sec-Fetch-Storage-Access`, which no page can set): `none`, `inactive`, `active`, or empty
/// when absent.
pub fn storage_access(h: &axum::http::HeaderMap) -> &[u8] {
    h.get("sec-fetch-storage-access")
        .map_or(b"", |v| v.as_bytes())
}

impl Credentials {
    fn from_parts(parts: &Parts, config: &Config) -> Result<Self, ApiError> {
        let cookies = RequestCookies::from_headers(&parts.headers);
        let claimed = parts.headers.get(PAGE_ORIGIN);
        let page = match (claimed, parts.extensions.get::<Caller>()) {
            (Some(claimed), Some(Caller(caller))) if config.session.page_keys => {
                let claimed = claimed.to_str().map_err(|_| ApiError::OriginDenied)?;
                let origin = page_origin(config, caller, claimed)?;
                let key = parts
                    .headers
                    .get(PAGE_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(PageKey::parse);
                Some(Page { origin, key })
            }
            _ => None,
        };
        let unpartitioned_refused = storage_access(&parts.headers) == b"none";
        Ok(Self {
            cookies,
            page,
            unpartitioned_refused,
        })
    }

    /// Whether the request carries either broker cookie (a page key is not a cookie).
    pub fn has_cookie(&self) -> bool {
        self.cookies.unpartitioned.is_some() || self.cookies.partitioned.is_some()
    }

    /// The store keys this request reaches sessions by, in the order they win: the unpartitioned
    /// cookie (shared by every site), the partitioned one, then the page key. Cookie entries carry
    /// their id, so that the winner can be re-issued.
    fn candidates(&self) -> Vec<(IdHash, Option<&SessionId>)> {
        let cookies = [&self.cookies.unpartitioned, &self.cookies.partitioned];
        let mut out: Vec<_> = cookies
            .into_iter()
            .flatten()
            .map(|id| (id.hash(), Some(id)))
            .collect();
        if let Some(Page {
            origin,
            key: Some(key),
        }) = &self.page
        {
            out.push((key.hash(origin), None));
        }
        out
    }

    /// A fresh way in for a session this request is about to create (`None`) or adopt (its
    /// uid, whose slot tag the id carries: `SessionId::generate_for`): a page key in page mode,
    /// else a cookie id.
    fn fresh(&self, uid: Option<&Uid>) -> (IdHash, Binding) {
        match &self.page {
            Some(page) => {
                let key = uid.map_or_else(PageKey::generate, PageKey::generate_for);
                (key.hash(&page.origin), Binding::PageKey(key))
            }
            None => {
                let id = uid.map_or_else(SessionId::generate, SessionId::generate_for);
                (id.hash(), Binding::Cookies(id))
            }
        }
    }
}

/// The page a request claims to act for: from the broker's own iframe, any trusted origin (the
/// iframe saw it in `event.origin`); from a trusted page calling directly, only itself.
pub fn page_origin(config: &Config, caller: &Origin, claimed: &str) -> Result<Origin, ApiError> {
    if *caller == config.server.public_origin {
        config.trust.origins.check(claimed).map_err(|denied| {
            tracing::info!(reason = denied.code(), "page origin denied");
            ApiError::OriginDenied
        })
    } else if claimed == caller.as_str() {
        Ok(caller.clone())
    } else {
        tracing::info!("page origin differs from the caller's");
        Err(ApiError::OriginDenied)
    }
}

/// What a response gives the browser to reach its session next time.
pub enum Binding {
    /// Nothing new: what it presented still works.
    Keep,
    /// Both cookies, set (again) to this id.
    Cookies(SessionId),
    /// A new page key for the page to keep (`page_key` in the JSON body).
    PageKey(PageKey),
}

/// The session a request reaches, and what its answer must (re-)issue.
pub struct Resolved {
    pub session: Session,
    pub binding: Binding,
}

/// A session request: everything a `/v1` handler needs to find the session and answer about it.
pub struct SessionRequest {
    pub store: Arc<dyn SessionStore>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub now: Timestamp,
    pub creds: Credentials,
}

impl<S> FromRequestParts<S> for SessionRequest
where
    S: Send + Sync,
    Arc<dyn SessionStore>: FromRef<S>,
    Arc<dyn Clock>: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<Metrics>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let config = Arc::<Config>::from_ref(state);
        let creds = Credentials::from_parts(parts, &config)?;
        Ok(Self {
            store: FromRef::from_ref(state),
            metrics: FromRef::from_ref(state),
            now: Arc::<dyn Clock>::from_ref(state).now(),
            config,
            creds,
        })
    }
}

impl SessionRequest {
    /// The live session the request reaches (see `Credentials::candidates` for which wins). When
    /// a cookie wins, both cookies are re-issued unless they already both carry its id (and one
    /// exception: `binding`).
    pub async fn resolve(&self) -> Result<Option<Resolved>, ApiError> {
        for (hash, cookie_id) in self.creds.candidates() {
            if let Some(session) = self.store.load(&hash, self.now).await? {
                let binding = self.binding(cookie_id);
                return Ok(Some(Resolved { session, binding }));
            }
        }
        Ok(None)
    }

    /// What the answer re-issues when the store key of `cookie_id` won (`None`: the page key):
    /// both cookies, unless they already both carry that id, or the partitioned one does and the
    /// browser says it would refuse the unpartitioned one (`Sec-Fetch-Storage-Access: none`).
    /// Re-issuing there would only set the partitioned cookie to what it already is and have the
    /// browser block the other, on every iframe page and every call: in Chromium a blocked cookie
    /// costs the frame's navigation commit a few ms (bench/README.md, browser.mjs).
    fn binding(&self, cookie_id: Option<&SessionId>) -> Binding {
        let c = &self.creds.cookies;
        let unpartitioned_ok = c.unpartitioned.as_ref() == cookie_id
            || (c.unpartitioned.is_none() && self.creds.unpartitioned_refused);
        match cookie_id {
            Some(id) if !unpartitioned_ok || c.partitioned.as_ref() != Some(id) => {
                Binding::Cookies(id.clone())
            }
            _ => Binding::Keep,
        }
    }

    /// Sets `key` to `value` in the session the request reaches (the one `resolve` finds), or
    /// else in a new one bound to it: one store call for a session found
    /// (`SessionStore::load_and_set`), `create` then `set_value` otherwise. The outcome, and what
    /// the answer must (re-)issue.
    pub async fn set_value(
        &self,
        key: &str,
        value: &str,
        max_values: usize,
    ) -> Result<(SetOutcome, Binding), ApiError> {
        for (hash, cookie_id) in self.creds.candidates() {
            let found = self
                .store
                .load_and_set(&hash, key, value, self.now, max_values)
                .await?;
            if let Some(outcome) = found {
                return Ok((outcome, self.binding(cookie_id)));
            }
        }
        let (hash, binding) = self.creds.fresh(None);
        let session = self.store.create(&hash, self.now).await?;
        bump(&self.metrics.sessions_created);
        let outcome = self
            .store
            .set_value(&session.uid, key, value, self.now, max_values)
            .await?;
        Ok((outcome, binding))
    }

    /// Makes the live session `uid` reachable by this request under a fresh id, in place of every
    /// session the request reaches (both cookies and the page key, winner or not): the session
    /// as it is now, or `None` when it is gone. When any session reached, other than `uid`,
    /// holds a value, nothing changes and the answer is 409 `session_conflict`; empty ones are
    /// ended. One atomic store step (`SessionStore::adopt`), so a value written meanwhile is
    /// never lost.
    pub async fn adopt(&self, uid: &Uid) -> Result<Option<Resolved>, ApiError> {
        let (hash, binding) = self.creds.fresh(Some(uid));
        let reached: Vec<IdHash> = self
            .creds
            .candidates()
            .into_iter()
            .map(|(hash, _)| hash)
            .collect();
        Ok(
            match self.store.adopt(uid, &hash, &reached, self.now).await? {
                AdoptOutcome::Done(session) => Some(Resolved { session, binding }),
                AdoptOutcome::Missing => None,
                AdoptOutcome::Conflict => return Err(ApiError::SessionConflict),
            },
        )
    }

    /// A new empty session, bound to a fresh id for this request (a page key in page mode, else
    /// the cookies): what `set_value` does when the request reaches nothing, without a value.
    pub async fn create(&self) -> Result<Resolved, ApiError> {
        let (hash, binding) = self.creds.fresh(None);
        let session = self.store.create(&hash, self.now).await?;
        bump(&self.metrics.sessions_created);
        Ok(Resolved { session, binding })
    }

    /// Detaches every session the request reaches (`SessionStore::detach`): no id of any browser
    /// reaches them any more, while they and their identity links stay.
    pub async fn detach_all(&self) -> Result<(), ApiError> {
        for (hash, _) in self.creds.candidates() {
            if let Some(session) = self.store.load(&hash, self.now).await? {
                self.store.detach(&session.uid).await?;
            }
        }
        Ok(())
    }

    /// Ends every session the request reaches (normally one); a page key dies with its session.
    pub async fn end_all(&self) -> Result<(), ApiError> {
        for (hash, _) in self.creds.candidates() {
            if let Some(session) = self.store.load(&hash, self.now).await? {
                self.store.end(&session.uid).await?;
            }
        }
        Ok(())
    }

    /// The one answer about a session: JSON `body`, with what `r.binding` gives the browser.
    pub fn respond(&self, mut body: serde_json::Value, r: &Resolved) -> Response {
        if let Binding::PageKey(key) = &r.binding {
            body["page_key"] = key.as_str().into();
        }
        with_cookies(Json(body).into_response(), &self.cookies_for(r))
    }

    /// The `Set-Cookie` values an answer about `r` carries: both cookies when `r.binding` says
    /// so (lasting until the session's absolute end), else none.
    pub fn cookies_for(&self, r: &Resolved) -> Vec<String> {
        let Binding::Cookies(id) = &r.binding else {
            return Vec::new();
        };
        let end = r
            .session
            .created_at
            .saturating_add(self.config.session.timeouts().absolute_ms);
        let max_age = (end.saturating_sub(self.now) / 1000).max(1);
        cookie::session_cookies(id, max_age).to_vec()
    }
}

pub fn with_cookies(mut res: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}
