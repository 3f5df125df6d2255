//! Where a link leads: the origins a URL names, and the rule that a handoff token goes with a link
//! only when every one of them is trusted.
//!
//! A token travels in the URL's fragment, and a browser keeps the fragment across a redirect whose
//! `Location` has none, so a token on a link to a trusted site's open redirector
//! (`https://shop.example.com/go?to=https://evil.example.net/`) would reach wherever the chain
//! ends. The broker cannot follow the chain, so it reads what the URL names: its own origin, then
//! every URL written anywhere after it (path, query or fragment), however often percent-encoded,
//! with `http:` or `https:` or protocol-relative, with slashes or backslashes (which browsers read
//! as slashes). Every one must be trusted, and the last one, where the chain ends, is the token's
//! audience. Anything that does not decode or parse is refused: in doubt, no token (the link still
//! works, without the session).
//!
//! This lived in cookie-provider.js until the library outgrew its size budget; here it costs the
//! partner page nothing and holds for every caller of `POST /v1/handoff` with a `url`.

use std::fmt;

use url::Url;

use crate::origin::{Origin, TrustedOrigins};

/// Why no token may go with a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not an absolute `http`/`https` URL, or something it names does not parse as one.
    Unparsable,
    /// A `%` that is not a `%XX` escape, or escapes that do not decode to UTF-8.
    Undecodable,
    /// An origin the URL names is not trusted.
    NotTrusted,
}

impl Refused {
    /// Stable name, for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unparsable => "unparsable",
            Self::Undecodable => "undecodable",
            Self::NotTrusted => "not_trusted",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The origin a token for following `url` is minted for: the last origin `url` names, when every
/// origin it names is trusted.
pub fn destination(url: &str, trusted: &TrustedOrigins) -> Result<Origin, Refused> {
    let base = Url::parse(url).map_err(|_| Refused::Unparsable)?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(Refused::Unparsable);
    }
    let text = decoded(url)?;
    // The URL's own origin first, whatever the decoding made of its start.
    let mut last = allowed(&base, trusted)?;
    for named in named_urls(&text) {
        let target = base.join(named).map_err(|_| Refused::Unparsable)?;
        last = allowed(&target, trusted)?;
    }
    Ok(last)
}

/// `url`'s origin, if trusted.
fn allowed(url: &Url, trusted: &TrustedOrigins) -> Result<Origin, Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Unparsable);
    }
    trusted
        .check(&url.origin().ascii_serialization())
        .map_err(|_| Refused::NotTrusted)
}

/// `text` percent-decoded until nothing changes, so that a URL encoded any number of times inside
/// another shows. A `%` left at the end is one that is not an escape: refused, as JavaScript's
/// `decodeURIComponent` refuses it (what a redirector may well use).
fn decoded(text: &str) -> Result<String, Refused> {
    let mut text = text.to_owned();
    loop {
        let next = decode_once(&text)?;
        if next == text {
            break;
        }
        // Each round removes at least two bytes per escape, so this ends.
        text = next;
    }
    if text.contains('%') {
        return Err(Refused::Undecodable);
    }
    Ok(text)
}

/// One round of percent-decoding; a `%` not followed by two hex digits stays as it is.
fn decode_once(text: &str) -> Result<String, Refused> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            // `from_str_radix` also takes a sign (`%+1`): only two hex digits are an escape.
            Some(byte) if bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Refused::Undecodable)
}

fn is_slash(b: Option<&u8>) -> bool {
    matches!(b, Some(b'/' | b'\\'))
}

/// Where the authority of a named URL ends: what ends a host in a URL, or in the query that
/// carries it (`&`), or whitespace.
fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '\\' | '?' | '#' | '&') || c.is_whitespace() || c == '\u{feff}'
}

/// The URLs `text` names, left to right, each up to the end of its authority: `http:` or `https:`
/// (any case) followed by two slashes or backslashes, two slashes or backslashes alone
/// (protocol-relative), or `http:`/`https:` with no slash at all (which a browser resolves
/// against the redirector's URL: relative with the same scheme, another site with the other).
fn named_urls(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut named = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme = if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"https:") {
            6
        } else if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"http:") {
            5
        } else {
            0
        };
        let slashes = is_slash(bytes.get(i + scheme)) && is_slash(bytes.get(i + scheme + 1));
        if scheme == 0 && !slashes {
            // Every byte matched above is ASCII, so stepping over a whole character is enough.
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let from = i + scheme + if slashes { 2 } else { 0 };
        let end = text[from..]
            .find(ends_authority)
            .map_or(text.len(), |n| from + n);
        named.push(&text[i..end]);
        i = end.max(i + 1);
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedOrigins {
        TrustedOrigins::parse_all(&[
            "https://shop.example.com",
            "https://support.example.com",
            "https://*.example.org",
        ])
        .expect("valid patterns")
    }

    fn dest(url: &str) -> Result<String, Refused> {
        destination(url, &trusted()).map(|o| o.as_str().to_owned())
    }

    #[test]
    fn a_plain_link_goes_to_its_own_origin_when_trusted() {
        assert_eq!(
            dest("https://support.example.com/landing?a=1#x").as_deref(),
            Ok("https://support.example.com")
        );
        assert_eq!(
            dest("https://help.example.org/").as_deref(),
            Ok("https://help.example.org")
        );
        assert_eq!(dest("https://evil.example.net/"), Err(Refused::NotTrusted));
        assert_eq!(
            dest("https://shop.example.com.evil.net/"),
            Err(Refused::NotTrusted)
        );
    }

    #[test]
    fn a_redirect_link_goes_to_the_last_origin_it_names() {
        for url in [
            "https://shop.example.com/go?to=https://support.example.com/x",
            "https://shop.example.com/go?to=https%3A%2F%2Fsupport.example.com%2Fx",
            "https://shop.example.com/go?to=https%253A%252F%252Fsupport.example.com%252Fx",
            "https://shop.example.com/go?to=%2F%2Fsupport.example.com",
            "https://shop.example.com/r/https://support.example.com/",
            "https://shop.example.com/#next=https://support.example.com/",
            "https://help.example.org/go?to=https://shop.example.com/go?to=https://support.example.com",
            "https://shop.example.com/go?to=HTTPS://SUPPORT.EXAMPLE.COM/",
        ] {
            assert_eq!(
                dest(url).as_deref(),
                Ok("https://support.example.com"),
                "{url}"
            );
        }
    }

    #[test]
    fn a_link_naming_any_untrusted_origin_gets_nothing() {
        for url in [
            "https://shop.example.com/go?to=https://evil.example.net/",
            "https://shop.example.com/go?to=https%3A%2F%2Fevil.example.net",
            "https://shop.example.com/go?to=https%25253A%25252F%25252Fevil.example.net",
            "https://shop.example.com/go?to=//evil.example.net",
            "https://shop.example.com/go?to=https:\\\\evil.example.net",
            "https://shop.example.com/go?to=\\\\evil.example.net",
            "https://shop.example.com/go?to=/\\evil.example.net",
            "https://shop.example.com/go?to=%5C%5Cevil.example.net",
            "https://shop.example.com/go?to=http:evil.example.net",
            "https://shop.example.com/go?to=http://shop.example.com/",
            "https://shop.example.com/#https://evil.example.net",
            "https://shop.example.com/r/https://evil.example.net/https://support.example.com",
            "https://shop.example.com/go?to=https://support.example.com/go?to=https%3A%2F%2Fevil.example.net",
            "https://shop.example.com/go?to=https://user@evil.example.net",
            "https://shop.example.com/go?to=https://xn--e1afmkfd.example.org/",
        ] {
            assert_eq!(dest(url), Err(Refused::NotTrusted), "{url}");
        }
    }

    #[test]
    fn anything_that_does_not_decode_or_parse_gets_nothing() {
        for (url, why) in [
            ("not a url", Refused::Unparsable),
            ("/relative", Refused::Unparsable),
            (
                "javascript:alert(1)//https://shop.example.com",
                Refused::Unparsable,
            ),
            ("https://shop.example.com/go?to=//", Refused::Unparsable),
            (
                "https://shop.example.com/go?to=https://support.example.com:99999/",
                Refused::Unparsable,
            ),
            ("https://shop.example.com/go?to=%zz", Refused::Undecodable),
            (
                "https://shop.example.com/go?to=100%25",
                Refused::Undecodable,
            ),
            (
                "https://shop.example.com/go?to=%E0%A4",
                Refused::Undecodable,
            ),
            (
                "https://shop.example.com/go?to=%C0%AF",
                Refused::Undecodable,
            ),
            ("https://shop.example.com/go?to=%+1", Refused::Undecodable),
        ] {
            assert_eq!(dest(url), Err(why), "{url}");
        }
    }

    #[test]
    fn named_urls_are_found_left_to_right_up_to_their_authority() {
        assert_eq!(
            named_urls("https://a.example/x?u=//b.example/y&v=HTTP:\\\\c.example?z#http:d.example"),
            vec![
                "https://a.example",
                "//b.example",
                "HTTP:\\\\c.example",
                "http:d.example"
            ]
        );
        assert_eq!(
            named_urls("https://a.example/é//b.example"),
            vec!["https://a.example", "//b.example"]
        );
    }
}
