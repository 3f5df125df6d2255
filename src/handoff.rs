//! Handoff tokens, and the keys that sign them (`SigningKey`, read from `[handoff]`): how a
//! session crosses from one trusted site to another when the browser keeps only partitioned
//! cookies.
//!
//! The source site's iframe asks for a token naming the destination origin; the library puts it in
//! the destination URL's fragment (never sent to servers nor in `Referer`); the destination's iframe
//! redeems it, and the broker binds the same server-side session to a fresh id in that site's
//! cookies.
//!
//! A token is an HS256 JWT. The algorithm is pinned here, never read from the token (so `alg: none`,
//! other HMAC sizes and public-key algorithms fail); a header naming `crit` fails too, since this
//! verifier understands no extension (RFC 7515 §4.1.11). `kid` picks among the configured keys (the
//! first signs, all verify, so keys rotate without downtime); `iss` is the broker deployment
//! (`handoff.issuer`, the same on every node), `aud` the destination origin.
//!
//! Time, in whole seconds of the app clock (`now_s`), with [`LEEWAY_SECS`] of skew between nodes:
//! `exp`, `nbf` and `iat` are required integers, none negative; a token verifies while
//! `now_s < exp + 5`, once `nbf <= now_s + 5` and `iat <= now_s + 5`, and only if
//! `exp - iat <= ttl`. Every sum and difference is checked, so no claim can wrap one around.
//!
//! The token carries no session reference at all: `jti` (1 to 64 bytes) names a single-use record
//! in the store that does, so a replay finds nothing and ending the session kills its pending tokens.
//! The store is only asked about a `jti` the broker mints (`session::Jti::parse`): any other was
//! never issued.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::session::{Jti, Uid};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Clock skew tolerated between nodes, in seconds.
pub const LEEWAY_SECS: i64 = 5;
/// Longest `jti` accepted; the broker's own are 32 characters.
pub const MAX_JTI_LEN: usize = 64;
const ALG: Algorithm = Algorithm::HS256;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
}

/// A handoff signing key, decoded. `Debug` never shows the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    #[serde(deserialize_with = "crate::config::kid")]
    pub kid: String,
    #[serde(deserialize_with = "crate::config::secret")]
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.kid)
    }
}

#[derive(Clone)]
pub struct HandoffKeys {
    keys: Vec<SigningKey>,
    issuer: String,
    ttl_secs: i64,
}

/// Why a token was refused. Kept for logs and tests; clients only ever see `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    TooLong,
    Malformed,
    /// The header names `crit`: an extension this verifier would have to understand.
    CriticalHeader,
    UnknownKey,
    BadSignatureOrClaims,
    /// A time claim is negative, or so large that the arithmetic on it would overflow.
    TimeOutOfRange,
    Expired,
    NotYetValid,
    /// `exp - iat` is longer than this broker issues tokens for.
    TooLongLived,
    WrongAudience,
}

/// Why no token was minted. Shown in the log only; the client sees an internal error.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no handoff signing key is configured")]
    NoKey,
    #[error("the clock or handoff.ttl_secs puts the token's times out of range")]
    TimeOutOfRange,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

pub struct Minted {
    pub token: String,
    pub jti: Jti,
    pub expires_at: Timestamp,
}

impl HandoffKeys {
    /// The keys `[handoff]` configures, or a throwaway one generated now where the config allows
    /// it (`HandoffConfig::uses_dev_key`); none at all disables handoff.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let handoff = &config.handoff;
        if !handoff.enabled {
            return Self::new(Vec::new(), handoff.issuer.clone(), handoff.ttl_secs);
        }
        let mut keys = handoff.keys.clone();
        if handoff.uses_dev_key(&config.server.public_origin) {
            keys.push(SigningKey {
                kid: "dev".into(),
                secret: crate::random::bytes::<32>().to_vec(),
            });
        }
        Self::new(keys, handoff.issuer.clone(), handoff.ttl_secs)
    }

    /// Signs with the first of `keys`, verifies with any; none disables handoff.
    pub fn new(keys: Vec<SigningKey>, issuer: String, ttl_secs: u64) -> Self {
        Self {
            keys,
            issuer,
            // The config allows 1 to 600; a larger value saturates, and minting with it then
            // fails on the checked sum rather than wrapping to a negative lifetime.
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn mint(&self, audience: &str, now: Timestamp, uid: &Uid) -> Result<Minted, MintError> {
        let Some(key) = self.keys.first() else {
            return Err(MintError::NoKey);
        };
        let now_s = now.div_euclid(1000);
        // A token `verify` would refuse (a time before 1970) or whose expiry does not fit is
        // never signed.
        if now_s < 0 {
            return Err(MintError::TimeOutOfRange);
        }
        let exp = now_s
            .checked_add(self.ttl_secs)
            .ok_or(MintError::TimeOutOfRange)?;
        let expires_at = exp.checked_mul(1000).ok_or(MintError::TimeOutOfRange)?;
        let jti = Jti::new_for(uid);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            exp,
            nbf: now_s,
            iat: now_s,
            jti: jti.to_string(),
        };
        let mut header = Header::new(ALG);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))?;
        Ok(Minted {
            token,
            jti,
            expires_at,
        })
    }

    /// Checks everything but single use, which the store decides (`take_handoff`).
    pub fn verify(&self, token: &str, audience: &str, now: Timestamp) -> Result<Claims, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if names_crit(token) {
            return Err(Rejection::CriticalHeader);
        }
        if header.alg != ALG {
            return Err(Rejection::BadSignatureOrClaims);
        }
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Rejection::UnknownKey)?;
        let mut validation = Validation::new(ALG);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        // jsonwebtoken checks `iss` and `aud` only when they are present, so both are required.
        // The time claims and `jti` are required by `Claims` itself (no defaults) and checked
        // below, all in one place: jsonwebtoken's own checks read the times as unsigned and use
        // the system clock, where tests control the app clock.
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&key.secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => Rejection::WrongAudience,
            _ => Rejection::BadSignatureOrClaims,
        })?;
        let claims = data.claims;
        self.check_times(&claims, now)?;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(Rejection::BadSignatureOrClaims);
        }
        Ok(claims)
    }

    /// The time rules of the module documentation, on a signed token's claims.
    fn check_times(&self, claims: &Claims, now: Timestamp) -> Result<(), Rejection> {
        // This broker never mints a time before 1970. Refusing negative times also keeps
        // `exp - iat` in range, which with `iat = i64::MIN` would otherwise wrap to a short
        // lifetime and let a far `exp` through.
        if claims.exp < 0 || claims.nbf < 0 || claims.iat < 0 {
            return Err(Rejection::TimeOutOfRange);
        }
        let now_s = now.div_euclid(1000);
        // `now_s` is at most `i64::MAX / 1000`, so this sum cannot overflow today; it is checked
        // all the same, like every other one here.
        let latest_start = now_s
            .checked_add(LEEWAY_SECS)
            .ok_or(Rejection::TimeOutOfRange)?;
        let deadline = claims
            .exp
            .checked_add(LEEWAY_SECS)
            .ok_or(Rejection::TimeOutOfRange)?;
        if now_s >= deadline {
            return Err(Rejection::Expired);
        }
        if claims.nbf > latest_start || claims.iat > latest_start {
            return Err(Rejection::NotYetValid);
        }
        // A token is never valid for longer than this broker would have issued it for, even if
        // someone holding a key minted one with a far `exp`.
        let lifetime = claims
            .exp
            .checked_sub(claims.iat)
            .ok_or(Rejection::TimeOutOfRange)?;
        if lifetime > self.ttl_secs {
            return Err(Rejection::TooLongLived);
        }
        Ok(())
    }
}

/// Whether the token's header names `crit`, whatever its value. jsonwebtoken's `Header` reads
/// `"crit": null` as no `crit` at all, so this looks at the header's JSON itself. Called once
/// `decode_header` has accepted the token, so the header is the first of exactly three parts; a
/// header that does not decode here counts as naming it.
fn names_crit(token: &str) -> bool {
    let encoded = token.split('.').next().unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|json| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok()
        })
        .is_none_or(|header| header.contains_key("crit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's uid, as the stores mint it.
    fn uid() -> Uid {
        Uid::new_in(Some("abcd"))
    }
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::{Value, json};

    const T0: Timestamp = 1_800_000_000_000;
    const NOW_S: i64 = T0 / 1000;
    const AUD: &str = "https://support.example.org";
    const ISS: &str = "https://broker.example.com";

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            secret: vec![byte; 32],
        }
    }

    fn keys(list: Vec<SigningKey>) -> HandoffKeys {
        HandoffKeys::new(list, ISS.into(), 60)
    }

    /// A token with exactly this header and these claims, signed HS256 with key `a`'s secret
    /// whatever the header says: what someone holding the key could send.
    fn signed(header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = EncodingKey::from_secret(&key("a", 1).secret);
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("sign");
        format!("{message}.{signature}")
    }

    fn header() -> Value {
        json!({ "alg": "HS256", "kid": "a", "typ": "JWT" })
    }

    fn claims(exp: i64, nbf: i64, iat: i64) -> Value {
        json!({ "iss": ISS, "aud": AUD, "exp": exp, "nbf": nbf, "iat": iat, "jti": "j" })
    }

    /// How the one-key verifier (ttl 60 s) judges these claims at `now`.
    fn verdict(claims: &Value, now: Timestamp) -> Result<(), Rejection> {
        keys(vec![key("a", 1)])
            .verify(&signed(&header(), claims), AUD, now)
            .map(|_| ())
    }

    #[test]
    fn a_minted_token_verifies_for_its_audience_only() {
        let k = keys(vec![key("a", 1)]);
        let minted = k.mint(AUD, T0, &uid()).expect("mint");
        assert_eq!(minted.expires_at, (NOW_S + 60) * 1000);
        let claims = k.verify(&minted.token, AUD, T0 + 1000).expect("valid");
        assert_eq!(claims.jti, minted.jti.to_string());
        assert_eq!(Jti::parse(&claims.jti), Some(minted.jti));
        assert_eq!(
            (claims.exp, claims.nbf, claims.iat),
            (NOW_S + 60, NOW_S, NOW_S)
        );
        assert_eq!(
            k.verify(&minted.token, "https://evil.example.net", T0)
                .err(),
            Some(Rejection::WrongAudience)
        );
    }

    #[test]
    fn expiry_and_not_before_use_the_app_clock() {
        let k = keys(vec![key("a", 1)]);
        let minted = k.mint(AUD, T0, &uid()).expect("mint");
        assert!(
            k.verify(&minted.token, AUD, T0 + 64_999).is_ok(),
            "within leeway"
        );
        assert_eq!(
            k.verify(&minted.token, AUD, T0 + 65_000).err(),
            Some(Rejection::Expired)
        );
        assert_eq!(
            k.verify(&minted.token, AUD, T0 - 10_000).err(),
            Some(Rejection::NotYetValid)
        );
    }

    #[test]
    fn expiry_allows_the_leeway_and_no_more() {
        let c = claims(NOW_S, NOW_S - 60, NOW_S - 60);
        // `now_s < exp + 5`, in whole seconds: the last millisecond of second exp + 4 is fine.
        assert_eq!(verdict(&c, T0 + 4_999), Ok(()));
        assert_eq!(verdict(&c, T0 + 5_000), Err(Rejection::Expired));
    }

    #[test]
    fn not_before_and_issued_at_allow_the_leeway_and_no_more() {
        // `nbf <= now_s + 5` and `iat <= now_s + 5`, each on its own.
        assert_eq!(verdict(&claims(NOW_S + 60, NOW_S + 5, NOW_S), T0), Ok(()));
        assert_eq!(
            verdict(&claims(NOW_S + 60, NOW_S + 6, NOW_S), T0),
            Err(Rejection::NotYetValid)
        );
        assert_eq!(verdict(&claims(NOW_S + 65, NOW_S, NOW_S + 5), T0), Ok(()));
        assert_eq!(
            verdict(&claims(NOW_S + 66, NOW_S, NOW_S + 6), T0),
            Err(Rejection::NotYetValid)
        );
        // Seconds are floored: one millisecond before T0 is still second NOW_S - 1.
        assert_eq!(
            verdict(&claims(NOW_S + 60, NOW_S + 5, NOW_S), T0 - 1),
            Err(Rejection::NotYetValid)
        );
    }

    #[test]
    fn the_lifetime_is_at_most_the_ttl() {
        assert_eq!(verdict(&claims(NOW_S + 60, NOW_S, NOW_S), T0), Ok(()));
        assert_eq!(
            verdict(&claims(NOW_S + 61, NOW_S, NOW_S), T0),
            Err(Rejection::TooLongLived)
        );
    }

    #[test]
    fn a_far_expiry_cannot_hide_behind_a_negative_issue_time() {
        // exp - iat = 10^18 + 2^63 overflows: it wrapped to a negative "lifetime" (release) or
        // panicked (debug) before the times were range-checked.
        let c = claims(1_000_000_000_000_000_000, NOW_S, i64::MIN);
        assert_eq!(verdict(&c, T0), Err(Rejection::TimeOutOfRange));
    }

    #[test]
    fn negative_times_are_refused() {
        // At now = 0 each of these is otherwise within the rules, as zero itself is.
        assert_eq!(verdict(&claims(0, 0, 0), 0), Ok(()));
        for (exp, nbf, iat) in [(10, 0, -1), (10, -1, 0), (-1, 0, 0)] {
            assert_eq!(
                verdict(&claims(exp, nbf, iat), 0),
                Err(Rejection::TimeOutOfRange),
                "exp {exp}, nbf {nbf}, iat {iat}"
            );
        }
    }

    #[test]
    fn an_expiry_too_large_for_the_leeway_is_refused() {
        // exp + 5 overflows (it panicked in debug builds).
        let c = claims(i64::MAX, NOW_S, NOW_S);
        assert_eq!(verdict(&c, T0), Err(Rejection::TimeOutOfRange));
        // The largest exp that fits gets as far as the lifetime rule.
        let c = claims(i64::MAX - LEEWAY_SECS, NOW_S, NOW_S);
        assert_eq!(verdict(&c, T0), Err(Rejection::TooLongLived));
    }

    #[test]
    fn a_crit_header_is_refused_whatever_its_value() {
        let c = claims(NOW_S + 60, NOW_S, NOW_S);
        let with = |crit: Value| {
            let mut h = header();
            h["crit"] = crit;
            keys(vec![key("a", 1)])
                .verify(&signed(&h, &c), AUD, T0)
                .err()
        };
        // `null` is what jsonwebtoken's `Header` reads as no `crit` at all.
        for crit in [json!(["exp"]), json!([]), Value::Null] {
            assert_eq!(
                with(crit.clone()),
                Some(Rejection::CriticalHeader),
                "{crit}"
            );
        }
        // Values `Header` cannot hold fail earlier, as a malformed header.
        for crit in [json!("exp"), json!(5)] {
            assert_eq!(with(crit.clone()), Some(Rejection::Malformed), "{crit}");
        }
        assert_eq!(verdict(&c, T0), Ok(()), "the same token without crit");
    }

    #[test]
    fn other_algorithms_are_refused_even_with_the_right_key() {
        let c = claims(NOW_S + 60, NOW_S, NOW_S);
        let k = keys(vec![key("a", 1)]);
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let mut h = Header::new(alg);
            h.kid = Some("a".into());
            let token =
                jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(&[1; 32])).expect("encode");
            assert_eq!(
                k.verify(&token, AUD, T0).err(),
                Some(Rejection::BadSignatureOrClaims),
                "{alg:?}"
            );
        }
        // Claiming HS384 over an HS256 signature fails the same way.
        let token = signed(&json!({ "alg": "HS384", "kid": "a" }), &c);
        assert_eq!(
            k.verify(&token, AUD, T0).err(),
            Some(Rejection::BadSignatureOrClaims)
        );
    }

    #[test]
    fn jti_is_one_to_64_bytes() {
        let with = |jti: &str| {
            let mut c = claims(NOW_S + 60, NOW_S, NOW_S);
            c["jti"] = jti.into();
            verdict(&c, T0)
        };
        assert_eq!(with(""), Err(Rejection::BadSignatureOrClaims));
        assert_eq!(with(&"j".repeat(MAX_JTI_LEN)), Ok(()));
        assert_eq!(
            with(&"j".repeat(MAX_JTI_LEN + 1)),
            Err(Rejection::BadSignatureOrClaims)
        );
    }

    #[test]
    fn rotation_verifies_old_keys_and_signs_with_the_first() {
        let old = keys(vec![key("old", 1)]);
        let rotated = keys(vec![key("new", 2), key("old", 1)]);
        let by_old = old.mint(AUD, T0, &uid()).expect("mint");
        assert!(rotated.verify(&by_old.token, AUD, T0).is_ok());
        let by_new = rotated.mint(AUD, T0, &uid()).expect("mint");
        assert_eq!(
            old.verify(&by_new.token, AUD, T0).err(),
            Some(Rejection::UnknownKey)
        );
    }

    #[test]
    fn forged_alg_none_and_oversized_tokens_fail() {
        let k = keys(vec![key("a", 1)]);
        let forged = keys(vec![key("a", 9)]).mint(AUD, T0, &uid()).expect("mint");
        assert_eq!(
            k.verify(&forged.token, AUD, T0).err(),
            Some(Rejection::BadSignatureOrClaims)
        );
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"a","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims(NOW_S + 60, NOW_S, NOW_S).to_string());
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            assert_eq!(
                k.verify(&token, AUD, T0).err(),
                Some(Rejection::Malformed),
                "{token}"
            );
        }
        assert_eq!(
            k.verify(&"a".repeat(MAX_TOKEN_LEN + 1), AUD, T0).err(),
            Some(Rejection::TooLong)
        );
        // The limit itself is allowed: this one gets as far as parsing.
        assert_eq!(
            k.verify(&"a".repeat(MAX_TOKEN_LEN), AUD, T0).err(),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            k.verify("not a jwt", AUD, T0).err(),
            Some(Rejection::Malformed)
        );
    }

    #[test]
    fn long_lived_tokens_are_refused_even_when_signed() {
        let long = HandoffKeys::new(vec![key("a", 1)], ISS.into(), 3600);
        let minted = long.mint(AUD, T0, &uid()).expect("mint");
        assert_eq!(
            keys(vec![key("a", 1)]).verify(&minted.token, AUD, T0).err(),
            Some(Rejection::TooLongLived)
        );
    }

    #[test]
    fn minting_refuses_times_out_of_range() {
        let mint = |ttl: u64, now: Timestamp| {
            HandoffKeys::new(vec![key("a", 1)], ISS.into(), ttl).mint(AUD, now, &uid())
        };
        // now + ttl overflows (a ttl past i64::MAX used to wrap to a negative lifetime).
        assert!(matches!(mint(u64::MAX, T0), Err(MintError::TimeOutOfRange)));
        // exp fits in seconds, not in milliseconds (it panicked in debug builds).
        assert!(matches!(
            mint(10_u64.pow(16), T0),
            Err(MintError::TimeOutOfRange)
        ));
        assert!(matches!(mint(60, -1), Err(MintError::TimeOutOfRange)));
        // Second zero is a time like any other.
        let minted = mint(60, 0).expect("mint at the epoch");
        assert_eq!(minted.expires_at, 60_000);
        assert!(
            keys(vec![key("a", 1)])
                .verify(&minted.token, AUD, 0)
                .is_ok()
        );
    }

    #[test]
    fn without_keys_nothing_is_minted_or_verified() {
        let none = keys(Vec::new());
        assert!(!none.is_enabled());
        assert!(keys(vec![key("a", 1)]).is_enabled());
        assert!(matches!(none.mint(AUD, T0, &uid()), Err(MintError::NoKey)));
        let token = signed(&header(), &claims(NOW_S + 60, NOW_S, NOW_S));
        assert_eq!(
            none.verify(&token, AUD, T0).err(),
            Some(Rejection::UnknownKey)
        );
    }

    // -----------------------------------------------------------------------------------------
    // The verifier against an independent statement of its rules, on signed tokens whose header
    // and claims are anything JSON can say.

    fn odd_json() -> impl Strategy<Value = Value> {
        select(vec![
            Value::Null,
            json!(true),
            json!("1800000000"),
            json!(""),
            json!([]),
            json!({}),
            json!(1.5),
            json!(1e300),
            json!(-0.0),
            json!([ISS, AUD]),
        ])
    }

    fn time() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => (-70i64..=70).prop_map(|d| json!(NOW_S + d)),
            2 => select(vec![0, -1, 1, 5, 60, i64::MIN, i64::MAX, i64::MAX - 5, 10_i64.pow(18)])
                .prop_map(|t| json!(t)),
            1 => any::<i64>().prop_map(|t| json!(t)),
            1 => any::<u64>().prop_map(|t| json!(t)),
            1 => any::<f64>().prop_map(|t| json!(t)),
            1 => odd_json(),
        ]
    }

    fn one_of(usual: Value, others: Vec<Value>) -> impl Strategy<Value = Value> {
        prop_oneof![6 => Just(usual), 1 => select(others), 1 => odd_json()]
    }

    /// A JSON object from optional fields: a field is left out one time in ten.
    fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
        let fields: Vec<_> = fields
            .into_iter()
            .map(|(name, value)| prop::option::weighted(0.9, value).prop_map(move |v| (name, v)))
            .collect();
        fields
            .prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .filter_map(|(name, v)| Some((name.to_owned(), v?)))
                        .collect(),
                )
            })
            .boxed()
    }

    fn any_header() -> impl Strategy<Value = Value> {
        let alg = one_of(
            json!("HS256"),
            [
                "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA", "none", "hs256", "HS256 ",
            ]
            .map(Value::from)
            .to_vec(),
        );
        let kid = one_of(json!("a"), vec![json!("b"), json!("A"), json!("a ")]);
        let typ = one_of(json!("JWT"), vec![json!("jwt"), json!("at+jwt")]);
        let crit = prop_oneof![1 => odd_json(), 1 => Just(json!(["exp"]))];
        let extra = prop_oneof![1 => odd_json(), 1 => Just(json!("x"))];
        prop_oneof![
            20 => object(vec![
                ("alg", alg.boxed()),
                ("kid", kid.boxed()),
                ("typ", typ.boxed()),
            ]),
            2 => object(vec![
                ("alg", Just(json!("HS256")).boxed()),
                ("kid", Just(json!("a")).boxed()),
                ("crit", crit.boxed()),
            ]),
            2 => object(vec![
                ("alg", Just(json!("HS256")).boxed()),
                ("kid", Just(json!("a")).boxed()),
                ("x-extra", extra.boxed()),
            ]),
            1 => odd_json(),
        ]
    }

    fn any_claims() -> impl Strategy<Value = Value> {
        let jti = prop_oneof![
            8 => "[a-z0-9]{0,70}".prop_map(Value::from),
            1 => odd_json(),
        ];
        prop_oneof![
            20 => object(vec![
                ("iss", one_of(json!(ISS), vec![json!("baton"), json!([ISS])]).boxed()),
                ("aud", one_of(json!(AUD), vec![json!("https://evil.example.net"), json!([AUD])]).boxed()),
                ("exp", time().boxed()),
                ("nbf", time().boxed()),
                ("iat", time().boxed()),
                ("jti", jti.boxed()),
                ("x-extra", odd_json().boxed()),
            ]),
            1 => odd_json(),
        ]
    }

    fn any_now() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            8 => (-70_000i64..=70_000).prop_map(|d| T0 + d),
            1 => select(vec![0, -1, i64::MIN, i64::MAX]),
            1 => any::<i64>(),
        ]
    }

    /// The rules of the module documentation, written again without the verifier's code.
    fn within_the_rules(header: &Value, claims: &Value, now: Timestamp) -> bool {
        let (Some(h), Some(c)) = (header.as_object(), claims.as_object()) else {
            return false;
        };
        let string = |v: Option<&Value>, want: &str| v.and_then(Value::as_str) == Some(want);
        let header_ok = string(h.get("alg"), "HS256")
            && string(h.get("kid"), "a")
            && matches!(h.get("typ"), None | Some(Value::Null | Value::String(_)))
            && !h.contains_key("crit");
        let time = |name: &str| {
            c.get(name)
                .and_then(Value::as_i64)
                .filter(|t| *t >= 0)
                .map(i128::from)
        };
        let (Some(exp), Some(nbf), Some(iat)) = (time("exp"), time("nbf"), time("iat")) else {
            return false;
        };
        let jti_len = c.get("jti").and_then(Value::as_str).map(str::len);
        let now_s = i128::from(now.div_euclid(1000));
        header_ok
            && string(c.get("iss"), ISS)
            && string(c.get("aud"), AUD)
            && jti_len.is_some_and(|n| (1..=64).contains(&n))
            && now_s < exp + 5
            && nbf <= now_s + 5
            && iat <= now_s + 5
            && exp - iat <= 60
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn signed_tokens_verify_exactly_when_within_the_rules(
            header in any_header(),
            claims in any_claims(),
            now in any_now(),
        ) {
            let got = keys(vec![key("a", 1)]).verify(&signed(&header, &claims), AUD, now);
            prop_assert_eq!(
                got.is_ok(),
                within_the_rules(&header, &claims, now),
                "{} {} at {}: {:?}", header, claims, now, got.map(|c| c.jti)
            );
        }

        #[test]
        fn any_text_is_refused_without_panicking(token in ".{0,1100}", now in any_now()) {
            prop_assert!(keys(vec![key("a", 1)]).verify(&token, AUD, now).is_err());
        }
    }
}
