//! `vibedev status [--json]`: service, state, readiness, ports, URL and uptime.

use futures_util::future::join_all;

use crate::cli::StatusArgs;
use crate::error::{Exit, Result};
use crate::runtime;

use super::Context;
use super::status_table::{rows, table};

pub async fn run(ctx: &Context, args: StatusArgs) -> Result<u8> {
    let (_project, stack) = ctx.stack()?;
    let engine = ctx.engine().await?;
    let runtimes = runtime::observe(&engine, &stack).await?;
    let http = crate::ready::http_client();
    let ready = join_all(
        stack
            .services
            .iter()
            .zip(&runtimes)
            .map(|(spec, rt)| runtime::probe_once(&stack, spec, rt, &http)),
    )
    .await;
    let rows = rows(&stack, &runtimes, &ready);
    if args.json {
        ctx.ui
            .out(&serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        for line in table(&ctx.ui, &rows) {
            ctx.ui.out(&line);
        }
        if let Some(state) = runtime::forwards_state(&engine, &stack.project).await
            && let Some((line, down)) = runtime::describe_forwards(&engine, &state)
        {
            if down {
                ctx.ui.warn(&line);
            } else {
                ctx.ui.out(&line);
            }
        }
    }
    if args.exit_code && rows.iter().any(|r| !r.ready) {
        return Ok(Exit::NotReady.code());
    }
    Ok(0)
}
