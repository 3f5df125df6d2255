//! Identity assertions: a partner's backend vouching, with a signed JWT, that the page's visitor is
//! its logged-in customer `sub`. This module owns the assertion's rules (which keys, which
//! algorithm, which claims, which times), the refusals with their stable codes, and the keyed hash
//! that is all the broker ever keeps of `sub`. Linking a session to the identity is the store's
//! business, not this module's; it only says who the assertion names, or why it names no one.
//!
//! The rules, in the order they are checked (the first that fails decides the code):
//! 1. At most [`MAX_TOKEN_LEN`] bytes, before any parsing; three base64url parts; the header a
//!    JSON object without `crit` (no extension is understood here, RFC 7515 §4.1.11).
//! 2. `kid` names a configured key (`identity_kid`), and `alg` is exactly that key's algorithm
//!    (`identity_alg`): the key decides the algorithm, the token never does, so `none`, other
//!    HMAC sizes and an HS256 token "signed" with an ES256 key's public PEM all fail.
//! 3. The signature (`identity_signature`).
//! 4. The claims: `iss`, `aud`, `sub` strings, `iat` and `exp` integers, each present once
//!    (`identity_malformed`); any other claim is ignored. `aud` is the broker's `public_origin`
//!    exactly (`identity_audience`); `iss` is an origin, trusted, and the very page the iframe
//!    answers (`identity_issuer`); `sub` is 1 to [`MAX_SUBJECT_CHARS`] characters.
//! 5. Times, in whole seconds of the app clock, with handoff's [`LEEWAY_SECS`] of skew:
//!    `1 <= exp - iat <= max_lifetime` (`identity_lifetime`), `now < exp + leeway`
//!    (`identity_expired`), `iat <= now + leeway` (`identity_not_yet_valid`). Negative times are
//!    malformed, and every sum is checked, so no claim can wrap one around.
//!
//! The signature is checked with jsonwebtoken's primitive (`crypto::verify`) and every claim here,
//! rather than with its `decode` + `Validation`: its time checks read the system clock (tests
//! drive the app's `ManualClock`) and its claim checks pass a claim that is absent unless told
//! otherwise; one place with every rule is easier to audit than a library's defaults turned off.
//!
//! An assertion is a bearer credential for its lifetime: whoever holds it can bind a browser to
//! that customer until `exp`. Hence the short maximum lifetime, the exact `iss` = page rule (an
//! assertion rendered on one site cannot be replayed from another), and no token in any log.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;
use sha2::Sha256;

use crate::clock::Timestamp;
use crate::origin::{Origin, TrustedOrigins};

pub use crate::handoff::LEEWAY_SECS;

/// Assertions longer than this are refused before any parsing. An `iss` may be a long origin and
/// an ES256 signature is 86 characters; real assertions are well under 1 KiB.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest `sub`, in characters.
pub const MAX_SUBJECT_CHARS: usize = 256;
/// Longest lifetime (`exp - iat`) the config may allow, in seconds.
pub const MAX_LIFETIME_SECS: u64 = 600;
/// Length of [`SubjectHash::slot_tag`]: the store's `session::TAG_LEN`.
pub const TAG_LEN: usize = 4;

/// The label HMAC'd before `sub`, so this hash can never equal one the same secret makes for
/// another purpose. Changing it changes every subject hash: it is part of the stored format.
const SUBJECT_LABEL: &[u8] = b"baton identity subject v1\0";

/// The algorithms a configured key may have. Each key has exactly one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum IdentityAlg {
    /// A secret shared with the partner (`secret`).
    #[default]
    HS256,
    /// The partner's P-256 public key (`public_key`); the partner never shares a secret.
    ES256,
}

impl IdentityAlg {
    fn jwt(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::ES256 => Algorithm::ES256,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::ES256 => "ES256",
        }
    }
}

/// A P-256 public key from a PEM `PUBLIC KEY` (SPKI) block, as its uncompressed SEC1 point
/// (what jsonwebtoken's ES256 verifier reads).
#[derive(Clone, PartialEq, Eq)]
pub struct Es256PublicKey(Vec<u8>);

impl Es256PublicKey {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use p256::pkcs8::DecodePublicKey;
        let key = p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|_| {
            "must be a P-256 public key in PEM (-----BEGIN PUBLIC KEY-----, e.g. from `openssl ec -pubout`)".to_owned()
        })?;
        Ok(Self(key.to_sec1_bytes().to_vec()))
    }
}

impl std::fmt::Debug for Es256PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Es256PublicKey(P-256)")
    }
}

/// The secret the subject hash is keyed with (`identity.subject_secret`). `Debug` never shows it.
///
/// It is separate from the signing keys, and must stay the same for as long as identities are
/// kept: signing keys rotate (a partner's key leaks, a year passes), but the hash is what the
/// store finds a customer's sessions by, so a hash keyed by a signing key would lose every link at
/// each rotation. Keyed at all (not a bare SHA-256) so that a copy of the store does not let
/// anyone test guessed customer ids (often emails or small numbers) against it.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectSecret(Vec<u8>);

impl SubjectSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The hash of `sub` under this secret.
    pub fn hash(&self, sub: &str) -> SubjectHash {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(SUBJECT_LABEL);
        mac.update(sub.as_bytes());
        SubjectHash(mac.finalize().into_bytes().into())
    }
}

impl std::fmt::Debug for SubjectSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectSecret(<redacted>)")
    }
}

/// HMAC-SHA256(`identity.subject_secret`, label ‖ `sub`): the only form in which a customer id
/// reaches the store or a log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectHash([u8; 32]);

impl SubjectHash {
    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// A slot tag in the store's form (`session::slot_tag`: [`TAG_LEN`] characters of
    /// `A-Z a-z 0-9 - _`): the first 24 bits of the hash in base64url, so that every key of one
    /// identity can share one Redis Cluster hash slot.
    pub fn slot_tag(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0[..3])
    }
}

impl std::fmt::Debug for SubjectHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not a secret, but an identifier of a person: a log line shows its tag only.
        write!(f, "SubjectHash({}…)", self.slot_tag())
    }
}

/// One verifying key.
#[derive(Clone)]
enum KeyMaterial {
    Hs256(Vec<u8>),
    Es256(Es256PublicKey),
}

#[derive(Clone)]
struct Key {
    kid: String,
    material: KeyMaterial,
}

impl Key {
    fn alg(&self) -> IdentityAlg {
        match self.material {
            KeyMaterial::Hs256(_) => IdentityAlg::HS256,
            KeyMaterial::Es256(_) => IdentityAlg::ES256,
        }
    }

    fn decoding_key(&self) -> DecodingKey {
        match &self.material {
            KeyMaterial::Hs256(secret) => DecodingKey::from_secret(secret),
            KeyMaterial::Es256(public) => DecodingKey::from_ec_der(&public.0),
        }
    }
}

/// What a verified assertion says, without `sub` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: SubjectHash,
    /// The partner page that vouched (its `iss`, equal to the page's origin).
    pub issuer: Origin,
    /// Which key signed it.
    pub kid: String,
    /// `exp`, in milliseconds.
    pub expires_at: Timestamp,
}

/// Why an assertion was refused. [`IdentityRejection::code`] is the stable public code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRejection {
    #[error("the identity assertion is longer than 4096 bytes")]
    TooLong,
    #[error(
        "the identity assertion is not a JWT with the required claims (iss, aud, sub, iat, exp)"
    )]
    Malformed,
    #[error("the identity assertion's header names `crit`, which this broker does not understand")]
    CriticalHeader,
    #[error("the identity assertion's sub must be 1 to 256 characters")]
    BadSubject,
    #[error("the identity assertion's kid is missing or names no configured key")]
    UnknownKey,
    #[error("the identity assertion's alg is not the algorithm configured for its kid")]
    WrongAlg,
    #[error("the identity assertion's signature does not verify")]
    BadSignature,
    #[error("the identity assertion's aud is not this broker's public origin")]
    WrongAudience,
    #[error("the identity assertion's iss is not an origin")]
    IssuerNotOrigin,
    #[error("the identity assertion's iss is not a trusted origin")]
    IssuerUntrusted,
    #[error("the identity assertion's iss is not the origin of the page that sent it")]
    IssuerNotPage,
    #[error(
        "the identity assertion's lifetime (exp - iat) is not between 1 s and the allowed maximum"
    )]
    Lifetime,
    #[error("the identity assertion has expired")]
    Expired,
    #[error("the identity assertion's iat is in the future")]
    NotYetValid,
}

impl IdentityRejection {
    /// The stable code a client switches on (docs/identity.md lists them).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong | Self::Malformed | Self::CriticalHeader | Self::BadSubject => {
                "identity_malformed"
            }
            Self::UnknownKey => "identity_kid",
            Self::WrongAlg => "identity_alg",
            Self::BadSignature => "identity_signature",
            Self::WrongAudience => "identity_audience",
            Self::IssuerNotOrigin | Self::IssuerUntrusted | Self::IssuerNotPage => {
                "identity_issuer"
            }
            Self::Lifetime => "identity_lifetime",
            Self::Expired => "identity_expired",
            Self::NotYetValid => "identity_not_yet_valid",
        }
    }

    /// 400 for what no key could make right, 401 for what the credential itself fails (its key,
    /// signature, audience or time: the partner must sign a new one), 403 for a valid credential
    /// used from a page it does not vouch for.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self.code() {
            "identity_malformed" => StatusCode::BAD_REQUEST,
            "identity_issuer" => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Why no test assertion was minted (`baton identity token`).
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no identity key {0:?} is configured")]
    NoSuchKey(String),
    #[error("identity key {0:?} is ES256: only the partner holds its private key")]
    NotHs256(String),
    #[error("no HS256 identity key is configured")]
    NoHs256Key,
    #[error("the lifetime must be between 1 and the configured maximum, {0} s")]
    Lifetime(i64),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The configured identity keys and what verification needs besides them.
#[derive(Clone)]
pub struct IdentityKeys {
    keys: Vec<Key>,
    audience: Origin,
    subject_secret: SubjectSecret,
    max_lifetime_secs: i64,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|k| format!("{} {}", k.kid, k.alg().as_str()))
            .collect();
        write!(f, "IdentityKeys({kids:?}, <secrets redacted>)")
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    exp: i64,
}

impl IdentityKeys {
    /// The keys of `[identity]`, or `None` when there are none (identity binding is off). The
    /// config's own rules guarantee a subject secret and one key material per key.
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let identity = &config.identity;
        if identity.keys.is_empty() {
            return None;
        }
        let keys = identity
            .keys
            .iter()
            .map(|k| {
                let material = match (k.alg, &k.secret, &k.public_key) {
                    (IdentityAlg::HS256, Some(secret), _) => KeyMaterial::Hs256(secret.clone()),
                    (IdentityAlg::ES256, _, Some(public)) => KeyMaterial::Es256(public.clone()),
                    _ => return None,
                };
                Some(Key {
                    kid: k.kid.clone(),
                    material,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            keys,
            audience: config.server.public_origin.clone(),
            subject_secret: identity.subject_secret.clone()?,
            max_lifetime_secs: i64::try_from(identity.max_lifetime_secs).unwrap_or(i64::MAX),
        })
    }

    /// HS256 keys only, for tests and tools: `(kid, secret)` pairs.
    pub fn hs256(
        keys: Vec<(String, Vec<u8>)>,
        audience: Origin,
        subject_secret: SubjectSecret,
        max_lifetime_secs: u64,
    ) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(kid, secret)| Key {
                    kid,
                    material: KeyMaterial::Hs256(secret),
                })
                .collect(),
            audience,
            subject_secret,
            max_lifetime_secs: i64::try_from(max_lifetime_secs).unwrap_or(i64::MAX),
        }
    }

    /// Adds an ES256 key (tests and tools; the config adds its own in `from_config`).
    pub fn with_es256(mut self, kid: String, public_key: Es256PublicKey) -> Self {
        self.keys.push(Key {
            kid,
            material: KeyMaterial::Es256(public_key),
        });
        self
    }

    pub fn subject_secret(&self) -> &SubjectSecret {
        &self.subject_secret
    }

    /// Checks `token` by the rules of the module documentation, for the page at `page_origin`.
    /// A refusal is logged here (its code and the key it named, never the token nor `sub`).
    pub fn verify(
        &self,
        token: &str,
        page_origin: &Origin,
        trusted: &TrustedOrigins,
        now: Timestamp,
    ) -> Result<Identity, IdentityRejection> {
        self.check(token, page_origin, trusted, now)
            .inspect_err(|rejection| {
                tracing::info!(
                    code = rejection.code(),
                    reason = %rejection,
                    page = %page_origin,
                    "identity assertion refused"
                );
            })
    }

    fn check(
        &self,
        token: &str,
        page_origin: &Origin,
        trusted: &TrustedOrigins,
        now: Timestamp,
    ) -> Result<Identity, IdentityRejection> {
        use IdentityRejection as R;
        if token.len() > MAX_TOKEN_LEN {
            return Err(R::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(R::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| R::Malformed)?;
        let header_map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header_json).map_err(|_| R::Malformed)?;
        if header_map.contains_key("crit") {
            return Err(R::CriticalHeader);
        }
        let header: Header = serde_json::from_value(serde_json::Value::Object(header_map))
            .map_err(|_| R::Malformed)?;
        let key = header
            .kid
            .and_then(|kid| self.keys.iter().find(|k| k.kid == kid))
            .ok_or(R::UnknownKey)?;
        let alg = key.alg();
        if header.alg.as_deref() != Some(alg.as_str()) {
            return Err(R::WrongAlg);
        }
        let message_len = header_b64.len() + 1 + claims_b64.len();
        let verified = jsonwebtoken::crypto::verify(
            signature,
            &token.as_bytes()[..message_len],
            &key.decoding_key(),
            alg.jwt(),
        )
        .unwrap_or(false);
        if !verified {
            return Err(R::BadSignature);
        }
        let claims_json = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| R::Malformed)?;
        let claims: Claims = serde_json::from_slice(&claims_json).map_err(|_| R::Malformed)?;
        if claims.aud != self.audience.as_str() {
            return Err(R::WrongAudience);
        }
        let issuer = Origin::parse(&claims.iss).map_err(|_| R::IssuerNotOrigin)?;
        if !trusted.allows(&issuer) {
            return Err(R::IssuerUntrusted);
        }
        if issuer != *page_origin {
            return Err(R::IssuerNotPage);
        }
        let sub_chars = claims.sub.chars().count();
        if sub_chars == 0 || sub_chars > MAX_SUBJECT_CHARS {
            return Err(R::BadSubject);
        }
        let expires_at = self.check_times(&claims, now)?;
        Ok(Identity {
            subject: self.subject_secret.hash(&claims.sub),
            issuer,
            kid: key.kid.clone(),
            expires_at,
        })
    }

    /// The time rules; `exp` in milliseconds when they hold.
    fn check_times(&self, claims: &Claims, now: Timestamp) -> Result<Timestamp, IdentityRejection> {
        use IdentityRejection as R;
        // No partner signs a time before 1970; refusing them also keeps `exp - iat` in range.
        if claims.iat < 0 || claims.exp < 0 {
            return Err(R::Malformed);
        }
        let lifetime = claims.exp - claims.iat;
        if lifetime < 1 || lifetime > self.max_lifetime_secs {
            return Err(R::Lifetime);
        }
        let now_s = now.div_euclid(1000);
        // Each sum is checked: `exp` near i64::MAX must not wrap to the past.
        let deadline = claims.exp.checked_add(LEEWAY_SECS).ok_or(R::Malformed)?;
        if now_s >= deadline {
            return Err(R::Expired);
        }
        let latest_issue = now_s.checked_add(LEEWAY_SECS).ok_or(R::Malformed)?;
        if claims.iat > latest_issue {
            return Err(R::NotYetValid);
        }
        claims.exp.checked_mul(1000).ok_or(R::Malformed)
    }

    /// A test assertion from `iss` for `sub`, signed now with the HS256 key `kid` (or the first
    /// HS256 key), valid for `ttl_secs`: what `baton identity token` prints, so a partner can
    /// compare its own with one the broker accepts.
    pub fn mint_test_assertion(
        &self,
        kid: Option<&str>,
        iss: &Origin,
        sub: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<String, MintError> {
        let key = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or_else(|| MintError::NoSuchKey(kid.to_owned()))?,
            None => self
                .keys
                .iter()
                .find(|k| k.alg() == IdentityAlg::HS256)
                .ok_or(MintError::NoHs256Key)?,
        };
        let KeyMaterial::Hs256(secret) = &key.material else {
            return Err(MintError::NotHs256(key.kid.clone()));
        };
        if ttl_secs < 1 || ttl_secs > self.max_lifetime_secs {
            return Err(MintError::Lifetime(self.max_lifetime_secs));
        }
        let iat = now.div_euclid(1000);
        let claims = serde_json::json!({
            "iss": iss.as_str(),
            "aud": self.audience.as_str(),
            "sub": sub,
            "iat": iat,
            "exp": iat.saturating_add(ttl_secs),
        });
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const T0: Timestamp = 1_800_000_000_000;
    const NOW_S: i64 = T0 / 1000;
    const BROKER: &str = "https://broker.example.com";
    const PAGE: &str = "https://shop.example.com";
    const OTHER_TRUSTED: &str = "https://support.example.org";
    const HS_SECRET: [u8; 32] = [1; 32];
    const ES_SCALAR: [u8; 32] = [7; 32];

    fn origin(raw: &str) -> Origin {
        Origin::parse(raw).expect("origin")
    }

    fn trusted() -> TrustedOrigins {
        TrustedOrigins::parse_all(&[PAGE, OTHER_TRUSTED]).expect("trusted")
    }

    fn es_signing_key(scalar: [u8; 32]) -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&scalar).expect("scalar")
    }

    fn es_public_pem(scalar: [u8; 32]) -> String {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        es_signing_key(scalar)
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem")
    }

    /// Keys `a` (HS256, `HS_SECRET`) and `e` (ES256, the public half of `ES_SCALAR`), lifetime
    /// at most 600 s.
    fn keys() -> IdentityKeys {
        IdentityKeys::hs256(
            vec![("a".into(), HS_SECRET.to_vec())],
            origin(BROKER),
            SubjectSecret::new(vec![9; 32]),
            600,
        )
        .with_es256(
            "e".into(),
            Es256PublicKey::from_pem(&es_public_pem(ES_SCALAR)).expect("public key"),
        )
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    /// Exactly this header and these claims, HMAC-SHA256'd with `secret` whatever the header
    /// says: what someone holding that secret could send.
    fn hs_signed_with(secret: &[u8], header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
        .expect("sign");
        format!("{message}.{signature}")
    }

    fn hs_signed(header: &Value, claims: &Value) -> String {
        hs_signed_with(&HS_SECRET, header, claims)
    }

    /// ES256 over exactly this header and these claims with the private key `scalar`.
    fn es_signed(scalar: [u8; 32], header: &Value, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer;
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature: p256::ecdsa::Signature = es_signing_key(scalar).sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn header(alg: &str, kid: &str) -> Value {
        json!({ "alg": alg, "kid": kid, "typ": "JWT" })
    }

    fn claims(iat: i64, exp: i64) -> Value {
        json!({ "iss": PAGE, "aud": BROKER, "sub": "customer-42", "iat": iat, "exp": exp })
    }

    fn good() -> Value {
        claims(NOW_S, NOW_S + 300)
    }

    fn verify_at(token: &str, now: Timestamp) -> Result<Identity, IdentityRejection> {
        keys().verify(token, &origin(PAGE), &trusted(), now)
    }

    fn verdict(claims: &Value, now: Timestamp) -> Result<(), IdentityRejection> {
        verify_at(&hs_signed(&header("HS256", "a"), claims), now).map(|_| ())
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().expect("object").remove(name);
        claims
    }

    #[test]
    fn a_valid_hs256_assertion_names_the_hashed_subject_and_nothing_in_clear() {
        let identity = verify_at(&hs_signed(&header("HS256", "a"), &good()), T0).expect("valid");
        assert_eq!(
            identity.subject,
            SubjectSecret::new(vec![9; 32]).hash("customer-42")
        );
        assert_eq!(identity.issuer, origin(PAGE));
        assert_eq!(identity.kid, "a");
        assert_eq!(identity.expires_at, (NOW_S + 300) * 1000);
        let shown = format!("{identity:?}");
        assert!(!shown.contains("customer-42"), "{shown}");
        assert!(!shown.contains(&identity.subject.to_hex()), "{shown}");
    }

    #[test]
    fn a_valid_es256_assertion_verifies_with_the_public_key() {
        let token = es_signed(ES_SCALAR, &header("ES256", "e"), &good());
        let identity = verify_at(&token, T0).expect("valid");
        assert_eq!(identity.kid, "e");
        // The hash depends on the subject secret only, not on which key signed.
        let by_hs = verify_at(&hs_signed(&header("HS256", "a"), &good()), T0).expect("valid");
        assert_eq!(identity.subject, by_hs.subject);
    }

    #[test]
    fn another_private_key_fails_the_es256_signature() {
        let token = es_signed([8; 32], &header("ES256", "e"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::BadSignature));
    }

    #[test]
    fn a_wrong_secret_or_a_changed_claim_fails_the_signature() {
        let token = hs_signed_with(&[2; 32], &header("HS256", "a"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::BadSignature));
        // Claims swapped under a genuine signature.
        let genuine = hs_signed(&header("HS256", "a"), &good());
        let parts: Vec<&str> = genuine.split('.').collect();
        let forged = with(good(), "sub", json!("customer-43"));
        let token = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::BadSignature));
        let token = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::BadSignature));
    }

    #[test]
    fn kid_is_required_and_must_be_configured() {
        let token = hs_signed(&json!({ "alg": "HS256" }), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::UnknownKey));
        let token = hs_signed(&header("HS256", "b"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::UnknownKey));
        let token = hs_signed(&json!({ "alg": "HS256", "kid": 5 }), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::Malformed));
    }

    #[test]
    fn the_keys_algorithm_decides_never_the_tokens() {
        for alg in [
            "none", "HS384", "HS512", "hs256", "HS256 ", "ES256", "RS256", "",
        ] {
            let token = hs_signed(&header(alg, "a"), &good());
            assert_eq!(
                verify_at(&token, T0),
                Err(IdentityRejection::WrongAlg),
                "{alg}"
            );
        }
        let token = hs_signed(&json!({ "kid": "a" }), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::WrongAlg));
        // An unsigned token, as `alg: none` has it.
        let token = format!("{}.{}.", b64(&header("none", "a")), b64(&good()));
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::WrongAlg));
        // A genuine ES256 signature, relabelled for the HS256 key.
        let token = es_signed(ES_SCALAR, &header("ES256", "a"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::WrongAlg));
    }

    #[test]
    fn an_hs256_token_keyed_with_the_es256_public_pem_is_refused() {
        // The classic confusion: the public key is public, so anyone can HMAC with its bytes.
        let pem = es_public_pem(ES_SCALAR);
        let token = hs_signed_with(pem.as_bytes(), &header("HS256", "e"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::WrongAlg));
        // The same with the SEC1 point the verifier holds.
        let point = Es256PublicKey::from_pem(&pem).expect("pem").0;
        let token = hs_signed_with(&point, &header("HS256", "e"), &good());
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::WrongAlg));
    }

    #[test]
    fn size_is_capped_before_parsing() {
        assert_eq!(
            verify_at(&"a".repeat(MAX_TOKEN_LEN + 1), T0),
            Err(IdentityRejection::TooLong)
        );
        // The limit itself gets as far as parsing.
        assert_eq!(
            verify_at(&"a".repeat(MAX_TOKEN_LEN), T0),
            Err(IdentityRejection::Malformed)
        );
        // A genuine token padded past the limit by a long ignored claim.
        let padded = with(good(), "pad", json!("x".repeat(MAX_TOKEN_LEN)));
        let token = hs_signed(&header("HS256", "a"), &padded);
        assert_eq!(verify_at(&token, T0), Err(IdentityRejection::TooLong));
    }

    #[test]
    fn what_is_not_a_jws_is_malformed() {
        let genuine = hs_signed(&header("HS256", "a"), &good());
        for token in [
            String::new(),
            "not a jwt".into(),
            "a.b".into(),
            format!("{genuine}.x"),
            format!("!{genuine}"),
            format!("{}.{}.sig", URL_SAFE_NO_PAD.encode("[]"), b64(&good())),
            format!("{}.{}.sig", URL_SAFE_NO_PAD.encode("{"), b64(&good())),
        ] {
            assert_eq!(
                verify_at(&token, T0),
                Err(IdentityRejection::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn a_crit_header_is_refused_whatever_its_value() {
        for crit in [json!(["exp"]), json!([]), Value::Null] {
            let mut h = header("HS256", "a");
            h["crit"] = crit.clone();
            assert_eq!(
                verify_at(&hs_signed(&h, &good()), T0),
                Err(IdentityRejection::CriticalHeader),
                "{crit}"
            );
        }
    }

    #[test]
    fn every_claim_is_required_with_its_type_and_others_are_ignored() {
        for name in ["iss", "aud", "sub", "iat", "exp"] {
            assert_eq!(
                verdict(&without(good(), name), T0),
                Err(IdentityRejection::Malformed),
                "without {name}"
            );
        }
        for (name, value) in [
            ("iat", json!(NOW_S as f64 + 0.5)),
            ("iat", json!(NOW_S.to_string())),
            ("exp", json!(null)),
            ("sub", json!(42)),
            ("aud", json!([BROKER])),
            ("iss", json!([PAGE])),
        ] {
            assert_eq!(
                verdict(&with(good(), name, value.clone()), T0),
                Err(IdentityRejection::Malformed),
                "{name} = {value}"
            );
        }
        let extra = with(with(good(), "nbf", json!("soon")), "jti", json!({}));
        assert_eq!(verdict(&extra, T0), Ok(()));
        assert_eq!(
            verdict(&json!([1, 2]), T0),
            Err(IdentityRejection::Malformed)
        );
    }

    #[test]
    fn the_audience_is_the_public_origin_exactly() {
        for aud in [
            "https://broker.example.com/",
            "https://BROKER.example.com",
            "https://broker.example.com:443",
            "https://other.example.com",
            "",
        ] {
            assert_eq!(
                verdict(&with(good(), "aud", json!(aud)), T0),
                Err(IdentityRejection::WrongAudience),
                "{aud}"
            );
        }
    }

    #[test]
    fn the_issuer_is_a_trusted_origin_and_the_page_itself() {
        let refused = |iss: &str| verdict(&with(good(), "iss", json!(iss)), T0);
        assert_eq!(
            refused("shop.example.com"),
            Err(IdentityRejection::IssuerNotOrigin)
        );
        assert_eq!(
            refused("https://shop.example.com/"),
            Err(IdentityRejection::IssuerNotOrigin)
        );
        assert_eq!(
            refused("https://evil.example.net"),
            Err(IdentityRejection::IssuerUntrusted)
        );
        // Trusted, but rendered for another site than the one presenting it.
        assert_eq!(
            refused(OTHER_TRUSTED),
            Err(IdentityRejection::IssuerNotPage)
        );
        // An untrusted page presenting its own assertion.
        let token = hs_signed(
            &header("HS256", "a"),
            &with(good(), "iss", json!("https://evil.example.net")),
        );
        let at_evil = keys().verify(&token, &origin("https://evil.example.net"), &trusted(), T0);
        assert_eq!(at_evil, Err(IdentityRejection::IssuerUntrusted));
    }

    #[test]
    fn the_subject_is_1_to_256_characters() {
        let sub = |s: String| verdict(&with(good(), "sub", json!(s)), T0);
        assert_eq!(sub(String::new()), Err(IdentityRejection::BadSubject));
        // Characters, not bytes: 256 three-byte characters are fine.
        assert_eq!(sub("€".repeat(MAX_SUBJECT_CHARS)), Ok(()));
        assert_eq!(
            sub("a".repeat(MAX_SUBJECT_CHARS + 1)),
            Err(IdentityRejection::BadSubject)
        );
    }

    #[test]
    fn a_lifetime_of_600_is_accepted_and_601_refused() {
        assert_eq!(verdict(&claims(NOW_S, NOW_S + 600), T0), Ok(()));
        assert_eq!(
            verdict(&claims(NOW_S, NOW_S + 601), T0),
            Err(IdentityRejection::Lifetime)
        );
        assert_eq!(verdict(&claims(NOW_S, NOW_S + 1), T0), Ok(()));
        for exp in [NOW_S, NOW_S - 1] {
            assert_eq!(
                verdict(&claims(NOW_S, exp), T0),
                Err(IdentityRejection::Lifetime),
                "exp - iat = {}",
                exp - NOW_S
            );
        }
    }

    #[test]
    fn a_shorter_configured_lifetime_is_enforced() {
        let short = IdentityKeys::hs256(
            vec![("a".into(), HS_SECRET.to_vec())],
            origin(BROKER),
            SubjectSecret::new(vec![9; 32]),
            60,
        );
        let judge = |exp: i64| {
            short
                .verify(
                    &hs_signed(&header("HS256", "a"), &claims(NOW_S, exp)),
                    &origin(PAGE),
                    &trusted(),
                    T0,
                )
                .map(|_| ())
        };
        assert_eq!(judge(NOW_S + 60), Ok(()));
        assert_eq!(judge(NOW_S + 61), Err(IdentityRejection::Lifetime));
    }

    #[test]
    fn expiry_allows_the_leeway_on_the_app_clock_and_no_more() {
        let c = claims(NOW_S - 60, NOW_S);
        // `now_s < exp + 5`: the last millisecond of second exp + 4 is fine.
        assert_eq!(verdict(&c, T0 + 4_999), Ok(()));
        assert_eq!(verdict(&c, T0 + 5_000), Err(IdentityRejection::Expired));
    }

    #[test]
    fn issue_time_allows_the_leeway_on_the_app_clock_and_no_more() {
        assert_eq!(verdict(&claims(NOW_S + 5, NOW_S + 65), T0), Ok(()));
        assert_eq!(
            verdict(&claims(NOW_S + 6, NOW_S + 66), T0),
            Err(IdentityRejection::NotYetValid)
        );
        // Seconds are floored: one millisecond before T0 is second NOW_S - 1.
        assert_eq!(
            verdict(&claims(NOW_S + 5, NOW_S + 65), T0 - 1),
            Err(IdentityRejection::NotYetValid)
        );
    }

    #[test]
    fn times_out_of_range_are_refused_without_wrapping() {
        for (iat, exp) in [(-1, 10), (0, -1), (i64::MIN, NOW_S)] {
            assert_eq!(
                verdict(&claims(iat, exp), 0),
                Err(IdentityRejection::Malformed),
                "iat {iat}, exp {exp}"
            );
        }
        // A far expiry is too long-lived whatever the issue time.
        assert_eq!(
            verdict(&claims(NOW_S, i64::MAX), T0),
            Err(IdentityRejection::Lifetime)
        );
        // Second zero is a time like any other.
        assert_eq!(verdict(&claims(0, 60), 0), Ok(()));
    }

    #[test]
    fn each_refusal_has_its_code_and_status() {
        use IdentityRejection as R;
        use axum::http::StatusCode as S;
        for (rejection, code, status) in [
            (R::TooLong, "identity_malformed", S::BAD_REQUEST),
            (R::Malformed, "identity_malformed", S::BAD_REQUEST),
            (R::CriticalHeader, "identity_malformed", S::BAD_REQUEST),
            (R::BadSubject, "identity_malformed", S::BAD_REQUEST),
            (R::UnknownKey, "identity_kid", S::UNAUTHORIZED),
            (R::WrongAlg, "identity_alg", S::UNAUTHORIZED),
            (R::BadSignature, "identity_signature", S::UNAUTHORIZED),
            (R::WrongAudience, "identity_audience", S::UNAUTHORIZED),
            (R::Lifetime, "identity_lifetime", S::UNAUTHORIZED),
            (R::Expired, "identity_expired", S::UNAUTHORIZED),
            (R::NotYetValid, "identity_not_yet_valid", S::UNAUTHORIZED),
            (R::IssuerNotOrigin, "identity_issuer", S::FORBIDDEN),
            (R::IssuerUntrusted, "identity_issuer", S::FORBIDDEN),
            (R::IssuerNotPage, "identity_issuer", S::FORBIDDEN),
        ] {
            let api = crate::error::ApiError::from(rejection);
            assert_eq!((api.code(), api.status()), (code, status), "{rejection:?}");
        }
    }

    #[tokio::test]
    async fn a_refusal_answers_the_error_shape() {
        use axum::response::IntoResponse;
        let response = crate::error::ApiError::from(IdentityRejection::Expired).into_response();
        assert_eq!(response.status(), axum::http::StatusCode::UNAUTHORIZED);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body,
            json!({ "error": "identity_expired", "message": "the identity assertion has expired" })
        );
    }

    #[test]
    fn the_subject_hash_is_keyed_and_its_tag_fits_the_store() {
        let a = SubjectSecret::new(vec![9; 32]);
        let b = SubjectSecret::new(vec![10; 32]);
        assert_eq!(a.hash("x"), a.hash("x"));
        assert_ne!(a.hash("x"), a.hash("y"));
        assert_ne!(
            a.hash("x"),
            b.hash("x"),
            "a different secret, a different hash"
        );
        let hash = a.hash("customer-42");
        let hex = hash.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let tag = hash.slot_tag();
        assert_eq!(tag.len(), crate::session::TAG_LEN);
        assert_eq!(TAG_LEN, crate::session::TAG_LEN);
        let name = format!("{tag}.{hex}");
        assert_eq!(crate::session::slot_tag(&name), Some(tag.as_str()));
        assert_eq!(format!("{hash:?}"), format!("SubjectHash({tag}…)"));
        assert_eq!(format!("{a:?}"), "SubjectSecret(<redacted>)");
    }

    #[test]
    fn the_subject_hash_is_hmac_sha256_of_the_label_and_sub() {
        // Pinned: the stored format. HMAC-SHA256(key = 32 × 0x09,
        // "baton identity subject v1\0customer-42"), computed independently with
        // `printf 'baton identity subject v1\0customer-42' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0909…09`.
        assert_eq!(
            SubjectSecret::new(vec![9; 32]).hash("customer-42").to_hex(),
            "56ef1e52255db6c12cc74f3b5acfb41b711835aee9e7abbfd7d19ded18958a55"
        );
    }

    #[test]
    fn a_minted_test_assertion_verifies() {
        let k = keys();
        let token = k
            .mint_test_assertion(None, &origin(PAGE), "customer-42", T0, 300)
            .expect("mint");
        let identity = verify_at(&token, T0).expect("valid");
        assert_eq!(identity.kid, "a");
        assert_eq!(identity.expires_at, (NOW_S + 300) * 1000);
        assert!(matches!(
            k.mint_test_assertion(Some("e"), &origin(PAGE), "c", T0, 60),
            Err(MintError::NotHs256(_))
        ));
        assert!(matches!(
            k.mint_test_assertion(Some("z"), &origin(PAGE), "c", T0, 60),
            Err(MintError::NoSuchKey(_))
        ));
        for ttl in [0, 601] {
            assert!(matches!(
                k.mint_test_assertion(None, &origin(PAGE), "c", T0, ttl),
                Err(MintError::Lifetime(600))
            ));
        }
    }

    #[test]
    fn a_pem_that_is_not_a_p256_public_key_is_refused() {
        assert!(Es256PublicKey::from_pem(&es_public_pem(ES_SCALAR)).is_ok());
        for bad in [
            "",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a pem",
        ] {
            assert!(Es256PublicKey::from_pem(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_is_refused_without_panicking(token in ".{0,600}", now in any::<i64>()) {
            prop_assert!(verify_at(&token, now).is_err());
        }

        #[test]
        fn any_subject_round_trips_to_its_hash(sub in "\\PC{1,256}") {
            let token = keys()
                .mint_test_assertion(None, &origin(PAGE), &sub, T0, 600)
                .expect("mint");
            let identity = verify_at(&token, T0).expect("valid");
            prop_assert_eq!(identity.subject, SubjectSecret::new(vec![9; 32]).hash(&sub));
        }
    }
}
