//! `vibedev prune [--yes] [--snapshots] [PROJECT...]`: remove the stacks whose checkout no
//! longer exists (containers, network, volumes and recorded ports; their snapshots only with
//! `--snapshots`), after saying what and how much.

use crate::autoports::PortFiles;
use crate::cli::PruneArgs;
use crate::error::{CommandError, Exit, Result};
use crate::reconcile;
use crate::stacks::{self, StackSummary};
use crate::text::{bytes, count};

use super::Context;

pub async fn run(ctx: &Context, args: PruneArgs) -> Result<u8> {
    let engine = ctx.engine().await?;
    let all = stacks::list(&engine).await?;
    for name in &args.projects {
        match all.iter().find(|s| &s.project == name) {
            None => ctx
                .ui
                .warn(&format!("project {name} has no stack on this engine")),
            Some(s) if !s.orphaned() => ctx.ui.warn(&format!(
                "project {name} is kept: {}",
                match &s.checkout {
                    Some(path) => format!("its checkout {} exists", path.display()),
                    None => "its checkout is not known (it was brought up by an older vibedev)"
                        .to_string(),
                }
            )),
            Some(_) => {}
        }
    }
    let gone: Vec<&StackSummary> = all
        .iter()
        .filter(|s| s.orphaned())
        .filter(|s| args.projects.is_empty() || args.projects.contains(&s.project))
        .collect();
    if gone.is_empty() {
        ctx.ui
            .out("nothing to prune: every stack's checkout still exists");
        return Ok(0);
    }
    let snapshots = |s: &StackSummary| if args.snapshots { s.snapshots.bytes } else { 0 };
    let total: u64 = gone.iter().map(|s| s.disk_bytes + snapshots(s)).sum();
    ctx.ui.info(&format!(
        "{} whose checkout no longer exist{}:",
        count(gone.len(), "stack", "stacks"),
        if gone.len() == 1 { "s" } else { "" }
    ));
    for s in &gone {
        ctx.ui.info(&format!("  {}", describe(s, args.snapshots)));
    }
    if !args.yes && !confirm(ctx, gone.len(), total).await? {
        ctx.ui.info("nothing was removed");
        return Ok(Exit::Failure.code());
    }
    let files = PortFiles::open().ok();
    for s in gone {
        let _lock = ctx.lock(&s.project, "prune").await?;
        let removed = reconcile::down(&engine, &s.project, true, ctx.ui.reporter()).await?;
        if let Some(files) = &files {
            files.remove(&s.project)?;
        }
        ctx.ui.out(&format!(
            "{}: removed {}, {}, {} ({})",
            s.project,
            count(removed.containers.len(), "container", "containers"),
            count(removed.networks.len(), "network", "networks"),
            count(removed.volumes.len(), "volume", "volumes"),
            bytes(s.disk_bytes)
        ));
        let kept = s.snapshots.count;
        if args.snapshots {
            let (n, freed) = crate::snapshot::remove_all(&s.project)?;
            if n > 0 {
                ctx.ui.out(&format!(
                    "{}: removed {} ({})",
                    s.project,
                    count(n, "snapshot", "snapshots"),
                    bytes(freed)
                ));
            }
        } else if kept > 0 {
            let place = crate::snapshot::root(&s.project)
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default();
            ctx.ui.info(&format!(
                "{}: {} kept{place} (`vibedev prune --snapshots` removes them with the stack)",
                s.project,
                count(kept, "snapshot", "snapshots")
            ));
        }
    }
    Ok(0)
}

/// `app-3f9a1c  /home/ana/app (gone)  2 containers, 3 volumes, 45.6 MiB` (and its snapshots:
/// `, 2 snapshots 12.0 MiB (kept)`, or without `(kept)` when they go too).
fn describe(s: &StackSummary, with_snapshots: bool) -> String {
    let snapshots = match s.snapshots.count {
        0 => String::new(),
        n => format!(
            ", {} {}{}",
            count(n, "snapshot", "snapshots"),
            bytes(s.snapshots.bytes),
            if with_snapshots { "" } else { " (kept)" }
        ),
    };
    format!(
        "{}  {} (gone)  {}, {}, {}{snapshots}",
        s.project,
        s.checkout
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        count(s.services, "container", "containers"),
        count(s.volumes.len(), "volume", "volumes"),
        bytes(s.disk_bytes)
    )
}

/// Asks on the terminal; without one, refuses (scripts pass --yes).
async fn confirm(ctx: &Context, stacks: usize, total: u64) -> Result<bool> {
    let question = format!(
        "Remove {} with {} of data?",
        if stacks == 1 {
            "this stack".to_string()
        } else {
            format!("these {stacks} stacks")
        },
        bytes(total)
    );
    ctx.ask(question, || {
        CommandError::PruneNeedsConfirmation { stacks }.into()
    })
    .await
}
