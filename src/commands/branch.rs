//! `vibedev branch ls [--json]`, `branch rm NAME` and `branch prune [--yes]`: the databases of
//! git branches (`[branches] database = true`), with their Firestore data and buckets
//! (`firestore`, `bucket`).

use chrono::Utc;

use crate::branches::{self, Listed};
use crate::cli::{BranchArgs, BranchCommand};
use crate::config::Project;
use crate::data::{self, Database, Stores};
use crate::error::{CommandError, Exit, Result};
use crate::services::BranchData;
use crate::text::{ago, bytes, count};

use super::Context;

pub async fn run(ctx: &Context, args: BranchArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let db = stores.database()?;
    let listed = data::branch_databases(&project, &db).await?;
    match args.command {
        BranchCommand::Ls(ls) => {
            let mut held = Vec::new();
            for l in &listed {
                held.push(match l.slug() {
                    Some(slug) => data::branch_data(&project, &stores, slug).await?,
                    None => Vec::new(),
                });
            }
            if ls.json {
                let json: Vec<serde_json::Value> =
                    listed.iter().zip(&held).map(|(l, h)| json(l, h)).collect();
                ctx.ui
                    .out(&serde_json::to_string_pretty(&json).unwrap_or_default());
            } else {
                for line in table(ctx, &listed, &held) {
                    ctx.ui.out(&line);
                }
                if !project.file.branches.database {
                    ctx.ui.info(
                        "[branches] database is off: every branch uses the app database (`database = true` under [branches] in vibedev.toml gives each its own)",
                    );
                }
            }
            Ok(0)
        }
        BranchCommand::Rm(rm) => {
            let found = branches::find(&listed, &rm.name)?;
            let _lock = ctx.lock(&stack.project, "branch rm").await?;
            remove(ctx, &project, &stores, &db, found).await?;
            Ok(0)
        }
        BranchCommand::Prune(prune) => {
            let gone: Vec<&Listed> = listed
                .iter()
                // Only databases vibedev recorded as a branch's: an unmarked one may be
                // someone's own (`branch rm` removes it when named).
                .filter(|l| !l.exists && !l.default && !l.current && l.db.branch.is_some())
                .collect();
            if gone.is_empty() {
                ctx.ui
                    .out("nothing to prune: every branch database's git branch still exists");
                return Ok(0);
            }
            ctx.ui.info(&format!(
                "{} whose git branch no longer exists:",
                count(gone.len(), "database", "databases")
            ));
            for l in &gone {
                ctx.ui.info(&format!(
                    "  {}  {}  {}",
                    l.db.database,
                    l.branch.as_deref().unwrap_or("(branch not recorded)"),
                    bytes(l.db.bytes.max(0) as u64)
                ));
            }
            let total: i64 = gone.iter().map(|l| l.db.bytes).sum();
            if !prune.yes && !confirm(ctx, gone.len(), total.max(0) as u64).await? {
                ctx.ui.info("nothing was removed");
                return Ok(Exit::Failure.code());
            }
            let _lock = ctx.lock(&stack.project, "branch prune").await?;
            for l in gone {
                remove(ctx, &project, &stores, &db, l).await?;
            }
            Ok(0)
        }
    }
}

/// Removes a branch's database, then what the other stores hold for it.
async fn remove(
    ctx: &Context,
    project: &Project,
    stores: &Stores<'_>,
    db: &Database,
    l: &Listed,
) -> Result<()> {
    let dropped = data::remove_branch_database(db, &l.db.database).await?;
    let templates = dropped.len().saturating_sub(1);
    let also = match templates {
        0 => String::new(),
        n => format!(" and {}", count(n, "reset template", "reset templates")),
    };
    ctx.ui.out(&format!(
        "removed database {} of branch {}{also} ({})",
        l.db.database,
        l.branch.as_deref().unwrap_or("?"),
        bytes(l.db.bytes.max(0) as u64)
    ));
    if let Some(slug) = l.slug() {
        for (service, removed) in data::remove_branch_data(project, stores, slug).await? {
            ctx.ui.out(&format!(
                "removed {} of branch {} ({service}: {})",
                removed.what,
                l.branch.as_deref().unwrap_or("?"),
                held_size(&removed)
            ));
        }
    }
    Ok(())
}

/// `3 objects, 12 KiB`.
fn held_size(h: &BranchData) -> String {
    match h.bytes {
        Some(b) => format!("{}, {}", h.count, bytes(b)),
        None => h.count.to_string(),
    }
}

fn table(ctx: &Context, listed: &[Listed], held: &[Vec<(String, BranchData)>]) -> Vec<String> {
    let rows: Vec<Vec<String>> = listed
        .iter()
        .zip(held)
        .map(|(l, held)| {
            let mark = if l.current { "*" } else { " " };
            let git = match (l.default, l.exists) {
                (true, _) => "default".to_string(),
                (false, true) => "yes".to_string(),
                (false, false) => "gone".to_string(),
            };
            vec![
                format!("{mark} {}", l.branch.as_deref().unwrap_or("?")),
                l.db.database.clone(),
                bytes(l.db.bytes.max(0) as u64),
                l.db.last_used.map_or_else(
                    || "-".to_string(),
                    |t| ago((Utc::now() - t).to_std().unwrap_or_default()),
                ),
                git,
                if held.is_empty() {
                    "-".to_string()
                } else {
                    held.iter()
                        .map(|(_, h)| format!("{} ({})", h.what, held_size(h)))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ]
        })
        .collect();
    ctx.ui.table(
        &[
            "  branch",
            "database",
            "size",
            "last used",
            "git branch",
            "also",
        ],
        &rows,
    )
}

/// The JSON shape of `branch ls --json` (stable for scripts).
fn json(l: &Listed, held: &[(String, BranchData)]) -> serde_json::Value {
    let stores: Vec<serde_json::Value> = held
        .iter()
        .map(|(service, h)| {
            serde_json::json!({
                "service": service,
                "what": h.what,
                "count": h.count.count,
                "unit": h.count.unit,
                "bytes": h.bytes,
            })
        })
        .collect();
    serde_json::json!({
        "database": l.db.database,
        "branch": l.branch,
        "bytes": l.db.bytes,
        "last_used": l.db.last_used.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "branch_exists": l.exists,
        "default": l.default,
        "current": l.current,
        "stores": stores,
    })
}

/// Asks on the terminal; without one, refuses (scripts pass --yes).
async fn confirm(ctx: &Context, databases: usize, total: u64) -> Result<bool> {
    let question = format!(
        "Remove {} with {} of data?",
        if databases == 1 {
            "this database".to_string()
        } else {
            format!("these {databases} databases")
        },
        bytes(total)
    );
    ctx.ask(question, || {
        CommandError::BranchPruneNeedsConfirmation { databases }.into()
    })
    .await
}
