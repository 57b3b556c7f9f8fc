//! The project: where it lives (walk up for `vibedev.toml`), what its config file says, and its name.
//! Every parse error names file:line:column; unknown keys are errors, not silently ignored.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The config file vibedev looks for, walking up from the working directory.
pub const CONFIG_FILE: &str = "vibedev.toml";

/// Where ports bind unless the config says otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1";

/// The GCP project id the emulators use unless the config names one.
pub const DEFAULT_GCP_PROJECT: &str = "vibesdk-local";

/// The parsed `vibedev.toml`. Keys documented in the README; scripts rely on `project` and `compose`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The project name: prefixes every container, network and volume.
    pub project: Option<String>,
    /// The project's own compose file, relative to the toml, instead of the built-in stack.
    pub compose: Option<PathBuf>,
    /// Host address ports bind to (default 127.0.0.1).
    pub bind: Option<String>,
    /// The project id the emulators serve (`GOOGLE_CLOUD_PROJECT` in `vibedev env`).
    pub gcp_project: Option<String>,
    /// Compose profiles to activate (besides `COMPOSE_PROFILES` and `up --profile`).
    #[serde(default)]
    pub profiles: Vec<String>,
    /// `ports = "auto"`: each checkout gets its own stable set of free host ports.
    pub ports: Option<PortsMode>,
    /// Per-service overrides of image, ports and environment, without copying the compose file.
    #[serde(default)]
    pub services: IndexMap<String, ServiceOverride>,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub migrations: MigrationsConfig,
    #[serde(default)]
    pub seed: SeedConfig,
    #[serde(default)]
    pub branches: BranchesConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub snapshots: SnapshotsConfig,
}

/// `[engine]` in `vibedev.toml`: how this machine reaches the engine's published ports.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Relay the published ports of a `tcp://` engine on another host to 127.0.0.1 here
    /// (`VIBEDEV_FORWARD` overrides it).
    pub forward: Option<bool>,
}

/// The environment variable that turns the relay of a `tcp://` engine's ports on or off.
pub const FORWARD_VAR: &str = "VIBEDEV_FORWARD";

/// Where the stack's host ports come from (`ports = ...` in `vibedev.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortsMode {
    /// The compose file's and `[services.*] ports` (the default).
    Fixed,
    /// A stable set of free host ports per checkout (see `autoports`).
    Auto,
}

/// `[services.NAME]` in `vibedev.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverride {
    pub image: Option<String>,
    /// Replaces the service's port list (Compose short syntax, e.g. `"15432:5432"`).
    pub ports: Option<Vec<String>>,
    /// Merged over the service's environment.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    pub command: Option<Vec<String>>,
    /// Seconds to wait for the service to become ready (default 60).
    pub ready_timeout: Option<u64>,
}

/// `[secrets]`: where `vibedev secrets pull` reads from.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// The GCP project holding the secrets.
    pub project: Option<String>,
    /// The env template, relative to the toml (default: the built-in `templates/env.gcp.tmpl`).
    pub template: Option<PathBuf>,
    /// Secret Manager base URL (tests, private endpoints).
    pub endpoint: Option<String>,
    /// Seconds the whole pull may take (default 60; 0: no limit).
    pub deadline: Option<u64>,
}

/// `[migrations]`: the Drizzle migrations folder and bookkeeping table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationsConfig {
    /// Folder with `meta/_journal.json`, relative to the toml (default `drizzle`).
    pub dir: Option<PathBuf>,
    /// Bookkeeping schema (default `drizzle`).
    pub schema: Option<String>,
    /// Bookkeeping table (default `__drizzle_migrations`).
    pub table: Option<String>,
    /// Extensions the admin account creates in the app database (and its templates) before
    /// migrating, for migrations the app role may not create them in (as on Cloud SQL).
    #[serde(default)]
    pub extensions: Vec<String>,
}

/// `[seed]`: data loaded into a fresh stack.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// SQL files applied in order after migrations, relative to the toml.
    #[serde(default)]
    pub sql: Vec<PathBuf>,
    /// A folder whose files are uploaded into the bucket.
    pub bucket_dir: Option<PathBuf>,
    /// The bucket seed files go into (default `vibesdk-templates`).
    pub bucket: Option<String>,
    /// A folder of `<collection>/<id>.json` documents written to the Firestore emulator.
    pub firestore_dir: Option<PathBuf>,
}

/// `[branches]`: a database (and Firestore data, a bucket) per git branch.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchesConfig {
    /// Each git branch other than the default one gets its own copy of the app database.
    #[serde(default)]
    pub database: bool,
    /// Each git branch other than the default one gets its own project id on the Firestore
    /// emulator (and so its own documents).
    #[serde(default)]
    pub firestore: bool,
    /// Each git branch other than the default one gets its own copy of the stack's buckets.
    #[serde(default)]
    pub bucket: bool,
    /// The branch that uses the app database itself (default: origin's HEAD, else `main`,
    /// else `master`).
    #[serde(rename = "default")]
    pub default_branch: Option<String>,
    /// What a new branch's database is copied from (default: the default branch's database).
    pub from: Option<BranchSource>,
}

impl BranchesConfig {
    /// True when anything follows the git branch.
    pub fn follows_any(&self) -> bool {
        self.database || self.firestore || self.bucket
    }
}

/// What a new branch's database starts as (`[branches] from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchSource {
    /// A file-level copy of the default branch's database, data included.
    #[default]
    Default,
    /// A copy of the template `reset-db` builds from the migrations and seeds.
    Template,
}

/// `[snapshots]`: the automatic snapshots taken before `reset-db` and `migrate` change the app
/// database.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// Take them (default true).
    pub auto: Option<bool>,
    /// How many are kept, newest first (default 5; the oldest beyond go).
    pub keep: Option<std::num::NonZeroUsize>,
}

/// Automatic snapshots kept unless `[snapshots] keep` says otherwise.
pub const DEFAULT_AUTO_SNAPSHOTS_KEPT: usize = 5;

impl SnapshotsConfig {
    /// How many automatic snapshots to keep; `None` when they are off.
    pub fn auto_keep(&self) -> Option<usize> {
        if self.auto == Some(false) {
            return None;
        }
        Some(self.keep.map_or(DEFAULT_AUTO_SNAPSHOTS_KEPT, |k| k.get()))
    }
}

/// The default migrations folder, beside `vibedev.toml` (drizzle-kit's default `out`).
pub const DEFAULT_MIGRATIONS_DIR: &str = "drizzle";

/// A project's files, resolved against its root (see [`Project::paths`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The project's root (the folder of `vibedev.toml`).
    pub root: PathBuf,
    /// The compose file, when the project names one (else the built-in stack).
    pub compose: Option<PathBuf>,
    /// The migrations folder: `[migrations] dir`, else `drizzle`.
    pub migrations: PathBuf,
    /// True when `[migrations] dir` names the folder (then it must exist).
    pub migrations_named: bool,
    /// `[secrets] template`.
    pub env_template: Option<PathBuf>,
    pub seeds: SeedPaths,
}

/// The seed data a project names (`[seed]` in vibedev.toml), resolved against its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedPaths {
    pub root: PathBuf,
    pub sql: Vec<PathBuf>,
    pub bucket_dir: Option<PathBuf>,
    /// The bucket the bucket seed goes to (else the service's first bucket).
    pub bucket: Option<String>,
    pub firestore_dir: Option<PathBuf>,
}

/// Errors reading the project's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot determine the working directory")]
    Cwd(#[source] std::io::Error),
    #[error("{var}={value:?} is neither on nor off")]
    EnvFlag { var: &'static str, value: String },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { .. } => Some(
                "check the path given to --config, or run `vibedev init` to create a config".into(),
            ),
            ConfigError::Syntax { .. } | ConfigError::Invalid { .. } => {
                Some("fix the file at the position shown; the README lists every key".into())
            }
            ConfigError::Cwd(_) => None,
            ConfigError::EnvFlag { var, .. } => Some(format!(
                "set {var} to 1, true, yes or on (or 0, false, no, off), or unset it"
            )),
        }
    }
}

/// A project: its root folder, its config (possibly empty) and its name.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `vibedev.toml`, or the working directory when there is none.
    pub root: PathBuf,
    /// The config file, when the project has one.
    pub config_path: Option<PathBuf>,
    pub file: ConfigFile,
    pub name: String,
}

impl Project {
    /// Finds and parses the project's config: `explicit` (from `--config`), else the first
    /// `vibedev.toml` walking up from the working directory, else the built-in defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Project, ConfigError> {
        let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
        let config_path = match explicit {
            Some(p) => Some(absolute(&cwd, p)),
            None => find_config(&cwd),
        };
        let (root, file) = match &config_path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let file = parse_config(path, &text)?;
                let root = path.parent().map(Path::to_path_buf).unwrap_or(cwd.clone());
                (root, file)
            }
            None => (cwd, ConfigFile::default()),
        };
        let root = root.canonicalize().unwrap_or(root);
        let name = match &file.project {
            Some(name) => {
                validate_project_name(name).map_err(|e| ConfigError::Invalid {
                    path: config_path.clone().unwrap_or_default(),
                    message: e.to_string(),
                })?;
                name.clone()
            }
            None => derived_project_name(&root),
        };
        Ok(Project {
            root,
            config_path,
            file,
            name,
        })
    }

    /// The project's name even when its config cannot be loaded, for commands that only need
    /// the name to find what vibedev made (`down`): the config's error is returned next to a
    /// project read leniently. The name is the `project = "..."` the file sets at its top level
    /// (read as TOML when only a key or value is wrong, else from its line), else the name
    /// derived from the config's folder. When the file is broken where `project` is set, or the
    /// name it sets is invalid, there is no safe guess and the error is returned alone.
    pub fn load_for_name(
        explicit: Option<&Path>,
    ) -> Result<(Project, Option<ConfigError>), ConfigError> {
        let error = match Project::load(explicit) {
            Ok(project) => return Ok((project, None)),
            Err(e @ (ConfigError::Syntax { .. } | ConfigError::Invalid { .. })) => e,
            Err(e) => return Err(e),
        };
        let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
        let Some(path) = explicit
            .map(|p| absolute(&cwd, p))
            .or_else(|| find_config(&cwd))
        else {
            return Err(error);
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Err(error);
        };
        let name = match lenient_project_name(&text) {
            Lenient::Named(name) if validate_project_name(&name).is_ok() => Some(name),
            Lenient::Unset => None,
            Lenient::Named(_) | Lenient::Unreadable => return Err(error),
        };
        let root = path.parent().map(Path::to_path_buf).unwrap_or(cwd);
        let root = root.canonicalize().unwrap_or(root);
        let name = name.unwrap_or_else(|| derived_project_name(&root));
        let project = Project {
            root,
            config_path: Some(path),
            file: ConfigFile::default(),
            name,
        };
        Ok((project, Some(error)))
    }

    /// A path from the config, resolved against the project root.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        absolute(&self.root, p)
    }

    /// The project's files (migrations, seeds, env template, compose file), resolved against
    /// its root: the one place that does it.
    pub fn paths(&self) -> Paths {
        let m = &self.file.migrations;
        let s = &self.file.seed;
        Paths {
            root: self.root.clone(),
            compose: self.file.compose.as_deref().map(|p| self.resolve(p)),
            migrations: self.resolve(m.dir.as_deref().unwrap_or(DEFAULT_MIGRATIONS_DIR.as_ref())),
            migrations_named: m.dir.is_some(),
            env_template: self
                .file
                .secrets
                .template
                .as_deref()
                .map(|p| self.resolve(p)),
            seeds: SeedPaths {
                root: self.root.clone(),
                sql: s.sql.iter().map(|p| self.resolve(p)).collect(),
                bucket_dir: s.bucket_dir.as_deref().map(|p| self.resolve(p)),
                bucket: s.bucket.clone(),
                firestore_dir: s.firestore_dir.as_deref().map(|p| self.resolve(p)),
            },
        }
    }

    /// Host address published ports bind to.
    pub fn bind_address(&self) -> &str {
        self.file.bind.as_deref().unwrap_or(DEFAULT_BIND)
    }

    /// Whether the published ports of a `tcp://` engine on another host are relayed to
    /// 127.0.0.1 here: `VIBEDEV_FORWARD` when set, else `[engine] forward`, else off.
    pub fn forward_ports(&self) -> Result<bool, ConfigError> {
        Ok(forward_from_env()?
            .or(self.file.engine.forward)
            .unwrap_or(false))
    }

    /// The project id the emulators serve.
    pub fn gcp_project(&self) -> &str {
        self.file
            .gcp_project
            .as_deref()
            .unwrap_or(DEFAULT_GCP_PROJECT)
    }

    /// A short description of where the config came from, for messages.
    pub fn config_display(&self) -> String {
        match &self.config_path {
            Some(p) => p.display().to_string(),
            None => "built-in defaults (no vibedev.toml found)".to_string(),
        }
    }
}

/// `VIBEDEV_FORWARD` as on or off, when it is set.
pub fn forward_from_env() -> Result<Option<bool>, ConfigError> {
    match std::env::var(FORWARD_VAR) {
        Ok(value) => match parse_flag(&value) {
            Some(on) => Ok(Some(on)),
            None => Err(ConfigError::EnvFlag {
                var: FORWARD_VAR,
                value,
            }),
        },
        Err(_) => Ok(None),
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case; empty is off).
fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "" | "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The first `vibedev.toml` in `start` or one of its ancestors.
pub fn find_config(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(CONFIG_FILE))
        .find(|candidate| candidate.is_file())
}

/// Parses `vibedev.toml` text; errors carry the file, line and column.
pub fn parse_config(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str::<ConfigFile>(text).map_err(|err| {
        let (line, column) = err
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: err.message().trim().to_string(),
        }
    })
}

/// What a config that does not load says about the project name.
#[derive(Debug, PartialEq, Eq)]
enum Lenient {
    Named(String),
    Unset,
    Unreadable,
}

/// The top-level `project` of a config that failed to load: from the TOML when it parses as
/// TOML (an unknown key or a wrong type elsewhere), else from the line setting it before the
/// first table header, when that line is a plain `project = "name"`.
fn lenient_project_name(text: &str) -> Lenient {
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        return match table.get("project") {
            Some(toml::Value::String(name)) => Lenient::Named(name.clone()),
            Some(_) => Lenient::Unreadable,
            None => Lenient::Unset,
        };
    }
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        let Some(rest) = line.strip_prefix("project") else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with('=') {
            continue; // another key, such as `project_id`
        }
        let value = rest[1..].trim();
        let value = value.split_once('#').map_or(value, |(v, _)| v.trim_end());
        let quoted = |q: char| value.strip_prefix(q).and_then(|v| v.strip_suffix(q));
        return match quoted('"').or_else(|| quoted('\'')) {
            Some(name) if !name.contains(['"', '\'', '\\']) => Lenient::Named(name.to_string()),
            _ => Lenient::Unreadable,
        };
    }
    Lenient::Unset
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// A project name that cannot name Docker objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "project name {name:?} is not valid: use 1-48 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
)]
pub struct InvalidProjectName {
    pub name: String,
}

/// Names must make valid Docker object names and stay readable.
pub fn validate_project_name(name: &str) -> Result<(), InvalidProjectName> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 48 || !ok_chars || !ok_start {
        return Err(InvalidProjectName {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// A name for a project without `project = ...`: the folder's name plus a short hash of its
/// full path, so two checkouts with the same folder name never share containers.
pub fn derived_project_name(root: &Path) -> String {
    let base: String = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let base = base.trim_matches(|c| c == '-' || c == '_');
    let base: String = base.chars().take(32).collect();
    let base = if base.is_empty() {
        "vibedev".to_string()
    } else {
        base
    };
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    format!("{base}-{}", &hex::encode(digest)[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = "project = \"demo\"\n\n[services.postgres]\nimage = \"x\"\nimagee = \"y\"\n";
        let err = parse_config(Path::new("/p/vibedev.toml"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/p/vibedev.toml:5:1: "), "{msg}");
        assert!(msg.contains("imagee"), "{msg}");
    }

    #[test]
    fn an_unknown_ports_mode_names_the_choices() {
        let err = parse_config(Path::new("v.toml"), "ports = \"random\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("v.toml:1:9: "), "{msg}");
        assert!(msg.contains("`fixed`") && msg.contains("`auto`"), "{msg}");
    }

    #[test]
    fn on_off_flags_read_as_people_write_them() {
        for on in ["1", "true", "YES", " on "] {
            assert_eq!(parse_flag(on), Some(true), "{on}");
        }
        for off in ["", "0", "False", "no", "off"] {
            assert_eq!(parse_flag(off), Some(false), "{off}");
        }
        assert_eq!(parse_flag("maybe"), None);
    }

    #[test]
    fn syntax_error_names_position() {
        let err = parse_config(Path::new("v.toml"), "project = \n").unwrap_err();
        assert!(err.to_string().starts_with("v.toml:1:"), "{err}");
    }

    #[test]
    fn parses_every_documented_key() {
        let text = r#"
project = "demo"
compose = "compose/docker-compose.yml"
bind = "0.0.0.0"
gcp_project = "demo-local"
ports = "auto"
[services.postgres]
image = "127.0.0.1:5000/pg:15"
ports = ["15432:5432"]
env = { POSTGRES_PASSWORD = "pw" }
ready_timeout = 30
[secrets]
project = "gcp"
template = "t.tmpl"
endpoint = "http://127.0.0.1:1"
[migrations]
dir = "db/migrations"
schema = "meta"
table = "applied"
[seed]
sql = ["seed/a.sql"]
bucket_dir = "seed/bucket"
firestore_dir = "seed/firestore"
[branches]
database = true
firestore = true
default = "trunk"
from = "template"

[engine]
forward = true
"#;
        let cfg = parse_config(Path::new("v.toml"), text).unwrap();
        assert_eq!(cfg.project.as_deref(), Some("demo"));
        assert_eq!(cfg.engine.forward, Some(true));
        assert_eq!(cfg.ports, Some(PortsMode::Auto));
        assert_eq!(cfg.services["postgres"].env["POSTGRES_PASSWORD"], "pw");
        assert_eq!(
            cfg.migrations.dir.as_deref(),
            Some(Path::new("db/migrations"))
        );
        assert_eq!(cfg.seed.sql.len(), 1);
        assert!(cfg.branches.database);
        assert!(cfg.branches.firestore && !cfg.branches.bucket);
        assert_eq!(cfg.branches.default_branch.as_deref(), Some("trunk"));
        assert_eq!(cfg.branches.from, Some(BranchSource::Template));
    }

    #[test]
    fn same_folder_name_different_paths_do_not_collide() {
        let a = derived_project_name(Path::new("/home/a/app"));
        let b = derived_project_name(Path::new("/home/b/app"));
        assert_ne!(a, b);
        assert!(a.starts_with("app-") && b.starts_with("app-"));
        assert!(validate_project_name(&a).is_ok());
        assert_eq!(
            derived_project_name(Path::new("/x/My App!")).len(),
            "my-app-".len() + 6
        );
    }

    #[test]
    fn a_broken_config_still_names_its_project() {
        // Syntax error after the name: the name's line.
        assert_eq!(
            lenient_project_name("project = \"shop\" # ours\ncompose = [\n"),
            Lenient::Named("shop".into())
        );
        assert_eq!(
            lenient_project_name("project='shop'\n[services.redis\n"),
            Lenient::Named("shop".into())
        );
        // Valid TOML with an unknown key: read as TOML.
        assert_eq!(
            lenient_project_name("colour = 1\n[x]\nproject = \"no\"\n"),
            Lenient::Unset
        );
        assert_eq!(
            lenient_project_name("project = \"a\"\nunknown = true\n"),
            Lenient::Named("a".into())
        );
        // A broken file that never sets it: the folder's name applies.
        assert_eq!(lenient_project_name("compose = \n"), Lenient::Unset);
        // The name's own line is what is broken: no guess.
        assert_eq!(
            lenient_project_name("project = \"shop\n"),
            Lenient::Unreadable
        );
        assert_eq!(lenient_project_name("project = 42\n"), Lenient::Unreadable);
        // Under a table header (even a broken one) it is not the top-level key.
        assert_eq!(
            lenient_project_name("[x\nproject = \"a\"\n"),
            Lenient::Unset
        );
    }

    #[test]
    fn invalid_project_names_are_rejected() {
        for bad in ["", "Upper", "-lead", "a b", "x".repeat(49).as_str()] {
            assert!(validate_project_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_project_name("vibe_dev-2").is_ok());
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
