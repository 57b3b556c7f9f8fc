//! `vibedev branch ls [--json]`, `branch rm NAME` and `branch prune [--yes]`: the data of git
//! branches (`[branches]`): their databases, Firestore projects and buckets.

use chrono::Utc;

use crate::branches::{self, Listed};
use crate::cli::{BranchArgs, BranchCommand};
use crate::config::Project;
use crate::data::{self, Stores};
use crate::error::{CommandError, Exit, Result};
use crate::services::BranchData;
use crate::text::{ago, bytes, count};

use super::Context;

pub async fn run(ctx: &Context, args: BranchArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let listed = data::branches(&project, &stores).await?;
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
            remove(ctx, &project, &stores, found).await?;
            Ok(0)
        }
        BranchCommand::Prune(prune) => {
            let gone: Vec<&Listed> = listed
                .iter()
                // Only data vibedev recorded as a branch's: an unmarked database may be
                // someone's own (`branch rm` removes it when named).
                .filter(|l| !l.exists && !l.default && !l.current && l.recorded)
                .collect();
            if gone.is_empty() {
                ctx.ui
                    .out("nothing to prune: the git branch of every branch's data still exists");
                return Ok(0);
            }
            ctx.ui.info(&format!(
                "{} whose git branch no longer exists:",
                count(gone.len(), "branch's data", "branches' data")
            ));
            let mut total = 0;
            for l in &gone {
                let held = match l.slug() {
                    Some(slug) => data::branch_data(&project, &stores, slug).await?,
                    None => Vec::new(),
                };
                let size =
                    database_bytes(l) + held.iter().filter_map(|(_, h)| h.bytes).sum::<u64>();
                total += size;
                ctx.ui.info(&format!(
                    "  {}  {}  {}",
                    l.name(),
                    stores_text(l, &held),
                    bytes(size)
                ));
            }
            if !prune.yes && !confirm(ctx, gone.len(), total).await? {
                ctx.ui.info("nothing was removed");
                return Ok(Exit::Failure.code());
            }
            let _lock = ctx.lock(&stack.project, "branch prune").await?;
            for l in gone {
                remove(ctx, &project, &stores, l).await?;
            }
            Ok(0)
        }
    }
}

/// The size of the branch's database (0 without one).
fn database_bytes(l: &Listed) -> u64 {
    l.db.as_ref().map_or(0, |db| db.bytes.max(0) as u64)
}

/// `database app__x, bucket app-x (2 objects, 1 KiB)`: everything the branch holds.
fn stores_text(l: &Listed, held: &[(String, BranchData)]) -> String {
    let mut parts: Vec<String> = l
        .database()
        .map(|d| format!("database {d}"))
        .into_iter()
        .collect();
    parts.extend(
        held.iter()
            .map(|(_, h)| format!("{} ({})", h.what, held_size(h))),
    );
    if parts.is_empty() {
        "nothing left".to_string()
    } else {
        parts.join(", ")
    }
}

/// Removes a branch's database (when it has one), then what the other stores hold for it.
async fn remove(ctx: &Context, project: &Project, stores: &Stores<'_>, l: &Listed) -> Result<()> {
    let branch = l.name();
    if let Some(db) = &l.db {
        let dropped = data::remove_branch_database(&stores.database()?, &db.database).await?;
        let templates = dropped.len().saturating_sub(1);
        let also = match templates {
            0 => String::new(),
            n => format!(" and {}", count(n, "reset template", "reset templates")),
        };
        ctx.ui.out(&format!(
            "removed database {} of branch {branch}{also} ({})",
            db.database,
            bytes(db.bytes.max(0) as u64)
        ));
    }
    if let Some(slug) = l.slug() {
        for (service, removed) in data::remove_branch_data(project, stores, slug).await? {
            ctx.ui.out(&format!(
                "removed {} of branch {branch} ({service}: {})",
                removed.what,
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
                l.database().unwrap_or("-").to_string(),
                l.db.as_ref()
                    .map_or_else(|| "-".to_string(), |db| bytes(db.bytes.max(0) as u64)),
                l.db.as_ref().and_then(|db| db.last_used).map_or_else(
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
        "database": l.database(),
        "branch": l.branch,
        "bytes": l.db.as_ref().map(|db| db.bytes),
        "last_used": l.db.as_ref().and_then(|db| db.last_used).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "branch_exists": l.exists,
        "default": l.default,
        "current": l.current,
        "stores": stores,
    })
}

/// Asks on the terminal; without one, refuses (scripts pass --yes).
async fn confirm(ctx: &Context, branches: usize, total: u64) -> Result<bool> {
    let question = format!(
        "Remove {} with {} of data?",
        if branches == 1 {
            "this branch's data".to_string()
        } else {
            format!("the data of these {branches} branches")
        },
        bytes(total)
    );
    ctx.ask(question, || {
        CommandError::BranchPruneNeedsConfirmation { branches }.into()
    })
    .await
}
