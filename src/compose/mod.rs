//! Reads a Compose file the way compose does: YAML with anchors, aliases and merge keys, then
//! interpolation inside scalar values, then `include` and `extends`, then the typed model of the
//! keys vibedev acts on (image, build, command, entrypoint, environment, env_file, ports, volumes,
//! depends_on, healthcheck, labels, user, working_dir, stop_signal, stop_grace_period, tmpfs,
//! profiles, secrets, configs, restart and the `x-vibedev` extension). Keys Compose defines that
//! vibedev does not act on are accepted and listed; others are errors naming file:line:column.
//! Nothing here prints: unset variables come back as warnings in the model.

mod interpolate;
mod load;
mod schema;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value as Json;

use crate::config::ConfigError;
use load::Loader;
use yaml::{Node, Pos};

pub use interpolate::interpolate;
pub use load::Vars;

/// The built-in default stack, compiled into the binary.
pub const DEFAULT_COMPOSE: &str = include_str!("../../compose/docker-compose.yml");

/// A parsed and resolved Compose file.
#[derive(Debug, Default, Clone)]
pub struct ComposeFile {
    /// The top-level `name:`.
    pub name: Option<String>,
    pub services: IndexMap<String, ComposeService>,
    pub volumes: IndexMap<String, VolumeDef>,
    pub secrets: IndexMap<String, FileObject>,
    pub configs: IndexMap<String, FileObject>,
    /// Keys Compose knows that vibedev does not act on, as `service.key` (listed with -v).
    pub ignored: Vec<String>,
    /// What compose would warn about (unset variables), in its words.
    pub warnings: Vec<String>,
    /// The resolved document (merged, interpolated, included, extended), for `vibedev config`.
    pub document: Json,
}

/// Top-level `volumes:` entry.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct VolumeDef {
    /// An explicit Docker volume name (instead of `<project>_<key>`).
    pub name: Option<String>,
    #[serde(default, deserialize_with = "external")]
    pub external: bool,
    #[serde(default)]
    pub labels: Labels,
    pub driver: Option<String>,
}

/// A top-level `secrets:` or `configs:` entry: where its content comes from.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct FileObject {
    pub name: Option<String>,
    /// A file, absolute (resolved against the compose file that names it).
    pub file: Option<PathBuf>,
    /// A variable of vibedev's environment.
    pub environment: Option<String>,
    /// Inline content (configs).
    pub content: Option<String>,
    #[serde(default, deserialize_with = "external")]
    pub external: bool,
}

/// One service as written in the Compose file (before vibedev.toml overrides).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ComposeService {
    pub image: Option<String>,
    #[serde(default, deserialize_with = "build")]
    pub build: Option<BuildSpec>,
    #[serde(default, deserialize_with = "words")]
    pub command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "words")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "key_values")]
    pub environment: IndexMap<String, String>,
    #[serde(default, deserialize_with = "env_files")]
    pub env_file: Vec<EnvFileRef>,
    #[serde(default, deserialize_with = "ports")]
    pub ports: Vec<PortSpec>,
    #[serde(default, deserialize_with = "volumes")]
    pub volumes: Vec<VolumeMount>,
    #[serde(default, deserialize_with = "depends_on")]
    pub depends_on: IndexMap<String, Dependency>,
    #[serde(default, deserialize_with = "healthcheck")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, deserialize_with = "key_values")]
    pub labels: IndexMap<String, String>,
    #[serde(default, deserialize_with = "scalar")]
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub stop_signal: Option<String>,
    #[serde(default, deserialize_with = "seconds")]
    pub stop_grace_period: Option<u64>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default, deserialize_with = "file_refs")]
    pub secrets: Vec<FileRef>,
    #[serde(default, deserialize_with = "file_refs")]
    pub configs: Vec<FileRef>,
    #[serde(default, deserialize_with = "scalar")]
    pub restart: Option<String>,
    #[serde(default, rename = "x-vibedev")]
    pub x_vibedev: Option<XVibedev>,
    /// Environment keys whose value came from an `env_file` (shown masked by `vibedev config`).
    #[serde(skip)]
    pub env_from_files: BTreeSet<String>,
    /// Every other key: classified after parsing (extension, known but ignored, or an error).
    #[serde(flatten)]
    rest: IndexMap<String, Json>,
}

/// `build:` of a service.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct BuildSpec {
    /// The context folder (or URL), as written (relative to the compose file's folder).
    #[serde(default = "dot")]
    pub context: String,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    #[serde(default, deserialize_with = "key_values")]
    pub args: IndexMap<String, String>,
    pub target: Option<String>,
    #[serde(default, deserialize_with = "key_values")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub other: IndexMap<String, Json>,
}

fn dot() -> String {
    ".".into()
}

/// A service's use of a top-level secret or config.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct FileRef {
    pub source: String,
    /// The path in the container (default `/run/secrets/<source>` for secrets, `/<source>` for configs).
    pub target: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub gid: Option<String>,
    /// File mode (octal as written, e.g. `0440`).
    pub mode: Option<u32>,
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default)]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

fn started() -> String {
    "service_started".into()
}

fn yes() -> bool {
    true
}

/// One `env_file` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EnvFileRef {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
    /// `raw`: values are taken as written (no quotes, escapes or interpolation).
    pub format: Option<String>,
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
    /// Pub/Sub emulator: topics to create.
    pub topics: Option<Vec<String>>,
    /// A custom service's readiness check: `GET` this path on the probe port answers 2xx.
    pub http: Option<XHttpWait>,
    /// The container port the probe uses (default: the first published port).
    pub port: Option<u16>,
    /// Seconds to wait for readiness (default 60).
    pub ready_timeout: Option<u64>,
}

/// `x-vibedev: http:` on a service of no known kind: a path, or a path and the body's start.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum XHttpWait {
    Path(String),
    Full {
        path: String,
        #[serde(default)]
        body: Option<String>,
    },
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

/// Parses Compose text; `path` is used in error messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<ComposeFile, ConfigError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    load_with(path, Some(text), &Vars::for_dir(dir))
}

fn load_with(path: &Path, text: Option<&str>, vars: &Vars) -> Result<ComposeFile, ConfigError> {
    let mut loader = Loader::default();
    let doc = loader.load(path, text, vars, &mut Vec::new())?;
    if let Err(errors) = schema::validate(&doc) {
        let first = &errors[0];
        let more = match errors.len() {
            1 => String::new(),
            2 => " (and 1 more problem)".to_string(),
            n => format!(" (and {} more problems)", n - 1),
        };
        return Err(loader.error(first.pos, format!("{}{more}", first.message)));
    }
    let mut file = typed(&loader, &doc)?;
    let base = path.parent().unwrap_or(Path::new("."));
    for (name, svc) in file.services.iter_mut() {
        let at = doc.locate(&["services".into(), name.clone(), "env_file".into()]);
        load_env_files(&loader, at, base, svc)?;
    }
    for obj in file.secrets.values_mut().chain(file.configs.values_mut()) {
        if let Some(f) = &obj.file {
            obj.file = Some(load::join_clean(base, &f.to_string_lossy()));
        }
    }
    let mut seen = BTreeSet::new();
    for u in &loader.unset {
        if seen.insert((u.name.clone(), u.path.clone())) {
            let p = loader.files.path(u.pos);
            file.warnings.push(format!(
                "The \"{}\" variable is not set. Defaulting to a blank string. ({} at {}:{}:{})",
                u.name,
                u.path,
                p.display(),
                u.pos.line,
                u.pos.column
            ));
        }
    }
    Ok(file)
}

/// The typed model of a resolved document; keys classified.
fn typed(loader: &Loader, doc: &Node) -> Result<ComposeFile, ConfigError> {
    let mut file = ComposeFile {
        document: doc.to_json(),
        ..ComposeFile::default()
    };
    let yaml::Value::Map(entries) = &doc.value else {
        return Err(loader.error(doc.pos, "a Compose file is a mapping (with `services:`)"));
    };
    for (key, node) in entries {
        let at = |m: String| loader.error(node.pos, m);
        match key.name.as_str() {
            "services" => {
                let Some(services) = node.as_map() else {
                    if matches!(node.value, yaml::Value::Null) {
                        continue;
                    }
                    return Err(at("`services` is a mapping of service names".into()));
                };
                for (k, svc_node) in services {
                    let svc = service(loader, &k.name, svc_node)?;
                    for extra in svc.rest.keys() {
                        file.ignored.push(format!("{}.{extra}", k.name));
                    }
                    file.services.insert(k.name.clone(), svc);
                }
            }
            "volumes" => file.volumes = section(loader, node, "volume")?,
            "secrets" => file.secrets = section(loader, node, "secret")?,
            "configs" => file.configs = section(loader, node, "config")?,
            "name" => {
                file.name = match &node.value {
                    yaml::Value::Str(s) => Some(s.clone()),
                    yaml::Value::Null => None,
                    _ => return Err(at("`name` is a string".into())),
                }
            }
            "version" => {}
            k if k.starts_with("x-") => {}
            // What else the specification allows at the top level (networks, models, ...).
            _ => file.ignored.push(key.name.clone()),
        }
    }
    for (name, svc) in &file.services {
        for dep in svc.depends_on.keys() {
            if !file.services.contains_key(dep) {
                let pos = doc.locate(&["services".into(), name.clone(), "depends_on".into()]);
                return Err(loader.error(
                    pos,
                    format!("service {name:?} depends on {dep:?}, which is not defined"),
                ));
            }
        }
        for (i, mount) in svc.volumes.iter().enumerate() {
            if let Some(src) = &mount.source
                && !mount.is_bind()
                && !file.volumes.contains_key(src)
            {
                let pos = doc.locate(&[
                    "services".into(),
                    name.clone(),
                    "volumes".into(),
                    i.to_string(),
                ]);
                return Err(loader.error(
                    pos,
                    format!(
                        "service {name:?} mounts volume {src:?}, which is not declared under the top-level `volumes:`"
                    ),
                ));
            }
        }
        for (kind, refs, defined) in [
            ("secret", &svc.secrets, &file.secrets),
            ("config", &svc.configs, &file.configs),
        ] {
            for r in refs {
                if !defined.contains_key(&r.source) {
                    let pos = doc.locate(&["services".into(), name.clone(), format!("{kind}s")]);
                    return Err(loader.error(
                        pos,
                        format!(
                            "service {name:?} uses {kind} {:?}, which is not declared under the top-level `{kind}s:`",
                            r.source
                        ),
                    ));
                }
            }
        }
    }
    Ok(file)
}

/// One service, its unknown keys an error at their position.
fn service(loader: &Loader, name: &str, node: &Node) -> Result<ComposeService, ConfigError> {
    if matches!(node.value, yaml::Value::Null) {
        return Ok(ComposeService::default());
    }
    let Some(entries) = node.as_map() else {
        return Err(loader.error(node.pos, format!("service {name:?} is a mapping")));
    };
    let mut svc: ComposeService = serde_json::from_value(node.to_json()).map_err(|e| {
        // Find the key whose value does not fit, to point at it.
        let bad = entries.iter().find(|(k, v)| {
            let one = serde_json::json!({ k.name.clone(): v.to_json() });
            serde_json::from_value::<ComposeService>(one).is_err()
        });
        match bad {
            Some((k, v)) => loader.error(
                v.pos,
                format!("service {name:?}, {}: {}", k.name, clean(&e)),
            ),
            None => loader.error(node.pos, format!("service {name:?}: {}", clean(&e))),
        }
    })?;
    svc.rest.retain(|k, _| !k.starts_with("x-"));
    Ok(svc)
}

/// A serde message without serde_json's position suffix (positions here are the YAML's) and
/// without the values it quotes (`invalid type: string "..."`): a value may be a secret.
fn clean(e: &serde_json::Error) -> String {
    let m = e.to_string();
    let m = match m.find(" at line ") {
        Some(i) => &m[..i],
        None => &m[..],
    };
    let mut out = String::with_capacity(m.len());
    let mut in_quotes = false;
    let mut escaped = false;
    for c in m.chars() {
        if in_quotes {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => escaped = false,
            }
        } else if c == '"' {
            in_quotes = true;
            out.push_str("(value)");
        } else {
            out.push(c);
        }
    }
    out
}

/// A top-level mapping of named objects (`volumes:`, `secrets:`, `configs:`).
fn section<T: for<'de> Deserialize<'de> + Default>(
    loader: &Loader,
    node: &Node,
    what: &str,
) -> Result<IndexMap<String, T>, ConfigError> {
    let mut out = IndexMap::new();
    let Some(entries) = node.as_map() else {
        if matches!(node.value, yaml::Value::Null) {
            return Ok(out);
        }
        return Err(loader.error(node.pos, format!("top-level `{what}s` is a mapping")));
    };
    for (k, v) in entries {
        let item = if matches!(v.value, yaml::Value::Null) {
            T::default()
        } else {
            serde_json::from_value(v.to_json())
                .map_err(|e| loader.error(v.pos, format!("{what} {:?}: {}", k.name, clean(&e))))?
        };
        out.insert(k.name.clone(), item);
    }
    Ok(out)
}

/// Values from `env_file:` entries; `environment:` wins over them, as in Compose.
fn load_env_files(
    loader: &Loader,
    at: Pos,
    base: &Path,
    svc: &mut ComposeService,
) -> Result<(), ConfigError> {
    let mut merged = IndexMap::new();
    for file in &svc.env_file {
        let path = base.join(&file.path);
        if !path.is_file() {
            if !file.required {
                continue;
            }
            return Err(loader.error(
                at,
                format!(
                    "env_file {} not found (or set `required: false`)",
                    path.display()
                ),
            ));
        }
        if file.format.as_deref() == Some("raw") {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            for line in text.lines() {
                let line = line.trim_start();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    merged.insert(k.trim().to_string(), v.to_string());
                }
            }
            continue;
        }
        let iter = dotenvy::from_path_iter(&path).map_err(|_| ConfigError::Invalid {
            path: path.clone(),
            message: "cannot read this env_file".into(),
        })?;
        for (n, item) in iter.enumerate() {
            // dotenvy's messages quote the line; name the entry instead.
            let (k, v) = item.map_err(|_| ConfigError::Invalid {
                path: path.clone(),
                message: format!("entry {} cannot be parsed (KEY=value lines)", n + 1),
            })?;
            merged.insert(k, v);
        }
    }
    svc.env_from_files = merged.keys().cloned().collect();
    for (k, v) in std::mem::take(&mut svc.environment) {
        svc.env_from_files.remove(&k);
        merged.insert(k, v);
    }
    svc.environment = merged;
    Ok(())
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
                if !path.is_file() {
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?;
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                load_with(path, None, &Vars::for_dir(dir))
            }
        }
    }
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
                        None => return Err("unterminated single quote".into()),
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
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
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
            return Err("invalid port: the protocol must be tcp, udp or sctp".into());
        }
        None => (s, "tcp".to_string()),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let num = |p: &str, what: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port: the {what} is not a port number"))
    };
    let (host_ip, host_port, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [c, h] => (None, Some(*h), *c),
        [c, h, ip] => (
            Some(ip.trim_matches(|ch| ch == '[' || ch == ']')),
            Some(*h),
            *c,
        ),
        _ => return Err("invalid port: use [[ip:]host:]container[/protocol]".into()),
    };
    if container.contains('-') || host_port.is_some_and(|h| h.contains('-')) {
        return Err("invalid port: port ranges are not supported".into());
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
        _ => return Err("invalid volume: use source:target[:mode]".into()),
    };
    if !target.starts_with('/') {
        return Err("invalid volume: the target must be an absolute path".into());
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
        Some(_) => {
            return Err("invalid volume: the mode must be ro or rw (with z, Z, nocopy)".into());
        }
    };
    Ok(VolumeMount {
        // `:/target` (an unset variable as the source) is an anonymous volume, as compose reads it.
        source: source.filter(|s| !s.is_empty()).map(str::to_string),
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
            .map_err(|_| "invalid duration (e.g. 1m30s, 500ms)".to_string())?;
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
            _ => return Err("invalid duration: units are ns, us, ms, s, m, h".into()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

// ---- value forms: the short and long syntaxes Compose allows for one key ----------------------

fn scalar_string(v: Json) -> Result<String, String> {
    match v {
        Json::String(s) => Ok(s),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Null => Ok(String::new()),
        Json::Array(_) => Err("expected a string, found a list".into()),
        Json::Object(_) => Err("expected a string, found a mapping".into()),
    }
}

/// A YAML scalar read as a string (`user: 1000` and `user: "1000"` alike).
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        v => scalar_string(v).map(Some).map_err(de::Error::custom),
    }
}

fn string_list(items: Vec<Json>) -> Result<Vec<String>, String> {
    items.into_iter().map(scalar_string).collect()
}

/// A command: a string (split like a shell) or a list of words.
fn words<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Json::deserialize(d)? {
        Json::String(s) => split_words(&s).map(Some).map_err(de::Error::custom),
        Json::Array(items) => string_list(items).map(Some).map_err(de::Error::custom),
        Json::Null => Ok(None),
        _ => Err(de::Error::custom("expected a string or a list of strings")),
    }
}

/// A string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Json::deserialize(d)? {
        Json::Array(items) => string_list(items).map_err(de::Error::custom),
        Json::Null => Ok(Vec::new()),
        other => scalar_string(other)
            .map(|s| vec![s])
            .map_err(de::Error::custom),
    }
}

/// `environment:` / `labels:` / `args:` as a mapping or a list of `KEY=value`. A key without a
/// value takes it from vibedev's own environment, and is left out when that has none (as in Compose).
fn key_values<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    let mut out = IndexMap::new();
    let from_env = |k: String, out: &mut IndexMap<String, String>| {
        if let Ok(v) = std::env::var(&k) {
            out.insert(k, v);
        }
    };
    match Json::deserialize(d)? {
        Json::Object(m) => {
            for (k, v) in m {
                match v {
                    Json::Null => from_env(k, &mut out),
                    v => {
                        out.insert(k, scalar_string(v).map_err(de::Error::custom)?);
                    }
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                let item = scalar_string(item).map_err(de::Error::custom)?;
                match item.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.to_string(), v.to_string());
                    }
                    None => from_env(item, &mut out),
                }
            }
        }
        Json::Null => {}
        _ => {
            return Err(de::Error::custom(
                "expected a mapping or a list of KEY=value",
            ));
        }
    }
    Ok(out)
}

/// Labels, as a mapping or a list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Labels(pub IndexMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        key_values(d).map(Labels)
    }
}

/// `external: true` (or the legacy `external: {name: x}`).
fn external<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Json::deserialize(d)? {
        Json::Bool(b) => Ok(b),
        Json::Object(_) => Ok(true),
        Json::Null => Ok(false),
        Json::String(s) => Ok(s == "true"),
        _ => Err(de::Error::custom("expected true or false")),
    }
}

/// `build: ./dir` or `build: {context: ..., ...}`.
fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BuildSpec>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        Json::String(context) => Ok(Some(BuildSpec {
            context,
            ..BuildSpec::default()
        })),
        v @ Json::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(de::Error::custom),
        _ => Err(de::Error::custom("expected a path or a mapping")),
    }
}

/// `env_file: a.env`, `[a.env, b.env]` or `[{path: a.env, required: false, format: raw}]`.
fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFileRef>, D::Error> {
    let item = |v: Json| -> Result<EnvFileRef, String> {
        match v {
            Json::Object(_) => serde_json::from_value(v).map_err(|e| e.to_string()),
            other => scalar_string(other).map(|path| EnvFileRef {
                path,
                required: true,
                format: None,
            }),
        }
    };
    match Json::deserialize(d)? {
        Json::Null => Ok(Vec::new()),
        Json::Array(items) => items
            .into_iter()
            .map(item)
            .collect::<Result<_, _>>()
            .map_err(de::Error::custom),
        other => item(other).map(|e| vec![e]).map_err(de::Error::custom),
    }
}

/// Service `secrets:` / `configs:`: names or `{source, target, uid, gid, mode}`.
fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    let items = match Json::deserialize(d)? {
        Json::Null => return Ok(Vec::new()),
        Json::Array(items) => items,
        _ => return Err(de::Error::custom("expected a list")),
    };
    items
        .into_iter()
        .map(|v| match v {
            Json::String(source) => Ok(FileRef {
                source,
                ..FileRef::default()
            }),
            v => serde_json::from_value(v).map_err(de::Error::custom),
        })
        .collect()
}

/// `depends_on:` as a list of names or a mapping with conditions.
fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, Dependency>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(IndexMap::new()),
        Json::Array(items) => string_list(items)
            .map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        (
                            n,
                            Dependency {
                                condition: started(),
                                restart: false,
                                required: true,
                            },
                        )
                    })
                    .collect()
            })
            .map_err(de::Error::custom),
        v @ Json::Object(_) => serde_json::from_value::<IndexMap<String, Option<Dependency>>>(v)
            .map(|m| {
                m.into_iter()
                    .map(|(k, d)| {
                        (
                            k,
                            d.unwrap_or(Dependency {
                                condition: started(),
                                restart: false,
                                required: true,
                            }),
                        )
                    })
                    .collect()
            })
            .map_err(de::Error::custom),
        _ => Err(de::Error::custom(
            "expected a list or a mapping of service names",
        )),
    }
}

/// A duration in whole seconds (`stop_grace_period: 1m30s`).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        v => {
            let s = scalar_string(v).map_err(de::Error::custom)?;
            Ok(Some(
                (parse_duration_ns(&s).map_err(de::Error::custom)? / 1_000_000_000) as u64,
            ))
        }
    }
}

fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortSpec>, D::Error> {
    #[derive(Deserialize)]
    struct Long {
        target: Json,
        published: Option<Json>,
        host_ip: Option<String>,
        protocol: Option<String>,
    }
    let items = match Json::deserialize(d)? {
        Json::Null => return Ok(Vec::new()),
        Json::Array(items) => items,
        _ => return Err(de::Error::custom("expected a list of ports")),
    };
    let port = |v: Json, what: &str| -> Result<u16, String> {
        scalar_string(v)?
            .parse::<u16>()
            .map_err(|_| format!("{what} must be a port number"))
    };
    items
        .into_iter()
        .map(|v| match v {
            Json::Object(_) => {
                let long: Long = serde_json::from_value(v).map_err(de::Error::custom)?;
                let host_port = match long.published {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) if s.is_empty() => None,
                    Some(p) => Some(port(p, "published").map_err(de::Error::custom)?),
                };
                Ok(PortSpec {
                    host_ip: long.host_ip,
                    host_port,
                    container_port: port(long.target, "target").map_err(de::Error::custom)?,
                    protocol: long.protocol.unwrap_or_else(|| "tcp".into()),
                })
            }
            other => {
                let s = scalar_string(other).map_err(de::Error::custom)?;
                parse_port(&s).map_err(de::Error::custom)
            }
        })
        .collect()
}

fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<VolumeMount>, D::Error> {
    #[derive(Deserialize)]
    struct Long {
        #[serde(rename = "type")]
        kind: Option<String>,
        source: Option<String>,
        target: String,
        #[serde(default)]
        read_only: bool,
    }
    let items = match Json::deserialize(d)? {
        Json::Null => return Ok(Vec::new()),
        Json::Array(items) => items,
        _ => return Err(de::Error::custom("expected a list of mounts")),
    };
    items
        .into_iter()
        .map(|v| match v {
            Json::Object(_) => {
                let long: Long = serde_json::from_value(v).map_err(de::Error::custom)?;
                if let Some(kind) = &long.kind
                    && kind != "volume"
                    && kind != "bind"
                {
                    return Err(de::Error::custom(format!(
                        "volume type {kind:?} is not supported (use volume or bind)"
                    )));
                }
                Ok(VolumeMount {
                    source: long.source,
                    target: long.target,
                    read_only: long.read_only,
                })
            }
            other => {
                let s = scalar_string(other).map_err(de::Error::custom)?;
                parse_volume(&s).map_err(de::Error::custom)
            }
        })
        .collect()
}

fn healthcheck<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Healthcheck>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        test: Option<Json>,
        interval: Option<String>,
        timeout: Option<String>,
        retries: Option<i64>,
        start_period: Option<String>,
        #[allow(dead_code)]
        start_interval: Option<String>,
        #[serde(default)]
        disable: bool,
    }
    let raw = match Json::deserialize(d)? {
        Json::Null => return Ok(None),
        v => serde_json::from_value::<Raw>(v).map_err(de::Error::custom)?,
    };
    if raw.disable {
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        }));
    }
    let test = match raw.test {
        None => return Ok(None),
        Some(Json::String(s)) => vec!["CMD-SHELL".to_string(), s],
        Some(Json::Array(items)) => string_list(items).map_err(de::Error::custom)?,
        Some(_) => return Err(de::Error::custom("test must be a string or a list")),
    };
    let dur = |v: Option<String>| {
        v.map(|s| parse_duration_ns(&s))
            .transpose()
            .map_err(de::Error::custom)
    };
    Ok(Some(Healthcheck {
        test,
        interval: dur(raw.interval)?,
        timeout: dur(raw.timeout)?,
        retries: raw.retries,
        start_period: dur(raw.start_period)?,
    }))
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
        let f = p("x-common: &c {a: 1}\nservices:\n  db:\n    image: x\n    hostname: db1\n    x-other: 1\n").unwrap();
        assert_eq!(f.ignored, ["db.hostname"]);
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

    /// A compose file and its neighbours in a fresh folder; the main file is `dir/compose.yml`.
    fn files(list: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in list {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let main = dir.path().join("compose.yml");
        (dir, main)
    }

    fn load(list: &[(&str, &str)]) -> Result<ComposeFile, ConfigError> {
        let (_dir, main) = files(list);
        ComposeSource::File(main).load()
    }

    #[test]
    fn merge_keys_work_at_service_level_and_inside_environment_and_labels() {
        let f = p("x-base: &base\n  image: base\n  restart: always\n\
                   x-env: &env\n  A: from-anchor\n  B: from-anchor\n\
                   x-labels: &labels {team: core}\n\
                   services:\n  api:\n    <<: *base\n    environment:\n      <<: *env\n      B: own\n\
                   \x20   labels:\n      <<: *labels\n      tier: web\n")
        .unwrap();
        let api = &f.services["api"];
        assert_eq!(api.image.as_deref(), Some("base"));
        assert_eq!(api.restart.as_deref(), Some("always"));
        assert_eq!(api.environment["A"], "from-anchor");
        assert_eq!(api.environment["B"], "own");
        assert_eq!(api.labels["team"], "core");
        assert_eq!(api.labels["tier"], "web");
    }

    const TRICKY: &str = "pa: ss # not a comment \"dq\" 'sq'\nsecond line";

    #[test]
    fn interpolated_values_arrive_intact_and_never_reach_errors() {
        let env = format!("SECRET={}\n", serde_json::to_string(TRICKY).unwrap());
        let f = load(&[
            (".env", &env),
            (
                "compose.yml",
                "services:\n  a:\n    image: x\n    environment:\n      P: ${SECRET}\n      Q: \"${SECRET}\"\n    labels: [\"l=${SECRET}\"]\n",
            ),
        ])
        .unwrap();
        assert_eq!(f.services["a"].environment["P"], TRICKY);
        assert_eq!(f.services["a"].environment["Q"], TRICKY);
        assert_eq!(f.services["a"].labels["l"], TRICKY);
        // The same value in a place where it does not fit: the error names the place only.
        let err = load(&[
            (".env", &env),
            ("compose.yml", "services:\n  a:\n    image: x\n    ports: [\"${SECRET}\"]\n    stop_grace_period: ${SECRET}\n"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("compose.yml:4:"), "{err}");
        for part in ["pa: ss", "not a comment", "second line", "dq", "sq"] {
            assert!(!err.contains(part), "{err}");
        }
    }

    #[test]
    fn unset_variable_is_a_warning_naming_it_and_where_it_is_used() {
        let f = load(&[(
            "compose.yml",
            "services:\n  a:\n    image: \"x:${VIBEDEV_TEST_SURELY_UNSET_TAG}\"\n    environment: {D: \"${VIBEDEV_TEST_SURELY_UNSET_D:-d}\"}\n",
        )])
        .unwrap();
        assert_eq!(f.services["a"].image.as_deref(), Some("x:"));
        assert_eq!(f.services["a"].environment["D"], "d");
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        let w = &f.warnings[0];
        assert!(
            w.starts_with("The \"VIBEDEV_TEST_SURELY_UNSET_TAG\" variable is not set. Defaulting to a blank string."),
            "{w}"
        );
        assert!(
            w.contains("services.a.image") && w.contains("compose.yml:3:12"),
            "{w}"
        );
    }

    #[test]
    fn required_variable_stops_with_its_message_at_its_position() {
        let err = load(&[(
            "compose.yml",
            "services:\n  a:\n    image: x\n    environment:\n      K: ${VIBEDEV_TEST_SURELY_UNSET_K:?run secrets pull first}\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("compose.yml:5:10"), "{err}");
        assert!(
            err.contains("required variable VIBEDEV_TEST_SURELY_UNSET_K is missing a value: run secrets pull first"),
            "{err}"
        );
    }

    #[test]
    fn extends_across_files_resolves_paths_against_the_file_that_says_them() {
        let f = load(&[
            ("common/base.yml", "services:\n  web:\n    image: base\n    env_file: web.env\n    volumes: [\"./data:/data\"]\n    environment: [A=1, B=1]\n    build: ./ctx\n"),
            ("common/web.env", "FROM_FILE=yes\n"),
            (
                "compose.yml",
                "services:\n  api:\n    extends: {file: common/base.yml, service: web}\n    environment: {B: 2}\n  worker:\n    extends: api\n    command: run\n",
            ),
        ])
        .unwrap();
        let api = &f.services["api"];
        assert_eq!(api.image.as_deref(), Some("base"));
        assert_eq!(api.environment["A"], "1");
        assert_eq!(api.environment["B"], "2");
        assert_eq!(api.environment["FROM_FILE"], "yes");
        assert!(api.env_from_files.contains("FROM_FILE"));
        let src = api.volumes[0].source.clone().unwrap();
        assert!(
            src.ends_with("common/data") && src.starts_with('/'),
            "{src}"
        );
        assert!(api.build.as_ref().unwrap().context.ends_with("common/ctx"));
        let worker = &f.services["worker"];
        assert_eq!(worker.image.as_deref(), Some("base"));
        assert_eq!(worker.command.as_deref(), Some(&["run".to_string()][..]));
    }

    #[test]
    fn extends_of_a_missing_service_names_the_position() {
        let err = load(&[(
            "compose.yml",
            "services:\n  a:\n    image: x\n  b:\n    extends: {service: nope}\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("compose.yml:5:14") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn include_brings_services_with_their_own_folder_and_variables() {
        let f = load(&[
            ("db/compose.yml", "services:\n  db:\n    image: \"pg:${PG_TAG}\"\n    volumes: [\"./init:/init\", \"data:/var/lib/data\"]\nvolumes:\n  data: {}\n"),
            ("db/.env", "PG_TAG=15\n"),
            (
                "compose.yml",
                "include:\n  - db/compose.yml\nservices:\n  api:\n    image: x\n    depends_on: [db]\n",
            ),
        ])
        .unwrap();
        assert_eq!(f.services["db"].image.as_deref(), Some("pg:15"));
        let init = f.services["db"].volumes[0].source.clone().unwrap();
        assert!(init.ends_with("db/init") && init.starts_with('/'), "{init}");
        assert!(f.volumes.contains_key("data"));
        assert!(f.services["api"].depends_on.contains_key("db"));
        let err = load(&[
            ("db/compose.yml", "services:\n  db:\n    image: y\n"),
            (
                "compose.yml",
                "include: [db/compose.yml]\nservices:\n  db:\n    image: x\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("compose.yml:3:3") && err.contains("services.db"),
            "{err}"
        );
    }

    #[test]
    fn env_file_keeps_compose_semantics() {
        let f = load(&[
            ("raw.env", "Q=\"kept quotes\"\n"),
            ("plain.env", "P=\"unquoted\"\n"),
            (
                "compose.yml",
                "services:\n  a:\n    image: x\n    env_file:\n      - plain.env\n      - {path: raw.env, format: raw}\n      - {path: missing.env, required: false}\n",
            ),
        ])
        .unwrap();
        assert_eq!(f.services["a"].environment["P"], "unquoted");
        assert_eq!(f.services["a"].environment["Q"], "\"kept quotes\"");
        let err = load(&[(
            "compose.yml",
            "services:\n  a:\n    image: x\n    env_file: [missing.env]\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("compose.yml:4:5") && err.contains("missing.env"),
            "{err}"
        );
    }

    #[test]
    fn secrets_configs_build_and_depends_on_are_typed() {
        let f = p("name: shop\nservices:\n  db:\n    build: {context: ./db, dockerfile: Dockerfile.dev, args: [V=1], target: dev, labels: {a: b}}\n\
                   \x20   secrets: [pw, {source: cert, target: /etc/cert, uid: \"1\", gid: \"2\", mode: 0440}]\n\
                   \x20   configs: [conf]\n    restart: \"no\"\n  api:\n    image: x\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n\
                   secrets:\n  pw: {file: ./pw.txt}\n  cert: {environment: CERT}\nconfigs:\n  conf: {content: hello}\n")
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("shop"));
        let db = &f.services["db"];
        let b = db.build.clone().unwrap();
        assert_eq!(
            (
                b.context.as_str(),
                b.dockerfile.as_deref(),
                b.target.as_deref()
            ),
            ("./db", Some("Dockerfile.dev"), Some("dev"))
        );
        assert_eq!(b.args["V"], "1");
        assert_eq!(db.secrets[1].mode, Some(0o440));
        assert_eq!(db.secrets[1].target.as_deref(), Some("/etc/cert"));
        assert_eq!(db.restart.as_deref(), Some("no"));
        let dep = &f.services["api"].depends_on["db"];
        assert_eq!(
            (dep.condition.as_str(), dep.restart),
            ("service_healthy", true)
        );
        assert_eq!(
            f.secrets["pw"].file.as_deref(),
            Some(Path::new("/x/pw.txt"))
        );
        assert_eq!(f.secrets["cert"].environment.as_deref(), Some("CERT"));
        assert_eq!(f.configs["conf"].content.as_deref(), Some("hello"));
        let err = p("services:\n  a:\n    image: x\n    secrets: [nope]\n").unwrap_err();
        assert!(err.to_string().contains(":4:5"), "{err}");
    }

    #[test]
    fn type_errors_in_extension_fields_name_the_key_not_the_value() {
        let err = p("services:\n  a:\n    image: x\n    x-vibedev: {port: \"s3cr3t\"}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":4:") && err.contains("x-vibedev"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
