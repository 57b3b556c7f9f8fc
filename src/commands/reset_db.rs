//! `vibedev reset-db [--yes] [--no-seed] [--all] [--no-template]`: replace the app database with a
//! clean, migrated, seeded one (cloned from a template), and with --all the other stores too.
//! The app database is saved as an automatic snapshot first (`[snapshots]`).

use std::time::Instant;

use crate::cli::ResetDbArgs;
use crate::config::Project;
use crate::data::{self, Stores};
use crate::error::{CommandError, Error, Exit, Result};
use crate::migrate;
use crate::migrate::seed::SeedFile;
use crate::migrate::template::{self, ResetOptions, Source};
use crate::snapshot;
use crate::ui::{self, Ui};

use super::Context;
use super::report::{auto_snapshot_lines, emptied_lines, migrate_reporter, reporters, seeded_line};

pub async fn run(ctx: &Context, args: ResetDbArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let paths = project.paths();
    // Read everything first: a broken journal or seed file must not cost the database.
    let journal = migrate::project_journal(&paths, paths.migrations_named)?;
    let seeds = if args.no_seed {
        Vec::new()
    } else {
        SeedFile::load_all(&paths.seeds.sql, &paths.root)?
    };
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let db = stores.database()?;
    let pg = &db.target;
    let options = ResetOptions {
        journal: journal.as_ref(),
        seeds: &seeds,
        migrate: migrate::project_options(&project, false),
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
    if !args.yes && !confirm(ctx, &project.name, &pg.app.database, what, args.all).await? {
        ctx.ui.info("nothing was changed");
        return Ok(Exit::Failure.code());
    }
    let _lock = ctx.lock(&stack.project, "reset-db").await?;
    if let Some(keep) = project.file.snapshots.auto_keep()
        && let Some(done) =
            snapshot::save_automatic(&engine, &project, &stores, "reset-db", keep).await?
    {
        auto_snapshot_lines(&ctx.ui, "reset-db", &done);
    }
    let start = Instant::now();
    let database = async {
        let report = migrate_reporter(&ctx.ui, &db.service);
        Ok::<_, Error>(template::reset(pg, &options, &report).await?)
    };
    let others = async {
        if args.all {
            reset_other_stores(&ctx.ui, &paths, &stores, !args.no_seed).await
        } else {
            Ok(())
        }
    };
    let (outcome, others) = tokio::join!(database, others);
    let outcome = outcome?;
    others?;
    // A branch's database made anew carries its branch again (for `branch ls`); best effort.
    let _ = migrate::branch::mark_target(pg).await;
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
async fn confirm(
    ctx: &Context,
    project: &str,
    database: &str,
    what: &str,
    all: bool,
) -> Result<bool> {
    let also = if all {
        ", and empty Redis, the Firestore emulator and the buckets"
    } else {
        ""
    };
    let question = format!("Replace database {database:?} of {project} with {what}{also}?");
    ctx.ask(question, || {
        CommandError::NeedsConfirmation {
            database: database.to_string(),
        }
        .into()
    })
    .await
}

/// `--all`: empties every other store (Redis, the Firestore emulator, the buckets), then
/// reseeds them. Stores whose service is not running are skipped with a warning.
async fn reset_other_stores(
    ui: &Ui,
    paths: &crate::config::Paths,
    stores: &Stores<'_>,
    reseed: bool,
) -> Result<()> {
    for spec in stores.stopped() {
        if !spec.kind.is_some_and(|k| k.holds_app_database()) {
            ui.warn(&format!("{} is not running: not reset", spec.name));
        }
    }
    let done = data::empty_stores(paths, stores, reseed, &reporters(ui)).await?;
    for reset in done {
        for line in emptied_lines(&reset.service, &reset.emptied) {
            ui.info(&line);
        }
        if let Some(line) = reset
            .seeded
            .as_ref()
            .and_then(|s| seeded_line(&reset.service, s))
        {
            ui.info(&line);
        }
    }
    Ok(())
}
