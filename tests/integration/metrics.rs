//! `/metrics` is for operators: only on the admin listener, in Prometheus text a scraper parses,
//! with latency by route template, and the process's own figures.

use std::collections::HashMap;

use crate::helpers::*;

/// `name{labels}` -> value, for every sample line; panics on a line a scraper could not read.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (key.to_owned(), value)
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only() {
    let app = spawn_app().await;
    assert_eq!(
        app.fetch("/metrics").await.status(),
        404,
        "not on the public listener"
    );
    let res = app.put("chat", "x", SHOP, None).await;
    let cookies = cookie_header(res.headers());
    app.get(SHOP, Some(&cookies)).await;
    assert_eq!(
        app.put("chat", "y", SHOP, Some(&cookies)).await.status(),
        200
    );
    app.fetch("/cookie-provider.js").await;
    let samples = parse(&app.metrics().await);

    let count = |key: &str| {
        samples
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("no {key}"))
    };
    assert_eq!(
        count(
            r#"baton_http_request_duration_seconds_count{method="PUT",route="/v1/session/{key}"}"#
        ),
        2.0
    );
    assert_eq!(
        count(
            r#"baton_http_request_duration_seconds_count{method="GET",route="/cookie-provider.js"}"#
        ),
        1.0
    );
    // Cumulative buckets up to +Inf, which holds every request.
    assert_eq!(
        count(
            r#"baton_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/session"}"#
        ),
        1.0
    );
    assert!(count("process_resident_memory_bytes") > 1e6);
    assert!(count("process_open_fds") >= 3.0);
    assert!(count("process_max_fds") >= count("process_open_fds"));
    assert!(count("process_start_time_seconds") > 1.7e9);
    assert_eq!(count("baton_sessions_created_total"), 1.0);
    // Store calls by operation: the first PUT created a session and set a value, the GET loaded
    // it, the second PUT found it and set the value in one call.
    assert_eq!(
        count(r#"baton_store_call_duration_seconds_count{op="create"}"#),
        1.0
    );
    assert_eq!(
        count(r#"baton_store_call_duration_seconds_count{op="set_value"}"#),
        1.0
    );
    assert!(count(r#"baton_store_call_duration_seconds_count{op="load"}"#) >= 1.0);
    assert_eq!(
        count(r#"baton_store_call_duration_seconds_count{op="load_and_set"}"#),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn made_up_methods_and_paths_leave_the_label_set_fixed_and_the_scrape_bounded() {
    let app = spawn_app().await;
    app.fetch("/healthz").await;
    app.fetch("/no-such-page").await;
    let before = app.metrics().await.len();
    for i in 0..300 {
        // A method is any token, up to the size of a request head.
        let method = reqwest::Method::from_bytes(format!("M{i}{}", "X".repeat(4000)).as_bytes())
            .expect("a token");
        app.client
            .request(method, app.url(&format!("/made-up/{i}")))
            .send()
            .await
            .expect("send");
        app.fetch(&format!("/made-up/{i}")).await;
    }
    let text = app.metrics().await;
    let samples = parse(&text);
    assert_eq!(
        samples[r#"baton_http_request_duration_seconds_count{method="other",route="unmatched"}"#],
        300.0
    );
    assert_eq!(
        samples[r#"baton_http_request_duration_seconds_count{method="GET",route="unmatched"}"#],
        301.0
    );
    assert!(!text.contains("XXXX") && !text.contains("made-up"));
    // The scrape grew by the new labels' lines only, not by a line set per request.
    assert!(
        text.len() < before + 4096,
        "scrape grew from {before} to {} bytes",
        text.len()
    );
    app.stop().await;
}
