//! `vibedev secrets pull [--project P] [--dry-run] [--allow-tracked]`: the env template's secrets
//! from Secret Manager into `.env.gcp`, written atomically with mode 0600, or nothing at all.

use std::path::Path;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use std::time::{Duration, Instant};

use crate::cli::{SecretsArgs, SecretsCommand, SecretsPullArgs};
use crate::config::Project;
use crate::envfile::{self, Existing};
use crate::error::{Error, Result};
use crate::git::{self, Ignore};
use crate::secrets::client::{Client, ClientOptions, DEFAULT_ENDPOINT};
use crate::secrets::template::{self, Template};
use crate::secrets::{self, Deadline, ENV_FILE, Event, Reporter, SecretsError, auth, project};
use crate::ui::{self, Ui};

use super::Context;

/// The first header line; a file starting with it was written by vibedev.
const HEADER_FIRST: &str = "Secrets from Google Secret Manager, written by `vibedev secrets pull`. Do not commit this file.";

pub async fn run(ctx: &Context, args: SecretsArgs) -> Result<u8> {
    match args.command {
        SecretsCommand::Pull(args) => pull(ctx, args).await,
    }
}

pub async fn pull(ctx: &Context, args: SecretsPullArgs) -> Result<u8> {
    let started = Instant::now();
    let project = ctx.project()?;
    let deadline = Deadline::after(total_deadline(&project)?);
    let env_path = project.root.join(ENV_FILE);
    let template = load_template(&project)?;
    let (gcp, source) = project::resolve(
        args.project.as_deref(),
        project.file.secrets.project.as_deref(),
        &|k| std::env::var(k).ok(),
    )
    .ok_or(SecretsError::NoProject)?;
    ctx.ui.detail(&format!("GCP project {gcp} (from {source})"));
    ctx.ui
        .detail(&format!("env template: {}", template.source_name));
    let endpoint = endpoint(&project)?;
    let options = client_options()?;
    let existing = read_existing(&env_path)?;
    check_git(&ctx.ui, &project.root, &env_path, args.allow_tracked)?;
    let write_error = |source| SecretsError::Write {
        path: env_path.clone(),
        source,
    };
    let target = envfile::write_target(&env_path).map_err(write_error)?;
    let files_dir = envfile::files_dir(&target);
    if envfile::files_dir_is_ours(&files_dir)
        .map_err(|e| Error::io(format!("cannot read {}", files_dir.display()), e))?
        == Some(false)
    {
        return Err(SecretsError::ForeignFiles { path: files_dir }.into());
    }

    let token = tokio::time::timeout_at(deadline.at, auth::access_token())
        .await
        .map_err(|_| SecretsError::Deadline {
            total: deadline.total,
            waiting: "still waiting for an access token".into(),
        })??;
    let client =
        Client::new(&endpoint, &gcp, token, options).map_err(|source| SecretsError::Client {
            endpoint: endpoint.clone(),
            source,
        })?;
    ctx.ui.detail(&format!(
        "Secret Manager at {endpoint}, up to {} requests at once",
        options.concurrency
    ));
    let progress = Arc::new(Mutex::new(None));
    let pulled = secrets::pull(
        &template,
        &client,
        &files_dir,
        &reporter(&ctx.ui, progress.clone()),
        deadline,
    )
    .await;
    if let Some(bar) = progress.lock().ok().and_then(|mut b| b.take()) {
        bar.finish_and_clear();
    }
    let pulled = pulled?;

    let header = vec![
        HEADER_FIRST.to_string(),
        format!(
            "project: {gcp}; template: {}; written: {}",
            template.source_name,
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        ),
        "Lines above the local-overrides marker are replaced by every pull. Lines below it are kept".into(),
        "and win over the pulled values (the last definition of a key wins).".into(),
    ];
    let text = envfile::render(&header, &pulled.lines, existing.overrides.as_deref());
    let diff = secrets::diff(
        &existing.managed_vars(),
        &Existing::parse(&text).managed_vars(),
    );
    let summary = format!(
        "{} added, {} changed, {} removed",
        diff.added.len(),
        diff.changed.len(),
        diff.removed.len()
    );
    if args.dry_run {
        for key in &diff.added {
            ctx.ui.out(&format!("+ {key}"));
        }
        for key in &diff.changed {
            ctx.ui.out(&format!("~ {key}"));
        }
        for key in &diff.removed {
            ctx.ui.out(&format!("- {key}"));
        }
        ctx.ui.out(&format!(
            "dry run: {summary}, {} unchanged; {} not written",
            diff.unchanged,
            env_path.display()
        ));
        return Ok(0);
    }
    let files: Vec<(&str, &[u8])> = pulled
        .files
        .iter()
        .map(|(name, data)| (name.as_str(), data.as_bytes()))
        .collect();
    envfile::write_with_files(&target, text.as_bytes(), &files).map_err(write_error)?;
    let shown = if target == env_path {
        env_path.display().to_string()
    } else {
        format!("{} (a link to {})", env_path.display(), target.display())
    };
    ctx.ui.out(&format!(
        "wrote {shown}: {} variables{}, {} secrets from project {gcp} ({summary}) in {}",
        pulled.lines.len(),
        if files.is_empty() {
            String::new()
        } else {
            format!(
                " and {} in {}",
                ui::count(files.len(), "file", "files"),
                files_dir.display()
            )
        },
        pulled.fetched,
        ui::secs(started.elapsed())
    ));
    if !pulled.slow.is_empty() {
        let list: Vec<String> = pulled
            .slow
            .iter()
            .map(|(secret, took)| format!("{secret} {}", ui::secs(*took)))
            .collect();
        ctx.ui.info(&format!(
            "slow: {} (over {} each, retries included)",
            list.join(", "),
            ui::secs(secrets::SLOW)
        ));
    }
    Ok(0)
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
fn load_template(project: &Project) -> Result<Template, SecretsError> {
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
fn read_existing(path: &Path) -> Result<Existing> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let Ok(text) = String::from_utf8(text) else {
        return Err(SecretsError::Foreign {
            path: path.to_path_buf(),
        }
        .into());
    };
    let existing = Existing::parse(&text);
    let ours = text.starts_with(&format!("# {HEADER_FIRST}"));
    if !ours && existing.overrides.is_none() && !text.trim().is_empty() {
        return Err(SecretsError::Foreign {
            path: path.to_path_buf(),
        }
        .into());
    }
    Ok(existing)
}

/// Refuses a file git tracks (unless allowed) and warns about one git does not ignore.
fn check_git(ui: &Ui, root: &Path, path: &Path, allow_tracked: bool) -> Result<(), SecretsError> {
    if git::inside_work_tree(root) != Some(true) {
        ui.detail("not in a git work tree: skipping the git checks");
        return Ok(());
    }
    if git::is_tracked(root, ENV_FILE) {
        if !allow_tracked {
            return Err(SecretsError::Tracked {
                path: path.to_path_buf(),
            });
        }
        ui.warn(&format!(
            "{} is tracked by git (--allow-tracked): do not commit it",
            path.display()
        ));
        return Ok(());
    }
    if git::ignored(root, ENV_FILE) == Some(Ignore::NotIgnored) {
        ui.warn(&format!(
            "{ENV_FILE} is not git-ignored: add the line `{ENV_FILE}` to {}",
            root.join(".gitignore").display()
        ));
    }
    Ok(())
}

/// Pull progress: an `n/N secrets` counter on a terminal, detail lines with --verbose (names
/// and versions only). The counter is left in `bar` for the caller to clear.
fn reporter(ui: &Ui, bar: Arc<Mutex<Option<ProgressBar>>>) -> Reporter {
    let ui = ui.clone();
    Arc::new(move |event| match event {
        Event::Fetching { secrets } => {
            if let Some(counter) = ui.counter(secrets as u64, "secrets")
                && let Ok(mut slot) = bar.lock()
            {
                *slot = Some(counter);
            }
        }
        Event::Listed {
            filter,
            secrets,
            pages,
        } => ui.detail(&format!(
            "filter {filter:?}: {secrets} secrets ({pages} page{})",
            if pages == 1 { "" } else { "s" }
        )),
        Event::Fetched {
            secret, version, ..
        } => {
            if let Ok(slot) = bar.lock()
                && let Some(counter) = slot.as_ref()
            {
                counter.inc(1);
            }
            ui.detail(&format!("fetched {secret} (version {version})"))
        }
        Event::Retrying {
            what,
            attempt,
            delay,
            reason,
        } => ui.detail(&format!(
            "retrying {what} in {} after try {attempt}: {reason}",
            ui::secs(delay)
        )),
        Event::Shadowed { key, secret } => ui.detail(&format!(
            "{key}: the explicit line wins over secret {secret} matched by a filter"
        )),
    })
}
