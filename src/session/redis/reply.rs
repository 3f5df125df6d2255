//! What the Redis store's scripts answer, read back into the store's types: a session from its
//! `HGETALL` fields, and the tagged replies (`done`, `full`, `conflict`) of the writes.

use super::errors::corrupt;
use crate::session::{Session, StoreError, Values};

/// A session from its `HGETALL` reply (field, value, field, value...).
pub(super) fn session(uid: String, fields: Vec<String>) -> Result<Session, StoreError> {
    let (mut created_at, mut last_seen) = (None, None);
    let mut values = Values::new();
    let mut it = fields.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        match field.as_str() {
            "c" => created_at = value.parse().ok(),
            "l" => last_seen = value.parse().ok(),
            other => {
                if let Some(key) = other.strip_prefix("v:") {
                    values.insert(key.to_owned(), value);
                }
            }
        }
    }
    Ok(Session {
        uid,
        values,
        created_at: created_at.ok_or_else(|| corrupt("created_at"))?,
        last_seen: last_seen.ok_or_else(|| corrupt("last_seen"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_read_from_its_hash_fields() {
        let fields = ["c", "5", "v:chat", "hi", "l", "7", "other", "ignored"]
            .map(String::from)
            .to_vec();
        let s = session("u".into(), fields).expect("valid");
        assert_eq!((s.created_at, s.last_seen), (5, 7));
        assert_eq!(s.values.len(), 1);
        assert_eq!(s.values["chat"], "hi");
        assert!(session("u".into(), vec!["l".into(), "7".into()]).is_err());
    }
}
