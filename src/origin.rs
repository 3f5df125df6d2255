//! TEMPORARY minimal origin module (replaced by the full one).
use std::fmt;
pub const MAX_ORIGIN_LEN: usize = 2048;
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(String);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    NotAscii,
    TooLong,
    Null,
    Malformed,
    NotCanonical,
    NotTrusted,
}
impl Denied {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAscii => "not_ascii",
            Self::TooLong => "too_long",
            Self::Null => "null",
            Self::Malformed => "malformed",
            Self::NotCanonical => "not_canonical",
            Self::NotTrusted => "not_trusted",
        }
    }
}
impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl std::error::Error for Denied {}
impl Origin {
    pub fn parse(raw: &str) -> Result<Origin, Denied> {
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Denied::NotAscii);
        }
        if raw.len() > MAX_ORIGIN_LEN {
            return Err(Denied::TooLong);
        }
        if raw == "null" {
            return Err(Denied::Null);
        }
        let url = url::Url::parse(raw).map_err(|_| Denied::Malformed)?;
        if url.origin().ascii_serialization() != raw {
            return Err(Denied::NotCanonical);
        }
        Ok(Origin(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(Origin),
    Wildcard {
        scheme: String,
        suffix: String,
        port: Option<u16>,
    },
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub entry: String,
    pub reason: String,
}
impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.entry, self.reason)
    }
}
impl std::error::Error for PatternError {}
impl OriginPattern {
    pub fn parse(raw: &str) -> Result<OriginPattern, PatternError> {
        Origin::parse(raw)
            .map(OriginPattern::Exact)
            .map_err(|d| PatternError {
                entry: raw.into(),
                reason: d.to_string(),
            })
    }
    pub fn matches(&self, o: &Origin) -> bool {
        match self {
            Self::Exact(e) => e == o,
            _ => false,
        }
    }
}
impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(o) => write!(f, "{o}"),
            Self::Wildcard {
                scheme,
                suffix,
                port,
            } => {
                write!(f, "{scheme}://*.{suffix}")?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}
#[derive(Clone, Debug, Default)]
pub struct TrustedOrigins {
    patterns: Vec<OriginPattern>,
}
impl TrustedOrigins {
    pub fn new(patterns: Vec<OriginPattern>) -> Self {
        Self { patterns }
    }
    pub fn parse_all<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<PatternError>> {
        let mut ok = vec![];
        let mut errs = vec![];
        for e in entries {
            match OriginPattern::parse(e.as_ref()) {
                Ok(p) => ok.push(p),
                Err(x) => errs.push(x),
            }
        }
        if errs.is_empty() {
            Ok(Self::new(ok))
        } else {
            Err(errs)
        }
    }
    pub fn check(&self, raw: &str) -> Result<Origin, Denied> {
        let o = Origin::parse(raw)?;
        if self.allows(&o) {
            Ok(o)
        } else {
            Err(Denied::NotTrusted)
        }
    }
    pub fn allows(&self, o: &Origin) -> bool {
        self.patterns.iter().any(|p| p.matches(o))
    }
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.patterns
    }
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
    pub fn frame_ancestors(&self) -> String {
        if self.patterns.is_empty() {
            "'none'".into()
        } else {
            self.patterns
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}
