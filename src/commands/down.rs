//! `vibedev down [--volumes [--snapshots]]`: remove this project's containers and network (and
//! volumes; and its snapshots, which are kept otherwise).

use crate::cli::DownArgs;
use crate::error::Result;
use crate::reconcile;
use crate::snapshot;
use crate::ui::count;

use super::Context;

pub async fn run(ctx: &Context, args: DownArgs) -> Result<u8> {
    // Only the name is needed to find what vibedev made: a broken config does not keep the
    // stack from coming down.
    let (project, config_error) = ctx.project_for_name()?;
    if let Some(e) = config_error {
        ctx.ui.warn(&format!(
            "{e}\n  (the rest of the config is not needed here: taking down project {})",
            project.name
        ));
    }
    // The compose file's `name:` names the project when vibedev.toml does not.
    let mut project = project;
    if project.file.project.is_none()
        && let Ok(stack) = crate::stack::Stack::resolve(&project)
    {
        project.name = stack.project;
    }
    let _lock = ctx.lock(&project.name, "down").await?;
    let engine = ctx.engine().await?;
    let summary = reconcile::down(&engine, &project.name, args.volumes, ctx.ui.reporter()).await?;
    if crate::runtime::end_forwards(&engine, &project.name).await? {
        ctx.ui.detail(&format!(
            "ended the SSH connection to {} (no other project uses it)",
            engine.endpoint
        ));
    }
    if summary.containers.is_empty() && summary.networks.is_empty() && summary.volumes.is_empty() {
        ctx.ui.out(&format!("{}: nothing to remove", project.name));
    } else {
        let kept = if args.volumes {
            ""
        } else {
            "; data volumes kept (--volumes removes them)"
        };
        ctx.ui.out(&format!(
            "{}: removed {}, {}, {}{kept}",
            project.name,
            count(summary.containers.len(), "container", "containers"),
            count(summary.networks.len(), "network", "networks"),
            count(summary.volumes.len(), "volume", "volumes")
        ));
    }
    if args.snapshots {
        let (n, bytes) = snapshot::remove_all(&project.name)?;
        if n > 0 {
            ctx.ui.out(&format!(
                "{}: removed {} ({})",
                project.name,
                count(n, "snapshot", "snapshots"),
                crate::text::size(bytes)
            ));
        }
    } else if args.volumes {
        let kept = snapshot::list(&project.name).map_or(0, |s| s.len());
        if kept > 0 {
            ctx.ui.info(&format!(
                "{} kept (`vibedev down --volumes --snapshots` removes them too)",
                count(kept, "snapshot", "snapshots")
            ));
        }
    }
    Ok(0)
}
