//! Validation against the Compose Specification's JSON schema (embedded), with each error at the
//! file:line:column of the node it is about. Messages name the place and what the specification
//! expects, never the value found there.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};

use super::yaml::{Node, Pos};

/// The official schema, from the compose-spec repository (schema/compose-spec.json).
const SCHEMA: &str = include_str!("compose-spec.json");

/// One way a document breaks the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub pos: Pos,
    pub message: String,
}

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value =
                serde_json::from_str(SCHEMA).map_err(|e| format!("embedded schema: {e}"))?;
            jsonschema::validator_for(&schema).map_err(|e| format!("embedded schema: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Checks a resolved document; the errors in document order (the first is the one to fix first).
pub fn validate(doc: &Node) -> Result<(), Vec<SchemaError>> {
    let instance = doc.to_json();
    let validator = match validator() {
        Ok(v) => v,
        Err(message) => {
            return Err(vec![SchemaError {
                pos: doc.pos,
                message,
            }]);
        }
    };
    let mut errors: Vec<SchemaError> = validator
        .iter_errors(&instance)
        .map(|e| describe(doc, &e))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| (e.pos.file, e.pos.line, e.pos.column));
    errors.dedup();
    Err(errors)
}

/// The nested error of a `oneOf`/`anyOf` that says most: the deepest, and of those the one
/// about a key rather than a type.
fn most_specific<'a>(
    context: &'a [Vec<jsonschema::ValidationError<'static>>],
) -> Option<&'a jsonschema::ValidationError<'static>> {
    let rank = |e: &jsonschema::ValidationError| {
        let depth = e.instance_path().to_string().matches('/').count();
        let specific = !matches!(e.kind(), ValidationErrorKind::Type { .. });
        (depth, specific)
    };
    context.iter().flatten().max_by_key(|e| rank(e))
}

fn describe(doc: &Node, e: &jsonschema::ValidationError) -> SchemaError {
    if let ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } =
        e.kind()
        && let Some(inner) = most_specific(context)
        && !matches!(inner.kind(), ValidationErrorKind::Type { .. })
    {
        return describe(doc, inner);
    }
    let path = split_pointer(&e.instance_path().to_string());
    let mut pos = doc.locate(&path);
    let place = place(&path);
    let message = match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let key = unexpected.first().cloned().unwrap_or_default();
            let mut key_path = path.clone();
            key_path.push(key.clone());
            pos = doc.locate(&key_path);
            format!("{key:?} is not allowed in {place} by the Compose Specification")
        }
        ValidationErrorKind::Type { kind } => {
            format!("{place} must be {}", type_name(kind))
        }
        ValidationErrorKind::Enum { options } => {
            format!("{place} must be one of {options}")
        }
        ValidationErrorKind::Required { property } => {
            format!("{place} needs the key {property}")
        }
        ValidationErrorKind::Pattern { pattern } => {
            format!("{place} must match {pattern}")
        }
        ValidationErrorKind::Format { format } => {
            format!("{place} is not a valid {format}")
        }
        ValidationErrorKind::UniqueItems => format!("{place} has duplicate entries"),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            format!("{place} has none of the forms the Compose Specification allows")
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            format!("{place} matches more than one form of the Compose Specification")
        }
        ValidationErrorKind::MinItems { limit } => {
            format!("{place} needs at least {limit} entries")
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!("{place} needs at least {limit} keys")
        }
        ValidationErrorKind::Minimum { limit } => format!("{place} must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("{place} must be at most {limit}"),
        ValidationErrorKind::PropertyNames { .. } => {
            format!("{place} has a key the Compose Specification does not allow")
        }
        other => format!(
            "{place} does not meet the Compose Specification ({})",
            other.keyword()
        ),
    };
    SchemaError { pos, message }
}

fn type_name(kind: &TypeKind) -> String {
    let name = |t: String| match t.as_str() {
        "object" => "a mapping".to_string(),
        "array" => "a list".to_string(),
        "string" => "a string".to_string(),
        "integer" => "an integer".to_string(),
        "number" => "a number".to_string(),
        "boolean" => "true or false".to_string(),
        "null" => "empty".to_string(),
        other => other.to_string(),
    };
    match kind {
        TypeKind::Single(t) => name(t.to_string()),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| name(t.to_string()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// `/services/db/ports/0` as path segments (JSON pointer escapes undone).
fn split_pointer(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// `services.db.ports[0]`, or `the file` for the top level.
fn place(path: &[String]) -> String {
    if path.is_empty() {
        return "the file".into();
    }
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml;

    fn check(text: &str) -> Result<(), Vec<SchemaError>> {
        validate(&yaml::parse(text, 0).unwrap())
    }

    #[test]
    fn a_valid_file_passes() {
        check("services:\n  db:\n    image: x\n    ports: [\"80:80\"]\n    x-own: 1\nx-top: {}\n")
            .unwrap();
    }

    #[test]
    fn unknown_key_is_reported_at_the_key() {
        let e = check("services:\n  db:\n    image: x\n    imagee: y\n").unwrap_err();
        assert_eq!((e[0].pos.line, e[0].pos.column), (4, 5), "{e:?}");
        assert!(e[0].message.contains("imagee"), "{e:?}");
    }

    #[test]
    fn wrong_type_is_reported_at_the_value_without_the_value() {
        let e =
            check("services:\n  db:\n    image: x\n    privileged: {secret-ish: 1}\n").unwrap_err();
        assert_eq!(e[0].pos.line, 4, "{e:?}");
        assert!(e.iter().all(|e| !e.message.contains("secret-ish")), "{e:?}");
    }
}
