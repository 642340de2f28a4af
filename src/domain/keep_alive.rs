//! `keep_alive` as Ollama reads it, so the gate judges what the upstream will do.
//!
//! Ollama's `api.Duration` takes a JSON number as seconds (a negative one
//! means "keep the model loaded forever") or a string in Go's
//! `time.ParseDuration` syntax (`"5m"`, `"1h30m"`, `"-1s"`; a negative
//! duration also means forever). `null` or an absent field means the
//! server's default. Older Ollama releases truncated numbers to whole
//! seconds, so `0.5` unloaded the model at once; newer ones keep it for half
//! a second. Either way it is gone before anyone else can use it, so any
//! duration under one second counts as "unload now".

use serde_json::Value;
use std::time::Duration;

/// What a request's `keep_alive` makes the upstream do with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Absent or `null`: the server's own default.
    Default,
    /// Unloaded at once (or within a second): evicts the model for everyone.
    Unload,
    /// Pinned in memory until the server restarts.
    Forever,
    /// Kept this long after the request.
    For(Duration),
}

impl KeepAlive {
    /// Reads a `keep_alive` value; `Err` says why Ollama would refuse it too.
    pub fn from_json(value: Option<&Value>) -> Result<KeepAlive, String> {
        match value {
            None | Some(Value::Null) => Ok(KeepAlive::Default),
            Some(Value::Number(n)) => {
                let seconds = n.as_f64().ok_or_else(|| format!("keep_alive {n} is not a number"))?;
                Ok(Self::from_seconds(seconds))
            }
            Some(Value::String(s)) => {
                let nanos = parse_go_duration(s).map_err(|e| format!("keep_alive '{s}': {e}"))?;
                Ok(if nanos < 0 {
                    KeepAlive::Forever
                } else {
                    Self::from_duration(Duration::from_nanos(nanos as u64))
                })
            }
            Some(_) => {
                Err("keep_alive must be a number of seconds or a duration string such as \"5m\"".into())
            }
        }
    }

    fn from_seconds(seconds: f64) -> KeepAlive {
        if seconds < 0.0 {
            KeepAlive::Forever
        } else if seconds < 1.0 {
            KeepAlive::Unload
        } else {
            // Beyond what Go's Duration holds: Ollama's conversion overflows;
            // treat it as the pin it was meant to be.
            Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| d.as_nanos() <= i64::MAX as u128)
                .map_or(KeepAlive::Forever, Self::from_duration)
        }
    }

    fn from_duration(d: Duration) -> KeepAlive {
        if d < Duration::from_secs(1) {
            KeepAlive::Unload
        } else {
            KeepAlive::For(d)
        }
    }
}

/// Go's `time.ParseDuration`: a sign, then one or more decimal numbers each
/// with a unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`); `"0"` alone
/// needs no unit. Returns nanoseconds; an overflow is an error, as in Go.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("invalid duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits_end);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(end)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err("invalid duration".into());
        }
        let unit_end = after.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit in duration".into()),
            other => return Err(format!("unknown unit '{other}' in duration")),
        };
        let overflow = || "duration is too long".to_string();
        let mut value: u128 = 0;
        for digit in whole.bytes() {
            value = value * 10 + u128::from(digit - b'0');
            if value > i64::MAX as u128 {
                return Err(overflow());
            }
        }
        value = value.checked_mul(per_unit).filter(|v| *v <= i64::MAX as u128).ok_or_else(overflow)?;
        // Fraction digits below a nanosecond change nothing, as in Go.
        let mut scale = per_unit;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > i64::MAX as u128 {
            return Err(overflow());
        }
        rest = after;
    }
    let total = total as i64;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<KeepAlive, String> {
        KeepAlive::from_json(Some(&v))
    }

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        let s = 1_000_000_000;
        for (text, nanos) in [
            ("0", 0),
            ("5m", 300 * s),
            ("1h30m", 5400 * s),
            ("1.5h", 5400 * s),
            (".5s", s / 2),
            ("1.s", s),
            ("300ms", 300_000_000),
            ("2\u{b5}s", 2_000),
            ("2\u{3bc}s", 2_000),
            ("-1s", -s),
            ("+10s", 10 * s),
            ("1h2m3s4ms5us6ns", 3723 * s + 4_005_006),
            ("2562047h", 2562047 * 3600 * s),
            ("0000000000000000000000001s", s),
        ] {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
        for bad in
            ["", "-", "5", "1.5", "s", ".s", "5d", "5 m", "5M", "1h-5m", "2562048h", "99999999999999999999h"]
        {
            assert!(parse_go_duration(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn numbers_are_seconds_and_negatives_pin_forever() {
        assert_eq!(read(json!(300)), Ok(KeepAlive::For(Duration::from_secs(300))));
        assert_eq!(read(json!(-1)), Ok(KeepAlive::Forever));
        assert_eq!(read(json!(-0.001)), Ok(KeepAlive::Forever));
        assert_eq!(read(json!(0)), Ok(KeepAlive::Unload));
        assert_eq!(read(json!(0.5)), Ok(KeepAlive::Unload));
        assert_eq!(read(json!(0.999)), Ok(KeepAlive::Unload));
        assert_eq!(read(json!(1e300)), Ok(KeepAlive::Forever));
        assert_eq!(read(json!(1.5)), Ok(KeepAlive::For(Duration::from_millis(1500))));
    }

    #[test]
    fn strings_are_go_durations() {
        assert_eq!(read(json!("10m")), Ok(KeepAlive::For(Duration::from_secs(600))));
        assert_eq!(read(json!("-1m")), Ok(KeepAlive::Forever));
        assert_eq!(read(json!("0")), Ok(KeepAlive::Unload));
        assert_eq!(read(json!("0s")), Ok(KeepAlive::Unload));
        assert_eq!(read(json!("500ms")), Ok(KeepAlive::Unload));
        assert!(read(json!("10")).is_err());
        assert!(read(json!("forever")).is_err());
        assert!(read(json!(true)).is_err());
        assert!(read(json!({"s": 1})).is_err());
        assert_eq!(KeepAlive::from_json(None), Ok(KeepAlive::Default));
        assert_eq!(read(Value::Null), Ok(KeepAlive::Default));
    }
}
