//! The one place that builds the broker's `Set-Cookie` headers and reads its cookies back.
//!
//! Two cookies carry the same session id:
//! - `__Host-baton`, unpartitioned: where the browser allows third-party cookies it is sent to the
//!   broker under every top-level site, so the session crosses sites by itself;
//! - `__Host-baton-p`, `Partitioned` (CHIPS): kept even where third-party cookies are blocked, but
//!   only under the top-level site that set it (handoff tokens carry the session across sites).
//!
//! Both are `__Host-` (so `Secure`, `Path=/`, no `Domain`: no subdomain can plant or read them),
//! `HttpOnly` (page scripts never see the id) and `SameSite=None` (they must travel in a
//! cross-site iframe; the API's `Origin` check is what stops cross-site request forgery).
//!
//! When both arrive and name different sessions, the unpartitioned one wins if it reaches a live
//! session: it is the one shared by every site, so it is the customer's cross-site session, and
//! the partitioned one is re-issued to match (see `routes::extract::SessionRequest::resolve`).

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use cookie::{Cookie, SameSite};

use crate::session::SessionId;

pub const UNPARTITIONED: &str = "__Host-baton";
pub const PARTITIONED: &str = "__Host-baton-p";

/// The session ids a request carries, each already checked for shape.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestCookies {
    pub unpartitioned: Option<SessionId>,
    pub partitioned: Option<SessionId>,
}

impl RequestCookies {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut found = Self::default();
        for header in headers.get_all(COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                let slot = match cookie.name() {
                    UNPARTITIONED => &mut found.unpartitioned,
                    PARTITIONED => &mut found.partitioned,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = SessionId::parse(cookie.value());
                }
            }
        }
        found
    }
}

fn build(name: &'static str, value: String, partitioned: bool, max_age_secs: i64) -> String {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::None)
        .partitioned(partitioned)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// Both `Set-Cookie` values that bind `id` to this browser, living `max_age_secs`.
pub fn session_cookies(id: &SessionId, max_age_secs: i64) -> [String; 2] {
    [
        build(UNPARTITIONED, id.as_str().to_owned(), false, max_age_secs),
        build(PARTITIONED, id.as_str().to_owned(), true, max_age_secs),
    ]
}

/// Both removals. The partitioned one must itself say `Partitioned`, or the browser keeps the
/// cookie (measured in Chromium).
pub fn removal_cookies() -> [String; 2] {
    [
        build(UNPARTITIONED, String::new(), false, 0),
        build(PARTITIONED, String::new(), true, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_host_prefixed_and_shared_with_the_js_tests() {
        // `__Host-`: Secure, Path=/, no Domain, so no subdomain can plant or read them.
        assert!(UNPARTITIONED.starts_with("__Host-") && PARTITIONED.starts_with("__Host-"));
        let shared: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/cookies.json")).expect("json");
        assert_eq!(shared["unpartitioned"], UNPARTITIONED);
        assert_eq!(shared["partitioned"], PARTITIONED);
    }

    /// The reference spec (docs/openapi.yaml) names the cookies clients see: its two cookie
    /// security schemes are these names, and it mentions no other `__Host-` cookie (a rename
    /// that missed it fails here, before the OpenAPI run).
    #[test]
    fn the_openapi_reference_names_exactly_these_cookies() {
        let spec = include_str!("../docs/openapi.yaml");
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let mentioned: std::collections::BTreeSet<&str> = spec
            .match_indices("__Host-")
            .map(|(at, _)| {
                let rest = &spec[at + "__Host-".len()..];
                let len = rest.find(|c| !name_char(c)).unwrap_or(rest.len());
                spec[at..at + "__Host-".len() + len].trim_end_matches('-')
            })
            .filter(|name| *name != "__Host")
            .collect();
        let expected = std::collections::BTreeSet::from([UNPARTITIONED, PARTITIONED]);
        assert_eq!(mentioned, expected);
        for name in expected {
            assert!(
                spec.contains(&format!("in: cookie\n      name: {name}\n")),
                "no cookie scheme named {name}"
            );
        }
    }

    #[test]
    fn session_cookies_have_every_attribute() {
        let id = SessionId::generate();
        let [plain, part] = session_cookies(&id, 3600);
        for c in [&plain, &part] {
            for attr in [
                "; Path=/",
                "; Secure",
                "; HttpOnly",
                "; SameSite=None",
                "; Max-Age=3600",
            ] {
                assert!(c.contains(attr), "{attr} missing in {c}");
            }
            assert!(!c.contains("Domain"), "{c}");
        }
        assert!(plain.starts_with(&format!("{UNPARTITIONED}={}", id.as_str())));
        assert!(!plain.contains("Partitioned"));
        assert!(part.starts_with(&format!("{PARTITIONED}={}", id.as_str())));
        assert!(part.contains("; Partitioned"));
    }

    #[test]
    fn removals_expire_and_keep_partitioned() {
        let [plain, part] = removal_cookies();
        assert!(plain.contains("Max-Age=0") && !plain.contains("Partitioned"));
        assert!(part.contains("Max-Age=0") && part.contains("Partitioned"));
    }

    #[test]
    fn reads_only_well_formed_ids() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            format!("x=1; {UNPARTITIONED}=junk; {PARTITIONED}={}", id.as_str())
                .parse()
                .expect("header"),
        );
        let found = RequestCookies::from_headers(&headers);
        assert_eq!(found.unpartitioned, None);
        assert_eq!(found.partitioned, Some(id));
    }
}
