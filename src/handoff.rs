//! Handoff tokens: how a session crosses from one trusted site to another when the browser keeps
//! only partitioned cookies.
//!
//! The source site's iframe asks for a token naming the destination origin; the library puts it in
//! the destination URL's fragment (never sent to servers nor in `Referer`); the destination's iframe
//! redeems it, and the broker binds the same server-side session to a fresh id in that site's
//! cookies.
//!
//! A token is an HS256 JWT. The algorithm is pinned here, never read from the token (so `alg: none`
//! and algorithm confusion fail); `kid` picks among the configured keys (the first signs, all
//! verify, so keys rotate without downtime); `iss` is the broker deployment (`handoff.issuer`, the
//! same on every node), `aud` the destination origin;
//! `exp`, `nbf`, `iat` and `jti` are required and checked against the app clock with a small leeway.
//! The token carries no session reference at all: `jti` names a single-use record in the store that
//! does, so a replay finds nothing and ending the session kills its pending tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::SigningKey;
use crate::session::Timestamp;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Clock skew tolerated between nodes, in seconds.
pub const LEEWAY_SECS: i64 = 5;
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
    UnknownKey,
    BadSignatureOrClaims,
    Expired,
    NotYetValid,
    WrongAudience,
}

pub struct Minted {
    pub token: String,
    pub jti: String,
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
                secret: crate::session::random_bytes::<32>().to_vec(),
            });
        }
        Self::new(keys, handoff.issuer.clone(), handoff.ttl_secs)
    }

    /// Signs with the first of `keys`, verifies with any; none disables handoff.
    pub fn new(keys: Vec<SigningKey>, issuer: String, ttl_secs: u64) -> Self {
        Self {
            keys,
            issuer,
            ttl_secs: ttl_secs as i64,
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn mint(
        &self,
        audience: &str,
        now: Timestamp,
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        let Some(key) = self.keys.first() else {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
        };
        let now_s = now.div_euclid(1000);
        let jti = crate::session::new_uid();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            exp: now_s + self.ttl_secs,
            nbf: now_s,
            iat: now_s,
            jti: jti.clone(),
        };
        let mut header = Header::new(ALG);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))?;
        Ok(Minted {
            token,
            jti,
            expires_at: claims.exp * 1000,
        })
    }

    /// Checks everything but single use, which the store decides (`take_handoff`).
    pub fn verify(&self, token: &str, audience: &str, now: Timestamp) -> Result<Claims, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
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
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "jti"]);
        // Time is checked below against the app clock, which tests control.
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
        let now_s = now.div_euclid(1000);
        if now_s >= claims.exp + LEEWAY_SECS {
            return Err(Rejection::Expired);
        }
        if claims.nbf > now_s + LEEWAY_SECS || claims.iat > now_s + LEEWAY_SECS {
            return Err(Rejection::NotYetValid);
        }
        // A token is never valid for longer than this broker would have issued it for, even if
        // someone holding a key minted one with a far `exp`.
        if claims.exp - claims.iat > self.ttl_secs || claims.jti.is_empty() || claims.jti.len() > 64
        {
            return Err(Rejection::BadSignatureOrClaims);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const T0: Timestamp = 1_800_000_000_000;
    const AUD: &str = "https://support.example.org";

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            secret: vec![byte; 32],
        }
    }

    fn keys(list: Vec<SigningKey>) -> HandoffKeys {
        HandoffKeys::new(list, "https://broker.example.com".into(), 60)
    }

    #[test]
    fn a_minted_token_verifies_for_its_audience_only() {
        let k = keys(vec![key("a", 1)]);
        let minted = k.mint(AUD, T0).expect("mint");
        let claims = k.verify(&minted.token, AUD, T0 + 1000).expect("valid");
        assert_eq!(claims.jti, minted.jti);
        assert_eq!(
            k.verify(&minted.token, "https://evil.example.net", T0)
                .err(),
            Some(Rejection::WrongAudience)
        );
    }

    #[test]
    fn expiry_and_not_before_use_the_app_clock() {
        let k = keys(vec![key("a", 1)]);
        let minted = k.mint(AUD, T0).expect("mint");
        assert!(
            k.verify(&minted.token, AUD, T0 + 64_000).is_ok(),
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
    fn rotation_verifies_old_keys_and_signs_with_the_first() {
        let old = keys(vec![key("old", 1)]);
        let rotated = keys(vec![key("new", 2), key("old", 1)]);
        let by_old = old.mint(AUD, T0).expect("mint");
        assert!(rotated.verify(&by_old.token, AUD, T0).is_ok());
        let by_new = rotated.mint(AUD, T0).expect("mint");
        assert_eq!(
            old.verify(&by_new.token, AUD, T0).err(),
            Some(Rejection::UnknownKey)
        );
    }

    #[test]
    fn forged_alg_none_and_oversized_tokens_fail() {
        let k = keys(vec![key("a", 1)]);
        let forged = keys(vec![key("a", 9)]).mint(AUD, T0).expect("mint");
        assert_eq!(
            k.verify(&forged.token, AUD, T0).err(),
            Some(Rejection::BadSignatureOrClaims)
        );
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"a","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            format!(r#"{{"iss":"https://broker.example.com","aud":"{AUD}","exp":{},"nbf":{},"iat":{},"jti":"x"}}"#, T0 / 1000 + 60, T0 / 1000, T0 / 1000),
        );
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            assert!(k.verify(&token, AUD, T0).is_err(), "{token}");
        }
        assert_eq!(
            k.verify(&"a".repeat(MAX_TOKEN_LEN + 1), AUD, T0).err(),
            Some(Rejection::TooLong)
        );
        assert_eq!(
            k.verify("not a jwt", AUD, T0).err(),
            Some(Rejection::Malformed)
        );
    }

    #[test]
    fn long_lived_tokens_are_refused_even_when_signed() {
        let long = HandoffKeys::new(vec![key("a", 1)], "https://broker.example.com".into(), 3600);
        let minted = long.mint(AUD, T0).expect("mint");
        assert_eq!(
            keys(vec![key("a", 1)]).verify(&minted.token, AUD, T0).err(),
            Some(Rejection::BadSignatureOrClaims)
        );
    }
}
