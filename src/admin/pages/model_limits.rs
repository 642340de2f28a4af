//! Limits per model as the console's forms write them, one entry a line:
//! `llama3.3:70b daily_tokens=50000 max_concurrent=2`. The pattern comes
//! first (model names have no spaces), then `limit=number` pairs with the
//! JSON API's limit names, separated by spaces or commas.

use crate::domain::limits::{LimitKind, Limits};
use crate::domain::people::{Budget, ModelLimit};

/// The entries as text, in their order.
pub fn to_text(entries: &[Budget]) -> String {
    entries
        .iter()
        .map(|b| {
            let mut line = b.model.clone().unwrap_or_default();
            for (name, value) in b.limits.named() {
                if let Some(v) = value {
                    line.push_str(&format!(" {name}={v}"));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the text back; the message names the line that is wrong.
pub fn parse(text: &str) -> Result<Vec<ModelLimit>, String> {
    let mut entries = vec![];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut words = line.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty());
        let model = words.next().unwrap_or_default().to_owned();
        if model.contains('=') {
            return Err(format!("'{line}' does not start with a model name or pattern"));
        }
        let mut limits = Limits::default();
        for word in words {
            let (name, value) =
                word.split_once('=').ok_or_else(|| format!("'{word}' in '{line}' is not limit=number"))?;
            let kind = LimitKind::ALL
                .into_iter()
                .find(|k| k.field() == name)
                .ok_or_else(|| format!("'{name}' in '{line}' is not a limit"))?;
            let value = value
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("{name} in '{line}' must be a whole number, 0 or more"))?;
            limits.set(kind, Some(value));
        }
        entries.push(ModelLimit { model, limits });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::counters::Counters;
    use crate::domain::people::Owner;

    #[test]
    fn text_reads_back_as_the_entries_it_was_written_from() {
        let limits = Limits { daily_tokens: Some(50_000), max_concurrent: Some(2), ..Limits::default() };
        let budget = Budget {
            id: 1,
            owner: Owner::User,
            owner_id: 1,
            model: Some("llama3.3:70b".into()),
            limits,
            counters: Counters::default(),
        };
        let text = to_text(std::slice::from_ref(&budget));
        assert_eq!(text, "llama3.3:70b daily_tokens=50000 max_concurrent=2");
        assert_eq!(parse(&text).unwrap(), [ModelLimit { model: "llama3.3:70b".into(), limits }]);
    }

    #[test]
    fn commas_blank_lines_and_a_pattern_alone_are_fine() {
        let entries = parse("\n qwen3:* , daily_requests=5,\n\nphi3\n").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].model, "qwen3:*");
        assert_eq!(entries[0].limits.daily_requests, Some(5));
        assert_eq!(entries[1].limits, Limits::default());
    }

    #[test]
    fn wrong_lines_are_named() {
        for (text, says) in [
            ("daily_tokens=5", "does not start with a model"),
            ("m daily_tokens", "is not limit=number"),
            ("m tokens=5", "'tokens' in 'm tokens=5' is not a limit"),
            ("m daily_tokens=-1", "must be a whole number"),
            ("m daily_tokens=1e3", "must be a whole number"),
            ("m daily_tokens=99999999999999999999", "must be a whole number"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
