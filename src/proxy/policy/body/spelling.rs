//! Refusing the spellings of field names that the gate and the upstream would
//! read differently.
//!
//! Go decodes `{"Stream": true}` into the field `stream`, and of several keys
//! that land on one field the last wins. The gate reads fields by their exact
//! names, so at every level that Ollama decodes into a struct, a key that
//! lands on a field must be that field's exact name, and no two keys may fold
//! alike. Exact duplicates are refused earlier, by `parse_strict`, at every level.

use super::gofold::{fold_name, lands_on};
use super::schema::{Fields, Shape};
use crate::proxy::error::ProxyError;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// One step from the top of the body to where a key was found.
#[derive(Clone, Copy)]
enum Step {
    Field(&'static str),
    Index(usize),
}

/// Checks `value` against the shape the upstream decodes it into.
pub fn check(shape: &Shape, value: &Value) -> Result<(), ProxyError> {
    let mut path = Vec::new();
    walk(shape, value, &mut path)
}

fn walk(shape: &Shape, value: &Value, path: &mut Vec<Step>) -> Result<(), ProxyError> {
    match (shape, value) {
        (Shape::Struct(fields), Value::Object(object)) => check_struct(*fields, object, path),
        (Shape::List(inner), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(inner, item, path)?;
                path.pop();
            }
            Ok(())
        }
        // Wrong types are for the type checks; opaque values hold nothing to fold.
        _ => Ok(()),
    }
}

fn check_struct(fields: Fields, object: &Map<String, Value>, path: &mut Vec<Step>) -> Result<(), ProxyError> {
    let mut folded: HashMap<String, &str> = HashMap::with_capacity(object.len());
    for (key, value) in object {
        if let Some(field) = fields.iter().find(|f| lands_on(key, f.name)) {
            if key != field.name {
                return Err(ProxyError::BadRequest(format!(
                    "'{}'{} is read by the upstream as '{}'; send it spelled '{}'",
                    shown(key),
                    place(path),
                    field.name,
                    field.name
                )));
            }
            path.push(Step::Field(field.name));
            walk(&field.shape, value, path)?;
            path.pop();
        }
        if let Some(other) = folded.insert(fold_name(key), key) {
            return Err(ProxyError::BadRequest(format!(
                "'{}' and '{}'{} are read by the upstream as one field; send only one",
                shown(other),
                shown(key),
                place(path)
            )));
        }
    }
    Ok(())
}

/// A key as it may appear in a message: keys can be as long as the body.
fn shown(key: &str) -> String {
    const MAX: usize = 64;
    match key.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &key[..cut]),
        None => key.to_owned(),
    }
}

/// " in messages[0].content[2]", or nothing at the top level.
fn place(path: &[Step]) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut out = String::from(" in ");
    for (i, step) in path.iter().enumerate() {
        let _ = match step {
            Step::Field(name) if i == 0 => write!(out, "{name}"),
            Step::Field(name) => write!(out, ".{name}"),
            Step::Index(n) => write!(out, "[{n}]"),
        };
    }
    out
}
