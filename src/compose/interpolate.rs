//! Compose interpolation inside scalar values: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+replacement}`,
//! `${VAR+replacement}` and `$$` for a literal `$`. Defaults may themselves hold `${...}`.
//! Error messages never contain the text being interpolated (it may be a secret).

use super::yaml::{Node, Pos, Value};

/// A variable used without a value (compose warns and substitutes an empty string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unset {
    pub name: String,
    /// Where it is used, as `services.db.environment.PASSWORD`.
    pub path: String,
    pub pos: Pos,
}

/// An interpolation error at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpError {
    pub pos: Pos,
    pub message: String,
}

/// Interpolates every string scalar of the tree (never keys), recording unset variables.
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &mut Vec<String>,
    unset: &mut Vec<Unset>,
) -> Result<(), InterpError> {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => {
            let mut names = Vec::new();
            let out = interpolate(s, lookup, &mut names).map_err(|message| InterpError {
                pos: node.pos,
                message: format!("{message} in {}", path.join(".")),
            })?;
            for name in names {
                unset.push(Unset {
                    name,
                    path: path.join("."),
                    pos: node.pos,
                });
            }
            *s = out;
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                let r = interpolate_tree(item, lookup, path, unset);
                path.pop();
                r?;
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(k.name.clone());
                let r = interpolate_tree(v, lookup, path, unset);
                path.pop();
                r?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Interpolates one string; names of variables used without a value (and without a default)
/// are pushed onto `unset`.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or("invalid interpolation format: unterminated ${")?;
            out.push_str(&expand(&body[..end], lookup, unset)?);
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = after;
            } else {
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_string()),
                }
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, counting nested `${...}`.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand(
    expr: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let name_len = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expr.len());
    let (name, op) = expr.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("invalid interpolation format: a variable name must follow ${".into());
    }
    let value = lookup(name);
    let set_non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let mut nested = |s: &str| interpolate(s, lookup, unset);
    if op.is_empty() {
        if value.is_none() {
            unset.push(name.to_string());
        }
        return Ok(value.unwrap_or_default());
    }
    if let Some(default) = op.strip_prefix(":-") {
        return if set_non_empty {
            Ok(value.unwrap_or_default())
        } else {
            nested(default)
        };
    }
    if let Some(default) = op.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => nested(default),
        };
    }
    if let Some(msg) = op.strip_prefix(":?") {
        if !set_non_empty {
            return Err(format!(
                "required variable {name} is missing a value: {}",
                nested(msg)?
            ));
        }
        return Ok(value.unwrap_or_default());
    }
    if let Some(msg) = op.strip_prefix('?') {
        return match value {
            Some(v) => Ok(v),
            None => Err(format!(
                "required variable {name} is missing a value: {}",
                nested(msg)?
            )),
        };
    }
    if let Some(repl) = op.strip_prefix(":+") {
        return if set_non_empty {
            nested(repl)
        } else {
            Ok(String::new())
        };
    }
    if let Some(repl) = op.strip_prefix('+') {
        return if value.is_some() {
            nested(repl)
        } else {
            Ok(String::new())
        };
    }
    Err(format!(
        "invalid interpolation format: unknown operator after ${{{name}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(n: &str) -> Option<String> {
        match n {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("pa: ss # \"q\" 'q'\nline2".to_string()),
            _ => None,
        }
    }

    fn r(s: &str) -> Result<String, String> {
        interpolate(s, &vars, &mut Vec::new())
    }

    #[test]
    fn interpolation_follows_compose() {
        assert_eq!(
            r("${SET}-$SET-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$SET").unwrap(),
            "v-v-d-d--$SET"
        );
        assert_eq!(
            r("${SET:+r}|${EMPTY:+r}|${EMPTY+r}|${UNSET+r}").unwrap(),
            "r||r|"
        );
        assert_eq!(r("${UNSET:-${SET}x}").unwrap(), "vx");
        assert_eq!(r("cost $5").unwrap(), "cost $5");
        assert_eq!(r("${EMPTY?m}").unwrap(), "");
    }

    #[test]
    fn required_variable_stops_with_its_message() {
        assert_eq!(
            r("${UNSET:?set it in .env}").unwrap_err(),
            "required variable UNSET is missing a value: set it in .env"
        );
        assert!(r("${EMPTY:?m}").is_err());
        assert!(r("${UNSET?m}").is_err());
    }

    #[test]
    fn errors_never_contain_the_text() {
        let e = r("secret-${oops").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        let e = r("secret-${1x}").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn unset_variables_are_reported_not_defaulted_ones() {
        let mut unset = Vec::new();
        let out = interpolate("$A ${B} ${C:-x} ${D-y} ${SET}", &vars, &mut unset).unwrap();
        assert_eq!(out, "  x y v");
        assert_eq!(unset, ["A", "B"]);
    }

    #[test]
    fn values_with_yaml_syntax_arrive_intact() {
        assert_eq!(r("${TRICKY}").unwrap(), "pa: ss # \"q\" 'q'\nline2");
    }
}
