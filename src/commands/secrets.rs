//! `vibedev secrets pull [--project P] [--dry-run] [--allow-tracked]`: the env template's secrets
//! from Secret Manager into `.env.gcp`, written atomically with mode 0600, or nothing at all.
//! `vibedev secrets diff [--json] [--exit-code]`: where each variable stands, no value shown.

use std::sync::{Arc, Mutex};

use crate::cli::{SecretsArgs, SecretsCommand, SecretsDiffArgs, SecretsPullArgs};
use crate::error::{Exit, Result};
use crate::secrets::status::{self, SecretsStatus, State};
use crate::secrets::sync::{self, PullOptions};
use crate::ui;

use super::Context;
use super::report::secrets_reporter;

pub async fn run(ctx: &Context, args: SecretsArgs) -> Result<u8> {
    match args.command {
        SecretsCommand::Pull(args) => pull(ctx, args).await,
        SecretsCommand::Diff(args) => diff(ctx, args).await,
    }
}

async fn pull(ctx: &Context, args: SecretsPullArgs) -> Result<u8> {
    let project = ctx.project()?;
    let options = PullOptions {
        project: args.project,
        dry_run: args.dry_run,
        allow_tracked: args.allow_tracked,
    };
    let progress = Arc::new(Mutex::new(None));
    let outcome = sync::pull_project(
        &project,
        &options,
        &secrets_reporter(&ctx.ui, progress.clone()),
    )
    .await;
    if let Some(bar) = progress.lock().ok().and_then(|mut b| b.take()) {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    if outcome.dry_run {
        let diff = &outcome.diff;
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
            "dry run: {}, {} unchanged; {} not written",
            outcome.counts(),
            diff.unchanged,
            outcome.env_path.display()
        ));
        return Ok(0);
    }
    ctx.ui.out(&outcome.wrote_line());
    if let Some(slow) = outcome.slow_line() {
        ctx.ui.info(&slow);
    }
    Ok(0)
}

async fn diff(ctx: &Context, args: SecretsDiffArgs) -> Result<u8> {
    let project = ctx.project()?;
    let progress = Arc::new(Mutex::new(None));
    let status = status::diff_project(
        &project,
        args.project.as_deref(),
        &secrets_reporter(&ctx.ui, progress.clone()),
    )
    .await;
    if let Some(bar) = progress.lock().ok().and_then(|mut b| b.take()) {
        bar.finish_and_clear();
    }
    let status = status?;
    if args.json {
        ctx.ui
            .out(&serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        let rows: Vec<Vec<String>> = status
            .variables
            .iter()
            .map(|v| {
                vec![
                    v.key.clone(),
                    v.secret.clone().unwrap_or_else(|| "-".into()),
                    describe(&v.state),
                ]
            })
            .collect();
        for line in ctx.ui.table(&["variable", "secret", "state"], &rows) {
            ctx.ui.out(&line);
        }
        ctx.ui.out(&summary(&status));
    }
    Ok(if args.exit_code && !status.in_sync {
        Exit::SecretsOutOfSync.code()
    } else {
        0
    })
}

/// One variable's state in words (names and version numbers only).
fn describe(state: &State) -> String {
    state.describe()
}

/// `all 4 variables in sync ...` or the counts per state and the way to fix them.
fn summary(status: &SecretsStatus) -> String {
    let age = status.written.map_or(String::new(), |t| {
        let age = (chrono::Utc::now() - t).to_std().unwrap_or_default();
        format!(", written {} ago", ui::uptime(age))
    });
    let total = status.variables.len();
    if status.in_sync {
        return format!(
            "{} in sync with project {} ({}{age})",
            if total == 1 {
                "the variable is".to_string()
            } else {
                format!("all {total} variables are")
            },
            status.project,
            status.env_file.display()
        );
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in &status.variables {
        let name = v.state.name();
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    format!(
        "{}: {} is not in sync with project {}{age}; `vibedev secrets pull` brings it in step (no-access, missing and disabled secrets need fixing in Secret Manager first)",
        counts.join(", "),
        status.env_file.display(),
        status.project
    )
}
