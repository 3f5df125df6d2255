//! The files the broker serves to browsers, built once at start: the iframe page partners embed,
//! its script, the partner-side `cookie-provider.js` and its types. (`routes::assets` serves them.)
//!
//! The scripts are compiled into the binary (`static/`, built from `js/` by `npm run build`), so
//! one file is the whole deployment. Each asset has a strong `ETag` from its content and answers
//! `If-None-Match` with 304; compression is the router's `CompressionLayer`.
//!
//! The iframe page is rendered once at start: its only variable part is the trusted-origin list,
//! which is also its `frame-ancestors`, so browsers refuse to load it in any other site's frame.

use std::sync::Arc;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::origin::TrustedOrigins;

pub const COOKIE_PROVIDER_JS: &[u8] = include_bytes!("../static/cookie-provider.js");
pub const COOKIE_PROVIDER_DTS: &[u8] = include_bytes!("../static/cookie-provider.d.ts");
pub const IFRAME_JS: &[u8] = include_bytes!("../static/iframe.js");

#[derive(Template)]
#[template(path = "iframe.html")]
struct IframePage {
    config_json: String,
}

pub struct Asset {
    body: Arc<[u8]>,
    etag: HeaderValue,
    content_type: &'static str,
    csp: Option<HeaderValue>,
    cache: &'static str,
    /// Who may load it as a subresource (`Cross-Origin-Resource-Policy`).
    corp: &'static str,
    /// Public, credential-free content any site may fetch with CORS (e.g. `<script crossorigin
    /// integrity=…>` on a partner page): `Access-Control-Allow-Origin: *`.
    cors_public: bool,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Self {
        let digest = Sha256::digest(&body);
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            body: body.into(),
            etag: HeaderValue::from_str(&format!("\"{tag}\""))
                .unwrap_or(HeaderValue::from_static("\"0\"")),
            content_type,
            csp: None,
            cache,
            corp: "same-origin",
            cors_public: false,
        }
    }

    /// For the partner-facing files: any site may load them, with or without CORS.
    fn public(mut self) -> Self {
        self.corp = "cross-origin";
        self.cors_public = true;
        self
    }

    pub fn serve(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                t.trim().trim_start_matches("W/") == self.etag.to_str().unwrap_or_default()
                    || t.trim() == "*"
            });
        let mut res = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(header::CONTENT_TYPE, self.content_type)],
                self.body.to_vec(),
            )
                .into_response()
        };
        let h = res.headers_mut();
        h.insert(header::ETAG, self.etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache));
        if let Some(csp) = &self.csp {
            h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
        }
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static(self.corp),
        );
        if self.cors_public {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        res
    }
}

pub struct Assets {
    pub iframe_page: Asset,
    pub iframe_js: Asset,
    pub cookie_provider: Asset,
    pub types: Asset,
}

/// The iframe page's policy: it runs only the broker's own script, talks only to the broker, and
/// may be framed only by the trusted origins.
pub fn iframe_csp(trusted: &TrustedOrigins) -> String {
    format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        trusted.frame_ancestors()
    )
}

impl Assets {
    /// `page_keys`: whether the iframe may fall back to page keys (`session.page_keys`).
    pub fn new(trusted: &TrustedOrigins, page_keys: bool) -> Result<Self, String> {
        let config = serde_json::json!({ "trusted": trusted.to_strings(), "page": page_keys });
        // `<` escaped so the JSON can never close its <script> element.
        let config_json = config.to_string().replace('<', "\\u003c");
        let html = IframePage { config_json }
            .render()
            .map_err(|e| format!("cannot render iframe.html: {e}"))?;
        let mut iframe_page = Asset::new(html.into_bytes(), "text/html; charset=utf-8", "no-cache");
        // Framed by partner pages, which may require CORP of what they embed (COEP).
        iframe_page.corp = "cross-origin";
        iframe_page.csp = Some(
            HeaderValue::from_str(&iframe_csp(trusted))
                .map_err(|e| format!("invalid CSP header: {e}"))?,
        );
        // Partners reference the scripts by fixed URLs, so they are revalidated, not cached for long.
        let script = "public, max-age=300, must-revalidate";
        Ok(Self {
            iframe_page,
            iframe_js: Asset::new(IFRAME_JS.to_vec(), "text/javascript; charset=utf-8", script),
            cookie_provider: Asset::new(
                COOKIE_PROVIDER_JS.to_vec(),
                "text/javascript; charset=utf-8",
                script,
            )
            .public(),
            types: Asset::new(
                COOKIE_PROVIDER_DTS.to_vec(),
                "application/typescript; charset=utf-8",
                script,
            )
            .public(),
        })
    }
}
