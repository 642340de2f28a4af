//! Ollama's versions (`/api/version`), compared as semantic versions.

use std::cmp::Ordering;

/// `major.minor.patch` with an optional pre-release (`0.12.0-rc1`, and
/// `rc10` after `rc2`); build
/// metadata (`+...`) and a leading `v` are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Number(u64),
    Text(String),
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split('+').next().unwrap_or(text);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let numbers: Vec<u64> = core.split('.').map(number).collect::<Option<_>>()?;
        let [major, minor, patch] = numbers.as_slice() else { return None };
        let pre = match pre {
            None => vec![],
            Some(pre) => pre.split('.').map(ident).collect::<Option<_>>()?,
        };
        Some(Version { core: [*major, *minor, *patch], pre })
    }

    /// `0.0.0`: what a development build of Ollama reports.
    pub fn is_dev_build(&self) -> bool {
        self.core == [0, 0, 0]
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn ident(s: &str) -> Option<Ident> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    Some(number(s).map(Ident::Number).unwrap_or_else(|| Ident::Text(s.to_owned())))
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Number(a), Ident::Number(b)) => a.cmp(b),
            (Ident::Number(_), Ident::Text(_)) => Ordering::Less,
            (Ident::Text(_), Ident::Number(_)) => Ordering::Greater,
            (Ident::Text(a), Ident::Text(b)) => natural(a).cmp(&natural(b)),
        }
    }
}

/// `rc10` after `rc2`: Ollama numbers its release candidates `rc0`, `rc1`,
/// ..., which strict semver would compare as text. Letters then digits are
/// compared as the letters, then the number; anything else as text.
fn natural(s: &str) -> (&str, Option<u64>, &str) {
    let split = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let (letters, digits) = s.split_at(split);
    match number(digits) {
        Some(n) => (letters, Some(n), ""),
        None => (s, None, s),
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// Semantic versioning's precedence: a pre-release comes before its release.
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.core;
        write!(f, "{a}.{b}.{c}")?;
        for (i, p) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match p {
                Ident::Number(n) => write!(f, "{n}")?,
                Ident::Text(t) => f.write_str(t)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn versions_compare_as_semver() {
        let ascending = [
            "0.0.0",
            "0.1.33",
            "0.1.34",
            "0.1.47",
            "0.7.0",
            "0.9.10",
            "0.12.0-rc1",
            "0.12.0-rc2",
            "0.12.0-rc10",
            "0.12.0",
            "0.12.1",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v0.12.3+build.7"), v("0.12.3"));
        assert_eq!(v(" 0.12.3 ").to_string(), "0.12.3");
        assert_eq!(v("0.12.0-rc1").to_string(), "0.12.0-rc1");
        assert!(v("0.0.0").is_dev_build());
    }

    #[test]
    fn odd_versions_do_not_parse() {
        for s in [
            "",
            "0.12",
            "0.12.x",
            "1.2.3.4",
            "0.12.0-",
            "0.12.0-rc..1",
            "-1.0.0",
            "1..0",
            "dev",
            "0.1.99999999999999999999",
        ] {
            assert!(Version::parse(s).is_none(), "{s}");
        }
    }
}
