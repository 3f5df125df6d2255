//! The files the broker serves to browsers, built once at start: the iframe page partners embed,
//! its script, the partner-side `cookie-provider.js` and its types. (`routes::assets` serves them.)
//!
//! The scripts are compiled into the binary (`static/`, built from `js/` by `npm run build`), so
//! one file is the whole deployment. Every partner page fetches them on every page view, so each
//! is prepared once, here: compressed with brotli and gzip (each kept only where it is smaller),
//! with a strong `ETag` per encoding; a request picks the encoding its `Accept-Encoding` allows
//! (brotli first) and gets the prepared bytes, with `Content-Length`, or 304 for a tag it holds.
//! Nothing is compressed per request.
//!
//! Scripts have two URLs: the stable one (`/cookie-provider.js`, which Genesys pages use),
//! revalidated after 5 minutes, and a versioned one (`/cookie-provider.<hash>.js`), cacheable for
//! a year as immutable, with its Subresource Integrity value published (`baton assets`). The iframe
//! page loads its own script by the versioned URL.
//!
//! The iframe page is rendered once at start: its only variable part is the trusted-origin list,
//! which is also its `frame-ancestors`, so browsers refuse to load it in any other site's frame.

use std::io::Write;

use askama::Template;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha384};

use crate::origin::TrustedOrigins;

pub const COOKIE_PROVIDER_JS: &[u8] = include_bytes!("../static/cookie-provider.js");
/// The same library as an ES module.
pub const BATON_MJS: &[u8] = include_bytes!("../static/baton.mjs");
pub const COOKIE_PROVIDER_DTS: &[u8] = include_bytes!("../static/cookie-provider.d.ts");
/// The module's types, which the global ones import.
pub const BATON_DMTS: &[u8] = include_bytes!("../static/baton.d.mts");
pub const IFRAME_JS: &[u8] = include_bytes!("../static/iframe.js");

/// Revalidated often: partners reference these URLs, which never change.
const STABLE: &str = "public, max-age=300, must-revalidate";
/// A versioned URL's content never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Template)]
#[template(path = "iframe.html")]
struct IframePage<'a> {
    config_json: String,
    script: &'a str,
}

/// One encoding of an asset, ready to send.
struct Variant {
    encoding: Option<&'static str>,
    body: Bytes,
    etag: HeaderValue,
}

/// A file served from memory, in every encoding worth having.
pub struct Asset {
    /// Identity first, then the compressed ones that are smaller (brotli before gzip).
    variants: Vec<Variant>,
    content_type: HeaderValue,
    csp: Option<HeaderValue>,
    /// Who may load it as a subresource (`Cross-Origin-Resource-Policy`).
    corp: &'static str,
    /// Public, credential-free content any site may fetch with CORS (e.g. `<script crossorigin
    /// integrity=…>` on a partner page): `Access-Control-Allow-Origin: *`.
    cors_public: bool,
    /// Hex of the first bytes of SHA-256 of the content: names the versioned URL.
    pub version: String,
    /// The Subresource Integrity value of the content: `sha384-…`.
    pub integrity: String,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str) -> Self {
        let digest = Sha256::digest(&body);
        let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let integrity = format!("sha384-{}", STANDARD.encode(Sha384::digest(&body)));
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{tag}{suffix}\""))
                .unwrap_or(HeaderValue::from_static("\"0\""))
        };
        let mut variants = vec![Variant {
            encoding: None,
            body: Bytes::from(body.clone()),
            etag: etag(""),
        }];
        for (encoding, suffix, compressed) in
            [("br", "-br", brotli(&body)), ("gzip", "-gz", gzip(&body))]
        {
            if compressed.len() < body.len() {
                variants.push(Variant {
                    encoding: Some(encoding),
                    body: Bytes::from(compressed),
                    etag: etag(suffix),
                });
            }
        }
        Self {
            variants,
            content_type: HeaderValue::from_static(content_type),
            csp: None,
            corp: "same-origin",
            cors_public: false,
            version: tag[..16].to_owned(),
            integrity,
        }
    }

    /// The partner-side library, `cookie-provider.js`.
    pub fn partner_script() -> Self {
        Self::new(
            COOKIE_PROVIDER_JS.to_vec(),
            "text/javascript; charset=utf-8",
        )
        .public()
    }

    /// The partner-side library as an ES module, `baton.mjs` (module scripts are always fetched
    /// with CORS: `public` answers it).
    pub fn partner_module() -> Self {
        Self::new(BATON_MJS.to_vec(), "text/javascript; charset=utf-8").public()
    }

    /// For the partner-facing files: any site may load them, with or without CORS.
    fn public(mut self) -> Self {
        self.corp = "cross-origin";
        self.cors_public = true;
        self
    }

    /// The bytes as sent for `encoding` (`None`: identity), if prepared.
    pub fn encoded(&self, encoding: Option<&str>) -> Option<&[u8]> {
        self.variants
            .iter()
            .find(|v| v.encoding == encoding)
            .map(|v| &v.body[..])
    }

    /// The variant `accept-encoding` lets us send: brotli, then gzip, then identity.
    fn pick(&self, headers: &HeaderMap) -> &Variant {
        let accepted = |encoding: &str| {
            headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|item| {
                    let mut parts = item.split(';');
                    let name = parts.next().unwrap_or("").trim();
                    let refused = parts.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.trim().parse::<f32>().ok())
                            .is_some_and(|q| q <= 0.0)
                    });
                    name.eq_ignore_ascii_case(encoding) && !refused
                })
        };
        self.variants
            .iter()
            .find(|v| v.encoding.is_some_and(accepted))
            .unwrap_or(&self.variants[0])
    }

    /// The asset for a request with `headers`, with `cache` as its `Cache-Control`.
    pub fn serve(&self, headers: &HeaderMap, cache: &'static str) -> Response {
        let variant = self.pick(headers);
        // A tag of any of our encodings means the client holds this content.
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| {
                t == "*"
                    || self
                        .variants
                        .iter()
                        .any(|v| v.etag.as_bytes() == t.as_bytes())
            });
        let mut res = if fresh {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res
        } else {
            let mut res = Response::new(Body::from(variant.body.clone()));
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, self.content_type.clone());
            if let Some(encoding) = variant.encoding {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            res
        };
        let h = res.headers_mut();
        h.insert(header::ETAG, variant.etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
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

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        // Writing to a Vec cannot fail.
        let _ = w.write_all(body);
    }
    out
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = w.write_all(body);
    w.finish().unwrap_or_default()
}

pub struct Assets {
    pub iframe_page: Asset,
    pub iframe_js: Asset,
    pub cookie_provider: Asset,
    pub module: Asset,
    pub types: Asset,
    pub module_types: Asset,
}

/// What `cache` an asset is served with: the stable URL's, or a versioned URL's.
pub fn cache_control(versioned: bool) -> &'static str {
    if versioned { IMMUTABLE } else { STABLE }
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
        let js = "text/javascript; charset=utf-8";
        let iframe_js = Asset::new(IFRAME_JS.to_vec(), js);
        let script = format!("/iframe.{}.js", iframe_js.version);
        let html = IframePage {
            config_json,
            script: &script,
        }
        .render()
        .map_err(|e| format!("cannot render iframe.html: {e}"))?;
        let mut iframe_page = Asset::new(html.into_bytes(), "text/html; charset=utf-8");
        // Framed by partner pages, which may require CORP of what they embed (COEP).
        iframe_page.corp = "cross-origin";
        iframe_page.csp = Some(
            HeaderValue::from_str(&iframe_csp(trusted))
                .map_err(|e| format!("invalid CSP header: {e}"))?,
        );
        Ok(Self {
            iframe_page,
            iframe_js,
            cookie_provider: Asset::partner_script(),
            module: Asset::partner_module(),
            module_types: Asset::new(BATON_DMTS.to_vec(), "application/typescript; charset=utf-8")
                .public(),
            types: Asset::new(
                COOKIE_PROVIDER_DTS.to_vec(),
                "application/typescript; charset=utf-8",
            )
            .public(),
        })
    }

    /// The versioned URL path of the partner script: cacheable for a year, with `integrity`.
    pub fn versioned_provider_path(&self) -> String {
        format!("/cookie-provider.{}.js", self.cookie_provider.version)
    }

    /// The versioned URL path of the ES module.
    pub fn versioned_module_path(&self) -> String {
        format!("/baton.{}.mjs", self.module.version)
    }

    /// The versioned URL path of the iframe's script (the one the iframe page loads).
    pub fn versioned_iframe_js_path(&self) -> String {
        format!("/iframe.{}.js", self.iframe_js.version)
    }
}
