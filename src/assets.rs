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
//! a year as immutable, with its Subresource Integrity value published (`baton assets`).
//!
//! The iframe page carries its script inline (issue 23: one request fewer on the restore path),
//! admitted by its CSP's `script-src 'sha256-…'` of exactly those bytes, computed here; nothing
//! else may run in it. It is rendered once at start: its only variable part is the trusted-origin
//! list, which is also its `frame-ancestors`, so browsers refuse to load it in any other site's
//! frame. In cookie modes `routes::assets` adds the session the request's cookie reaches, as a
//! JSON block before the script (`IframePage::with_session`); that page is built per request and
//! never cached. `/iframe.js` and `/iframe.<hash>.js` are still served, for one release, to pages
//! that load the script by URL.

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
struct IframeTemplate<'a> {
    config_json: &'a str,
    /// Where a session snapshot goes: `IframePage::MARK` at start, split there.
    session: &'a str,
    /// The script, inline.
    script: &'a str,
}

/// JSON for a `<script type="application/json">` block: no value can end the block or start a
/// comment in it (`<`, `>`, `&` escaped), and U+2028/U+2029 are escaped too, so the text is also
/// a JavaScript literal wherever it might be pasted. Each escape is a JSON `\u` escape inside a
/// string (none of these characters is JSON syntax), so `JSON.parse` gives back the same values.
pub fn script_json(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The iframe page in two parts, split where the session snapshot goes: everything up to and
/// including the `#baton-config` block, and the inline script. The page without a snapshot is
/// `Assets::iframe_page`, prepared once like every asset.
pub struct IframePage {
    head: String,
    tail: String,
    /// The page's `Content-Security-Policy`.
    pub csp: HeaderValue,
}

impl IframePage {
    /// Stands in for the snapshot while the template is rendered once.
    const MARK: &'static str = "\u{0}baton-session\u{0}";

    /// The page with the session's `values` in `<script id="baton-session"
    /// type="application/json">` (not executed; escaped by `script_json`), before the script,
    /// which reads it once. Sent as it is: per request, and never compressed (nothing is
    /// compressed per request; the page is about 3.5 KB plus the values).
    /// The page with `values` as a response: `no-store` (it is this browser's alone, now), with
    /// the page's CSP and CORP and the `Set-Cookie` values given, uncompressed, no `ETag`.
    pub fn serve_with_session(
        &self,
        values: &crate::session::Values,
        cookies: &[String],
    ) -> Response {
        let mut res = Response::new(Body::from(self.with_session(values)));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
        for c in cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                h.append(header::SET_COOKIE, v);
            }
        }
        res
    }

    pub fn with_session(&self, values: &crate::session::Values) -> Vec<u8> {
        let json = script_json(values);
        let mut out = String::with_capacity(self.head.len() + json.len() + self.tail.len() + 64);
        out.push_str(&self.head);
        out.push_str(r#"<script id="baton-session" type="application/json">"#);
        out.push_str(&json);
        out.push_str("</script>");
        out.push_str(&self.tail);
        out.into_bytes()
    }
}

/// The inline script's bytes, checked: the HTML parser must see them unchanged, so nothing that
/// ends or changes a script element (`</script`, `<!--`, `<script`, case-insensitive) and no
/// carriage return (the parser turns CR LF into LF, and the hash would no longer match).
fn inline_script(js: &[u8]) -> Result<&str, String> {
    let text = std::str::from_utf8(js).map_err(|_| "iframe.js is not UTF-8".to_owned())?;
    let lower = text.to_ascii_lowercase();
    for bad in ["</script", "<!--", "<script", "\r"] {
        if lower.contains(bad) {
            return Err(format!("iframe.js cannot be inlined: it contains {bad:?}"));
        }
    }
    Ok(text)
}

/// The CSP source that admits exactly `script` inline: `'sha256-<base64>'`.
pub fn script_hash(script: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(script.as_bytes()))
    )
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
    /// The iframe page without a session snapshot, prepared like every asset.
    pub iframe_page: Asset,
    /// The same page's parts, for a page with a snapshot.
    pub iframe: IframePage,
    /// The iframe's script by URL (`/iframe.js`, `/iframe.<hash>.js`): no page of this version
    /// loads it; kept one release for pages that do.
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

/// The iframe page's policy: it runs only the broker's own inline script (`script_hash` of its
/// bytes: no other inline script, no script by URL), talks only to the broker, and may be framed
/// only by the trusted origins.
pub fn iframe_csp(trusted: &TrustedOrigins, script_hash: &str) -> String {
    format!(
        "default-src 'none'; script-src {script_hash}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        trusted.frame_ancestors()
    )
}

impl Assets {
    /// `page_keys`: whether the iframe may fall back to page keys (`session.page_keys`).
    pub fn new(trusted: &TrustedOrigins, page_keys: bool) -> Result<Self, String> {
        let config = serde_json::json!({ "trusted": trusted.to_strings(), "page": page_keys });
        let config_json = script_json(&config);
        let js = "text/javascript; charset=utf-8";
        let script = inline_script(IFRAME_JS)?;
        let html = IframeTemplate {
            config_json: &config_json,
            session: IframePage::MARK,
            script,
        }
        .render()
        .map_err(|e| format!("cannot render iframe.html: {e}"))?;
        let (head, tail) = html
            .split_once(IframePage::MARK)
            .ok_or("iframe.html has no place for the session")?;
        let csp = HeaderValue::from_str(&iframe_csp(trusted, &script_hash(script)))
            .map_err(|e| format!("invalid CSP header: {e}"))?;
        let mut iframe_page = Asset::new(
            format!("{head}{tail}").into_bytes(),
            "text/html; charset=utf-8",
        );
        // Framed by partner pages, which may require CORP of what they embed (COEP).
        iframe_page.corp = "cross-origin";
        iframe_page.csp = Some(csp.clone());
        Ok(Self {
            iframe_page,
            iframe: IframePage {
                head: head.to_owned(),
                tail: tail.to_owned(),
                csp,
            },
            iframe_js: Asset::new(IFRAME_JS.to_vec(), js),
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

    /// The versioned URL path of the iframe's script (kept one release; the page has it inline).
    pub fn versioned_iframe_js_path(&self) -> String {
        format!("/iframe.{}.js", self.iframe_js.version)
    }
}
