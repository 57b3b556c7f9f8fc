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
    /// Per-service overrides of image, ports and environment, without copying the compose file.
    #[serde(default)]
    pub services: IndexMap<String, ServiceOverride>,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub migrations: MigrationsConfig,
    #[serde(default)]
    pub seed: SeedConfig,
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
                validate_project_name(name).map_err(|message| ConfigError::Invalid {
                    path: config_path.clone().unwrap_or_default(),
                    message,
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

    /// A path from the config, resolved against the project root.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        absolute(&self.root, p)
    }

    /// Host address published ports bind to.
    pub fn bind_address(&self) -> &str {
        self.file.bind.as_deref().unwrap_or(DEFAULT_BIND)
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

/// Names must make valid Docker object names and stay readable.
pub fn validate_project_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 48 || !ok_chars || !ok_start {
        return Err(format!(
            "project name {name:?} is not valid: use 1-48 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        ));
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
"#;
        let cfg = parse_config(Path::new("v.toml"), text).unwrap();
        assert_eq!(cfg.project.as_deref(), Some("demo"));
        assert_eq!(cfg.services["postgres"].env["POSTGRES_PASSWORD"], "pw");
        assert_eq!(
            cfg.migrations.dir.as_deref(),
            Some(Path::new("db/migrations"))
        );
        assert_eq!(cfg.seed.sql.len(), 1);
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
