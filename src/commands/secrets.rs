//! `vibedev secrets pull [--project P] [--dry-run] [--allow-tracked]`: the env template's secrets
//! from Secret Manager into `.env.gcp`, written atomically with mode 0600, or nothing at all.

use std::sync::{Arc, Mutex};

use crate::cli::{SecretsArgs, SecretsCommand, SecretsPullArgs};
use crate::error::Result;
use crate::secrets::sync::{self, PullOptions};

use super::Context;
use super::report::secrets_reporter;

pub async fn run(ctx: &Context, args: SecretsArgs) -> Result<u8> {
    match args.command {
        SecretsCommand::Pull(args) => pull(ctx, args).await,
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
