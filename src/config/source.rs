//! Where a config problem came from, and what its message may show: the `BATON_*` overrides
//! (which variable set which key), the file line of a key, a TOML syntax error by line and
//! nearest key, and every message stripped of the values a variable gave. Apart from `config.rs`
//! because it is about reading text and reporting, not about the shape of the config.

use std::path::Path;

use super::ConfigErrors;

/// Where a key's value came from when a `BATON_*` variable set it: the variable, the value it
/// gave (to keep out of messages), and, when the value looked like TOML but was not, why.
pub(super) struct FromEnv {
    var: String,
    value: toml::Value,
    not_toml: Option<String>,
}

/// Applies `BATON_SECTION__KEY=value`. The value is read as a TOML value when it parses as one
/// (numbers, booleans, arrays, inline tables), else as a plain string.
/// Applies the overrides; returns which variable set each key (`section.key`).
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<std::collections::HashMap<String, FromEnv>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut set = std::collections::HashMap::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("BATON_") else {
            continue;
        };
        // Variables the CLI reads itself (BATON_CONFIG, BATON_LOG) have no `__`.
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        if section.is_empty() || key.is_empty() {
            errors.push(format!("{name}: expected BATON_SECTION__KEY"));
            continue;
        }
        const PREFIX: &str = "v = ";
        let (value, not_toml) = match format!("{PREFIX}{raw}").parse::<toml::Table>() {
            Ok(mut t) => match t.remove("v") {
                Some(v) => (v, None),
                None => (toml::Value::String(raw), None),
            },
            Err(e) => {
                // Only the parser's description and the column: never the text.
                let looked_like_toml = raw.trim_start().starts_with(['[', '{']);
                let why = looked_like_toml.then(|| {
                    let column = e.span().map_or(0, |s| s.start.saturating_sub(PREFIX.len()));
                    format!(
                        "read as a string, since as TOML it fails at character {}: {}",
                        column + 1,
                        e.message()
                    )
                });
                (toml::Value::String(raw), why)
            }
        };
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry.as_table_mut() {
            Some(t) => {
                set.insert(
                    format!("{section}.{key}"),
                    FromEnv {
                        var: name.clone(),
                        value: value.clone(),
                        not_toml,
                    },
                );
                t.insert(key, value);
            }
            None => errors.push(format!("{name}: [{section}] is not a table in the config")),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// `error` (`path: message`) with where the value came from: `BATON_X__Y (x.y): message` for a
/// value from the environment, `path (file line N): message` for one from the file. Whatever its
/// source, the message never shows a value a variable gave (see `without_values`): a problem may
/// be reported under another key than the variable's (an enum's tag is checked beside each key).
pub(super) fn locate(
    error: String,
    file: Option<(&Path, &str)>,
    from_env: &std::collections::HashMap<String, FromEnv>,
) -> String {
    let hide = |message: &str| without_values(message, from_env.values().map(|e| &e.value));
    let Some((path, message)) = error.split_once(": ") else {
        return hide(&error);
    };
    let message = hide(message);
    // `section.key`, without an index or a deeper field.
    let mut parts = path.splitn(2, '.');
    let (Some(section), Some(rest)) = (parts.next(), parts.next()) else {
        return format!("{path}: {message}");
    };
    let key = rest.split(['[', '.']).next().unwrap_or(rest);
    if let Some(env) = from_env.get(&format!("{section}.{key}")) {
        return match &env.not_toml {
            Some(why) => format!("{} ({path}): {message} (the value was {why})", env.var),
            None => format!("{} ({path}): {message}", env.var),
        };
    }
    match file.and_then(|(name, text)| line_of(text, path).map(|line| (name, line))) {
        Some((name, line)) => format!("{path} ({} line {line}): {message}", name.display()),
        None => format!("{path}: {message}"),
    }
}

/// What stands in a message for a value from the environment.
const NOT_SHOWN: &str = "(value not shown)";

/// `message` with every piece of `values` it quotes replaced by `NOT_SHOWN`: serde and the checks
/// here quote a string as Rust's `Debug` does (`string "…"`), and a number or an enum's variant
/// in backticks. Any
/// longer piece of a value still left in it after that (a check that quoted it another way)
/// gives a message that says only that the value is not valid.
pub(super) fn without_values<'a>(
    message: &str,
    values: impl IntoIterator<Item = &'a toml::Value>,
) -> String {
    let mut strings = Vec::new();
    let mut others = Vec::new();
    for value in values {
        leaves(value, &mut strings, &mut others);
    }
    let mut out = message.to_owned();
    // Longest first, so a short leaf never breaks up a longer one's quoted form.
    strings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in strings.iter().filter(|s| !s.is_empty()) {
        out = out.replace(&format!("{s:?}"), NOT_SHOWN);
    }
    for o in strings.iter().chain(&others).filter(|s| !s.is_empty()) {
        out = out.replace(&format!("`{o}`"), NOT_SHOWN);
    }
    let leaks = strings
        .iter()
        .chain(&others)
        .any(|s| s.len() >= 4 && out.contains(s.as_str()));
    if leaks {
        return format!(
            "not a valid value for this key {NOT_SHOWN}; config/baton.toml describes its form"
        );
    }
    out
}

/// The strings, and the numbers and dates as text, in `value` (not booleans, nor the names of
/// an inline table's keys: neither is a secret, and they are words a message uses).
pub(super) fn leaves(value: &toml::Value, strings: &mut Vec<String>, others: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => strings.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| leaves(v, strings, others)),
        toml::Value::Table(t) => t.values().for_each(|v| leaves(v, strings, others)),
        toml::Value::Boolean(_) => {}
        other => others.push(other.to_string()),
    }
}

/// A file that is not valid TOML, reported by line, column and the nearest key before the error
/// (from the parser's recovered document: a key, never source text) with the parser's
/// description. The `toml` crate's `Display` of the error would print the source line, which may
/// hold a secret.
pub(super) fn syntax_error(name: &str, text: &str) -> String {
    use toml::de::DeTable;
    let (doc, errors) = DeTable::parse_recoverable(text);
    let Some(error) = errors.first() else {
        return format!("{name} is not valid TOML");
    };
    let Some(offset) = error.span().map(|s| s.start.min(text.len())) else {
        return format!("{name} is not valid TOML: {}", error.message());
    };
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let mut keys = Vec::new();
    key_starts(doc.get_ref(), "", &mut keys);
    let near = keys
        .into_iter()
        .filter(|(_, start)| *start <= offset)
        .max_by_key(|(_, start)| *start)
        .map(|(key, _)| format!(", near {key}"))
        .unwrap_or_default();
    format!(
        "{name} is not valid TOML: line {line}, column {column}{near}: {}",
        error.message()
    )
}

/// Every key path in `table` (`handoff.keys[0].kid`) with where it starts. Only names of the
/// shape baton's keys have: a quoted key could be any text.
pub(super) fn key_starts(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    out: &mut Vec<(String, usize)>,
) {
    use toml::de::DeValue;
    let plain = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    for (key, value) in table {
        if !plain(key.get_ref()) {
            continue;
        }
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push((path.clone(), key.span().start));
        match value.get_ref() {
            DeValue::Table(t) => key_starts(t, &path, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        let element = format!("{path}[{i}]");
                        out.push((element.clone(), item.span().start));
                        key_starts(t, &element, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The line of the value at `path` (`section.key`, `section.key[2]`, `section.key[0].field`) in
/// the TOML `text`, if it is written there.
pub(super) fn line_of(text: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table = Some(doc.get_ref());
    for segment in path.split('.') {
        let (name, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        let (_, value) = table?.iter().find(|(k, _)| k.get_ref() == name)?;
        span = Some(value.span());
        let mut value = value.get_ref();
        for index in indexes
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|i| i.parse::<usize>().ok())
        {
            let DeValue::Array(items) = value else {
                return None;
            };
            let item = items.get(index)?;
            span = Some(item.span());
            value = item.get_ref();
        }
        table = match value {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    let offset = span?.start;
    Some(text[..offset.min(text.len())].matches('\n').count() + 1)
}
