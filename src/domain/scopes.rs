//! What a key may do: `inference`, `models`, `manage`, and `cloud`: models
//! that a signed-in Ollama runs on its operator's ollama.com account.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Inference,
    Models,
    Manage,
    /// Cloud models (`gpt-oss:120b-cloud`, a model the backend lists with a
    /// `remote_host`): they run on the operator's ollama.com account, so they
    /// need a scope of their own on top of the route's.
    Cloud,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Inference, Scope::Models, Scope::Manage, Scope::Cloud];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inference => "inference",
            Scope::Models => "models",
            Scope::Manage => "manage",
            Scope::Cloud => "cloud",
        }
    }

    /// What the scope allows, in a few words (the console's key form).
    pub fn explanation(self) -> &'static str {
        match self {
            Scope::Inference => "generate, chat, embed",
            Scope::Models => "list and show models",
            Scope::Manage => "pull, create, copy, delete models",
            Scope::Cloud => "cloud models, run on the operator's ollama.com account",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| format!("unknown scope '{s}' (expected inference, models, manage or cloud)"))
    }
}

/// A set of scopes, stored as a comma-separated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn default_for_new_keys() -> Self {
        Scopes::from_iter([Scope::Inference, Scope::Models])
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & bit(scope) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn to_db(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_db(text: &str) -> Self {
        Scopes::from_iter(text.split(',').filter_map(|s| s.parse().ok()))
    }

    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| s.as_ref().parse::<Scope>())
            .collect::<Result<Vec<_>, _>>()
            .map(Scopes::from_iter)
    }

    pub fn to_vec(self) -> Vec<Scope> {
        self.iter().collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |acc, s| acc | bit(s)))
    }
}

fn bit(scope: Scope) -> u8 {
    match scope {
        Scope::Inference => 1,
        Scope::Models => 2,
        Scope::Manage => 4,
        Scope::Cloud => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_the_database_form() {
        let s = Scopes::parse_list(&["manage", "inference"]).unwrap();
        assert_eq!(s.to_db(), "inference,manage");
        assert_eq!(Scopes::from_db(&s.to_db()), s);
        assert!(Scopes::parse_list(&["admin"]).is_err());
        let all = Scopes::parse_list(&["cloud", "manage"]).unwrap();
        assert_eq!(all.to_db(), "manage,cloud");
        assert_eq!(Scopes::from_db("manage,cloud"), all);
        assert!(!Scopes::default_for_new_keys().contains(Scope::Cloud));
    }
}
