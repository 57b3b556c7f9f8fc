//! `vibedev down [--volumes]`: remove this project's containers and network (and volumes).

use crate::cli::DownArgs;
use crate::error::Result;
use crate::reconcile;

use super::Context;

pub async fn run(ctx: &Context, args: DownArgs) -> Result<u8> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    let summary = reconcile::down(&engine, &project.name, args.volumes, ctx.ui.reporter()).await?;
    if summary.containers.is_empty() && summary.networks.is_empty() && summary.volumes.is_empty() {
        ctx.ui.info(&format!("{}: nothing to remove", project.name));
    } else {
        let kept = if args.volumes {
            ""
        } else {
            "; data volumes kept (--volumes removes them)"
        };
        ctx.ui.info(&format!(
            "{}: removed {} containers, {} networks, {} volumes{kept}",
            project.name,
            summary.containers.len(),
            summary.networks.len(),
            summary.volumes.len()
        ));
    }
    Ok(0)
}
