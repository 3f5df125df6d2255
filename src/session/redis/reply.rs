//! What the Redis store's scripts answer, read back into the store's types: a session from its
//! `HGETALL` fields, and the tagged replies (`done`, `full`, `conflict`) of the writes.

use super::errors::corrupt;
use crate::session::{Session, StoreError, Uid, Values};

/// A session from its `HGETALL` reply (field, value, field, value...), and the uid it was
/// found under (a name the broker minted, or the data is corrupt).
pub(super) fn session(uid: String, fields: Vec<String>) -> Result<Session, StoreError> {
    let uid = Uid::parse(&uid).ok_or_else(|| corrupt("uid"))?;
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

/// What a write script (`SET_VALUE`, `LOAD_AND_SET`, `ADOPT`) answered: nil (the session is
/// missing), `{'full'}`, `{'conflict'}` or `{'done', [uid,] HGETALL...}`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written {
    Missing,
    Full,
    Conflict,
    Done(Session),
}

/// Reads a write script's reply. `uid`: the session the call named, or `None` when the script
/// found it by an id and names it right after `'done'`. `call` names the script in the error a
/// reply of another shape gives.
pub(super) fn written(
    reply: Option<Vec<String>>,
    uid: Option<&str>,
    call: &str,
) -> Result<Written, StoreError> {
    let Some(reply) = reply else {
        return Ok(Written::Missing);
    };
    let mut it = reply.into_iter();
    match it.next().as_deref() {
        Some("full") => Ok(Written::Full),
        Some("conflict") => Ok(Written::Conflict),
        Some("done") => {
            let uid = match uid {
                Some(uid) => uid.to_owned(),
                None => it.next().ok_or_else(|| corrupt(call))?,
            };
            session(uid, it.collect()).map(Written::Done)
        }
        _ => Err(corrupt(call)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uid in a slot, and one from before slot tags.
    const U: &str = "abcd.0123456789abcdef0123456789abcdef";
    const W: &str = "0123456789abcdef0123456789abcdef";

    fn strings(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| (*s).to_owned()).collect())
    }

    /// Every shape a write script answers, with and without the uid in the reply; anything else
    /// is a corrupt reply, never a guess.
    #[test]
    fn a_write_reply_is_read_the_same_for_every_script() {
        let done = |uid: &str| {
            Written::Done(Session {
                uid: Uid::parse(uid).expect("uid"),
                values: Values::from([("k".to_owned(), "v".to_owned())]),
                created_at: 1,
                last_seen: 2,
            })
        };
        let fields = ["c", "1", "l", "2", "v:k", "v"];
        let named = |head: &[&str]| strings(&[head, &fields[..]].concat());
        assert_eq!(written(None, Some(U), "t").ok(), Some(Written::Missing));
        assert_eq!(
            written(strings(&["full"]), None, "t").ok(),
            Some(Written::Full)
        );
        assert_eq!(
            written(strings(&["conflict"]), Some(U), "t").ok(),
            Some(Written::Conflict)
        );
        assert_eq!(written(named(&["done"]), Some(U), "t").ok(), Some(done(U)));
        assert_eq!(written(named(&["done", W]), None, "t").ok(), Some(done(W)));
        for bad in [strings(&[]), strings(&["done"]), strings(&["other"])] {
            let e = written(bad.clone(), None, "t").expect_err("corrupt");
            assert!(matches!(e, StoreError::Internal(_)), "{bad:?}");
        }
    }

    #[test]
    fn a_session_is_read_from_its_hash_fields() {
        let fields = ["c", "5", "v:chat", "hi", "l", "7", "other", "ignored"]
            .map(String::from)
            .to_vec();
        let s = session(U.into(), fields).expect("valid");
        assert_eq!((s.created_at, s.last_seen), (5, 7));
        assert_eq!(s.values.len(), 1);
        assert_eq!(s.values["chat"], "hi");
        assert!(session(U.into(), vec!["l".into(), "7".into()]).is_err());
    }
}
