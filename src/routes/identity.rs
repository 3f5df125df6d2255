//! Identity binding over HTTP (issue 19): `POST /v1/identify` links the session a browser reaches
//! to the customer a partner's signed assertion names, or joins that customer's session;
//! `POST /v1/forget` detaches every browser from the session (a logout on a shared computer).
//! What an assertion must be is `crate::identity`'s business; what a link is, the store's
//! (`SessionStore::load_identity`, `link_identity`, `detach`). This module owns the rules that
//! decide, from the session the browser reaches (S) and the one the customer is linked to (I),
//! which one the browser ends up in.
//!
//! Both routes sit under `/v1`, behind `api::guard` (rate limit, `Origin`, CORS) like the rest.

use std::sync::Arc;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::api::JsonBody;
use super::extract::{Caller, Resolved, SessionRequest, page_origin, with_cookies};
use crate::cookie;
use crate::error::ApiError;
use crate::identity::{IdentityKeys, SubjectHash};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifyRequest {
    /// The partner's compact JWT, as rendered in the page.
    assertion: String,
    /// The page the assertion was rendered in: what the broker's iframe saw in `event.origin`,
    /// or the calling page itself.
    origin: String,
}

/// What an identify did, for the log line (never the subject, never the token).
#[derive(Clone, Copy)]
enum Outcome {
    /// Neither S nor I: a new empty session, linked.
    Created,
    /// I only, or S empty: the browser joined I (an empty S ended).
    Joined,
    /// S only, or I empty: S linked (an empty I is left to expire).
    Linked,
    /// S is I.
    Already,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Joined => "joined",
            Self::Linked => "linked",
            Self::Already => "already",
        }
    }
}

/// `POST /v1/identify`: verifies the assertion for its page, then, with S the session the
/// request reaches and I the one the customer is linked to:
/// - neither: a new empty session for this browser, linked to the customer;
/// - I only: this browser joins I (fresh credentials, as a handoff's adopt);
/// - S only: S is linked to the customer;
/// - S is I: nothing to do;
/// - both, different: an empty S is replaced by I (joined); else an empty I gives way to S
///   (linked; I is left to expire rather than ended, since an end could race a write into it);
///   both holding values: 409 `session_conflict`, nothing changed, nothing lost.
///
/// Answers the session the browser now reaches, as every session answer does (`respond`: its
/// cookies, or a page key). A refused assertion, origin or configuration creates and joins
/// nothing.
pub async fn identify(
    req: SessionRequest,
    axum::extract::State(keys): axum::extract::State<Option<Arc<IdentityKeys>>>,
    Extension(Caller(caller)): Extension<Caller>,
    JsonBody(body): JsonBody<IdentifyRequest>,
) -> Result<Response, ApiError> {
    let keys = keys.ok_or(ApiError::IdentityDisabled)?;
    // The page is checked exactly as page mode's `Baton-Page-Origin` is: from the broker's iframe
    // any trusted origin, from a trusted page only itself; in page mode, that very page.
    let page = page_origin(&req.config, &caller, &body.origin)?;
    if req.creds.page.as_ref().is_some_and(|p| p.origin != page) {
        tracing::info!(page = %page, "identify refused: the body's origin is not the page mode's");
        return Err(ApiError::OriginDenied);
    }
    // `verify` logs a refusal with its code and the page, never the token nor `sub`.
    let identity = keys.verify(&body.assertion, &page, &req.config.trust.origins, req.now)?;
    let (outcome, r) = bind(&req, &identity.subject).await.inspect_err(|e| {
        if matches!(e, ApiError::SessionConflict) {
            tracing::info!(page = %page, "identify: this browser's session and the customer's both hold values; both kept");
        }
    })?;
    tracing::info!(page = %page, outcome = outcome.as_str(), "identity bound");
    Ok(req.respond(json!({ "values": r.session.values }), &r))
}

/// The rules of `identify`, once the assertion is good.
async fn bind(
    req: &SessionRequest,
    subject: &SubjectHash,
) -> Result<(Outcome, Resolved), ApiError> {
    let current = req.resolve().await?;
    let linked = req.store.load_identity(subject, req.now).await?;
    match (current, linked) {
        (None, None) => create_linked(req, subject).await,
        (None, Some(i)) => match req.adopt(&i.uid).await? {
            Some(r) => Ok((Outcome::Joined, r)),
            // The customer's session died between the two calls: as if there were none.
            None => create_linked(req, subject).await,
        },
        (Some(s), None) => link(req, subject, s).await,
        (Some(s), Some(i)) if s.session.uid == i.uid => Ok((Outcome::Already, s)),
        (Some(s), Some(i)) if s.session.values.is_empty() => match req.adopt(&i.uid).await? {
            Some(r) => Ok((Outcome::Joined, r)),
            None => link(req, subject, s).await,
        },
        (Some(s), Some(i)) if i.values.is_empty() => link(req, subject, s).await,
        (Some(_), Some(_)) => Err(ApiError::SessionConflict),
    }
}

/// Links the subject to the session the request reaches.
async fn link(
    req: &SessionRequest,
    subject: &SubjectHash,
    s: Resolved,
) -> Result<(Outcome, Resolved), ApiError> {
    if req
        .store
        .link_identity(subject, &s.session.uid, req.now)
        .await?
    {
        Ok((Outcome::Linked, s))
    } else {
        // It expired or was ended (another tab's "End chat") since it was resolved.
        create_linked(req, subject).await
    }
}

async fn create_linked(
    req: &SessionRequest,
    subject: &SubjectHash,
) -> Result<(Outcome, Resolved), ApiError> {
    let r = req.create().await?;
    if !req
        .store
        .link_identity(subject, &r.session.uid, req.now)
        .await?
    {
        // A session created this instant is live unless the configured lifetime is nonsense.
        tracing::error!("identify: a session just created could not be linked");
        return Err(ApiError::Internal);
    }
    Ok((Outcome::Created, r))
}

/// `POST /v1/forget`: detaches the session the request reaches from every browser (its cookie
/// ids and page keys, on every site, are forgotten by the store), keeps it for the customer's
/// identity, and clears this browser's credentials: both cookies removed and, in page mode, the
/// 204 itself tells the iframe to drop the page key it sent (a 204 to anything but a `DELETE`
/// means the key reaches nothing: `js/iframe.js`). 204 whether or not there was a session.
pub async fn forget(req: SessionRequest) -> Result<Response, ApiError> {
    req.detach_all().await?;
    Ok(with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        &cookie::removal_cookies(),
    ))
}
