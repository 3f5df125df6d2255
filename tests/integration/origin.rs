//! Black-box tests of the origin rule: the shared corpus (`tests/data/origin-cases.json`, also
//! run by the iframe's JavaScript tests, so both sides stay in step), the length and DNS
//! boundaries, and property tests that compare `TrustedOrigins::check` against a small
//! independent model.

use std::sync::LazyLock;

use baton::origin::{
    Denied, MAX_HOST_LEN, MAX_LABEL_LEN, MAX_ORIGIN_LEN, Origin, OriginPattern, TrustedOrigins,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde::Deserialize;
use url::{Host, Url};

#[derive(Deserialize)]
struct Corpus {
    trusted: Vec<String>,
    cases: Vec<Case>,
    patterns: Vec<PatternCase>,
}

#[derive(Deserialize)]
struct Case {
    origin: String,
    allowed: bool,
    reason: Option<String>,
    why: String,
}

#[derive(Deserialize)]
struct PatternCase {
    entry: String,
    valid: bool,
    why: String,
}

static CORPUS: LazyLock<Corpus> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/origin-cases.json");
    let text = std::fs::read_to_string(path).expect("read the origin corpus");
    serde_json::from_str(&text).expect("parse the origin corpus")
});

static TRUSTED: LazyLock<TrustedOrigins> = LazyLock::new(|| {
    TrustedOrigins::parse_all(&CORPUS.trusted).expect("the corpus's trusted list is valid")
});

/// Origins the corpus says are allowed; the seeds for the mutation properties.
static ALLOWED: LazyLock<Vec<String>> = LazyLock::new(|| {
    CORPUS
        .cases
        .iter()
        .filter(|c| c.allowed)
        .map(|c| c.origin.clone())
        .collect()
});

fn code(result: &Result<Origin, Denied>) -> Option<&'static str> {
    result.as_ref().err().map(Denied::code)
}

fn show(s: &str) -> String {
    let shown = format!("{s:?}");
    if shown.len() > 100 {
        format!("{}… ({} bytes)", &shown[..80], s.len())
    } else {
        shown
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus

#[test]
fn corpus_is_big_and_mostly_hostile() {
    let denied = CORPUS.cases.iter().filter(|c| !c.allowed).count();
    assert!(CORPUS.cases.len() >= 120, "{} cases", CORPUS.cases.len());
    assert!(
        denied * 4 >= CORPUS.cases.len() * 3,
        "only {denied} denied cases"
    );
    assert!(
        CORPUS.patterns.len() >= 30,
        "{} patterns",
        CORPUS.patterns.len()
    );
    for reason in [
        "not_ascii",
        "too_long",
        "null",
        "malformed",
        "not_canonical",
        "host_too_long",
        "not_trusted",
    ] {
        assert!(
            CORPUS
                .cases
                .iter()
                .any(|c| c.reason.as_deref() == Some(reason)),
            "no case for {reason}"
        );
    }
    for case in &CORPUS.cases {
        assert_eq!(
            case.allowed,
            case.reason.is_none(),
            "{}",
            show(&case.origin)
        );
        assert!(!case.why.is_empty(), "{}", show(&case.origin));
    }
    for case in &CORPUS.patterns {
        assert!(!case.why.is_empty(), "{}", show(&case.entry));
    }
}

#[test]
fn corpus_cases_get_the_expected_verdict_and_reason() {
    let mut failures = Vec::new();
    for case in &CORPUS.cases {
        let got = code(&TRUSTED.check(&case.origin));
        if got != case.reason.as_deref() {
            failures.push(format!(
                "{}: expected {:?}, got {got:?} ({})",
                show(&case.origin),
                case.reason,
                case.why
            ));
        }
        if let Ok(origin) = TRUSTED.check(&case.origin) {
            assert_eq!(origin.as_str(), case.origin);
            assert_eq!(origin.to_string(), case.origin);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `check` answers an exact entry, byte for byte, without parsing it (the guard's fast path);
/// on every corpus case it must say what the full rule says, and the corpus must reach it.
#[test]
fn the_exact_fast_path_agrees_with_the_full_rule_on_the_corpus() {
    let full = |raw: &str| -> Result<Origin, Denied> {
        let origin = Origin::parse(raw)?;
        if TRUSTED.allows(&origin) {
            Ok(origin)
        } else {
            Err(Denied::NotTrusted)
        }
    };
    let exact: Vec<&str> = TRUSTED
        .patterns()
        .iter()
        .filter_map(|p| match p {
            OriginPattern::Exact(o) => Some(o.as_str()),
            OriginPattern::Wildcard { .. } => None,
        })
        .collect();
    let mut fast = 0;
    for case in &CORPUS.cases {
        assert_eq!(
            TRUSTED.check(&case.origin),
            full(&case.origin),
            "{}",
            show(&case.origin)
        );
        fast += usize::from(exact.contains(&case.origin.as_str()));
    }
    assert!(
        fast >= exact.len() && !exact.is_empty(),
        "{fast} corpus cases take the fast path"
    );
}

#[test]
fn corpus_patterns_are_accepted_or_refused() {
    let mut failures = Vec::new();
    for case in &CORPUS.patterns {
        match (OriginPattern::parse(&case.entry), case.valid) {
            (Ok(pattern), true) => {
                assert_eq!(
                    pattern.to_string(),
                    case.entry,
                    "Display is the canonical text"
                );
            }
            (Err(error), false) => {
                assert_eq!(error.entry, case.entry);
                assert!(error.reason.len() > 20, "{error}");
            }
            (Ok(pattern), false) => failures.push(format!(
                "{}: accepted as {pattern:?} ({})",
                show(&case.entry),
                case.why
            )),
            (Err(error), true) => failures.push(format!("{error} ({})", case.why)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn corpus_invalid_patterns_are_all_reported_at_once() {
    let invalid: Vec<&str> = CORPUS
        .patterns
        .iter()
        .filter(|p| !p.valid)
        .map(|p| p.entry.as_str())
        .collect();
    let mut entries: Vec<&str> = CORPUS.trusted.iter().map(String::as_str).collect();
    entries.extend(&invalid);
    let errors = TrustedOrigins::parse_all(&entries).expect_err("invalid entries are refused");
    let reported: Vec<&str> = errors.iter().map(|e| e.entry.as_str()).collect();
    assert_eq!(reported, invalid);
}

#[test]
fn corpus_trusted_list_becomes_frame_ancestors() {
    assert_eq!(TRUSTED.patterns().len(), CORPUS.trusted.len());
    assert!(!TRUSTED.is_empty());
    assert_eq!(TRUSTED.frame_ancestors(), CORPUS.trusted.join(" "));
}

// ---------------------------------------------------------------------------------------------
// Fixed cases that are easier to build in code than to write in JSON

/// A canonical `https://aaa…a.aaa…a.example.org` origin of exactly `len` bytes, with DNS-sized
/// labels.
fn long_origin(len: usize) -> String {
    let fixed = "https://".len() + ".example.org".len();
    let mut front = String::new();
    while front.len() < len - fixed {
        if !front.is_empty() {
            front.push('.');
        }
        let room = len - fixed - front.len();
        // Never leave exactly one byte, which could only be a dangling dot.
        let take = if room == 64 { 62 } else { room.min(63) };
        front.push_str(&"a".repeat(take));
    }
    let origin = format!("https://{front}.example.org");
    assert_eq!(origin.len(), len);
    origin
}

#[test]
fn length_limit_is_inclusive() {
    // No DNS name comes near 2048 bytes, so at the limit an origin gets past the length check
    // and is refused for its host; one byte more and the length refuses it first.
    let at_limit = long_origin(MAX_ORIGIN_LEN);
    assert_eq!(TRUSTED.check(&at_limit), Err(Denied::HostTooLong));
    assert_eq!(
        TRUSTED.check(&long_origin(MAX_ORIGIN_LEN + 1)),
        Err(Denied::TooLong)
    );
    assert_eq!(
        TRUSTED.check(&format!("{at_limit}/")),
        Err(Denied::TooLong),
        "length is checked before canonical form"
    );
    let huge = format!("https://{}.example.org", "a".repeat(1 << 20));
    assert_eq!(TRUSTED.check(&huge), Err(Denied::TooLong));
}

/// `https://` and a host name of exactly `len` bytes ending in `.example.org`, in front of it
/// labels of `label` bytes (the last one shorter when they do not divide evenly).
fn host_of(len: usize, label: usize) -> String {
    let mut labels = Vec::new();
    let mut room = len - ".example.org".len();
    while room > 0 {
        // Never leave exactly a dot's worth of room, which could only be a dangling dot.
        let take = if room == label + 1 {
            label - 1
        } else {
            room.min(label)
        };
        labels.push("a".repeat(take));
        room -= take;
        room = room.saturating_sub(1);
    }
    let host = format!("{}.example.org", labels.join("."));
    assert_eq!(host.len(), len);
    assert!(labels.iter().all(|l| !l.is_empty() && l.len() <= label));
    format!("https://{host}")
}

#[test]
fn dns_limits_are_inclusive_for_every_label_and_the_whole_name() {
    for label in [2, 17, MAX_LABEL_LEN] {
        let at_limit = host_of(MAX_HOST_LEN, label);
        assert_eq!(TRUSTED.check(&at_limit).map(|_| ()), Ok(()), "{at_limit}");
        let over = host_of(MAX_HOST_LEN + 1, label);
        assert_eq!(TRUSTED.check(&over), Err(Denied::HostTooLong), "{over}");
        // A trailing dot is not counted: the name passes the DNS rule, and is then refused as
        // a trailing-dot host, which no pattern matches.
        assert_eq!(
            TRUSTED.check(&format!("{at_limit}.")),
            Err(Denied::NotTrusted)
        );
        assert_eq!(TRUSTED.check(&format!("{over}.")), Err(Denied::HostTooLong));
    }
    for position in 0..3 {
        let mut labels = vec!["a".repeat(MAX_LABEL_LEN); 3];
        let at_limit = format!("https://{}.example.org", labels.join("."));
        assert!(TRUSTED.check(&at_limit).is_ok(), "{at_limit}");
        labels[position].push('a');
        let over = format!("https://{}.example.org", labels.join("."));
        assert_eq!(TRUSTED.check(&over), Err(Denied::HostTooLong), "{over}");
    }
    // IP addresses are not names: the limits do not apply, and none is long enough to matter.
    assert!(TRUSTED.check("http://127.0.0.1:3000").is_ok());
}

#[test]
fn ascii_is_checked_before_length() {
    // So that `too_long` means the same in JS, where `.length` counts UTF-16 units, not bytes.
    let long_with_space = format!("{} ", long_origin(MAX_ORIGIN_LEN));
    assert_eq!(TRUSTED.check(&long_with_space), Err(Denied::NotAscii));
    let long_unicode = format!("https://{}.example.org", "ü".repeat(MAX_ORIGIN_LEN));
    assert_eq!(TRUSTED.check(&long_unicode), Err(Denied::NotAscii));
}

#[test]
fn every_control_character_and_space_is_not_ascii() {
    for b in (0u8..=0x20).chain([0x7f]) {
        let c = char::from(b);
        for raw in [
            format!("{c}https://shop.example.com"),
            format!("https://shop{c}.example.com"),
            format!("https://shop.example.com{c}"),
        ] {
            assert_eq!(TRUSTED.check(&raw), Err(Denied::NotAscii), "{raw:?}");
        }
    }
}

#[test]
fn empty_trusted_list_trusts_nothing() {
    let none = TrustedOrigins::default();
    assert!(none.is_empty());
    assert_eq!(none.frame_ancestors(), "'none'");
    assert_eq!(
        none.check("https://shop.example.com"),
        Err(Denied::NotTrusted)
    );
    assert_eq!(
        TrustedOrigins::parse_all::<&str>(&[]).map(|t| t.is_empty()),
        Ok(true)
    );
}

#[test]
fn new_and_allows_work_on_parsed_values() {
    let patterns = vec![
        OriginPattern::parse("https://shop.example.com").expect("valid"),
        OriginPattern::parse("https://*.example.org:8443").expect("valid"),
    ];
    let trusted = TrustedOrigins::new(patterns.clone());
    assert_eq!(trusted.patterns(), patterns.as_slice());
    let allowed = |raw: &str| trusted.allows(&Origin::parse(raw).expect("canonical"));
    assert!(allowed("https://shop.example.com"));
    assert!(allowed("https://a.example.org:8443"));
    assert!(!allowed("https://a.example.org"));
    assert!(!allowed("https://example.org:8443"));
}

#[test]
fn wildcard_fields_are_canonical() {
    assert_eq!(
        OriginPattern::parse("https://*.staging.example.net:8443"),
        Ok(OriginPattern::Wildcard {
            scheme: "https".into(),
            suffix: "staging.example.net".into(),
            port: Some(8443),
        })
    );
    assert_eq!(
        OriginPattern::parse("http://*.example.org"),
        Ok(OriginPattern::Wildcard {
            scheme: "http".into(),
            suffix: "example.org".into(),
            port: None,
        })
    );
}

#[test]
fn wildcards_never_match_an_a_label_and_exact_entries_do() {
    let trusted =
        TrustedOrigins::parse_all(&["https://*.example.org", "https://xn--bcher-kva.example.org"])
            .expect("valid");
    // Valid internationalised labels (the url crate accepts each), in any position.
    for raw in [
        "https://xn--bcher-kva.example.org",
        "https://xn--80ak6aa92e.example.org",
        "https://xn--ls8h.example.org",
        "https://a.xn--bcher-kva.example.org",
        "https://xn--bcher-kva.a.example.org",
    ] {
        let origin = Origin::parse(raw).expect("a valid A-label");
        let wildcard = &trusted.patterns()[0];
        assert!(!wildcard.matches(&origin), "{raw}");
    }
    assert!(trusted.check("https://xn--bcher-kva.example.org").is_ok());
    // Labels that only look like A-labels match.
    for raw in [
        "https://xn-a.example.org",
        "https://ab--c.example.org",
        "https://axn--b.example.org",
    ] {
        assert!(trusted.check(raw).is_ok(), "{raw}");
    }
}

// ---------------------------------------------------------------------------------------------
// An independent model of the rule, written from PROTOCOL.md rather than from the module.

fn model(raw: &str) -> Result<(), &'static str> {
    if !raw.chars().all(|c| c.is_ascii_graphic()) {
        return Err("not_ascii");
    }
    if raw.len() > 2048 {
        return Err("too_long");
    }
    if raw == "null" {
        return Err("null");
    }
    let url = Url::parse(raw).map_err(|_| "malformed")?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("malformed");
    }
    if url.origin().ascii_serialization() != raw {
        return Err("not_canonical");
    }
    if let Some(Host::Domain(name)) = url.host() {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.len() > 253 || name.split('.').any(|label| label.len() > 63) {
            return Err("host_too_long");
        }
    }
    // A wildcard entry is itself a canonical URL (`*` is a legal host character), so only
    // entries without a star count as exact.
    if CORPUS.trusted.iter().any(|t| !t.contains('*') && t == raw) {
        return Ok(());
    }
    let Some(Host::Domain(host)) = url.host() else {
        return Err("not_trusted");
    };
    let host_labels: Vec<&str> = host.split('.').collect();
    for entry in &CORPUS.trusted {
        let Some((scheme, rest)) = entry.split_once("://*.") else {
            continue;
        };
        let (suffix, port) = match rest.split_once(':') {
            Some((suffix, port)) => (suffix, port.parse::<u16>().ok()),
            None => (rest, None),
        };
        let suffix_labels: Vec<&str> = suffix.split('.').collect();
        if scheme != url.scheme() || port != url.port() || host_labels.len() <= suffix_labels.len()
        {
            continue;
        }
        let (front, back) = host_labels.split_at(host_labels.len() - suffix_labels.len());
        if back == suffix_labels.as_slice()
            && front.iter().all(|l| {
                !l.is_empty()
                    && !l.starts_with("xn--")
                    && l.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            })
        {
            return Ok(());
        }
    }
    Err("not_trusted")
}

#[test]
fn model_agrees_with_the_corpus() {
    for case in &CORPUS.cases {
        assert_eq!(
            model(&case.origin).err(),
            case.reason.as_deref(),
            "{}",
            show(&case.origin)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Labels of 63 and 64 bytes, either side of DNS's limit.
static LONG_LABELS: LazyLock<[String; 2]> =
    LazyLock::new(|| ["a".repeat(MAX_LABEL_LEN), "b".repeat(MAX_LABEL_LEN + 1)]);

/// Strings shaped like origins, assembled from the pieces attacks are made of. Each piece is
/// usually plain, so that a good share of the results reach the trust decision.
fn origin_like() -> impl Strategy<Value = String> {
    fn piece(plain: Vec<&'static str>, odd: Vec<&'static str>) -> BoxedStrategy<&'static str> {
        prop_oneof![4 => select(plain), 1 => select(odd)].boxed()
    }
    let scheme = piece(
        vec!["https", "http"],
        vec![
            "HTTPS",
            "Https",
            "ftp",
            "ws",
            "blob:https",
            "javascript",
            " https",
            "file",
        ],
    );
    let sep = piece(
        vec!["://"],
        vec![
            ":/",
            ":",
            ":///",
            ":\\\\",
            "://user@",
            "://shop.example.com@",
            "://@",
        ],
    );
    let label = piece(
        vec![
            "a",
            "b",
            "shop",
            "www",
            "evil",
            "example",
            "staging",
            "org",
            "com",
            "net",
            "1",
            "a-b",
            "a_b",
            "xn--bcher-kva",
        ],
        vec![
            "A",
            "Shop",
            "",
            "*",
            "a!b",
            "a'b",
            "127",
            "0x7f",
            "%73hop",
            "ex%61mple",
            "xn--a",
            "\u{fc}",
            "localhost",
            "xn--a-",
            "xn--cib",
            "xn--80ak6aa92e",
            "XN--bcher-kva",
            LONG_LABELS[0].as_str(),
            LONG_LABELS[1].as_str(),
        ],
    );
    let tail_host = select(vec![
        "",
        "example.org",
        "example.org",
        "example.org",
        "example.com",
        "shop.example.com",
        "staging.example.net",
        "localhost",
        "example",
        "evil.net",
    ]);
    let host = prop_oneof![
        6 => (prop::collection::vec(label, 0..4), tail_host).prop_map(|(mut labels, tail)| {
            if !tail.is_empty() {
                labels.push(tail);
            }
            labels.join(".")
        }),
        1 => select(vec![
            "127.0.0.1", "127.1", "0x7f.1", "[::1]", "[0::1]", "2130706433", "0.0.0.0",
            "[::ffff:127.0.0.1]",
        ])
        .prop_map(str::to_owned),
    ];
    let port = piece(
        vec!["", "", ":8443", ":8080", ":3000"],
        vec![":443", ":80", ":", ":0443", ":65536", ":08443"],
    );
    let tail = piece(
        vec![""],
        vec![
            "/",
            ".",
            "..",
            "?",
            "#",
            "/x",
            " ",
            "\t",
            "\n",
            "%2e",
            "\\",
            ".evil.net",
            "@evil.net",
            "\0",
        ],
    );
    (scheme, sep, host, port, tail).prop_map(|(s, sep, h, p, t)| format!("{s}{sep}{h}{p}{t}"))
}

/// Anything: origin-shaped, corpus cases (allowed or not) with random edits, or random text.
fn any_input() -> impl Strategy<Value = String> {
    let corpus: Vec<String> = CORPUS.cases.iter().map(|c| c.origin.clone()).collect();
    prop_oneof![
        3 => origin_like(),
        2 => (select(corpus), any::<prop::sample::Index>(), ".{0,3}").prop_map(|(s, at, ins)| {
            let mut s = s;
            let mut at = at.index(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &ins);
            s
        }),
        1 => any::<String>(),
        1 => "[ -~]{0,40}",
    ]
}

fn allowed_origin() -> impl Strategy<Value = String> {
    select(ALLOWED.clone())
}

/// A registrable domain made of lowercase LDH labels under a real public suffix.
fn own_domain() -> impl Strategy<Value = String> {
    (
        // At most one hyphen, so never `xn--`, which would have to be valid punycode.
        prop::collection::vec("[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6})?", 1..3),
        select(vec!["com", "org", "net", "io", "co.uk", "dev", "de"]),
    )
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
        // Random names are sometimes listed suffixes themselves (`za.com`, `eu.org`).
        .prop_filter("registrable", |d| psl::domain_str(d).is_some())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn check_agrees_with_the_model(raw in any_input()) {
        prop_assert_eq!(code(&TRUSTED.check(&raw)), model(&raw).err(), "{}", show(&raw));
    }

    #[test]
    fn dns_limits_agree_with_the_model(
        lens in prop::collection::vec(1usize..=70, 1..6),
        trailing_dot in any::<bool>(),
        port in select(vec!["", ":8443"]),
    ) {
        let front: Vec<String> = lens.iter().map(|n| "a".repeat(*n)).collect();
        let dot = if trailing_dot { "." } else { "" };
        for suffix in ["example.org", "staging.example.net"] {
            let raw = format!("https://{}.{suffix}{dot}{port}", front.join("."));
            prop_assert_eq!(code(&TRUSTED.check(&raw)), model(&raw).err(), "{}", show(&raw));
        }
    }

    #[test]
    fn a_labels_ending_in_a_hyphen_are_malformed(body in "[a-z0-9-]{0,20}", depth in 0usize..3) {
        // PROTOCOL.md: the url crate refuses the `xn--` labels whose punycode decodes to plain
        // ASCII, which are those ending in `-` (no encoded code point after the last hyphen),
        // wherever they stand in the name.
        let raw = format!("https://{}xn--{body}-.example.org", "a.".repeat(depth));
        prop_assert_eq!(Origin::parse(&raw), Err(Denied::Malformed), "{}", raw);
    }

    #[test]
    fn allowed_means_canonical_printable_and_bounded(raw in any_input()) {
        if let Ok(origin) = TRUSTED.check(&raw) {
            prop_assert_eq!(origin.as_str(), raw.as_str());
            prop_assert!(raw.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            prop_assert!(raw.len() <= MAX_ORIGIN_LEN);
            let url = Url::parse(&raw).expect("an allowed origin parses");
            prop_assert_eq!(url.origin().ascii_serialization(), raw);
        }
    }

    #[test]
    fn parsing_never_panics_and_errors_name_the_entry(raw in any_input()) {
        let _ = Origin::parse(&raw);
        match OriginPattern::parse(&raw) {
            Ok(pattern) => {
                let text = pattern.to_string();
                prop_assert_eq!(&text, &raw, "valid entries are already canonical");
                prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:/[]*".contains(&b)),
                    "CSP-safe: {}", text);
            }
            Err(error) => {
                prop_assert_eq!(&error.entry, &raw);
                prop_assert!(!error.reason.is_empty());
            }
        }
    }

    #[test]
    fn changing_the_case_of_any_letter_denies(raw in allowed_origin(), at in any::<prop::sample::Index>()) {
        let letters: Vec<usize> = raw.char_indices()
            .filter(|(_, c)| c.is_ascii_alphabetic())
            .map(|(i, _)| i)
            .collect();
        let i = letters[at.index(letters.len())];
        let mut bytes = raw.clone().into_bytes();
        bytes[i] ^= 0x20; // flips ASCII letter case
        let flipped = String::from_utf8(bytes).expect("still ASCII");
        prop_assert_eq!(TRUSTED.check(&flipped), Err(Denied::NotCanonical), "{}", flipped);
    }

    #[test]
    fn appending_never_turns_a_prefix_match_into_trust(raw in allowed_origin(), extra in prop_oneof![
        "[.:/@#?a-zA-Z0-9%_\\\\-]{1,16}",
        ".{1,8}",
        select(vec![".", ".evil.net", ":443", ":8443", "/", ".example.org", "..example.org"])
            .prop_map(str::to_owned),
    ]) {
        let longer = format!("{raw}{extra}");
        if let Ok(origin) = TRUSTED.check(&longer) {
            // Only a wildcard can trust a longer string, never an exact entry matched as a
            // prefix, and then the host really is below the wildcard's suffix.
            let mut matching = TRUSTED.patterns().iter().filter(|p| p.matches(&origin));
            let pattern = matching.next().expect("something matched");
            let OriginPattern::Wildcard { suffix, .. } = pattern else {
                return Err(TestCaseError::fail(format!("{longer} matched {pattern}")));
            };
            let host = Url::parse(&longer).ok().and_then(|u| u.host_str().map(str::to_owned));
            prop_assert!(host.is_some_and(|h| h.ends_with(&format!(".{suffix}"))), "{}", longer);
        }
    }

    #[test]
    fn wildcard_matches_labels_not_strings(
        suffix in own_domain(),
        label in "[a-z0-9][a-z0-9_]{0,6}(-[a-z0-9_]{1,4})?",
        port in 1u16..,
    ) {
        let pattern = OriginPattern::parse(&format!("https://*.{suffix}")).expect("not a public suffix");
        let mut expect = vec![
            (format!("https://{label}.{suffix}"), true),
            (format!("https://{label}.{label}.{suffix}"), true),
            (format!("https://{suffix}"), false),
            (format!("https://{label}{suffix}"), false),
            (format!("https://{label}-{suffix}"), false),
            (format!("https://{label}.{suffix}."), false),
            (format!("https://{label}.{suffix}.attacker.invalid"), false),
            (format!("https://{suffix}.{label}.invalid"), false),
            (format!("http://{label}.{suffix}"), false),
        ];
        if port != 443 {
            expect.push((format!("https://{label}.{suffix}:{port}"), false));
        }
        for (raw, want) in expect {
            let got = Origin::parse(&raw).is_ok_and(|o| pattern.matches(&o));
            prop_assert_eq!(got, want, "{}", raw);
        }
    }

    #[test]
    fn ip_hosts_never_match_a_wildcard(v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>(), port in prop::option::of(1u16..)) {
        let wildcards: Vec<&String> = CORPUS.trusted.iter().filter(|t| t.contains('*')).collect();
        let trusted = TrustedOrigins::parse_all(&wildcards).expect("valid");
        let v4 = std::net::Ipv4Addr::from(v4).to_string();
        let v6 = format!("[{}]", std::net::Ipv6Addr::from(v6));
        for host in [v4, v6] {
            for scheme in ["http", "https"] {
                let raw = match port {
                    Some(port) => format!("{scheme}://{host}:{port}"),
                    None => format!("{scheme}://{host}"),
                };
                let Ok(origin) = Origin::parse(&raw) else { continue };
                prop_assert!(!trusted.allows(&origin), "{}", raw);
            }
        }
    }

    #[test]
    fn valid_patterns_round_trip_through_display(
        scheme in select(vec!["http", "https"]),
        wildcard in any::<bool>(),
        domain in own_domain(),
        port in prop::option::of(1u16..),
    ) {
        let default = if scheme == "https" { 443 } else { 80 };
        let port = port.filter(|p| *p != default);
        let host = if wildcard { format!("*.{domain}") } else { domain };
        let text = match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        let pattern = OriginPattern::parse(&text).expect("valid pattern");
        prop_assert_eq!(pattern.to_string(), text.clone());
        prop_assert_eq!(OriginPattern::parse(&pattern.to_string()), Ok(pattern));
        // The same entry with anything changed in spelling is refused, not normalised.
        for respelled in [
            text.to_uppercase(),
            format!("{text}/"),
            format!("{scheme}://{host}:{default}"),
        ] {
            prop_assert!(OriginPattern::parse(&respelled).is_err(), "{}", respelled);
        }
    }
}
