//! The files `vibedev init` writes into a project: the built-in defaults (config starter, compose
//! file, env template, a `.gitignore` line), each written atomically and never over an existing one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::compose::DEFAULT_COMPOSE;
use crate::config::parse_config;
use crate::git::{self, Ignore};

/// The starter `vibedev.toml`: every key, commented and explained.
pub const CONFIG_TEMPLATE: &str = include_str!("../templates/vibedev.toml");

/// The built-in env template `vibedev secrets pull` fills. The one place that names it here, so it
/// can point at the secrets module's own constant once that exists.
pub const ENV_TEMPLATE: &str = crate::secrets::template::BUILTIN;

/// Where `init` puts the compose file (the starter config points here).
pub const COMPOSE_PATH: &str = "compose/docker-compose.yml";
/// Where `init` puts the env template (the starter config points here).
pub const ENV_TEMPLATE_PATH: &str = "templates/env.gcp.tmpl";
/// The secrets file `vibedev secrets pull` writes beside `vibedev.toml`.
pub const ENV_FILE: &str = ".env.gcp";

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Created with the built-in content.
    Written,
    /// Already there: left exactly as it was.
    Kept,
    /// A line was added at the end.
    Appended,
}

/// One file `init` handled, relative to the project root, with a note for the user when there is
/// something to know (why it was kept, what to change by hand).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    pub path: PathBuf,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// A file `init` could not write.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct InitError {
    /// The project folder `init` writes into.
    pub root: PathBuf,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes every default that is missing under `root`; keeps what exists. `config` is the config
/// file's name under `root` (`vibedev.toml` unless `--config` names another).
pub fn init(root: &Path, config: &Path) -> Result<Vec<Item>, InitError> {
    // One after the other: a failure stops there, and what was written so far stays valid.
    Ok(vec![
        config_file(root, config)?,
        write_new(root, Path::new(COMPOSE_PATH), DEFAULT_COMPOSE)?,
        write_new(root, Path::new(ENV_TEMPLATE_PATH), ENV_TEMPLATE)?,
        gitignore(root)?,
    ])
}

fn config_file(root: &Path, config: &Path) -> Result<Item, InitError> {
    let mut item = write_new(root, config, CONFIG_TEMPLATE)?;
    if item.outcome == Outcome::Kept {
        item.note = kept_config_note(&root.join(config));
    }
    Ok(item)
}

/// What a kept `vibedev.toml` would need to use the files `init` writes.
fn kept_config_note(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let file = match parse_config(path, &text) {
        Ok(file) => file,
        Err(e) => return Some(format!("it does not parse: {e}")),
    };
    let mut missing = Vec::new();
    if file.compose.is_none() {
        missing.push(format!("compose = \"{COMPOSE_PATH}\""));
    }
    if file.secrets.template.is_none() {
        missing.push(format!(
            "template = \"{ENV_TEMPLATE_PATH}\" under [secrets]"
        ));
    }
    (!missing.is_empty()).then(|| {
        format!(
            "it uses vibedev's built-in files; to use the project's copies add {}",
            missing.join(" and ")
        )
    })
}

/// Creates `rel` under `root` with `contents` unless something is already there. The content goes
/// to a temporary file in the same folder first and is linked into place only if the name is
/// still free, so there is never a half-written file and never an overwrite.
fn write_new(root: &Path, rel: &Path, contents: &str) -> Result<Item, InitError> {
    let path = root.join(rel);
    let err = |source| InitError {
        root: root.to_path_buf(),
        path: path.clone(),
        source,
    };
    if path.symlink_metadata().is_ok() {
        return Ok(Item {
            path: rel.to_path_buf(),
            outcome: Outcome::Kept,
            note: None,
        });
    }
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".vibedev-init-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(contents.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // Ordinary project files: readable like the files around them, not 0600 like a temp file.
    set_mode(tmp.path(), 0o644).map_err(err)?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(Item {
            path: rel.to_path_buf(),
            outcome: Outcome::Written,
            note: None,
        }),
        // Created meanwhile by someone else: theirs stays.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(Item {
            path: rel.to_path_buf(),
            outcome: Outcome::Kept,
            note: None,
        }),
        Err(e) => Err(err(e.error)),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// True when a `.gitignore` line ignores exactly `.env.gcp` at the root.
pub fn gitignore_has_env_line(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|l| l == ENV_FILE || l == format!("/{ENV_FILE}"))
}

/// Adds `.env.gcp` to the project's `.gitignore` unless it is already ignored.
fn gitignore(root: &Path) -> Result<Item, InitError> {
    let rel = PathBuf::from(".gitignore");
    let path = root.join(&rel);
    let err = |source| InitError {
        root: root.to_path_buf(),
        path: path.clone(),
        source,
    };
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    if let Some(text) = &existing {
        if gitignore_has_env_line(text) {
            return Ok(Item {
                path: rel,
                outcome: Outcome::Kept,
                note: Some(format!("it already ignores {ENV_FILE}")),
            });
        }
        if let Some(Ignore::Ignored { by: pattern }) = git::ignored(root, ENV_FILE) {
            return Ok(Item {
                path: rel,
                outcome: Outcome::Kept,
                note: Some(format!("{ENV_FILE} is already ignored by {pattern}")),
            });
        }
    }
    let Some(text) = existing else {
        let mut item = write_new(root, &rel, &format!("{ENV_FILE}\n"))?;
        if item.outcome == Outcome::Kept {
            // Appeared between the read and the write: try again as an append.
            return gitignore(root);
        }
        item.note = Some(format!("ignores {ENV_FILE}"));
        return Ok(item);
    };
    let line = if text.is_empty() || text.ends_with('\n') {
        format!("{ENV_FILE}\n")
    } else {
        format!("\n{ENV_FILE}\n")
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(err)?;
    file.write_all(line.as_bytes()).map_err(err)?;
    Ok(Item {
        path: rel,
        outcome: Outcome::Appended,
        note: Some(format!("added {ENV_FILE}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CONFIG_FILE, Project};
    use crate::stack::Stack;

    #[test]
    fn starter_config_parses_and_points_at_the_written_files() {
        let cfg = parse_config(Path::new("vibedev.toml"), CONFIG_TEMPLATE).unwrap();
        assert_eq!(cfg.compose.as_deref(), Some(Path::new(COMPOSE_PATH)));
        assert_eq!(
            cfg.secrets.template.as_deref(),
            Some(Path::new(ENV_TEMPLATE_PATH))
        );
    }

    #[test]
    fn every_commented_key_of_the_starter_parses_when_uncommented() {
        // Uncomment `# key = value` lines and `# [table]` headers: the result must still parse,
        // so every key the starter documents is one config.rs accepts.
        let uncommented: String = CONFIG_TEMPLATE
            .lines()
            .map(|l| {
                let rest = l.strip_prefix("# ").unwrap_or(l);
                let is_setting = rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    });
                if l.starts_with("# ") && is_setting {
                    rest.to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = parse_config(Path::new("vibedev.toml"), &uncommented)
            .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(cfg.project.as_deref(), Some("myapp"));
        assert_eq!(cfg.services["postgres"].ready_timeout, Some(60));
        assert_eq!(
            cfg.migrations.table.as_deref(),
            Some("__drizzle_migrations")
        );
        assert_eq!(cfg.seed.bucket.as_deref(), Some("vibesdk-templates"));
    }

    #[test]
    fn init_writes_a_project_whose_stack_resolves_from_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let items = init(dir.path(), Path::new(CONFIG_FILE)).unwrap();
        assert!(
            items.iter().all(|i| i.outcome == Outcome::Written),
            "{items:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            ".env.gcp\n"
        );
        let project = Project {
            root: dir.path().to_path_buf(),
            config_path: Some(dir.path().join(CONFIG_FILE)),
            file: parse_config(Path::new("v"), CONFIG_TEMPLATE).unwrap(),
            name: "demo".into(),
        };
        let stack = Stack::resolve(&project).unwrap();
        assert_eq!(
            stack.source,
            crate::compose::ComposeSource::File(dir.path().join(COMPOSE_PATH))
        );
        assert_eq!(stack.services.len(), 4);
    }

    #[test]
    fn init_keeps_existing_files_and_appends_the_ignore_line_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "project = \"mine\"\n").unwrap();
        std::fs::write(dir.path().join(".gitignore"), "node_modules").unwrap();
        let items = init(dir.path(), Path::new(CONFIG_FILE)).unwrap();
        assert_eq!(items[0].outcome, Outcome::Kept);
        let note = items[0].note.as_deref().unwrap();
        assert!(
            note.contains("compose = \"compose/docker-compose.yml\""),
            "{note}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap(),
            "project = \"mine\"\n"
        );
        assert_eq!(items[3].outcome, Outcome::Appended);
        let again = init(dir.path(), Path::new(CONFIG_FILE)).unwrap();
        assert!(
            again.iter().all(|i| i.outcome == Outcome::Kept),
            "{again:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            "node_modules\n.env.gcp\n"
        );
    }

    #[test]
    fn ignore_line_is_recognised_with_or_without_leading_slash() {
        assert!(gitignore_has_env_line("a\n/.env.gcp\n"));
        assert!(gitignore_has_env_line("  .env.gcp  "));
        assert!(!gitignore_has_env_line(".env.gcp.bak\n# .env.gcp"));
    }
}
