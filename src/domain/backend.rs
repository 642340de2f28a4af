//! A backend as the operator names it: an Ollama's URL with its options.
//!
//! `OLLAMA_URL`, the saved setting and the console all spell a backend the
//! same way, `http://gpu1:11434?name=gpu1&slots=4&weight=2`: the options ride
//! in the query, which the gate strips before it calls the backend (Ollama
//! takes no query on its base URL).

use url::Url;

/// Requests one backend may run at once per model, and weights: the bounds
/// an admin can type.
pub const MAX_SLOTS: u32 = 4096;
pub const MAX_WEIGHT: u32 = 1000;
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub name: String,
    /// Without the options.
    pub url: Url,
    /// Requests it runs at once per model (Ollama's `OLLAMA_NUM_PARALLEL`).
    pub slots: u32,
    /// Its share of the work among backends with free slots.
    pub weight: u32,
    /// Off: no request goes to it, and it is not probed.
    pub enabled: bool,
    /// Draining: running requests finish, no new ones are sent.
    pub draining: bool,
}

impl BackendSpec {
    /// Reads one backend; `default_slots` applies when `slots=` is absent.
    pub fn parse(raw: &str, default_slots: u32) -> Result<BackendSpec, String> {
        let raw = raw.trim();
        let mut url = Url::parse(raw).map_err(|e| format!("'{raw}': {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("'{raw}' is not an http(s) URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("'{raw}': credentials do not belong in the URL (use OLLAMA_API_KEYS)"));
        }
        let mut spec = BackendSpec {
            name: String::new(),
            url: url.clone(),
            slots: default_slots.clamp(1, MAX_SLOTS),
            weight: 1,
            enabled: true,
            draining: false,
        };
        for (option, value) in url.query_pairs() {
            let bad = |what: &str| format!("'{raw}': {option}={value} is not {what}");
            match option.as_ref() {
                "name" => {
                    if !valid_name(&value) {
                        return Err(bad("a name of 1 to 64 letters, digits, '.', '_' or '-'"));
                    }
                    spec.name = value.into_owned();
                }
                "slots" => {
                    spec.slots = number(&value, MAX_SLOTS).ok_or_else(|| bad("a number from 1 to 4096"))?
                }
                "weight" => {
                    spec.weight = number(&value, MAX_WEIGHT).ok_or_else(|| bad("a number from 1 to 1000"))?
                }
                "enabled" => spec.enabled = flag(&value).ok_or_else(|| bad("true or false"))?,
                "draining" => spec.draining = flag(&value).ok_or_else(|| bad("true or false"))?,
                other => {
                    return Err(format!(
                        "'{raw}': unknown option '{other}' (the options are name, slots, weight, enabled, draining)"
                    ))
                }
            }
        }
        url.set_query(None);
        url.set_fragment(None);
        if spec.name.is_empty() {
            spec.name = default_name(&url);
        }
        spec.url = url;
        Ok(spec)
    }

    /// The spelling `parse` reads back: options other than the defaults.
    pub fn to_text(&self) -> String {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("name", &self.name);
            q.append_pair("slots", &self.slots.to_string());
            if self.weight != 1 {
                q.append_pair("weight", &self.weight.to_string());
            }
            if !self.enabled {
                q.append_pair("enabled", "false");
            }
            if self.draining {
                q.append_pair("draining", "true");
            }
        }
        url.to_string()
    }

    /// Serves new requests.
    pub fn takes_work(&self) -> bool {
        self.enabled && !self.draining
    }
}

/// Reads a list; names must differ, so that a manage request or the console
/// can name one.
pub fn parse_list<'a>(
    raw: impl IntoIterator<Item = &'a str>,
    default_slots: u32,
) -> Result<Vec<BackendSpec>, String> {
    let mut specs: Vec<BackendSpec> = Vec::new();
    for item in raw.into_iter().map(str::trim).filter(|s| !s.is_empty()) {
        let mut spec = BackendSpec::parse(item, default_slots)?;
        if specs.iter().any(|s| s.name == spec.name) {
            if item.contains("name=") {
                return Err(format!("two backends are named '{}'", spec.name));
            }
            // Unnamed twins (one host, two paths): numbered.
            let base = spec.name.clone();
            let mut n = 2;
            while specs.iter().any(|s| s.name == spec.name) {
                spec.name = format!("{base}-{n}");
                n += 1;
            }
        }
        specs.push(spec);
    }
    if specs.is_empty() {
        return Err("at least one backend URL is needed".into());
    }
    Ok(specs)
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `host:port`, as a name made of the allowed characters.
fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("backend").trim_matches(|c| c == '[' || c == ']');
    let port = url.port_or_known_default().unwrap_or(11434);
    let name: String = format!("{host}-{port}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(MAX_NAME)
        .collect();
    name
}

fn number(value: &str, max: u32) -> Option<u32> {
    value.trim().parse::<u32>().ok().filter(|n| (1..=max).contains(n))
}

fn flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_stripped_from_the_url() {
        let b = BackendSpec::parse("http://gpu1:11434/?name=gpu1&slots=4&weight=2&draining=true", 1).unwrap();
        assert_eq!(b.url.as_str(), "http://gpu1:11434/");
        assert_eq!((b.name.as_str(), b.slots, b.weight, b.enabled, b.draining), ("gpu1", 4, 2, true, true));
        assert_eq!(BackendSpec::parse(&b.to_text(), 1).unwrap(), b);
    }

    #[test]
    fn defaults_name_the_host_and_take_the_default_slots() {
        let b = BackendSpec::parse("http://localhost:11434", 3).unwrap();
        assert_eq!((b.name.as_str(), b.slots, b.weight), ("localhost-11434", 3, 1));
        let v6 = BackendSpec::parse("http://[::1]:8080", 1).unwrap();
        assert_eq!(v6.name, "--1-8080");
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        for (raw, says) in [
            ("http://a?slots=0", "slots=0"),
            ("http://a?slots=99999", "slots=99999"),
            ("http://a?weight=-1", "weight=-1"),
            ("http://a?name=a%20b", "name=a b"),
            ("http://a?enabled=maybe", "enabled=maybe"),
            ("http://a?color=red", "unknown option 'color'"),
            ("ftp://a", "not an http(s) URL"),
            ("http://u:p@a", "credentials"),
        ] {
            let e = BackendSpec::parse(raw, 1).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
    }

    #[test]
    fn names_differ_in_a_list() {
        let list = parse_list(["http://a:1/x", "http://a:1/y"], 1).unwrap();
        assert_eq!(list[0].name, "a-1");
        assert_eq!(list[1].name, "a-1-2");
        let e = parse_list(["http://a?name=x", "http://b?name=x"], 1).unwrap_err();
        assert!(e.contains("two backends are named 'x'"));
        assert!(parse_list(["", " "], 1).is_err());
    }
}
