//! `vibedev config [--services] [--format yaml|json]`: the resolved stack as Compose, as
//! `docker compose config` prints it: merged, interpolated, profiles applied, and vibedev.toml's
//! overrides in. Values read from env files or secret sources are masked.

use serde_json::{Map, Value, json};

use crate::cli::{ConfigArgs, ConfigFormat};
use crate::compose::ComposeFile;
use crate::config::Project;
use crate::error::Result;
use crate::stack::Stack;

use super::Context;

/// What a masked value is shown as.
pub const MASK: &str = "********";

pub fn run(ctx: &Context, args: ConfigArgs) -> Result<u8> {
    let (project, mut stack) = ctx.stack()?;
    stack.activate_profiles(&args.profiles);
    let compose = stack.source.load()?;
    let doc = resolved(&project, &stack, &compose);
    if args.services {
        if let Some(services) = doc["services"].as_object() {
            for name in services.keys() {
                ctx.ui.out(name);
            }
        }
        return Ok(0);
    }
    let text = match args.format {
        ConfigFormat::Json => serde_json::to_string_pretty(&doc).unwrap_or_default(),
        ConfigFormat::Yaml => {
            // docker-compose 1.x rejects a top-level `name:`: the name goes in a comment.
            let mut doc = doc;
            if let Some(obj) = doc.as_object_mut() {
                obj.shift_remove("name");
            }
            format!(
                "# project {} (docker compose -p {})\n{}",
                stack.project,
                stack.project,
                to_yaml(&doc).trim_end()
            )
        }
    };
    ctx.ui.out(&text);
    Ok(0)
}

/// The resolved Compose document of the stack.
pub fn resolved(project: &Project, stack: &Stack, compose: &ComposeFile) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), stack.project.clone().into());
    let mut services = Map::new();
    let source = compose.document["services"].as_object();
    for spec in stack.services.iter().filter(|s| stack.enabled(s)) {
        let Some(parsed) = compose.services.get(&spec.name) else {
            continue;
        };
        let mut svc = source
            .and_then(|s| s.get(&spec.name))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        svc.shift_remove("env_file");
        svc.shift_remove("x-vibedev");
        svc.insert("image".into(), spec.image.clone().into());
        let ov = project.file.services.get(&spec.name);
        // Environment: env files, then the compose file, then vibedev.toml (as the container gets it).
        let mut env = Map::new();
        for (k, v) in &parsed.environment {
            let shown = if parsed.env_from_files.contains(k) {
                MASK.to_string()
            } else {
                v.clone()
            };
            env.insert(k.clone(), shown.into());
        }
        if let Some(ov) = ov {
            for (k, v) in &ov.env {
                env.insert(k.clone(), v.clone().into());
            }
            if let Some(ports) = &ov.ports {
                svc.insert("ports".into(), json!(ports));
            }
            if let Some(command) = &ov.command {
                svc.insert("command".into(), json!(command));
            }
        }
        if env.is_empty() {
            svc.shift_remove("environment");
        } else {
            svc.insert("environment".into(), Value::Object(env));
        }
        services.insert(spec.name.clone(), Value::Object(svc));
    }
    out.insert("services".into(), Value::Object(services));
    for section in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Object(items)) = compose.document.get(section) {
            let mut items = items.clone();
            if section == "configs" || section == "secrets" {
                for item in items.values_mut() {
                    if let Some(obj) = item.as_object_mut()
                        && obj.contains_key("content")
                    {
                        obj.insert("content".into(), MASK.into());
                    }
                }
            }
            out.insert(section.into(), Value::Object(items));
        }
    }
    Value::Object(out)
}

/// YAML that YAML 1.1 readers (docker-compose 1.x) and 1.2 readers read alike: a string is
/// written plain only when it cannot be taken for anything else, else double-quoted.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    const AMBIGUOUS: &[&str] = &[
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "~",
    ];
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !s.starts_with(['-', '.'])
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !AMBIGUOUS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, item) in m {
                out.push_str(&format!("{pad}{}:", quote(k)));
                emit_child(item, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                emit_child(item, indent, out);
            }
        }
        Value::Object(_) => out.push_str(&format!("{pad}{{}}\n")),
        Value::Array(_) => out.push_str(&format!("{pad}[]\n")),
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// The value after `key:` or `-`: inline when scalar or empty, else on the following lines.
fn emit_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        other => out.push_str(&format!(" {}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_quotes_what_yaml_1_1_would_retype() {
        let v = json!({"a": "yes", "b": "1", "c": 1, "d": ["x", "on", "pa: ss\n#"], "e": {}, "f": null});
        let text = to_yaml(&v);
        assert_eq!(
            text,
            "a: \"yes\"\nb: \"1\"\nc: 1\nd:\n  - x\n  - \"on\"\n  - \"pa: ss\\n#\"\ne: {}\nf: null\n"
        );
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
