//! Assets are prepared once and served as prepared: every encoding's bytes are fixed at start,
//! each with its own strong tag, picked by `Accept-Encoding` (quality values honoured), and the
//! partner script also has a versioned, immutable URL whose integrity value is published.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha384};

use crate::helpers::*;

async fn get(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.at(path)
        .header("accept-encoding", accept)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn each_encoding_is_prepared_once_and_picked_by_accept_encoding() {
    let app = spawn_app().await;
    for (accept, expected) in [
        ("gzip, deflate, br", Some("br")),
        ("br;q=0, gzip", Some("gzip")),
        ("gzip;q=0.5", Some("gzip")),
        ("gzip;q=0, br;q=0", None),
        ("identity", None),
        ("", None),
    ] {
        let a = get(&app, "/cookie-provider.js", accept).await;
        assert_eq!(
            a.headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("ascii")),
            expected,
            "{accept:?}"
        );
        assert_eq!(a.headers()["vary"], "Accept-Encoding");
        let length: usize = a.headers()["content-length"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        let tag = a.headers()["etag"].clone();
        let body = a.bytes().await.expect("body");
        assert_eq!(body.len(), length, "Content-Length is the body's");
        // The same bytes and the same tag every time: prepared, not compressed per request.
        let b = get(&app, "/cookie-provider.js", accept).await;
        assert_eq!(b.headers()["etag"], tag);
        assert_eq!(b.bytes().await.expect("body"), body, "{accept:?}");
    }
    // A tag per encoding, and any of them means "unchanged".
    let br = get(&app, "/cookie-provider.js", "br").await.headers()["etag"].clone();
    let gz = get(&app, "/cookie-provider.js", "gzip").await.headers()["etag"].clone();
    let plain = get(&app, "/cookie-provider.js", "").await.headers()["etag"].clone();
    assert!(br != gz && gz != plain && br != plain);
    for held in [&br, &gz, &plain] {
        let res = app
            .at("/cookie-provider.js")
            .header("accept-encoding", "gzip")
            .header("if-none-match", held)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 304);
        assert_eq!(
            res.headers()["etag"],
            gz,
            "the 304 names the representation it stands for"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_partner_script_has_a_versioned_immutable_url_with_its_integrity() {
    let app = spawn_app().await;
    let stable = app.fetch("/cookie-provider.js").await;
    assert_eq!(
        stable.headers()["cache-control"],
        "public, max-age=300, must-revalidate"
    );
    let body = stable.bytes().await.expect("body");
    let version: String = Sha256::digest(&body)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let res = app.fetch(&format!("/cookie-provider.{version}.js")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.bytes().await.expect("body"), body);
    // An old version is simply not there.
    assert_eq!(
        app.fetch("/cookie-provider.0000000000000000.js")
            .await
            .status(),
        404
    );

    // What `baton assets` publishes is the browser's own integrity check of those bytes.
    let origin = baton::origin::Origin::parse("https://broker.example.com").expect("origin");
    let report = baton::cli::assets_report(&origin);
    let integrity = format!("sha384-{}", STANDARD.encode(Sha384::digest(&body)));
    assert!(report.contains(&format!(
        r#"<script src="https://broker.example.com/cookie-provider.{version}.js" integrity="{integrity}" crossorigin="anonymous"></script>"#
    )), "{report}");
    app.stop().await;
}

#[tokio::test]
async fn the_types_served_are_complete() {
    let app = spawn_app().await;
    let global = app
        .fetch("/cookie-provider.d.ts")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        global.contains(r#"from "./baton.mjs""#),
        "the global types import the module's"
    );
    // ... which are served beside them, so a downloaded pair resolves.
    let module = app.fetch("/baton.d.mts").await;
    assert_eq!(module.status(), 200);
    assert!(
        module
            .text()
            .await
            .expect("text")
            .contains("export function connect(")
    );
    app.stop().await;
}
