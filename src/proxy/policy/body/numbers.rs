//! The numbers that feed reservations and clamps, read strictly and bounded.
//!
//! Each must be a JSON integer written without a fraction or an exponent
//! (`64`, not `64.0` or `6.4e1`; `-0` is refused too), within bounds that fit
//! the upstream's 32-bit runners and leave the gate's arithmetic far from
//! overflow. Go would refuse fractions and exponents in its `int` fields
//! anyway; inside `options` it would truncate them, which is one more way of
//! reading a number differently, so they are refused there as well.

use crate::proxy::error::ProxyError;
use serde_json::{Map, Value};

/// The largest output maximum or context size: Ollama's runners count in `int32`.
pub const MAX: i64 = i32::MAX as i64;

/// Output maximums (`num_predict`, `max_tokens`, `max_completion_tokens`,
/// `max_output_tokens`): -1 is "no limit" and -2 "fill the context" to Ollama,
/// so these two are accepted; lower values mean nothing documented and are refused.
pub const OUTPUT: Bounds = Bounds { min: -2, max: MAX };
/// Anthropic's `max_tokens`: Ollama refuses anything below 1 on `/v1/messages`.
pub const ANTHROPIC_OUTPUT: Bounds = Bounds { min: 1, max: MAX };
/// `num_ctx`.
pub const CONTEXT: Bounds = Bounds { min: 0, max: MAX };

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min: i64,
    pub max: i64,
}

/// The integer at `name` in `object`; `None` when absent or null (Go leaves
/// the field unset then). `place` names the object in the message ("options").
pub fn bounded(
    object: &Map<String, Value>,
    name: &str,
    place: &str,
    bounds: Bounds,
) -> Result<Option<i64>, ProxyError> {
    let value = match object.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    match value.as_i64() {
        Some(n) if (bounds.min..=bounds.max).contains(&n) => Ok(Some(n)),
        _ => Err(ProxyError::BadRequest(format!(
            "'{place}{name}' must be a whole number from {} to {}, written without a fraction or exponent",
            bounds.min, bounds.max
        ))),
    }
}

/// An output maximum as a limit: zero and the negative values that Ollama
/// reads as "no limit" (-1) or "fill the context" (-2) give `None`. Zero is no
/// limit to Ollama's MLX runner, so it cannot be counted on as a limit of zero.
pub fn as_limit(n: Option<i64>) -> Option<i64> {
    n.filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value, bounds: Bounds) -> Result<Option<i64>, ProxyError> {
        let Value::Object(o) = json!({ "n": v }) else { unreachable!() };
        bounded(&o, "n", "", bounds)
    }

    #[test]
    fn integers_within_bounds_are_read() {
        assert_eq!(read(json!(64), OUTPUT).unwrap(), Some(64));
        assert_eq!(read(json!(-1), OUTPUT).unwrap(), Some(-1));
        assert_eq!(read(json!(-2), OUTPUT).unwrap(), Some(-2));
        assert_eq!(read(json!(MAX), OUTPUT).unwrap(), Some(MAX));
        assert_eq!(read(json!(0), CONTEXT).unwrap(), Some(0));
        assert_eq!(read(Value::Null, OUTPUT).unwrap(), None);
    }

    #[test]
    fn numbers_beyond_bounds_and_other_types_are_refused() {
        let parsed = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        for v in [
            json!(-3),
            json!(-5),
            json!(MAX + 1),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            parsed("9223372036854775808"),
            parsed("1e19"),
            parsed("1e3"),
            parsed("64.0"),
            parsed("64.5"),
            parsed("-0"),
            parsed("123456789012345678901234567890"),
            json!("64"),
            json!(true),
            json!([64]),
            json!({"n": 64}),
        ] {
            let err = read(v.clone(), OUTPUT).unwrap_err();
            assert!(
                err.to_string().contains("'n' must be a whole number from -2 to 2147483647"),
                "{v}: {err}"
            );
        }
        assert!(read(json!(-1), CONTEXT).is_err());
        assert!(read(json!(0), ANTHROPIC_OUTPUT).is_err());
        assert!(read(json!(-1), ANTHROPIC_OUTPUT).is_err());
    }

    #[test]
    fn only_positive_maximums_are_limits() {
        assert_eq!(as_limit(Some(5)), Some(5));
        assert_eq!(as_limit(Some(0)), None);
        assert_eq!(as_limit(Some(-1)), None);
        assert_eq!(as_limit(Some(-2)), None);
        assert_eq!(as_limit(None), None);
    }
}
