//! People and teams, the limits they and keys carry per model, and the levels
//! an admission checks: the key, its user, the user's team, and for each the
//! first `model_limits` entry that matches the request's model.

use super::counters::Counters;
use super::limits::{LimitKind, Limits, Usage};
use super::windows::Windows;
use serde::{Deserialize, Serialize};

/// Who a `budgets` row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Key,
    User,
    Team,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Key => "key",
            Owner::User => "user",
            Owner::Team => "team",
        }
    }

    pub fn from_db(text: &str) -> Owner {
        match text {
            "user" => Owner::User,
            "team" => Owner::Team,
            _ => Owner::Key,
        }
    }
}

/// One row of `budgets`: the limits of a user or a team, or of one
/// `model_limits` entry of a key, user or team, with their counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub id: i64,
    pub owner: Owner,
    pub owner_id: i64,
    /// `None`: the owner's own limits; else the entry's name or pattern.
    pub model: Option<String>,
    pub limits: Limits,
    pub counters: Counters,
}

impl Budget {
    pub fn usage_at(&self, windows: &Windows) -> Usage {
        self.counters.usage_at(windows)
    }
}

/// A `model_limits` entry as the admin API takes and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimit {
    pub model: String,
    #[serde(default)]
    pub limits: Limits,
}

/// The longest model name or pattern a `model_limits` entry or a weight may name.
pub const MAX_PATTERN_LEN: usize = 200;
/// How many `model_limits` entries one key, user or team may have.
pub const MAX_MODEL_LIMITS: usize = 50;

/// Checks and normalises entries: patterns lowercased, limits valid, no pattern twice.
pub fn check_model_limits(entries: &[ModelLimit]) -> Result<Vec<ModelLimit>, String> {
    if entries.len() > MAX_MODEL_LIMITS {
        return Err(format!("model_limits may have at most {MAX_MODEL_LIMITS} entries"));
    }
    let mut out: Vec<ModelLimit> = Vec::with_capacity(entries.len());
    for entry in entries {
        let model = check_pattern(&entry.model).map_err(|e| format!("model_limits: {e}"))?;
        entry.limits.validate().map_err(|e| format!("model_limits '{model}': {e}"))?;
        if out.iter().any(|e| e.model == model) {
            return Err(format!("model_limits names '{model}' twice"));
        }
        out.push(ModelLimit { model, limits: entry.limits });
    }
    Ok(out)
}

/// A model name or pattern (`*` matches any run of characters), lowercased
/// as model names are compared (`model::normalize`).
pub fn check_pattern(pattern: &str) -> Result<String, String> {
    let p = pattern.trim().to_lowercase();
    if p.is_empty() || p.len() > MAX_PATTERN_LEN || p.chars().any(char::is_control) {
        return Err(format!(
            "'{pattern}' is not a model name or pattern (1 to {MAX_PATTERN_LEN} characters)"
        ));
    }
    Ok(p)
}

/// Whether `model` (normalised: `name:tag`) matches `pattern`. A pattern
/// without a tag matches the model's `:latest` too, as Ollama fills it in.
/// The pseudo-pattern `@cloud` matches every cloud model (`cloud::is_cloud`).
pub fn matches(pattern: &str, model: &str) -> bool {
    if pattern == super::cloud::PATTERN {
        return super::cloud::is_cloud(model);
    }
    if !pattern.contains('*') {
        return pattern == model || (!pattern.contains(':') && model == format!("{pattern}:latest"));
    }
    glob(pattern.as_bytes(), model.as_bytes())
}

/// `*` matches any run of bytes; everything else itself. Iterative, with
/// one backtrack point, so no pattern costs more than length × length.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A user or a team as a key's admission sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub id: i64,
    pub name: String,
    pub own: Budget,
    /// Its `model_limits` entries, in order.
    pub models: Vec<Budget>,
    pub alerts: super::alerts::SoftLimits,
}

/// One level a request is measured against, for messages and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope<'a> {
    pub owner: Owner,
    /// The user's or team's name; the key's name for the key.
    pub name: &'a str,
    /// The `model_limits` entry, when this is one.
    pub model: Option<&'a str>,
    /// The budget row; `None` for the key's own limits (on `api_keys`).
    pub budget_id: Option<i64>,
    pub limits: Limits,
    pub usage: Usage,
}

impl Scope<'_> {
    /// How a refusal names this level: `team 'physics'`, `user 'ana' on 'llama3.3:*'`.
    pub fn label(&self) -> String {
        let who = match self.owner {
            Owner::Key => "this key".to_owned(),
            owner => format!("{} '{}'", owner.as_str(), self.name),
        };
        match self.model {
            Some(model) => format!("{who} on model '{model}'"),
            None => who,
        }
    }
}

/// The first entry of `models` that matches `model`.
pub fn first_match<'a>(models: &'a [Budget], model: &str) -> Option<&'a Budget> {
    models.iter().find(|b| b.model.as_deref().is_some_and(|p| matches(p, model)))
}

/// The first limit, across every level, that one more request reserving
/// `tokens` would break, with the level it belongs to.
pub fn first_violation_in<'s, 'a>(
    scopes: &'s [Scope<'a>],
    tokens: i64,
) -> Option<(&'s Scope<'a>, LimitKind)> {
    scopes
        .iter()
        .find_map(|s| super::limits::first_violation(&s.limits, &s.usage, tokens).map(|kind| (s, kind)))
}

/// Weights are kept in millionths: exact for any weight written with up to
/// six decimals, and integer arithmetic from there on.
pub const WEIGHT_UNIT: i64 = 1_000_000;
/// The heaviest weight: a token of any model counts at most this many.
pub const MAX_WEIGHT: i64 = 1_000;

/// How much a token of each model counts against token limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelWeights {
    /// (name or pattern, weight in millionths), in the order given.
    entries: Vec<(String, i64)>,
}

impl ModelWeights {
    /// From the admin API's `{"llama3.3:70b": 10, "qwen2.5:*": 0.2}`.
    pub fn from_json(value: &serde_json::Value) -> Result<ModelWeights, String> {
        let Some(map) = value.as_object() else {
            return Err("weights must be an object of model name or pattern to number".into());
        };
        let mut entries: Vec<(String, i64)> = Vec::with_capacity(map.len());
        for (name, weight) in map {
            let pattern = check_pattern(name)?;
            let micros = weight
                .as_f64()
                .filter(|w| w.is_finite() && *w >= 0.0 && *w <= MAX_WEIGHT as f64)
                .map(|w| (w * WEIGHT_UNIT as f64).round() as i64)
                .ok_or_else(|| format!("the weight of '{name}' must be a number from 0 to {MAX_WEIGHT}"))?;
            if entries.iter().any(|(p, _)| *p == pattern) {
                return Err(format!("weights name '{pattern}' twice"));
            }
            entries.push((pattern, micros));
        }
        Ok(ModelWeights { entries })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let map = self.entries.iter().map(|(p, micros)| (p.clone(), weight_json(*micros))).collect();
        serde_json::Value::Object(map)
    }

    /// A model's weight in millionths: an exact name wins, then the longest
    /// matching pattern (the first given among equals); 1 when none matches.
    pub fn micros_for(&self, model: &str) -> i64 {
        if let Some((_, w)) = self.entries.iter().find(|(p, _)| !p.contains('*') && matches(p, model)) {
            return *w;
        }
        let mut best: Option<&(String, i64)> = None;
        for entry in self.entries.iter().filter(|(p, _)| p.contains('*') && matches(p, model)) {
            if best.is_none_or(|b| entry.0.len() > b.0.len()) {
                best = Some(entry);
            }
        }
        best.map_or(WEIGHT_UNIT, |(_, w)| *w)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A weight in millionths as the JSON number an admin wrote (10, 0.2).
fn weight_json(micros: i64) -> serde_json::Value {
    if micros % WEIGHT_UNIT == 0 {
        serde_json::Value::from(micros / WEIGHT_UNIT)
    } else {
        serde_json::Value::from(micros as f64 / WEIGHT_UNIT as f64)
    }
}

/// `tokens` as token limits count them at `micros` millionths each, rounded
/// up to whole tokens. Exact: integer arithmetic, wide enough not to overflow.
pub fn weighted(tokens: i64, micros: i64) -> i64 {
    if micros == WEIGHT_UNIT {
        return tokens;
    }
    let product = i128::from(tokens.max(0)) * i128::from(micros.max(0));
    let unit = i128::from(WEIGHT_UNIT);
    i64::try_from((product + unit - 1) / unit).unwrap_or(i64::MAX)
}

/// The most raw tokens whose weighted count fits in `room` weighted tokens.
pub fn raw_room(room: i64, micros: i64) -> i64 {
    if micros == WEIGHT_UNIT || room <= 0 {
        return room;
    }
    if micros == 0 {
        return i64::MAX;
    }
    let raw = i128::from(room) * i128::from(WEIGHT_UNIT) / i128::from(micros);
    i64::try_from(raw).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_names_and_tags() {
        assert!(matches("qwen3:*", "qwen3:8b"));
        assert!(!matches("qwen3:*", "qwen3.5:8b"));
        assert!(matches("llama3.3:70b", "llama3.3:70b"));
        assert!(matches("llama3.3", "llama3.3:latest"));
        assert!(!matches("llama3.3", "llama3.3:70b"));
        assert!(matches("*", "anything:tag"));
        assert!(matches("*:70b", "llama3.3:70b"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn fractional_weights_sum_exactly() {
        let weights = ModelWeights::from_json(&json!({"llama3.3:70b": 10, "qwen2.5:*": 0.2})).unwrap();
        let small = weights.micros_for("qwen2.5:0.5b");
        assert_eq!(small, 200_000);
        assert_eq!(weights.micros_for("llama3.3:70b"), 10 * WEIGHT_UNIT);
        assert_eq!(weights.micros_for("mistral:latest"), WEIGHT_UNIT);
        // 0.2 is not exact in binary; in millionths it is, so five requests
        // of 5 tokens are 1 token each, never 0.999... or 1.0000001.
        assert_eq!((0..5).map(|_| weighted(5, small)).sum::<i64>(), 5);
        // Rounded up per request: 3 tokens at 0.2 count 1.
        assert_eq!(weighted(3, small), 1);
        assert_eq!(weighted(0, small), 0);
        assert_eq!(weighted(7, 10 * WEIGHT_UNIT), 70);
        assert_eq!(weights.to_json(), json!({"llama3.3:70b": 10, "qwen2.5:*": 0.2}));
    }

    #[test]
    fn an_exact_name_wins_over_patterns_and_the_longest_pattern_over_shorter() {
        let weights =
            ModelWeights::from_json(&json!({"*": 2, "qwen*": 3, "qwen2.5:*": 4, "qwen2.5:7b": 5})).unwrap();
        assert_eq!(weights.micros_for("qwen2.5:7b"), 5 * WEIGHT_UNIT);
        assert_eq!(weights.micros_for("qwen2.5:1b"), 4 * WEIGHT_UNIT);
        assert_eq!(weights.micros_for("qwen3:1b"), 3 * WEIGHT_UNIT);
        assert_eq!(weights.micros_for("llama3:8b"), 2 * WEIGHT_UNIT);
    }

    #[test]
    fn weights_refuse_what_is_not_a_weight() {
        for bad in [json!({"a": -1}), json!({"a": "1"}), json!({"a": 1e9}), json!([1]), json!({"": 1})] {
            assert!(ModelWeights::from_json(&bad).is_err(), "{bad}");
        }
        assert!(ModelWeights::from_json(&json!({"A": 1, "a": 2})).is_err());
    }

    #[test]
    fn raw_room_is_the_most_that_fits() {
        let w = 200_000;
        for room in [0, 1, 2, 7, 1000] {
            let raw = raw_room(room, w);
            assert!(weighted(raw, w) <= room);
            assert!(weighted(raw + 1, w) > room);
        }
        assert_eq!(raw_room(10, 3 * WEIGHT_UNIT), 3);
    }
}
