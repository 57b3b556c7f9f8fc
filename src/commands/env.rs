//! `vibedev env [--format dotenv|shell|json]`: the running stack's connection variables.

use crate::cli::{EnvArgs, EnvFormat};
use crate::data::{self, Stores};
use crate::envfile::{quote_dotenv, quote_shell};
use crate::error::{CommandError, Result};
use crate::runtime;

use super::Context;
use super::report::{branch_line, branch_stores_lines, reporters};

pub async fn run(ctx: &Context, args: EnvArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let engine = ctx.engine().await?;
    let runtimes = runtime::observe(&engine, &stack).await?;
    if !runtimes.iter().any(|r| r.running()) {
        return Err(CommandError::StackNotRunning {
            project: stack.project.clone(),
        }
        .into());
    }
    for rt in runtimes.iter().filter(|r| !r.running() && r.kind.is_some()) {
        ctx.ui.warn(&format!(
            "{} is {}: its variables are left out",
            rt.name, rt.state
        ));
    }
    if let Some(state) = runtime::forwards_state(&engine, &stack.project).await
        && let Some((line, true)) = runtime::describe_forwards(&engine, &state)
    {
        ctx.ui.warn(&line);
    }
    let stores = Stores {
        stack: &stack,
        runtimes,
    };
    // A branch's database is made on first use, so the URL printed reaches a database.
    if let Ok(db) = stores.database()
        && let Some(used) = data::branch_database(&project, &db, true, &reporters(&ctx.ui)).await?
    {
        branch_line(&ctx.ui, &used);
    }
    branch_stores_lines(&ctx.ui, &data::branch_stores(&stores).await?);
    let vars = runtime::connection_env(&stack, &stores.runtimes);
    match args.format {
        EnvFormat::Dotenv => {
            let mut lines = Vec::new();
            for (k, v) in &vars {
                let quoted = quote_dotenv(v).map_err(|why| CommandError::NotDotenv {
                    key: k.clone(),
                    why: why.to_string(),
                })?;
                lines.push(format!("{k}={quoted}"));
            }
            for line in lines {
                ctx.ui.out(&line);
            }
        }
        EnvFormat::Shell => {
            for (k, v) in &vars {
                ctx.ui.out(&format!("export {k}={}", quote_shell(v)));
            }
        }
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            ctx.ui
                .out(&serde_json::to_string_pretty(&map).unwrap_or_default());
        }
    }
    Ok(0)
}
