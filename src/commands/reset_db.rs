//! `vibedev reset-db [--yes] [--no-seed] [--all] [--no-template]`: replace the app database with a
//! clean, migrated, seeded one (cloned from a template), and with --all the other stores too.

use std::io::IsTerminal;
use std::time::Instant;

use crate::cli::ResetDbArgs;
use crate::config::Project;
use crate::error::{EXIT_FAILURE, Error, Result};
use crate::migrate;
use crate::migrate::seed::SeedFile;
use crate::migrate::template::{self, ResetOptions, Source};
use crate::services::targets::Targets;
use crate::services::{firestore, gcs, redis};
use crate::ui::{self, Ui};

use super::Context;
use super::migrate::{DataConfig, locate, reporter, require_postgres, service_label};
use super::seed::{seed_bucket, seed_firestore, seed_reporter};

pub async fn run(ctx: &Context, args: ResetDbArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let config = DataConfig::new(&project);
    // Read everything first: a broken journal or seed file must not cost the database.
    let journal = config.journal(config.migrations_dir_set)?;
    let seeds = if args.no_seed {
        Vec::new()
    } else {
        SeedFile::load_all(&config.seed_sql, &config.root)?
    };
    let targets = locate(ctx, &stack).await?;
    let pg = require_postgres(&targets)?;
    let options = ResetOptions {
        journal: journal.as_ref(),
        seeds: &seeds,
        migrate: config.options(false),
        use_template: !args.no_template,
    };
    if args.prepare_spare {
        template::prepare_spare(pg, &options, &migrate::silent()).await?;
        return Ok(0);
    }
    let what = if seeds.is_empty() {
        "a clean, migrated one"
    } else {
        "a clean, migrated and seeded one"
    };
    if !args.yes && !confirm(&ctx.ui, &project.name, &pg.app.database, what, args.all).await? {
        ctx.ui.info("nothing was changed");
        return Ok(EXIT_FAILURE);
    }
    let _lock = ctx.lock(&stack.project, "reset-db").await?;
    let start = Instant::now();
    let database = async {
        let report = reporter(&ctx.ui, "postgres");
        Ok::<_, Error>(template::reset(pg, &options, &report).await?)
    };
    let others = async {
        if args.all {
            reset_other_stores(&ctx.ui, &config, &targets, !args.no_seed).await
        } else {
            Ok(())
        }
    };
    let (outcome, others) = tokio::join!(database, others);
    let outcome = outcome?;
    others?;
    if outcome.source != Source::Direct {
        spawn_prepare_spare(&project, args.no_seed);
    }
    let how = match &outcome.source {
        Source::Spare { .. } => "from a prepared copy of the template".to_string(),
        Source::Template { .. } => "from the template".to_string(),
        Source::RebuiltTemplate { .. } => "template rebuilt".to_string(),
        Source::Direct => "without template".to_string(),
    };
    let migrations = journal.as_ref().map_or(0, |j| j.migrations.len());
    let seeded = match seeds.len() {
        0 => String::new(),
        n => format!(", {n} seed file{}", if n == 1 { "" } else { "s" }),
    };
    ctx.ui.out(&format!(
        "{}: reset in {} ({how}; {migrations} migrations{seeded})",
        pg.app.database,
        ui::secs(outcome.elapsed)
    ));
    if args.all {
        ctx.ui.out(&format!(
            "all stores reset in {}",
            ui::secs(start.elapsed())
        ));
    }
    Ok(0)
}

/// Starts `vibedev reset-db --prepare-spare` in the background, detached from this process and
/// its terminal, so the next reset finds a copy of the template ready to swap in. Best effort:
/// without a spare, the next reset clones the template itself.
fn spawn_prepare_spare(project: &Project, no_seed: bool) {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = Command::new(exe);
    if let Some(config) = &project.config_path {
        cmd.arg("--config").arg(config);
    }
    cmd.args(["--quiet", "reset-db", "--prepare-spare"]);
    if no_seed {
        cmd.arg("--no-seed");
    }
    let _ = cmd
        .current_dir(&project.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

/// Asks on a terminal; refuses without one.
async fn confirm(ui: &Ui, project: &str, database: &str, what: &str, all: bool) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::failed(
            format!(
                "reset-db replaces database {database:?} and needs confirmation, but there is no terminal to ask on"
            ),
            Some("pass --yes to confirm (scripts, CI)".into()),
        ));
    }
    let also = if all {
        ", and empty Redis, the Firestore emulator and the buckets"
    } else {
        ""
    };
    let question = format!("Replace database {database:?} of {project} with {what}{also}?");
    let ui = ui.clone();
    tokio::task::spawn_blocking(move || ui.confirm(&question))
        .await
        .map_err(|e| Error::failed(format!("cannot ask for confirmation: {e}"), None))?
        .map_err(|e| Error::io("cannot read the answer", e))
}

/// `--all`: empties Redis, resets the Firestore emulator and the buckets, then reseeds them.
/// Stores whose service is not running are skipped with a warning.
async fn reset_other_stores(
    ui: &Ui,
    config: &DataConfig,
    targets: &Targets,
    reseed: bool,
) -> Result<()> {
    let skipped = |service: &str| {
        ui.warn(&format!("{service} is not running: not reset"));
    };
    let redis = async {
        match &targets.redis {
            Some((host, port)) => {
                redis::flush_all(host, *port)
                    .await
                    .map_err(|m| Error::failed(format!("redis: {m}"), None))?;
                ui.info(&format!("{} emptied", service_label("redis")));
            }
            None => skipped("redis"),
        }
        Ok::<(), Error>(())
    };
    let documents = async {
        match &targets.firestore {
            Some(base) => {
                firestore::reset(
                    &crate::services::seed::http_client(),
                    base,
                    &targets.gcp_project,
                )
                .await?;
                ui.info(&format!("{} emptied", service_label("firestore")));
                if reseed {
                    seed_firestore(ui, config, targets).await?;
                }
            }
            None => skipped("firestore"),
        }
        Ok(())
    };
    let buckets = async {
        let Some((base, buckets)) = &targets.gcs else {
            skipped("gcs");
            return Ok(());
        };
        let client = crate::services::seed::http_client();
        let seed_bucket_name = config.seed_bucket(targets);
        let seeding = reseed && config.bucket_dir.is_some();
        for bucket in buckets {
            // The seed bucket is pruned to the seed folder below; no need to empty it first.
            if seeding && *bucket == seed_bucket_name {
                continue;
            }
            let deleted = gcs::empty_bucket(&client, base, bucket, &seed_reporter(ui)).await?;
            ui.info(&format!(
                "{} emptied bucket {bucket} ({} objects deleted)",
                service_label("gcs"),
                deleted.len()
            ));
        }
        if seeding {
            seed_bucket(ui, config, targets, true).await?;
        }
        Ok(())
    };
    let (a, b, c) = tokio::join!(redis, documents, buckets);
    a.and(b).and(c)
}
