//! Object keys as Go's `encoding/json` matches them to struct fields.
//!
//! Ollama decodes request bodies with Go's `encoding/json`. A key that is not
//! exactly a field's name still lands on that field when the two are equal
//! under `foldName` (encoding/json/fold.go): ASCII letters are upper-cased, and
//! every other rune is replaced by the smallest rune of its
//! `unicode.SimpleFold` orbit. Only two non-ASCII runes have an ASCII letter in
//! their orbit: U+017F LATIN SMALL LETTER LONG S (orbit S, s, ſ) and U+212A
//! KELVIN SIGN (orbit K, k, K). The dotted and dotless i (U+0130, U+0131) are
//! listed in Go's `caseOrbit` as orbits of their own, so they never become `I`.
//!
//! Every field of Ollama's request structs is spelled in ASCII, so this module
//! folds exactly what can reach such a field and leaves other non-ASCII runes
//! as they are: two keys that differ only there are fields Go would ignore
//! anyway.

/// Go's fold of one rune, as far as it can reach ASCII.
fn fold_char(c: char) -> char {
    match c {
        '\u{017F}' => 'S',
        '\u{212A}' => 'K',
        c => c.to_ascii_uppercase(),
    }
}

/// The key as Go's decoder compares it with the fold of a field name.
pub fn fold_name(key: &str) -> String {
    key.chars().map(fold_char).collect()
}

/// True when Go would decode `key` into the struct field named `field` (an
/// ASCII name), either exactly or through case folding.
pub fn lands_on(key: &str, field: &str) -> bool {
    let mut folded = key.chars().map(fold_char);
    field.bytes().all(|b| folded.next() == Some(char::from(b.to_ascii_uppercase())))
        && folded.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_case_folds_both_ways() {
        assert_eq!(fold_name("Keep_Alive"), "KEEP_ALIVE");
        assert!(lands_on("keep_alive", "keep_alive"));
        assert!(lands_on("KEEP_ALIVE", "keep_alive"));
        assert!(lands_on("kEeP_aLiVe", "keep_alive"));
        assert!(!lands_on("keepalive", "keep_alive"), "underscores are not ignored");
        assert!(!lands_on("keep-alive", "keep_alive"));
        assert!(!lands_on("keep_alive ", "keep_alive"));
        assert!(!lands_on("keep_aliv", "keep_alive"));
    }

    #[test]
    fn long_s_and_the_kelvin_sign_fold_onto_ascii_letters() {
        assert!(lands_on("\u{017F}tream", "stream"));
        assert!(lands_on("\u{212A}eep_alive", "keep_alive"));
        assert!(lands_on("max_to\u{212A}en\u{017F}", "max_tokens"));
        assert_eq!(fold_name("\u{017F}"), "S");
        assert_eq!(fold_name("\u{212A}"), "K");
    }

    #[test]
    fn other_look_alikes_stay_apart() {
        // Dotted and dotless i are their own orbits in Go's caseOrbit table.
        assert!(!lands_on("\u{0130}mages", "images"));
        assert!(!lands_on("\u{0131}mages", "images"));
        // Fullwidth, Cyrillic and Greek letters have no ASCII in their orbits.
        assert!(!lands_on("\u{FF53}tream", "stream"));
        assert!(!lands_on("\u{0455}tream", "stream"));
        assert!(!lands_on("\u{039C}odel", "model"));
        // The Angstrom sign folds to a-ring, not to an ASCII letter.
        assert_eq!(fold_name("\u{212B}"), "\u{212B}");
    }

    #[test]
    fn only_long_s_and_kelvin_reach_ascii_among_all_non_ascii_runes() {
        // A check against Rust's own case tables: any non-ASCII rune whose simple
        // case mapping is an ASCII letter must be one of Go's two orbit members,
        // or one of the two i's that Go keeps apart.
        for c in (0x80u32..=0x10FFFF).filter_map(char::from_u32) {
            let mut upper = c.to_uppercase();
            let mut lower = c.to_lowercase();
            let ascii = match (upper.next(), upper.next(), lower.next(), lower.next()) {
                (Some(u), None, _, _) if u.is_ascii_alphabetic() => true,
                (_, _, Some(l), None) if l.is_ascii_alphabetic() => true,
                _ => false,
            };
            if ascii {
                assert!(
                    matches!(c, '\u{017F}' | '\u{212A}' | '\u{0130}' | '\u{0131}'),
                    "U+{:04X} maps to ASCII",
                    c as u32
                );
            }
            if !matches!(c, '\u{017F}' | '\u{212A}') {
                assert!(!fold_char(c).is_ascii(), "U+{:04X}", c as u32);
            }
        }
    }
}
