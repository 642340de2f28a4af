//! How long the strings the gate stores or shows may be, in one place.
//!
//! Every string that reaches the database, the usage log or a page, from a
//! key holder or from an admin, is checked against one of these before
//! anything is stored, so that nobody can fill the disk or a page with one
//! field. Lengths are in bytes of UTF-8, as the database stores them.

/// A model name, as a request names it or an allow-list or alias lists it.
/// Ollama itself refuses names over 128 bytes (`MaxNamePartLen` in its
/// `types/model/name.go`); other upstreams may allow a little more.
pub const MODEL_NAME: usize = 200;

/// A key's name, shown in every list.
pub const KEY_NAME: usize = 100;

/// A key's owner (a person, a team, an address).
pub const OWNER: usize = 200;

/// Entries in a key's model allow-list, and in its model aliases.
pub const MODEL_ENTRIES: usize = 256;

/// An admin password; argon2 needs no more, and a longer one is not a password.
pub const PASSWORD: usize = 1024;

/// An upstream URL, and how many upstreams the admin may list.
pub const URL: usize = 2048;
pub const UPSTREAMS: usize = 64;

/// Whether a name or label is 1 to `max` bytes with no control characters:
/// the one rule for every such string the gate stores.
pub fn fits(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control)
}

/// How much of a refused value an error message repeats.
const SHOWN: usize = 40;

/// The value as an error message may repeat it: whole if short, else its
/// start and its length.
pub fn shown(value: &str) -> String {
    if value.len() <= SHOWN {
        return value.to_owned();
    }
    let mut end = SHOWN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &value[..end], value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_shown_by_its_start_and_length() {
        assert_eq!(shown("llama3"), "llama3");
        let long = "é".repeat(1000);
        let s = shown(&long);
        assert!(s.len() < 60, "{s}");
        assert!(s.ends_with("… (2000 bytes)"), "{s}");
    }
}
