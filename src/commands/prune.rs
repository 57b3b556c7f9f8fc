//! `vibedev prune [--yes] [PROJECT...]`: remove the stacks whose checkout no longer exists
//! (containers, network, volumes and recorded ports), after saying what and how much.

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
    let total: u64 = gone.iter().map(|s| s.disk_bytes).sum();
    ctx.ui.info(&format!(
        "{} whose checkout no longer exist{}:",
        count(gone.len(), "stack", "stacks"),
        if gone.len() == 1 { "s" } else { "" }
    ));
    for s in &gone {
        ctx.ui.info(&format!("  {}", describe(s)));
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
    }
    Ok(0)
}

/// `app-3f9a1c  /home/ana/app (gone)  2 containers, 3 volumes, 45.6 MiB`.
fn describe(s: &StackSummary) -> String {
    format!(
        "{}  {} (gone)  {}, {}, {}",
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
