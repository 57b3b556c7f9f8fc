//! `vibedev ls [--json]`: every vibedev stack on the engine, whichever checkout it comes from.

use chrono::Utc;

use crate::cli::LsArgs;
use crate::error::Result;
use crate::stacks::{self, StackSummary};
use crate::text::{ago, bytes};

use super::Context;

pub async fn run(ctx: &Context, args: LsArgs) -> Result<u8> {
    let engine = ctx.engine().await?;
    let list = stacks::list(&engine).await?;
    if args.json {
        ctx.ui
            .out(&serde_json::to_string_pretty(&list).unwrap_or_default());
        return Ok(0);
    }
    if list.is_empty() {
        ctx.ui.out("no vibedev stacks on this engine");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list.iter().map(row).collect();
    for line in ctx.ui.table(
        &[
            "project",
            "checkout",
            "branch",
            "services",
            "ports",
            "disk",
            "snapshots",
            "last used",
        ],
        &rows,
    ) {
        ctx.ui.out(&line);
    }
    let gone = list.iter().filter(|s| s.orphaned()).count();
    if gone > 0 {
        ctx.ui.info(&format!(
            "{} checkout{} no longer exist{}: `vibedev prune` offers to remove {}",
            gone,
            if gone == 1 { "" } else { "s" },
            if gone == 1 { "s" } else { "" },
            if gone == 1 {
                "its stack"
            } else {
                "their stacks"
            }
        ));
    }
    Ok(0)
}

/// One stack as a table row.
fn row(s: &StackSummary) -> Vec<String> {
    let checkout = match &s.checkout {
        Some(path) if s.checkout_exists => path.display().to_string(),
        Some(path) => format!("{} (gone)", path.display()),
        None => "-".to_string(),
    };
    let services = if s.services == 0 {
        "down".to_string()
    } else {
        format!("{}/{} running", s.running, s.services)
    };
    let ports = if s.ports.is_empty() {
        "-".to_string()
    } else {
        s.ports
            .iter()
            .map(|p| format!("{} {}", p.service, p.host_port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let last_used = if s.running > 0 {
        "running".to_string()
    } else {
        s.last_used.map_or_else(
            || "-".to_string(),
            |t| ago((Utc::now() - t).to_std().unwrap_or_default()),
        )
    };
    vec![
        s.project.clone(),
        checkout,
        s.branch.clone().unwrap_or_else(|| "-".to_string()),
        services,
        ports,
        bytes(s.disk_bytes),
        match s.snapshots.count {
            0 => "-".to_string(),
            n => format!("{n}, {}", bytes(s.snapshots.bytes)),
        },
        last_used,
    ]
}
