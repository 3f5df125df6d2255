//! Origins: parsing untrusted `Origin` values, validating the operator's trusted list, and
//! deciding whether an origin is trusted.
//!
//! This is the one place that turns an origin string into a decision, because the decision is
//! the broker's whole security boundary: the API's cross-site-request check, the iframe's
//! `postMessage` check (in JavaScript, against the same `tests/data/origin-cases.json`) and the
//! CSP `frame-ancestors` list all derive from it. The rule is in `docs/PROTOCOL.md`, "The origin
//! rule"; in short, a browser sends an origin in its canonical ASCII serialisation, so anything
//! else (uppercase, `:443`, a trailing slash, userinfo, IPv4 shorthand, Unicode, …) is denied
//! rather than normalised. Normalising would mean agreeing with every browser's URL parser on
//! every quirk; comparing canonical bytes means agreeing only on what a browser actually sends.
//!
//! A host name must also fit in DNS (labels of at most 63 bytes, at most 253 bytes in all): URL
//! parsers accept longer ones, but no browser can reach such a site, so nothing is lost and the
//! two implementations have one fewer thing to disagree on.
//!
//! Wildcard patterns (`https://*.example.org`) match whole labels, never a bare string prefix or
//! suffix, and config validation refuses patterns that would trust domains the operator cannot
//! own (a public suffix such as `*.co.uk` or `*.github.io`). A wildcard covers plain ASCII names
//! only: no A-label (`xn--…`) in its suffix nor in the labels it matches. URL parsers disagree on
//! which A-labels are valid (the `url` crate refuses some that browsers and Node accept, and the
//! reverse where their Unicode versions differ), and an A-label anywhere in a name can change how
//! its other labels are judged (the bidi rule), so only there could this side and the browser
//! side decide differently. Internationalised origins are trusted as exact entries.

use std::fmt;

use url::{Host, Url};

/// Longest origin accepted, in bytes. Real origins are far shorter (a DNS name is at most 253
/// bytes); the cap bounds the work done on a hostile header before it is parsed.
pub const MAX_ORIGIN_LEN: usize = 2048;
/// Longest host name label, in bytes (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest host name, in bytes, not counting a trailing dot (RFC 1035's 255 bytes on the wire).
pub const MAX_HOST_LEN: usize = 253;

/// An origin that passed the syntactic part of the rule: printable ASCII, at most
/// [`MAX_ORIGIN_LEN`] bytes, `http` or `https`, byte-for-byte equal to its own canonical
/// serialisation, and a host within DNS limits. Holding one says nothing about trust; ask
/// [`TrustedOrigins`] for that.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why an origin was refused. [`Denied::code`] is the stable, public name, shared with the
/// JavaScript implementation and the test corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// A byte outside 0x21..=0x7E: space, control character or non-ASCII.
    NotAscii,
    /// Longer than [`MAX_ORIGIN_LEN`] bytes.
    TooLong,
    /// The literal `null`, the opaque origin.
    Null,
    /// Not an absolute `http`/`https` URL with a host.
    Malformed,
    /// A URL, but not spelled the way a browser serialises an origin.
    NotCanonical,
    /// A host name label over [`MAX_LABEL_LEN`] bytes or a name over [`MAX_HOST_LEN`] bytes.
    HostTooLong,
    /// Well-formed, but no trusted pattern matches it.
    NotTrusted,
}

impl Denied {
    /// Stable machine-readable code, used in logs, in the JS tests and in the corpus.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAscii => "not_ascii",
            Self::TooLong => "too_long",
            Self::Null => "null",
            Self::Malformed => "malformed",
            Self::NotCanonical => "not_canonical",
            Self::HostTooLong => "host_too_long",
            Self::NotTrusted => "not_trusted",
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAscii => {
                "the origin contains a space, a control character or a non-ASCII character"
            }
            Self::TooLong => "the origin is longer than 2048 bytes",
            Self::Null => "the origin is `null`, which any sandboxed or local page can send",
            Self::Malformed => "the origin is not an http or https URL with a host",
            Self::NotCanonical => "the origin is not spelled the way a browser sends it",
            Self::HostTooLong => {
                "the origin has a host label over 63 bytes or a host over 253 bytes, which DNS \
                 does not allow"
            }
            Self::NotTrusted => "the origin is not in the trusted list",
        })
    }
}

impl std::error::Error for Denied {}

impl Origin {
    /// Applies steps 1 to 3 of the origin rule (everything except trust).
    pub fn parse(raw: &str) -> Result<Origin, Denied> {
        // ASCII first, then length: once the string is known to be ASCII its byte length and
        // its JavaScript `.length` agree, so the JS side can apply the same limit.
        if !raw.bytes().all(is_printable_ascii) {
            return Err(Denied::NotAscii);
        }
        if raw.len() > MAX_ORIGIN_LEN {
            return Err(Denied::TooLong);
        }
        if raw == "null" {
            return Err(Denied::Null);
        }
        let url = Url::parse(raw).map_err(|_| Denied::Malformed)?;
        // Other schemes either have an opaque origin (`data:`, `file:`, `javascript:`) or
        // describe an inner URL (`blob:https://…`); none of them is a page that may embed us.
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Denied::Malformed);
        }
        if url.origin().ascii_serialization() != raw {
            return Err(Denied::NotCanonical);
        }
        if let Some(Host::Domain(name)) = url.host()
            && !within_dns_limits(name)
        {
            return Err(Denied::HostTooLong);
        }
        Ok(Origin(raw.to_owned()))
    }

    /// The canonical serialisation, e.g. `https://shop.example.com:8443`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Splits the canonical form into scheme, host and explicit port. Returns `None` only if
    /// the invariant of the type were broken, which callers treat as "no match".
    fn parts(&self) -> Option<(&str, &str, Option<u16>)> {
        let (scheme, authority) = self.0.split_once("://")?;
        // An IPv6 host contains colons, so the port separator is the one after `]`.
        let port_sep = match authority.rfind(']') {
            Some(end) => authority[end..].find(':').map(|i| end + i),
            None => authority.rfind(':'),
        };
        match port_sep {
            Some(i) => Some((
                scheme,
                &authority[..i],
                Some(authority[i + 1..].parse().ok()?),
            )),
            None => Some((scheme, authority, None)),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_printable_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Whether a host name fits in DNS: every label at most [`MAX_LABEL_LEN`] bytes, the whole at
/// most [`MAX_HOST_LEN`] without its trailing dot, if any. `name` is the ASCII (punycode) form.
fn within_dns_limits(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() <= MAX_HOST_LEN && name.split('.').all(|label| label.len() <= MAX_LABEL_LEN)
}

/// Whether a label is an A-label, the ASCII form of an internationalised one (`xn--…`). In a
/// canonical host it is always lowercase.
fn is_a_label(label: &str) -> bool {
    label.starts_with("xn--")
}

/// Characters a trusted-list host may hold: letters, digits and hyphen, which is also the whole
/// of CSP's `host-char`.
fn is_ldh(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// One entry of the trusted list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// Matches exactly this origin, byte for byte.
    Exact(Origin),
    /// `scheme://*.suffix[:port]`: matches any host with one or more labels in front of
    /// `suffix`, with the same scheme and the same port (`None` = the scheme's default).
    /// Build it with [`OriginPattern::parse`]; the fields are public for inspection, and a
    /// hand-built value skips the public-suffix check.
    Wildcard {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}

/// A trusted-list entry that was refused, with a reason that says what is wrong and how to fix
/// it; shown to the operator at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The entry as written in the config.
    pub entry: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug formatting quotes the entry and makes stray whitespace and control bytes visible.
        write!(f, "trusted origin {:?}: {}", self.entry, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// What is wrong with a pattern, before it is turned into words. Kept separate from the message
/// so that suggesting a fix can re-run validation without building messages recursively.
#[derive(Debug)]
enum Problem {
    Empty,
    TooLong,
    NotPrintable {
        non_ascii: bool,
    },
    Everything,
    Null,
    NoScheme,
    MisplacedStar,
    Unparseable(url::ParseError),
    Scheme(String),
    Userinfo,
    HasPath,
    NotCanonical,
    TrailingDot,
    BadHostChars,
    LabelTooLong,
    HostTooLong {
        wildcard: bool,
    },
    WildcardIp,
    WildcardIdn,
    PublicSuffix {
        scheme: String,
        suffix: String,
        port: String,
        listed: bool,
    },
}

/// Stands in for `*` so that a wildcard pattern can be run through the URL parser and come out
/// canonical exactly when the pattern is. Any plain LDH label would do.
const PROBE_LABEL: &str = "x";

impl OriginPattern {
    /// Validates one trusted-list entry: an exact canonical origin such as
    /// `https://shop.example.com`, or a wildcard such as `https://*.example.org:8443`.
    pub fn parse(raw: &str) -> Result<OriginPattern, PatternError> {
        check_pattern(raw).map_err(|problem| PatternError {
            entry: raw.to_owned(),
            reason: explain(raw, &problem),
        })
    }

    /// Whether `origin` is trusted by this entry.
    pub fn matches(&self, origin: &Origin) -> bool {
        match self {
            Self::Exact(exact) => exact == origin,
            Self::Wildcard {
                scheme,
                suffix,
                port,
            } => origin.parts().is_some_and(|(o_scheme, o_host, o_port)| {
                o_scheme == scheme && o_port == *port && host_under(o_host, suffix)
            }),
        }
    }
}

/// True iff `host` is one or more non-empty labels followed by `.` and `suffix`, each of those
/// labels made of `a-z 0-9 - _` and none an A-label (`xn--`; see the module documentation).
/// `a..example.org` and `.example.org` are canonical URL hosts, but no DNS name has an empty
/// label, so they are refused (`js/shared.js` refuses them too). IP addresses never match: a
/// canonical IPv4 ends in a numeric label, which a validated suffix cannot (the parser would read
/// the whole host as IPv4), and an IPv6 host is bracketed; a trailing-dot host never matches.
fn host_under(host: &str, suffix: &str) -> bool {
    if suffix.is_empty() || suffix.starts_with('.') || host.ends_with('.') || host.starts_with('[')
    {
        return false;
    }
    let Some(front) = host
        .strip_suffix(suffix)
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        return false;
    };
    // Labels in front of the suffix are host-name characters only. URL parsers accept `*`, quotes,
    // `;`, `,`, braces and more in a host, but no real site under a trusted domain is named so, and
    // a literal `https://*.example.org` origin must not pass as "any subdomain".
    !front.is_empty()
        && front.split('.').all(|label| {
            !label.is_empty()
                && !is_a_label(label)
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

fn check_pattern(raw: &str) -> Result<OriginPattern, Problem> {
    check_text(raw)?;
    let Some((scheme_part, rest)) = raw.split_once("://") else {
        return Err(Problem::NoScheme);
    };
    let wildcard = raw.contains('*');
    let url = probe_url(raw, scheme_part, rest, wildcard)?;
    let host = url
        .host()
        .ok_or(Problem::Unparseable(url::ParseError::EmptyHost))?;
    let domain = match host {
        Host::Domain(domain) => domain,
        // Never a wildcard: `probe_url` refuses every one whose host would be an address (a
        // bracketed tail, or a numeric last label, which makes the parser read `x.…` as IPv4
        // and fail), so this is an exact entry.
        Host::Ipv4(_) | Host::Ipv6(_) => return exact(raw),
    };
    check_domain(domain, wildcard)?;
    if !wildcard {
        return exact(raw);
    }
    let suffix = domain
        .strip_prefix(PROBE_LABEL)
        .and_then(|s| s.strip_prefix('.'))
        .ok_or(Problem::NotCanonical)?;
    if suffix.split('.').any(is_a_label) {
        return Err(Problem::WildcardIdn);
    }
    // `psl::domain` is `None` when the name has no registrable part, i.e. when it is itself a
    // public suffix (`com`, `co.uk`, `github.io`) or under an unlisted TLD such as `localhost`,
    // which the list's implicit `*` rule treats as public. Either way the operator cannot own
    // every name below it.
    if psl::domain(suffix.as_bytes()).is_none() {
        return Err(Problem::PublicSuffix {
            scheme: url.scheme().to_owned(),
            suffix: suffix.to_owned(),
            port: url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            listed: psl::suffix(suffix.as_bytes()).is_some_and(|s| s.is_known()),
        });
    }
    Ok(OriginPattern::Wildcard {
        scheme: url.scheme().to_owned(),
        suffix: suffix.to_owned(),
        port: url.port(),
    })
}

/// The checks on the entry as text, before any parsing.
fn check_text(raw: &str) -> Result<(), Problem> {
    if raw.is_empty() {
        return Err(Problem::Empty);
    }
    if raw.len() > MAX_ORIGIN_LEN {
        return Err(Problem::TooLong);
    }
    if !raw.bytes().all(is_printable_ascii) {
        return Err(Problem::NotPrintable {
            non_ascii: !raw.is_ascii(),
        });
    }
    match raw {
        "*" => Err(Problem::Everything),
        "null" => Err(Problem::Null),
        _ => Ok(()),
    }
}

/// Parses the entry (a wildcard with its `*` replaced by a probe label) and requires it to be an
/// http(s) origin written the way a browser serialises one.
fn probe_url(raw: &str, scheme_part: &str, rest: &str, wildcard: bool) -> Result<Url, Problem> {
    let probe = if wildcard {
        let tail = rest.strip_prefix("*.").ok_or(Problem::MisplacedStar)?;
        if tail.contains('*') || scheme_part.contains('*') {
            return Err(Problem::MisplacedStar);
        }
        if tail.starts_with('[') {
            return Err(Problem::WildcardIp);
        }
        format!("{scheme_part}://{PROBE_LABEL}.{tail}")
    } else {
        raw.to_owned()
    };
    let url = Url::parse(&probe).map_err(|e| match e {
        url::ParseError::InvalidIpv4Address if wildcard => Problem::WildcardIp,
        e => Problem::Unparseable(e),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Problem::Scheme(url.scheme().to_owned()));
    }
    // Look at the text as written, not the parsed URL: `https://a.example@evil.net` parses
    // fine, to a different host, and `https://a.example/` parses to the same one.
    if rest.contains(['/', '?', '#', '\\']) {
        return Err(Problem::HasPath);
    }
    if rest.contains('@') {
        return Err(Problem::Userinfo);
    }
    if url.origin().ascii_serialization() != probe {
        return Err(Problem::NotCanonical);
    }
    Ok(url)
}

/// The host of an entry that names a domain (for a wildcard, with the probe label in front).
fn check_domain(domain: &str, wildcard: bool) -> Result<(), Problem> {
    // The URL parser keeps a trailing dot, and to a browser `example.com.` is a different
    // origin from `example.com`; an entry with one is almost certainly a typo.
    if domain.ends_with('.') {
        return Err(Problem::TrailingDot);
    }
    // These also end up verbatim in CSP `frame-ancestors`, whose host grammar is LDH only;
    // anything else there is ignored by the browser or, worse (`;`, `'`), changes the policy.
    if !domain
        .split('.')
        .all(|label| !label.is_empty() && label.bytes().all(is_ldh))
    {
        return Err(Problem::BadHostChars);
    }
    // A wildcard's probe host is its shortest possible match, so the same limits refuse a suffix
    // that leaves no room for a label in front.
    if domain.split('.').any(|label| label.len() > MAX_LABEL_LEN) {
        return Err(Problem::LabelTooLong);
    }
    if domain.len() > MAX_HOST_LEN {
        return Err(Problem::HostTooLong { wildcard });
    }
    Ok(())
}

/// An exact entry that passed every pattern check; `Origin::parse` cannot fail on it, but its
/// verdict is still the one that counts.
fn exact(raw: &str) -> Result<OriginPattern, Problem> {
    Origin::parse(raw)
        .map(OriginPattern::Exact)
        .map_err(|_| Problem::NotCanonical)
}

/// The canonical spelling of what the operator probably meant, if there is one that validates;
/// used to make error messages say exactly what to write.
fn canonical_form(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let (scheme, rest) = trimmed.split_once("://")?;
    let (probe, wildcard) = match rest.strip_prefix("*.") {
        Some(tail) => (format!("{scheme}://{PROBE_LABEL}.{tail}"), true),
        None => (trimmed.to_owned(), false),
    };
    let url = Url::parse(&probe).ok()?;
    if url.username() != "" || url.password().is_some() {
        return None;
    }
    // Dropping a trailing dot is the fix for a trailing-dot entry, so suggest it too.
    let host = url.host_str()?;
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = if wildcard {
        format!("*.{}", host.strip_prefix(PROBE_LABEL)?.strip_prefix('.')?)
    } else {
        host.to_owned()
    };
    let canonical = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    (canonical != raw && check_pattern(&canonical).is_ok()).then_some(canonical)
}

fn explain(raw: &str, problem: &Problem) -> String {
    const SHAPE: &str = "write scheme://host[:port], e.g. `https://shop.example.com` or \
                         `https://*.example.com`";
    let fix = |fallback: &str| match canonical_form(raw) {
        Some(canonical) => format!("write `{canonical}` instead"),
        None => fallback.to_owned(),
    };
    match problem {
        Problem::Empty => format!("the entry is empty; remove it or {SHAPE}"),
        Problem::TooLong => format!(
            "the entry is longer than {MAX_ORIGIN_LEN} bytes, so no browser origin can match it; \
             {SHAPE}"
        ),
        Problem::NotPrintable { non_ascii: true } if raw.contains('*') => {
            "contains non-ASCII characters, but browsers send hosts in punycode, and a wildcard \
             covers plain ASCII names only; list each internationalised origin exactly, in its \
             `xn--` form"
                .to_owned()
        }
        Problem::NotPrintable { non_ascii: true } => format!(
            "contains non-ASCII characters, but browsers send hosts in punycode; {}",
            fix("write the host in its `xn--` form")
        ),
        Problem::NotPrintable { non_ascii: false } => format!(
            "contains a space, tab, newline or other control character; {}",
            fix("remove it")
        ),
        Problem::Everything => explain_never(true),
        Problem::Null => explain_never(false),
        Problem::NoScheme => match check_pattern(&format!("https://{raw}")) {
            Ok(p) => format!(
                "has no scheme, and an origin always has one; write `{p}` (or `http://…` for a \
                 plain-HTTP site)"
            ),
            Err(_) => format!("has no scheme, and an origin always has one; {SHAPE}"),
        },
        Problem::MisplacedStar => "`*` may only stand for the whole leftmost label, as in \
                                   `https://*.example.com`, which matches a.example.com and \
                                   a.b.example.com; it cannot be part of a label, sit deeper in \
                                   the host, repeat, or replace the scheme or port"
            .to_owned(),
        Problem::Unparseable(e) => format!("is not a valid URL ({e}); {SHAPE}"),
        Problem::Scheme(scheme) => format!(
            "scheme `{scheme}` cannot be trusted: only http and https pages can embed baton; {}",
            fix("use `https://`")
        ),
        Problem::Userinfo => format!(
            "contains `@`, so the part before it is a user name and the host is what follows; \
             an origin has no user name, so {SHAPE}"
        ),
        Problem::HasPath => format!(
            "has a path, query or fragment (even a trailing `/` counts), but an origin ends \
             after the host and port; {}",
            fix("remove everything after the host and port")
        ),
        Problem::NotCanonical => format!(
            "is not in the form a browser sends (lowercase, punycode, no default port such as \
             `:443` on https or `:80` on http, canonical IP address); {}",
            fix(SHAPE)
        ),
        Problem::TrailingDot => format!(
            "the host has a trailing dot, and to a browser `example.com.` is a different origin \
             from `example.com`; {}",
            fix("remove the trailing dot")
        ),
        Problem::BadHostChars => format!(
            "the host may contain only lowercase letters, digits, `-` and single dots between \
             labels (that is all a CSP frame-ancestors source can express, and all real host \
             names use); {SHAPE}"
        ),
        Problem::LabelTooLong => format!(
            "the host has a label longer than {MAX_LABEL_LEN} bytes, which DNS does not allow, so \
             no browser can reach it; {SHAPE}"
        ),
        Problem::HostTooLong { wildcard: false } => format!(
            "the host is longer than {MAX_HOST_LEN} bytes, which DNS does not allow, so no \
             browser can reach it; {SHAPE}"
        ),
        Problem::HostTooLong { wildcard: true } => format!(
            "the suffix leaves no room for a label in front of it: with one, every name it \
             matches is longer than {MAX_HOST_LEN} bytes, which DNS does not allow; {SHAPE}"
        ),
        Problem::WildcardIp => "a wildcard cannot cover an IP address; list each address as an \
                                exact origin, e.g. `http://127.0.0.1:3000`"
            .to_owned(),
        Problem::WildcardIdn => "a wildcard covers plain ASCII names only, not internationalised \
                                 ones (`xn--…`), on which URL parsers disagree; list each such \
                                 origin exactly, e.g. `https://xn--bcher-kva.example`"
            .to_owned(),
        Problem::PublicSuffix {
            scheme,
            suffix,
            port,
            listed,
        } => explain_public_suffix(scheme, suffix, port, *listed),
    }
}

/// The two entries that can never be trusted, and why: `*` (`everything`) and `null`.
fn explain_never(everything: bool) -> String {
    if everything {
        "`*` would trust every site on the web, which defeats the \
                                 origin check; list your sites, e.g. `https://shop.example.com`, \
                                 or one of your domains as `https://*.example.com`"
            .to_owned()
    } else {
        "`null` is the origin of sandboxed frames and of file:, data: and \
                          javascript: pages, which any site can create; it can never be trusted, \
                          remove it"
            .to_owned()
    }
}

fn explain_public_suffix(scheme: &str, suffix: &str, port: &str, listed: bool) -> String {
    if listed {
        format!(
            "`{suffix}` is a public suffix: anyone can register a name under it, so \
             `*.{suffix}` would trust sites you do not control; use a domain you own, e.g. \
             `{scheme}://*.example.{suffix}{port}`, or list exact origins such as \
             `{scheme}://shop.{suffix}{port}`"
        )
    } else {
        format!(
            "`{suffix}` is not a registrable domain (the public suffix list treats every \
             unlisted top-level name, such as `localhost`, as public), so `*.{suffix}` would \
             trust names nobody owns; list exact origins such as \
             `{scheme}://shop.{suffix}{port}`, or put the wildcard one level down, e.g. \
             `{scheme}://*.shop.{suffix}{port}`"
        )
    }
}

impl fmt::Display for OriginPattern {
    /// The canonical text, which is also a valid CSP `frame-ancestors` source expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(origin) => f.write_str(origin.as_str()),
            Self::Wildcard {
                scheme,
                suffix,
                port,
            } => {
                write!(f, "{scheme}://*.{suffix}")?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}

/// The validated trusted list; an origin is trusted iff some pattern matches it. Empty trusts
/// nothing.
#[derive(Clone, Debug, Default)]
pub struct TrustedOrigins {
    patterns: Vec<OriginPattern>,
}

impl TrustedOrigins {
    /// Trusts whatever `patterns` match; build them with [`OriginPattern::parse`].
    pub fn new(patterns: Vec<OriginPattern>) -> Self {
        Self { patterns }
    }

    /// Validates every entry and reports every bad one, so an operator fixes the config in one
    /// pass rather than one error per restart.
    pub fn parse_all<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<PatternError>> {
        let mut patterns = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for entry in entries {
            match OriginPattern::parse(entry.as_ref()) {
                Ok(pattern) => patterns.push(pattern),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() {
            Ok(Self::new(patterns))
        } else {
            Err(errors)
        }
    }

    /// The whole origin rule: parse `raw`, then require a matching pattern.
    ///
    /// Most requests come from a trusted page that is listed exactly, so that case goes first:
    /// `raw` byte for byte an exact entry, which is canonical by construction, so the full rule
    /// (a URL parse) would only say yes again. It is the one fast path, here beside the rule it
    /// shortens, and the shared corpus checks the two agree.
    pub fn check(&self, raw: &str) -> Result<Origin, Denied> {
        if let Some(origin) = self.exact(raw) {
            return Ok(origin.clone());
        }
        let origin = Origin::parse(raw)?;
        if self.allows(&origin) {
            Ok(origin)
        } else {
            Err(Denied::NotTrusted)
        }
    }

    /// The exact entry `raw` is, byte for byte, if any.
    fn exact(&self, raw: &str) -> Option<&Origin> {
        self.patterns.iter().find_map(|p| match p {
            OriginPattern::Exact(o) if o.as_str() == raw => Some(o),
            _ => None,
        })
    }

    /// Step 4 of the rule, for an origin that is already parsed.
    pub fn allows(&self, origin: &Origin) -> bool {
        self.patterns.iter().any(|pattern| pattern.matches(origin))
    }

    /// The entries, in config order.
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.patterns
    }

    /// The entries as text, in config order (for logs and the iframe's configuration).
    pub fn to_strings(&self) -> Vec<String> {
        self.patterns.iter().map(|p| p.to_string()).collect()
    }

    /// True when nothing is trusted, so every origin is denied.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The CSP `frame-ancestors` source list. With no trusted origins the iframe may not be
    /// framed at all, so the answer is `'none'` rather than an empty (invalid) list.
    pub fn frame_ancestors(&self) -> String {
        if self.patterns.is_empty() {
            return "'none'".to_owned();
        }
        self.patterns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(entry: &str) -> String {
        match OriginPattern::parse(entry) {
            Ok(p) => panic!("{entry:?} was accepted as {p:?}"),
            Err(e) => {
                assert_eq!(e.entry, entry);
                e.reason
            }
        }
    }

    #[test]
    fn denied_codes_and_sentences() {
        let all = [
            (Denied::NotAscii, "not_ascii"),
            (Denied::TooLong, "too_long"),
            (Denied::Null, "null"),
            (Denied::Malformed, "malformed"),
            (Denied::NotCanonical, "not_canonical"),
            (Denied::HostTooLong, "host_too_long"),
            (Denied::NotTrusted, "not_trusted"),
        ];
        for (denied, code) in all {
            assert_eq!(denied.code(), code);
            let sentence = denied.to_string();
            assert!(sentence.starts_with("the origin "), "{sentence}");
            assert!(!sentence.contains('\n'));
        }
    }

    #[test]
    fn pattern_error_display_quotes_the_entry() {
        let err = OriginPattern::parse(" https://a.example").expect_err("refused");
        let shown = err.to_string();
        assert!(
            shown.starts_with("trusted origin \" https://a.example\": "),
            "{shown}"
        );
        let err = OriginPattern::parse("https://a.example\n").expect_err("refused");
        assert!(err.to_string().contains("\\n"), "{err}");
    }

    #[test]
    fn non_canonical_entries_show_the_canonical_form() {
        for (entry, canonical) in [
            ("HTTPS://Shop.Example.com", "`https://shop.example.com`"),
            ("https://shop.example.com:443", "`https://shop.example.com`"),
            ("http://shop.example.com:80", "`http://shop.example.com`"),
            (
                "http://shop.localhost:08080",
                "`http://shop.localhost:8080`",
            ),
            ("https://*.EXAMPLE.org", "`https://*.example.org`"),
            ("https://*.example.org:443", "`https://*.example.org`"),
            ("http://0x7f.1:3000", "`http://127.0.0.1:3000`"),
            ("http://[0:0::1]:3000", "`http://[::1]:3000`"),
        ] {
            let reason = reason(entry);
            assert!(reason.contains("browser sends"), "{entry}: {reason}");
            assert!(reason.contains(canonical), "{entry}: {reason}");
        }
    }

    #[test]
    fn paths_trailing_dots_whitespace_and_unicode_say_what_to_write() {
        let r = reason("https://shop.example.com/");
        assert!(
            r.contains("path") && r.contains("`https://shop.example.com`"),
            "{r}"
        );
        let r = reason("https://*.example.org/app?x#y");
        assert!(
            r.contains("path") && r.contains("`https://*.example.org`"),
            "{r}"
        );
        let r = reason("https://shop.example.com.");
        assert!(
            r.contains("trailing dot") && r.contains("`https://shop.example.com`"),
            "{r}"
        );
        let r = reason(" https://shop.example.com\t");
        assert!(
            r.contains("space, tab") && r.contains("`https://shop.example.com`"),
            "{r}"
        );
        let r = reason("https://bücher.example");
        assert!(
            r.contains("punycode") && r.contains("`https://xn--bcher-kva.example`"),
            "{r}"
        );
        let r = reason("https://*.bücher.example");
        assert!(r.contains("plain ASCII names only"), "{r}");
        assert!(
            !r.contains("*.xn--"),
            "suggests no pattern that is refused too: {r}"
        );
    }

    #[test]
    fn wildcard_mistakes_explain_the_one_allowed_shape() {
        for entry in [
            "https://*example.com",
            "https://a.*.example.com",
            "https://*.*.example.com",
            "https://*",
            "*://shop.example.com",
            "https://*.example.com:*",
        ] {
            let r = reason(entry);
            assert!(
                r.contains("leftmost label") && r.contains("`https://*.example.com`"),
                "{r}"
            );
        }
        let r = reason("*.example.com");
        assert!(
            r.contains("no scheme") && r.contains("`https://*.example.com`"),
            "{r}"
        );
        let r = reason("shop.example.com:8443");
        assert!(r.contains("no scheme"), "{r}");
    }

    #[test]
    fn public_suffix_wildcards_name_the_suffix_and_an_alternative() {
        for (entry, suffix, alternative) in [
            ("https://*.com", "`com`", "`https://*.example.com`"),
            ("https://*.co.uk", "`co.uk`", "`https://*.example.co.uk`"),
            (
                "https://*.github.io",
                "`github.io`",
                "`https://shop.github.io`",
            ),
            (
                "http://*.localhost",
                "`localhost`",
                "`http://shop.localhost`",
            ),
        ] {
            let r = reason(entry);
            assert!(r.contains("public suffix"), "{r}");
            assert!(r.contains(suffix), "{r}");
            assert!(r.contains(alternative), "{r}");
        }
    }

    #[test]
    fn unsafe_entries_say_why_they_cannot_be_trusted() {
        assert!(reason("*").contains("every site"));
        assert!(reason("null").contains("sandboxed"));
        assert!(reason("").contains("empty"));
        assert!(reason("ftp://shop.example.com").contains("scheme `ftp`"));
        assert!(reason("https://shop.example.com@evil.net").contains("user name"));
        assert!(reason("https://*.127.0.0.1").contains("IP address"));
        assert!(reason("https://*.[::1]").contains("IP address"));
        assert!(reason("https://a;b.example.com").contains("CSP"));
        assert!(reason("https://a_b.example.com").contains("CSP"));
        assert!(reason("https://shop.example.com:99999").contains("not a valid URL"));
        assert!(reason(&format!("https://{}.com", "a".repeat(MAX_ORIGIN_LEN))).contains("2048"));
    }

    #[test]
    fn dns_limits_and_internationalised_wildcards_say_why() {
        let label = |n: usize| "a".repeat(n);
        let r = reason(&format!("https://{}.example.com", label(MAX_LABEL_LEN + 1)));
        assert!(r.contains("label longer than 63 bytes"), "{r}");
        let long_name = format!("{0}.{0}.{0}.{1}.example.com", label(63), label(50));
        assert_eq!(long_name.len(), MAX_HOST_LEN + 1);
        let r = reason(&format!("https://{long_name}"));
        assert!(r.contains("host is longer than 253 bytes"), "{r}");
        // For a wildcard, the shortest match is one label longer than the suffix.
        let r = reason(&format!("https://*.{}", &long_name[2..]));
        assert!(r.contains("no room for a label in front"), "{r}");
        assert!(OriginPattern::parse(&format!("https://*.{}", &long_name[3..])).is_ok());
        for entry in [
            "https://*.xn--bcher-kva.example",
            "https://*.shop.xn--bcher-kva.example",
        ] {
            let r = reason(entry);
            assert!(r.contains("plain ASCII names only"), "{r}");
            assert!(r.contains("`https://xn--bcher-kva.example`"), "{r}");
        }
    }

    #[test]
    fn display_is_the_canonical_text() {
        for entry in [
            "https://shop.example.com",
            "https://*.example.org",
            "https://*.staging.example.net:8443",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
        ] {
            let pattern = OriginPattern::parse(entry).expect("valid");
            assert_eq!(pattern.to_string(), entry);
        }
    }

    #[test]
    fn frame_ancestors_lists_patterns_or_none() {
        assert_eq!(TrustedOrigins::default().frame_ancestors(), "'none'");
        let trusted =
            TrustedOrigins::parse_all(&["https://shop.example.com", "https://*.example.org:8443"])
                .expect("valid");
        assert_eq!(
            trusted.frame_ancestors(),
            "https://shop.example.com https://*.example.org:8443"
        );
    }

    #[test]
    fn parse_all_reports_every_bad_entry() {
        let errors = TrustedOrigins::parse_all(&[
            "https://*.com",
            "https://shop.example.com",
            "null",
            "https://x.example/",
        ])
        .expect_err("refused");
        let entries: Vec<_> = errors.iter().map(|e| e.entry.as_str()).collect();
        assert_eq!(entries, ["https://*.com", "null", "https://x.example/"]);
    }

    #[test]
    fn parts_splits_ports_after_ipv6_brackets() {
        let o = Origin::parse("http://[::1]:3000").expect("canonical");
        assert_eq!(o.parts(), Some(("http", "[::1]", Some(3000))));
        let o = Origin::parse("https://[::1]").expect("canonical");
        assert_eq!(o.parts(), Some(("https", "[::1]", None)));
        let o = Origin::parse("https://a.example.org:8443").expect("canonical");
        assert_eq!(o.parts(), Some(("https", "a.example.org", Some(8443))));
    }

    #[test]
    fn hand_built_wildcards_cannot_match_everything() {
        let wildcard = |suffix: &str| OriginPattern::Wildcard {
            scheme: "https".into(),
            suffix: suffix.into(),
            port: None,
        };
        let origin = |raw: &str| Origin::parse(raw).expect("canonical");
        for suffix in ["", "."] {
            assert!(
                !wildcard(suffix).matches(&origin("https://a.")),
                "{suffix:?}"
            );
        }
        // Each guard of `host_under` on its own: a suffix with a leading dot would otherwise
        // match across an empty label, one with a trailing dot a trailing-dot host.
        assert!(!wildcard(".org").matches(&origin("https://a..org")));
        assert!(!wildcard("org.").matches(&origin("https://a.org.")));
        assert!(wildcard("org").matches(&origin("https://a.org")));
    }

    #[test]
    fn entries_are_judged_on_what_is_wrong_with_them() {
        // At exactly 2048 bytes an entry is not too long; its host is.
        let entry = format!("https://ab.{}example.com", "a.".repeat(1013));
        assert_eq!(entry.len(), MAX_ORIGIN_LEN);
        let r = reason(&entry);
        assert!(
            r.contains("longer than 253 bytes") && !r.contains("2048"),
            "{r}"
        );
        // An exact entry that the parser takes for a bad IPv4 address is not a wildcard.
        let r = reason("https://1.2.3.999");
        assert!(
            r.contains("not a valid URL") && !r.contains("wildcard"),
            "{r}"
        );
        assert!(reason("https://*.1.2.3.999").contains("cannot cover an IP"));
    }

    #[test]
    fn suggestions_never_cross_userinfo_or_land_on_a_refused_entry() {
        // `shop.example.com` is the user name here and `evil.net` the host: suggesting
        // `https://evil.net` would make the typo worse.
        let r = reason(" https://shop.example.com@evil.net");
        assert!(!r.contains("`https://evil.net`"), "{r}");
        let r = reason(" https://:secret@shop.example.com");
        assert!(!r.contains("`https://shop.example.com`"), "{r}");
        // Dropping the path of `https://*.com/` leaves a public-suffix wildcard, which is refused
        // too, so it is not suggested.
        let r = reason("https://*.com/");
        assert!(
            r.contains("remove everything after") && !r.contains("`https://*.com`"),
            "{r}"
        );
    }
}
