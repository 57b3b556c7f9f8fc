//! `vibedev snapshot save|restore|list|rm|export|import`: named snapshots of the stack's data. Renders what
//! `crate::snapshot` did; after a restore of the app database, compares it with the migrations
//! folder (pending migrations, applied with `--migrate`; drift when the snapshot is newer).

use std::time::Instant;

use crate::cli::{
    SnapshotArgs, SnapshotCommand, SnapshotListArgs, SnapshotRestoreArgs, SnapshotSaveArgs,
};
use crate::config::Project;
use crate::data::{self, Stores};
use crate::error::{Error, Result};
use crate::migrate;
use crate::snapshot::{self, Manifest};
use crate::text::{secs, size};

use super::Context;
use super::report::{migrate_summary, reporters};

pub async fn run(ctx: &Context, args: SnapshotArgs) -> Result<u8> {
    match args.command {
        SnapshotCommand::List(args) => list(ctx, args),
        SnapshotCommand::Rm(args) => {
            let (_, stack) = ctx.stack()?;
            let _lock = ctx.lock(&stack.project, "snapshot rm").await?;
            let freed = snapshot::remove(&stack.project, &args.names)?;
            for (name, bytes) in args.names.iter().zip(freed) {
                ctx.ui
                    .out(&format!("removed snapshot {name} ({})", size(bytes)));
            }
            Ok(0)
        }
        SnapshotCommand::Save(args) => save(ctx, args).await,
        SnapshotCommand::Restore(args) => restore(ctx, args).await,
        SnapshotCommand::Export(args) => {
            let (_, stack) = ctx.stack()?;
            let _lock = ctx.lock(&stack.project, "snapshot export").await?;
            let start = Instant::now();
            let done = snapshot::export(&stack.project, &args.name, &args.file).await?;
            ctx.ui.out(&format!(
                "exported snapshot {} ({}) to {} ({}) in {}",
                done.manifest.name,
                size(done.manifest.bytes()),
                args.file.display(),
                size(done.bytes),
                secs(start.elapsed())
            ));
            Ok(0)
        }
        SnapshotCommand::Import(args) => {
            let (_, stack) = ctx.stack()?;
            let _lock = ctx.lock(&stack.project, "snapshot import").await?;
            let start = Instant::now();
            let manifest =
                snapshot::import(&stack.project, &args.file, args.name.as_deref()).await?;
            ctx.ui.out(&format!(
                "imported snapshot {} ({}, taken {}) in {}; `vibedev snapshot restore {}` restores it",
                manifest.name,
                size(manifest.bytes()),
                manifest.created,
                secs(start.elapsed()),
                manifest.name
            ));
            Ok(0)
        }
    }
}

async fn save(ctx: &Context, args: SnapshotSaveArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let hint = "nothing was saved; run `vibedev snapshot save` again";
    let ready = async {
        let lock = ctx.lock(&stack.project, "snapshot save").await?;
        let engine = ctx.engine().await?;
        let stores = Stores::observe(&engine, &stack).await?;
        Ok::<_, Error>((lock, engine, stores))
    };
    let (_lock, engine, stores) = tokio::select! {
        r = ready => r?,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted { hint: hint.into() }),
    };
    let start = Instant::now();
    let pauses = snapshot::Pauses::default();
    let save = snapshot::save(
        &engine,
        &project,
        &stores,
        args.name.as_deref(),
        &args.only,
        args.pause.then_some(&pauses),
    );
    // Ctrl-C stops the save (what it wrote is removed by the next one) and unpauses what it
    // paused.
    let saved = tokio::select! {
        r = save => r,
        _ = tokio::signal::ctrl_c() => {
            let thawed = snapshot::thaw(&engine, &pauses).await;
            report_paused(ctx, &pauses.report());
            thawed?;
            return Err(Error::Interrupted { hint: hint.into() });
        }
    };
    let saved = match saved {
        Ok(saved) => saved,
        Err(e) => {
            if args.pause {
                report_paused(ctx, &pauses.report());
            }
            return Err(e.into());
        }
    };
    for service in &saved.skipped {
        ctx.ui
            .warn(&format!("{service} is not running: not in the snapshot"));
    }
    if let Some(paused) = &saved.paused {
        report_paused(ctx, paused);
    }
    for store in &saved.manifest.stores {
        ctx.ui.info(&format!(
            "{:<10} saved {} ({})",
            store.service,
            store.saved,
            size(store.bytes)
        ));
    }
    ctx.ui.out(&format!(
        "saved snapshot {} ({}) in {}",
        saved.manifest.name,
        size(saved.manifest.bytes()),
        secs(start.elapsed())
    ));
    ctx.ui.detail(&format!("in {}", saved.path.display()));
    Ok(0)
}

/// Which containers `--pause` paused, and for how long.
fn report_paused(ctx: &Context, (services, held): &(Vec<String>, std::time::Duration)) {
    if services.is_empty() {
        ctx.ui
            .info("--pause: no other container of the stack was running; nothing paused");
    } else {
        ctx.ui.info(&format!(
            "paused {} for {}",
            services.join(", "),
            secs(*held)
        ));
    }
}

async fn restore(ctx: &Context, args: SnapshotRestoreArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let _lock = ctx.lock(&stack.project, "snapshot restore").await?;
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let name = match args.name {
        Some(name) => name,
        None => snapshot::last_automatic(&stack.project)?,
    };
    let start = Instant::now();
    // Ctrl-C stops the restore: stores not yet swapped keep their data, and what they were
    // building beside it is removed.
    let progress = snapshot::RestoreProgress::default();
    let (manifest, restored) = tokio::select! {
        r = snapshot::restore(&engine, &stores, &name, &args.only, &progress) => r?,
        _ = tokio::signal::ctrl_c() => {
            snapshot::abandon_restore(&stores, &progress).await;
            return Err(progress.interrupted(name).into());
        }
    };
    for store in &restored {
        ctx.ui.info(&format!(
            "{:<10} restored {}",
            store.service, store.restored
        ));
    }
    ctx.ui.out(&format!(
        "restored snapshot {} ({} of {}) in {}",
        manifest.name,
        crate::text::count(restored.len(), "store", "stores"),
        manifest.created,
        secs(start.elapsed())
    ));
    tokio::select! {
        r = after_restore(ctx, &project, &stores, &manifest, &restored, args.migrate) => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted {
            hint: "the snapshot was restored; `vibedev migrate` applies the migrations it lacks (the statement in progress was cancelled on the server and its migration rolled back)".into(),
        }),
    }
}

/// After a restore of the app database: where it stands against the migrations folder, and
/// with `--migrate` the pending migrations applied.
async fn after_restore(
    ctx: &Context,
    project: &Project,
    stores: &Stores<'_>,
    manifest: &Manifest,
    restored: &[snapshot::RestoredStore],
    apply: bool,
) -> Result<u8> {
    let database = stores.database().ok().map(|db| db.service);
    let database_restored = restored
        .iter()
        .any(|r| database.as_deref() == Some(r.service.as_str()));
    if !database_restored {
        if apply {
            ctx.ui
                .warn("--migrate: the app database was not restored, nothing to migrate");
        }
        return Ok(0);
    }
    let check = match snapshot::check_migrations(project, stores).await {
        Ok(Some(check)) => check,
        Ok(None) => return Ok(0),
        Err(e) => {
            ctx.ui
                .warn(&format!("cannot compare with the migrations folder: {e}"));
            return Ok(0);
        }
    };
    if check.unknown > 0 {
        let taken_at = manifest
            .migrations
            .as_ref()
            .and_then(|h| h.latest.as_deref())
            .map(|tag| format!(" (taken at {tag})"))
            .unwrap_or_default();
        let branch = manifest
            .git
            .as_ref()
            .and_then(|g| g.branch.as_deref())
            .map(|b| format!(" (branch {b})"))
            .unwrap_or_default();
        ctx.ui.warn(&format!(
            "drift: snapshot {}{taken_at} is newer than the migrations folder; {} records {} the folder does not list\n  \
             (check out the code it was taken with{branch}, or restore an older snapshot)",
            manifest.name,
            check.service,
            crate::text::count(check.unknown, "migration", "migrations"),
        ));
    }
    if check.pending.is_empty() {
        return Ok(0);
    }
    if !apply {
        ctx.ui.warn(&format!(
            "{} is {} behind the migrations folder: {}\n  \
             (`vibedev snapshot restore {} --migrate` or `vibedev migrate` applies them)",
            check.service,
            crate::text::count(check.pending.len(), "migration", "migrations"),
            check.pending.join(", "),
            manifest.name
        ));
        return Ok(0);
    }
    let db = stores.database()?;
    let paths = project.paths();
    let Some(journal) = migrate::project_journal(&paths, paths.migrations_named)? else {
        return Ok(0);
    };
    let outcome = data::migrate(project, &db, &journal, false, &reporters(&ctx.ui)).await?;
    ctx.ui.out(&migrate_summary(
        &db.target.app.database,
        journal.migrations.len(),
        &outcome,
    ));
    Ok(0)
}

fn list(ctx: &Context, args: SnapshotListArgs) -> Result<u8> {
    let (project, _) = ctx.project_for_name()?;
    let root = snapshot::root(&project.name)?;
    let snapshots = snapshot::list(&project.name)?;
    let total: u64 = snapshots.iter().map(Manifest::bytes).sum();
    if args.json {
        let json = serde_json::json!({
            "root": root,
            "total_bytes": total,
            "snapshots": snapshots,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&json).unwrap_or_default());
        return Ok(0);
    }
    if snapshots.is_empty() {
        ctx.ui.out(&format!(
            "project {} has no snapshots yet; `vibedev snapshot save [NAME]` takes one",
            project.name
        ));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = snapshots.iter().map(row).collect();
    for line in ctx.ui.table(
        &[
            "name",
            "created",
            "auto",
            "branch",
            "commit",
            "migration",
            "size",
            "stores",
        ],
        &rows,
    ) {
        ctx.ui.out(&line);
    }
    ctx.ui.out(&format!(
        "{}, {} in {}",
        crate::text::count(snapshots.len(), "snapshot", "snapshots"),
        size(total),
        root.display()
    ));
    Ok(0)
}

fn row(m: &Manifest) -> Vec<String> {
    let git = m.git.as_ref();
    let migration = match &m.migrations {
        Some(h) => h
            .latest
            .clone()
            .unwrap_or_else(|| format!("{} applied", h.applied)),
        None => "-".into(),
    };
    let stores = m
        .stores
        .iter()
        .map(|s| format!("{} {} ({})", s.service, s.saved, size(s.bytes)))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        m.name.clone(),
        m.created
            .replace('T', " ")
            .chars()
            .take("2026-01-01 00:00:00".len())
            .collect(),
        m.auto
            .as_ref()
            .map_or_else(|| "-".into(), |c| format!("before {c}")),
        git.and_then(|g| g.branch.clone())
            .unwrap_or_else(|| "-".into()),
        git.map_or_else(|| "-".into(), |g| g.commit.chars().take(12).collect()),
        migration,
        size(m.bytes()),
        stores,
    ]
}
