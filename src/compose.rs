//! Reads a Compose file (the subset vibedev runs: image, command, entrypoint, environment, env_file,
//! ports, volumes, depends_on, healthcheck, labels, user, working_dir, stop_signal, stop_grace_period,
//! tmpfs and the `x-vibedev` extension), with Compose's `${VAR:-default}` interpolation.
//! Keys Compose knows but vibedev does not act on are accepted and reported; others are errors
//! naming file:line:column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::config::ConfigError;

/// The built-in default stack, compiled into the binary.
pub const DEFAULT_COMPOSE: &str = include_str!("../compose/docker-compose.yml");

/// A parsed Compose file.
#[derive(Debug, Default, Clone)]
pub struct ComposeFile {
    pub services: IndexMap<String, ComposeService>,
    pub volumes: IndexMap<String, VolumeDef>,
    /// Keys Compose knows that vibedev does not act on, as `service.key` (reported as warnings).
    pub ignored: Vec<String>,
}

/// Top-level `volumes:` entry.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct VolumeDef {
    /// An explicit Docker volume name (instead of `<project>_<key>`).
    pub name: Option<String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub labels: Labels,
    pub driver: Option<String>,
}

/// One service as written in the Compose file (before vibedev.toml overrides).
#[derive(Debug, Default, Clone)]
pub struct ComposeService {
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: IndexMap<String, String>,
    pub env_file: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub volumes: Vec<VolumeMount>,
    pub depends_on: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub labels: IndexMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<u64>,
    pub tmpfs: Vec<String>,
    pub x_vibedev: Option<XVibedev>,
    pub ignored: Vec<String>,
}

/// The `x-vibedev` extension on a service: which probe and preparation it gets.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct XVibedev {
    /// `postgres`, `redis`, `firestore`, `gcs` or `none`.
    pub kind: Option<String>,
    /// Postgres: the app database (default `vibesdk`).
    pub database: Option<String>,
    /// Postgres: the app role (default `vibesdk_app`).
    pub user: Option<String>,
    /// Postgres: the app role's password (local development only).
    pub password: Option<String>,
    /// fake-gcs: buckets to create (default `[vibesdk-templates]`).
    pub buckets: Option<Vec<String>>,
    /// The container port the probe uses (default: the first published port).
    pub port: Option<u16>,
    /// Seconds to wait for readiness (default 60).
    pub ready_timeout: Option<u64>,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PortSpec {
    /// Host address; `None` means the project's bind address.
    pub host_ip: Option<String>,
    /// Host port; `None` or 0 lets the engine choose.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

/// One mount: a named volume or a host path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeMount {
    /// A volume key, a host path, or `None` for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

impl VolumeMount {
    /// True when the source is a host path rather than a named volume.
    pub fn is_bind(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| s.starts_with('/') || s.starts_with('.') || s.starts_with('~'))
    }
}

/// `healthcheck:` with durations in nanoseconds, as the engine wants them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub start_period: Option<i64>,
}

/// Parses Compose text; `path` is used in error messages and to resolve `env_file`.
pub fn parse(path: &Path, text: &str) -> Result<ComposeFile, ConfigError> {
    let vars = interpolation_vars(path);
    let text = interpolate(text, &|name| vars(name)).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    let raw: RawFile =
        serde_norway::from_str(&text).map_err(|err| yaml_error(path, &text, &err))?;
    let mut ignored = Vec::new();
    for (name, svc) in &raw.services {
        for key in &svc.ignored {
            ignored.push(format!("{name}.{key}"));
        }
        for dep in &svc.depends_on {
            if !raw.services.contains_key(dep) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!("service {name:?} depends on {dep:?}, which is not defined"),
                });
            }
        }
        for mount in &svc.volumes {
            if let Some(src) = &mount.source
                && !mount.is_bind()
                && !raw.volumes.contains_key(src)
            {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "service {name:?} mounts volume {src:?}, which is not declared under the top-level `volumes:`"
                    ),
                });
            }
        }
    }
    ignored.extend(raw.ignored);
    let base = path.parent().unwrap_or(Path::new("."));
    let mut services = raw.services;
    for svc in services.values_mut() {
        load_env_files(base, svc)?;
    }
    Ok(ComposeFile {
        services,
        volumes: raw
            .volumes
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        ignored,
    })
}

/// Values from `env_file:` entries; `environment:` wins over them, as in Compose.
fn load_env_files(base: &Path, svc: &mut ComposeService) -> Result<(), ConfigError> {
    let mut merged = IndexMap::new();
    for file in &svc.env_file {
        let path = base.join(file);
        let iter = dotenvy::from_path_iter(&path).map_err(|err| ConfigError::Invalid {
            path: path.clone(),
            message: format!("cannot read env_file: {err}"),
        })?;
        for item in iter {
            let (k, v) = item.map_err(|err| ConfigError::Invalid {
                path: path.clone(),
                message: format!("cannot parse env_file: {err}"),
            })?;
            merged.insert(k, v);
        }
    }
    for (k, v) in std::mem::take(&mut svc.environment) {
        merged.insert(k, v);
    }
    svc.environment = merged;
    Ok(())
}

fn yaml_error(path: &Path, text: &str, err: &serde_norway::Error) -> ConfigError {
    let (mut line, mut column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let mut message = err.to_string();
    // serde_norway appends " at line L column C"; the position is already in front.
    if let Some(idx) = message.find(" at line ") {
        message.truncate(idx);
    }
    // An unknown key is reported at the start of its mapping: point at the key itself.
    if let Some(key) = message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        && let Some((l, c)) = find_key(text, key, line)
    {
        (line, column) = (l, c);
    }
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// The first line at or after `from` (1-based) where `key:` starts, with its column.
fn find_key(text: &str, key: &str, from: usize) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, l)| {
            let trimmed = l.trim_start();
            let indent = l.len() - trimmed.len();
            let unquoted = trimmed.trim_start_matches(['"', '\'']);
            let is_key = unquoted.strip_prefix(key).is_some_and(|r| {
                r.trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
            });
            is_key.then_some((i + 1, indent + 1))
        })
}

/// Variables for interpolation: the process environment, then a `.env` beside the file.
fn interpolation_vars(path: &Path) -> impl Fn(&str) -> Option<String> {
    let mut dotenv = BTreeMap::new();
    if let Some(dir) = path.parent()
        && let Ok(iter) = dotenvy::from_path_iter(dir.join(".env"))
    {
        for (k, v) in iter.flatten() {
            dotenv.insert(k, v);
        }
    }
    move |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv.get(name).cloned())
    }
}

/// Compose interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}`, `${VAR?message}`, and `$$` for a literal `$`.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated ${{...}} in {:?}", first_line(after)))?;
            out.push_str(&expand(&body[..end], lookup)?);
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
                out.push_str(&lookup(name).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn expand(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_len = expr
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expr.len());
    let (name, op) = expr.split_at(name_len);
    if name.is_empty() {
        return Err(format!("invalid interpolation ${{{expr}}}"));
    }
    let value = lookup(name);
    let set_non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let result = if op.is_empty() {
        value.unwrap_or_default()
    } else if let Some(default) = op.strip_prefix(":-") {
        if set_non_empty {
            value.unwrap_or_default()
        } else {
            default.to_string()
        }
    } else if let Some(default) = op.strip_prefix('-') {
        value.unwrap_or_else(|| default.to_string())
    } else if let Some(msg) = op.strip_prefix(":?") {
        if !set_non_empty {
            return Err(format!(
                "required variable {name} is missing or empty: {msg}"
            ));
        }
        value.unwrap_or_default()
    } else if let Some(msg) = op.strip_prefix('?') {
        value.ok_or_else(|| format!("required variable {name} is missing: {msg}"))?
    } else {
        return Err(format!("invalid interpolation ${{{expr}}}"));
    };
    Ok(result)
}

/// Splits a command string into words the way Compose does (POSIX shell quoting, no expansion).
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses `[[ip:]host:]container[/proto]` (Compose's short port syntax).
pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let (body, protocol) = match s.rsplit_once('/') {
        Some((b, p)) if ["tcp", "udp", "sctp"].contains(&p) => (b, p.to_string()),
        Some(_) => {
            return Err(format!(
                "invalid port {s:?}: protocol must be tcp, udp or sctp"
            ));
        }
        None => (s, "tcp".to_string()),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let num = |p: &str, what: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {s:?}: {what} {p:?} is not a port number"))
    };
    let (host_ip, host_port, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [c, h] => (None, Some(*h), *c),
        [c, h, ip] => (
            Some(ip.trim_matches(|ch| ch == '[' || ch == ']')),
            Some(*h),
            *c,
        ),
        _ => return Err(format!("invalid port {s:?}")),
    };
    if container.contains('-') || host_port.is_some_and(|h| h.contains('-')) {
        return Err(format!("invalid port {s:?}: port ranges are not supported"));
    }
    Ok(PortSpec {
        host_ip: host_ip.filter(|ip| !ip.is_empty()).map(str::to_string),
        host_port: match host_port {
            Some("") | None => None,
            Some(h) => Some(num(h, "host port")?),
        },
        container_port: num(container, "container port")?,
        protocol,
    })
}

/// Parses `source:target[:ro|rw]` or `target` (Compose's short volume syntax).
pub fn parse_volume(s: &str) -> Result<VolumeMount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return Err(format!("invalid volume {s:?}")),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume {s:?}: the target must be an absolute path"
        ));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some(m) if m.split(',').any(|o| o == "ro") => true,
        Some(m)
            if m.split(',')
                .all(|o| ["rw", "z", "Z", "nocopy"].contains(&o)) =>
        {
            false
        }
        Some(m) => return Err(format!("invalid volume {s:?}: unknown mode {m:?}")),
    };
    Ok(VolumeMount {
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
    })
}

/// Parses a Compose duration (`1m30s`, `500ms`, `10s`) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    let mut total: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

// ---- serde plumbing -------------------------------------------------------------------------

/// Keys of a service that Compose defines and vibedev accepts without acting on them.
const IGNORED_SERVICE_KEYS: &[&str] = &[
    "build",
    "cap_add",
    "cap_drop",
    "container_name",
    "cpus",
    "deploy",
    "dns",
    "expose",
    "extra_hosts",
    "hostname",
    "init",
    "ipc",
    "links",
    "logging",
    "mem_limit",
    "network_mode",
    "networks",
    "platform",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "security_opt",
    "shm_size",
    "stdin_open",
    "sysctls",
    "tty",
    "ulimits",
];

const SERVICE_KEYS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "depends_on",
    "healthcheck",
    "labels",
    "user",
    "working_dir",
    "stop_signal",
    "stop_grace_period",
    "tmpfs",
    "x-vibedev",
];

const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "configs", "secrets",
];

#[derive(Default)]
struct RawFile {
    services: IndexMap<String, ComposeService>,
    volumes: IndexMap<String, Option<VolumeDef>>,
    ignored: Vec<String>,
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Compose file (a mapping with `services:`)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
                let mut file = RawFile::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "services" => {
                            file.services = map
                                .next_value::<Option<IndexMap<String, ComposeService>>>()?
                                .unwrap_or_default()
                        }
                        "volumes" => {
                            file.volumes = map
                                .next_value::<Option<IndexMap<String, Option<VolumeDef>>>>()?
                                .unwrap_or_default()
                        }
                        "version" | "name" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        "networks" | "configs" | "secrets" => {
                            map.next_value::<IgnoredAny>()?;
                            file.ignored.push(key);
                        }
                        k if k.starts_with("x-") => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        other => return Err(de::Error::unknown_field(other, TOP_KEYS)),
                    }
                }
                Ok(file)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for ComposeService {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ComposeService;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a service definition (a mapping)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ComposeService, A::Error> {
                let mut s = ComposeService::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "image" => s.image = Some(map.next_value()?),
                        "command" => s.command = Some(map.next_value::<Words>()?.0),
                        "entrypoint" => s.entrypoint = Some(map.next_value::<Words>()?.0),
                        "environment" => s.environment = map.next_value::<KeyValues>()?.0,
                        "env_file" => s.env_file = map.next_value::<OneOrMany>()?.0,
                        "ports" => {
                            s.ports = map
                                .next_value::<Vec<PortEntry>>()?
                                .into_iter()
                                .map(|p| p.0)
                                .collect()
                        }
                        "volumes" => {
                            s.volumes = map
                                .next_value::<Vec<VolumeEntry>>()?
                                .into_iter()
                                .map(|v| v.0)
                                .collect()
                        }
                        "depends_on" => s.depends_on = map.next_value::<DependsOn>()?.0,
                        "healthcheck" => {
                            s.healthcheck = map
                                .next_value::<RawHealthcheck>()?
                                .into_spec()
                                .map_err(de::Error::custom)?
                        }
                        "labels" => s.labels = map.next_value::<Labels>()?.0,
                        "user" => s.user = Some(map.next_value::<Scalar>()?.0),
                        "working_dir" => s.working_dir = Some(map.next_value()?),
                        "stop_signal" => s.stop_signal = Some(map.next_value()?),
                        "stop_grace_period" => {
                            let v: String = map.next_value()?;
                            s.stop_grace_period = Some(
                                (parse_duration_ns(&v).map_err(de::Error::custom)? / 1_000_000_000)
                                    as u64,
                            );
                        }
                        "tmpfs" => s.tmpfs = map.next_value::<OneOrMany>()?.0,
                        "x-vibedev" => s.x_vibedev = Some(map.next_value()?),
                        k if k.starts_with("x-") => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        k if IGNORED_SERVICE_KEYS.contains(&k) => {
                            map.next_value::<IgnoredAny>()?;
                            s.ignored.push(key);
                        }
                        other => return Err(de::Error::unknown_field(other, SERVICE_KEYS)),
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// A YAML scalar read as a string (`user: 1000` and `user: "1000"` alike).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => Ok(Scalar(s)),
            serde_norway::Value::Number(n) => Ok(Scalar(n.to_string())),
            serde_norway::Value::Bool(b) => Ok(Scalar(b.to_string())),
            serde_norway::Value::Null => Ok(Scalar(String::new())),
            _ => Err(de::Error::custom("expected a string, number or boolean")),
        }
    }
}

/// A command: a string (split like a shell) or a list of words.
struct Words(Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => split_words(&s).map(Words).map_err(de::Error::custom),
            serde_norway::Value::Sequence(items) => items
                .into_iter()
                .map(scalar_string)
                .collect::<Result<Vec<_>, _>>()
                .map(Words)
                .map_err(de::Error::custom),
            serde_norway::Value::Null => Ok(Words(Vec::new())),
            _ => Err(de::Error::custom("expected a string or a list of strings")),
        }
    }
}

fn scalar_string(v: serde_norway::Value) -> Result<String, String> {
    match v {
        serde_norway::Value::String(s) => Ok(s),
        serde_norway::Value::Number(n) => Ok(n.to_string()),
        serde_norway::Value::Bool(b) => Ok(b.to_string()),
        serde_norway::Value::Null => Ok(String::new()),
        other => Err(format!("expected a string, found {other:?}")),
    }
}

/// A string or a list of strings.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::Sequence(items) => items
                .into_iter()
                .map(scalar_string)
                .collect::<Result<Vec<_>, _>>()
                .map(OneOrMany)
                .map_err(de::Error::custom),
            other => scalar_string(other)
                .map(|s| OneOrMany(vec![s]))
                .map_err(de::Error::custom),
        }
    }
}

/// `environment:` / `labels:` as a mapping or a list of `KEY=value`.
struct KeyValues(IndexMap<String, String>);

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = IndexMap::new();
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::Mapping(m) => {
                for (k, v) in m {
                    let k = scalar_string(k).map_err(de::Error::custom)?;
                    let v = scalar_string(v).map_err(de::Error::custom)?;
                    out.insert(k, v);
                }
            }
            serde_norway::Value::Sequence(items) => {
                for item in items {
                    let item = scalar_string(item).map_err(de::Error::custom)?;
                    match item.split_once('=') {
                        Some((k, v)) => out.insert(k.to_string(), v.to_string()),
                        // `- KEY` alone takes the value from vibedev's own environment, as in Compose.
                        None => out.insert(item.clone(), std::env::var(&item).unwrap_or_default()),
                    };
                }
            }
            serde_norway::Value::Null => {}
            _ => {
                return Err(de::Error::custom(
                    "expected a mapping or a list of KEY=value",
                ));
            }
        }
        Ok(KeyValues(out))
    }
}

/// Labels, as a mapping or a list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Labels(pub IndexMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Labels(KeyValues::deserialize(d)?.0))
    }
}

struct PortEntry(PortSpec);

impl<'de> Deserialize<'de> for PortEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            target: u16,
            published: Option<serde_norway::Value>,
            host_ip: Option<String>,
            protocol: Option<String>,
            #[allow(dead_code)]
            mode: Option<String>,
        }
        let v = serde_norway::Value::deserialize(d)?;
        match v {
            serde_norway::Value::Mapping(_) => {
                let long: Long = serde_norway::from_value(v).map_err(de::Error::custom)?;
                let host_port = match long.published {
                    None | Some(serde_norway::Value::Null) => None,
                    Some(p) => Some(
                        scalar_string(p)
                            .map_err(de::Error::custom)?
                            .parse::<u16>()
                            .map_err(|_| de::Error::custom("published must be a port number"))?,
                    ),
                };
                Ok(PortEntry(PortSpec {
                    host_ip: long.host_ip,
                    host_port,
                    container_port: long.target,
                    protocol: long.protocol.unwrap_or_else(|| "tcp".into()),
                }))
            }
            other => {
                let s = scalar_string(other).map_err(de::Error::custom)?;
                parse_port(&s).map(PortEntry).map_err(de::Error::custom)
            }
        }
    }
}

struct VolumeEntry(VolumeMount);

impl<'de> Deserialize<'de> for VolumeEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            #[serde(rename = "type")]
            kind: Option<String>,
            source: Option<String>,
            target: String,
            #[serde(default)]
            read_only: bool,
        }
        let v = serde_norway::Value::deserialize(d)?;
        match v {
            serde_norway::Value::Mapping(_) => {
                let long: Long = serde_norway::from_value(v).map_err(de::Error::custom)?;
                if let Some(kind) = &long.kind
                    && kind != "volume"
                    && kind != "bind"
                {
                    return Err(de::Error::custom(format!(
                        "volume type {kind:?} is not supported (use volume or bind)"
                    )));
                }
                Ok(VolumeEntry(VolumeMount {
                    source: long.source,
                    target: long.target,
                    read_only: long.read_only,
                }))
            }
            other => {
                let s = scalar_string(other).map_err(de::Error::custom)?;
                parse_volume(&s).map(VolumeEntry).map_err(de::Error::custom)
            }
        }
    }
}

struct DependsOn(Vec<String>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::Sequence(items) => items
                .into_iter()
                .map(scalar_string)
                .collect::<Result<Vec<_>, _>>()
                .map(DependsOn)
                .map_err(de::Error::custom),
            serde_norway::Value::Mapping(m) => m
                .into_iter()
                .map(|(k, _)| scalar_string(k))
                .collect::<Result<Vec<_>, _>>()
                .map(DependsOn)
                .map_err(de::Error::custom),
            _ => Err(de::Error::custom(
                "expected a list or a mapping of service names",
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    test: Option<serde_norway::Value>,
    interval: Option<String>,
    timeout: Option<String>,
    retries: Option<i64>,
    start_period: Option<String>,
    start_interval: Option<String>,
    #[serde(default)]
    disable: bool,
}

impl RawHealthcheck {
    fn into_spec(self) -> Result<Option<Healthcheck>, String> {
        let _ = self.start_interval;
        if self.disable {
            return Ok(Some(Healthcheck {
                test: vec!["NONE".into()],
                interval: None,
                timeout: None,
                retries: None,
                start_period: None,
            }));
        }
        let test = match self.test {
            None => return Ok(None),
            Some(serde_norway::Value::String(s)) => vec!["CMD-SHELL".to_string(), s],
            Some(serde_norway::Value::Sequence(items)) => items
                .into_iter()
                .map(scalar_string)
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("healthcheck.test must be a string or a list".into()),
        };
        let dur = |v: Option<String>| v.map(|s| parse_duration_ns(&s)).transpose();
        Ok(Some(Healthcheck {
            test,
            interval: dur(self.interval)?,
            timeout: dur(self.timeout)?,
            retries: self.retries,
            start_period: dur(self.start_period)?,
        }))
    }
}

/// Where a stack's compose text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeSource {
    Builtin,
    File(PathBuf),
}

impl ComposeSource {
    /// Reads and parses the source.
    pub fn load(&self) -> Result<ComposeFile, ConfigError> {
        match self {
            ComposeSource::Builtin => parse(
                Path::new("<built-in>/compose/docker-compose.yml"),
                DEFAULT_COMPOSE,
            ),
            ComposeSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse(path, &text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<ComposeFile, ConfigError> {
        parse(Path::new("/x/docker-compose.yml"), text)
    }

    #[test]
    fn builtin_stack_parses_with_four_services() {
        let f = ComposeSource::Builtin.load().unwrap();
        let names: Vec<_> = f.services.keys().cloned().collect();
        assert_eq!(names, ["postgres", "firestore", "redis", "gcs"]);
        assert!(f.ignored.is_empty(), "{:?}", f.ignored);
    }

    #[test]
    fn unknown_service_key_names_line_and_column() {
        let err = p("services:\n  db:\n    image: x\n    imagee: y\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/x/docker-compose.yml:4:"), "{msg}");
        assert!(msg.contains("imagee"), "{msg}");
    }

    #[test]
    fn yaml_syntax_error_names_line() {
        let err = p("services:\n  db:\n    image: [x\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn extension_keys_and_known_compose_keys_are_accepted() {
        let f = p("x-common: &c {a: 1}\nservices:\n  db:\n    image: x\n    restart: always\n    x-other: 1\n").unwrap();
        assert_eq!(f.ignored, ["db.restart"]);
    }

    #[test]
    fn environment_list_and_map_forms() {
        let f = p("services:\n  a:\n    image: x\n    environment: [A=1, B=two=2]\n  b:\n    image: x\n    environment: {C: 3, D: true}\n").unwrap();
        assert_eq!(f.services["a"].environment["B"], "two=2");
        assert_eq!(f.services["b"].environment["C"], "3");
        assert_eq!(f.services["b"].environment["D"], "true");
    }

    #[test]
    fn command_string_is_split_like_a_shell() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn port_short_syntax() {
        let q = parse_port("127.0.0.1:15432:5432").unwrap();
        assert_eq!(
            (q.host_ip.as_deref(), q.host_port, q.container_port),
            (Some("127.0.0.1"), Some(15432), 5432)
        );
        let q = parse_port("6379").unwrap();
        assert_eq!((q.host_port, q.container_port), (None, 6379));
        let q = parse_port("127.0.0.1::8080/udp").unwrap();
        assert_eq!((q.host_port, q.protocol.as_str()), (None, "udp"));
        assert!(parse_port("abc:1").is_err());
        assert!(parse_port("1000-1001:1000-1001").is_err());
    }

    #[test]
    fn volume_short_syntax() {
        let v = parse_volume("pgdata:/var/lib/postgresql/data").unwrap();
        assert_eq!(v.source.as_deref(), Some("pgdata"));
        assert!(!v.is_bind());
        let v = parse_volume("./seed:/seed:ro").unwrap();
        assert!(v.is_bind() && v.read_only);
        assert!(parse_volume("x:relative").is_err());
    }

    #[test]
    fn undeclared_named_volume_is_an_error() {
        let err = p("services:\n  a:\n    image: x\n    volumes: [data:/d]\n").unwrap_err();
        assert!(err.to_string().contains("not declared"), "{err}");
    }

    #[test]
    fn depends_on_unknown_service_is_an_error() {
        let err = p("services:\n  a:\n    image: x\n    depends_on: [b]\n").unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
    }

    #[test]
    fn interpolation_follows_compose() {
        let vars = |n: &str| match n {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let r = |s: &str| interpolate(s, &vars);
        assert_eq!(
            r("${SET}-$SET-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$SET").unwrap(),
            "v-v-d-d--$SET"
        );
        assert!(r("${UNSET:?needed}").unwrap_err().contains("needed"));
        assert_eq!(r("cost $5").unwrap(), "cost $5");
        assert!(r("${oops").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration_ns("500ms").unwrap(), 500_000_000);
        assert!(parse_duration_ns("5 parsecs").is_err());
    }

    #[test]
    fn healthcheck_string_becomes_cmd_shell() {
        let f = p("services:\n  a:\n    image: x\n    healthcheck:\n      test: pg_isready\n      interval: 1s\n").unwrap();
        let h = f.services["a"].healthcheck.clone().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "pg_isready"]);
        assert_eq!(h.interval, Some(1_000_000_000));
    }
}
