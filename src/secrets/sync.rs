//! A project's `.env.gcp` against Secret Manager: the settings a pull resolves (GCP project,
//! template, endpoint, deadline), and the pull itself from template to file, reported through
//! events and returned as a typed outcome for the commands to show.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Project;
use crate::envfile::{self, Existing};
use crate::git::{self, Ignore};

use super::client::{Client, ClientOptions, DEFAULT_ENDPOINT};
use super::records::{self, MachineKey};
use super::template::{self, Template};
use super::{Deadline, Diff, ENV_FILE, Event, Reporter, SecretsError, auth, project};

/// The first header line; a file starting with it was written by vibedev.
pub const HEADER_FIRST: &str = "Secrets from Google Secret Manager, written by `vibedev secrets pull`. Do not commit this file.";

/// What the caller of a pull chose.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--project`: the GCP project, over every other source.
    pub project: Option<String>,
    /// Compute what would change and write nothing.
    pub dry_run: bool,
    /// Write `.env.gcp` even though git tracks it.
    pub allow_tracked: bool,
}

/// What a pull did (or, dry, would do). Names, counts and paths only.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// `.env.gcp` beside the config.
    pub env_path: PathBuf,
    /// The file written: `env_path`, or the final target when it is a symbolic link.
    pub target: PathBuf,
    /// Where `file="..."` secrets went.
    pub files_dir: PathBuf,
    /// The GCP project read.
    pub gcp: String,
    /// Variables written.
    pub variables: usize,
    /// Files written into `files_dir`.
    pub files: usize,
    /// Secret versions fetched.
    pub fetched: usize,
    /// Keys added, changed and removed against the file as it was.
    pub diff: Diff,
    /// Secrets that took [`super::SLOW`] or longer, slowest first.
    pub slow: Vec<(String, Duration)>,
    /// Nothing was written.
    pub dry_run: bool,
    pub elapsed: Duration,
}

impl PullOutcome {
    /// `3 added, 1 changed, 0 removed`.
    pub fn counts(&self) -> String {
        format!(
            "{} added, {} changed, {} removed",
            self.diff.added.len(),
            self.diff.changed.len(),
            self.diff.removed.len()
        )
    }

    /// `wrote .env.gcp: 4 variables, 3 secrets from project P (3 added, 0 changed, 0 removed) in 0.21s`
    pub fn wrote_line(&self) -> String {
        let shown = if self.target == self.env_path {
            self.env_path.display().to_string()
        } else {
            format!(
                "{} (a link to {})",
                self.env_path.display(),
                self.target.display()
            )
        };
        format!(
            "wrote {shown}: {} variables{}, {} secrets from project {} ({}) in {}",
            self.variables,
            if self.files == 0 {
                String::new()
            } else {
                format!(
                    " and {} in {}",
                    crate::text::count(self.files, "file", "files"),
                    self.files_dir.display()
                )
            },
            self.fetched,
            self.gcp,
            self.counts(),
            crate::text::secs(self.elapsed)
        )
    }

    /// `slow: a 1.20s, b 1.05s (over 1.00s each, retries included)`, when some were.
    pub fn slow_line(&self) -> Option<String> {
        if self.slow.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .slow
            .iter()
            .map(|(secret, took)| format!("{secret} {}", crate::text::secs(*took)))
            .collect();
        Some(format!(
            "slow: {} (over {} each, retries included)",
            list.join(", "),
            crate::text::secs(super::SLOW)
        ))
    }
}

/// Everything a pull or a diff needs before its first request: the template, the GCP project
/// and where Secret Manager is, resolved from flags, environment and config.
pub struct Settings {
    pub template: Template,
    pub gcp: String,
    pub endpoint: String,
    pub options: ClientOptions,
    pub deadline: Deadline,
    pub env_path: PathBuf,
}

impl Settings {
    /// Resolves the settings (the deadline starts now) and reports what was chosen.
    pub fn resolve(
        project: &Project,
        flag_project: Option<&str>,
        report: &Reporter,
    ) -> Result<Settings, SecretsError> {
        let deadline = Deadline::after(total_deadline(project)?);
        let template = load_template(project)?;
        let (gcp, source) = project::resolve(
            flag_project,
            project.file.secrets.project.as_deref(),
            &|k| std::env::var(k).ok(),
        )
        .ok_or(SecretsError::NoProject)?;
        report(Event::Resolved {
            gcp: gcp.clone(),
            source: source.to_string(),
            template: template.source_name.clone(),
        });
        Ok(Settings {
            endpoint: endpoint(project)?,
            options: client_options()?,
            template,
            gcp,
            deadline,
            env_path: project.root.join(ENV_FILE),
        })
    }

    /// An access token and a client for the project, within the deadline.
    pub async fn connect(&self, report: &Reporter) -> Result<Client, SecretsError> {
        let token = tokio::time::timeout_at(self.deadline.at, auth::access_token())
            .await
            .map_err(|_| SecretsError::Deadline {
                total: self.deadline.total,
                waiting: "still waiting for an access token".into(),
            })??;
        let client =
            Client::new(&self.endpoint, &self.gcp, token, self.options).map_err(|source| {
                SecretsError::Client {
                    endpoint: self.endpoint.clone(),
                    source,
                }
            })?;
        report(Event::Connected {
            endpoint: self.endpoint.clone(),
            concurrency: self.options.concurrency,
        });
        Ok(client)
    }
}

/// Pulls the project's secrets into `.env.gcp` (all or nothing), or with `dry_run` only
/// computes what would change.
pub async fn pull_project(
    project: &Project,
    options: &PullOptions,
    report: &Reporter,
) -> Result<PullOutcome, SecretsError> {
    let started = Instant::now();
    let settings = Settings::resolve(project, options.project.as_deref(), report)?;
    let env_path = settings.env_path.clone();
    let existing = read_existing(&env_path)?;
    check_git(report, &project.root, &env_path, options.allow_tracked)?;
    let write_error = |source| SecretsError::Write {
        path: env_path.clone(),
        source,
    };
    let target = envfile::write_target(&env_path).map_err(write_error)?;
    let files_dir = envfile::files_dir(&target);
    let ours = envfile::files_dir_is_ours(&files_dir).map_err(|source| SecretsError::Read {
        path: files_dir.clone(),
        source,
    })?;
    if ours == Some(false) {
        return Err(SecretsError::ForeignFiles { path: files_dir });
    }
    let machine_key = MachineKey::load_or_create()?;
    let client = settings.connect(report).await?;
    let pulled = super::pull(
        &settings.template,
        &client,
        &files_dir,
        &machine_key,
        report,
        settings.deadline,
    )
    .await?;
    report(Event::Done);

    let mut header = header(&settings.gcp, &settings.template.source_name);
    header.extend(records::header_lines(&machine_key, &pulled.records));
    let text = envfile::render(&header, &pulled.lines, existing.overrides.as_deref());
    let diff = super::diff(
        &existing.managed_vars(),
        &Existing::parse(&text).managed_vars(),
    );
    let files: Vec<(&str, &[u8])> = pulled
        .files
        .iter()
        .map(|(name, data)| (name.as_str(), data.as_bytes()))
        .collect();
    if !options.dry_run {
        envfile::write_with_files(&target, text.as_bytes(), &files).map_err(write_error)?;
    }
    Ok(PullOutcome {
        env_path: env_path.clone(),
        target,
        files_dir,
        gcp: settings.gcp,
        variables: pulled.lines.len(),
        files: files.len(),
        fetched: pulled.fetched,
        diff,
        slow: pulled.slow,
        dry_run: options.dry_run,
        elapsed: started.elapsed(),
    })
}

/// The comment lines at the top of `.env.gcp`.
fn header(gcp: &str, template: &str) -> Vec<String> {
    vec![
        HEADER_FIRST.to_string(),
        format!(
            "project: {gcp}; template: {template}; written: {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        ),
        "Lines above the local-overrides marker are replaced by every pull. Lines below it are kept"
            .into(),
        "and win over the pulled values (the last definition of a key wins).".into(),
    ]
}

/// The whole pull's deadline: `VIBEDEV_SECRETS_DEADLINE`, then `[secrets] deadline`, then 60 s;
/// seconds up to 3600, 0 for none.
fn total_deadline(project: &Project) -> Result<Option<Duration>, SecretsError> {
    const DEFAULT: Duration = Duration::from_secs(60);
    const MAX: f64 = 3600.0;
    let secs = match std::env::var("VIBEDEV_SECRETS_DEADLINE") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=MAX).contains(s))
            .ok_or_else(|| SecretsError::BadSetting {
                variable: "VIBEDEV_SECRETS_DEADLINE",
                value: v.clone(),
                allowed: "a number of seconds from 0 to 3600 (0: no deadline)",
                otherwise: "[secrets] deadline or the default of 60 seconds",
            })?,
        Err(_) => match project.file.secrets.deadline {
            Some(s) if s as f64 <= MAX => s as f64,
            Some(secs) => return Err(SecretsError::DeadlineTooLong { secs }),
            None => return Ok(Some(DEFAULT)),
        },
    };
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

/// The config's template, or the built-in one.
pub fn load_template(project: &Project) -> Result<Template, SecretsError> {
    match &project.file.secrets.template {
        Some(rel) => {
            let path = project.resolve(rel);
            let text =
                std::fs::read_to_string(&path).map_err(|source| SecretsError::TemplateRead {
                    path: path.clone(),
                    source,
                })?;
            let name = path
                .strip_prefix(&project.root)
                .unwrap_or(&path)
                .display()
                .to_string();
            Ok(template::parse(&name, &text)?)
        }
        None => Ok(template::parse(
            "built-in (templates/env.gcp.tmpl)",
            template::BUILTIN,
        )?),
    }
}

/// `VIBEDEV_SECRET_MANAGER_ENDPOINT`, then `[secrets] endpoint`, then Google's.
fn endpoint(project: &Project) -> Result<String, SecretsError> {
    let url = std::env::var("VIBEDEV_SECRET_MANAGER_ENDPOINT")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| project.file.secrets.endpoint.clone())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let url = url.trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(char::is_whitespace)
    {
        return Err(SecretsError::BadEndpoint { endpoint: url });
    }
    Ok(url)
}

/// Tuning from the environment: `VIBEDEV_SECRETS_CONCURRENCY` (1-256) and
/// `VIBEDEV_SECRETS_TIMEOUT` (seconds per request, 0-600; 0 means no per-request limit).
fn client_options() -> Result<ClientOptions, SecretsError> {
    let mut options = ClientOptions::default();
    if let Ok(v) = std::env::var("VIBEDEV_SECRETS_CONCURRENCY") {
        options.concurrency = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| SecretsError::BadSetting {
                variable: "VIBEDEV_SECRETS_CONCURRENCY",
                value: v.clone(),
                allowed: "a number from 1 to 256",
                otherwise: "the default of 32",
            })?;
    }
    if let Ok(v) = std::env::var("VIBEDEV_SECRETS_TIMEOUT") {
        options.timeout = request_timeout(&v).ok_or_else(|| SecretsError::BadSetting {
            variable: "VIBEDEV_SECRETS_TIMEOUT",
            value: v.clone(),
            allowed: "a number of seconds from 0 to 600 (0: no per-request limit)",
            otherwise: "the default of 30 seconds",
        })?;
    }
    Ok(options)
}

/// `VIBEDEV_SECRETS_TIMEOUT`: seconds from 0 to 600, where 0 turns the per-request limit off;
/// `None` when the text is not such a number.
fn request_timeout(text: &str) -> Option<Option<Duration>> {
    let secs = text.trim().parse::<f64>().ok()?;
    if secs == 0.0 {
        return Some(None);
    }
    (secs > 0.0 && secs <= 600.0).then(|| Some(Duration::from_secs_f64(secs)))
}

/// The current file split at the overrides marker (empty when there is none). A non-empty file
/// vibedev did not write, without the marker, is refused rather than overwritten.
pub fn read_existing(path: &Path) -> Result<Existing, SecretsError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(source) => {
            return Err(SecretsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let Ok(text) = String::from_utf8(text) else {
        return Err(SecretsError::Foreign {
            path: path.to_path_buf(),
        });
    };
    let existing = Existing::parse(&text);
    let ours = text.starts_with(&format!("# {HEADER_FIRST}"));
    if !ours && existing.overrides.is_none() && !text.trim().is_empty() {
        return Err(SecretsError::Foreign {
            path: path.to_path_buf(),
        });
    }
    Ok(existing)
}

/// Refuses a file git tracks (unless allowed) and reports one git does not ignore.
fn check_git(
    report: &Reporter,
    root: &Path,
    path: &Path,
    allow_tracked: bool,
) -> Result<(), SecretsError> {
    if git::inside_work_tree(root) != Some(true) {
        report(Event::NoGitWorkTree);
        return Ok(());
    }
    if git::is_tracked(root, ENV_FILE) {
        if !allow_tracked {
            return Err(SecretsError::Tracked {
                path: path.to_path_buf(),
            });
        }
        report(Event::TrackedAllowed {
            path: path.to_path_buf(),
        });
        return Ok(());
    }
    if git::ignored(root, ENV_FILE) == Some(Ignore::NotIgnored) {
        report(Event::NotIgnored {
            gitignore: root.join(".gitignore"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_are_seconds_up_to_600_or_0_for_none() {
        assert_eq!(request_timeout("0"), Some(None));
        assert_eq!(
            request_timeout(" 2.5 "),
            Some(Some(Duration::from_millis(2500)))
        );
        assert_eq!(request_timeout("601"), None);
        assert_eq!(request_timeout("-1"), None);
        assert_eq!(request_timeout("soon"), None);
    }
}
