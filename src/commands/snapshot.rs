//! `vibedev snapshot save|restore|list|rm`: named snapshots of the stack's data. Renders what
//! `crate::snapshot` did.

use std::time::Instant;

use crate::cli::{SnapshotArgs, SnapshotCommand, SnapshotListArgs};
use crate::data::Stores;
use crate::error::Result;
use crate::snapshot::{self, Manifest};
use crate::text::{secs, size};

use super::Context;

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
        SnapshotCommand::Save(args) => {
            let (project, stack) = ctx.stack()?;
            let _lock = ctx.lock(&stack.project, "snapshot save").await?;
            let engine = ctx.engine().await?;
            let stores = Stores::observe(&engine, &stack).await?;
            let start = Instant::now();
            let saved =
                snapshot::save(&engine, &project, &stores, args.name.as_deref(), &args.only)
                    .await?;
            for service in &saved.skipped {
                ctx.ui
                    .warn(&format!("{service} is not running: not in the snapshot"));
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
        SnapshotCommand::Restore(args) => {
            let (_, stack) = ctx.stack()?;
            let _lock = ctx.lock(&stack.project, "snapshot restore").await?;
            let engine = ctx.engine().await?;
            let stores = Stores::observe(&engine, &stack).await?;
            let start = Instant::now();
            let (manifest, restored) =
                snapshot::restore(&engine, &stores, &args.name, &args.only).await?;
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
            Ok(0)
        }
    }
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
            .trim_end_matches('Z')
            .to_string(),
        git.and_then(|g| g.branch.clone())
            .unwrap_or_else(|| "-".into()),
        git.map_or_else(|| "-".into(), |g| g.commit.chars().take(12).collect()),
        migration,
        size(m.bytes()),
        stores,
    ]
}
