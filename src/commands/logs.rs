//! `vibedev logs [SERVICE...] [-f] [--tail N]`: logs prefixed by service name.

use futures_util::stream::{self, StreamExt};

use crate::cli::LogsArgs;
use crate::engine::containers::log_bytes;
use crate::error::{CommandError, Result};
use crate::runtime;

use super::Context;

const COLORS: [console::Color; 5] = [
    console::Color::Cyan,
    console::Color::Magenta,
    console::Color::Yellow,
    console::Color::Blue,
    console::Color::Green,
];

pub async fn run(ctx: &Context, args: LogsArgs) -> Result<u8> {
    let (_project, stack) = ctx.stack()?;
    stack.check_names(&args.services)?;
    let engine = ctx.engine().await?;
    let runtimes = runtime::observe(&engine, &stack).await?;
    let width = stack
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0);
    let mut streams = Vec::new();
    for (i, rt) in runtimes.iter().enumerate() {
        if !args.services.is_empty() && !args.services.contains(&rt.name) {
            continue;
        }
        let Some(container) = &rt.container else {
            if !args.services.is_empty() {
                ctx.ui.warn(&format!(
                    "{} has no container: run `vibedev up {}`",
                    rt.name, rt.name
                ));
            }
            continue;
        };
        let prefix = console::style(format!("{:<width$} |", rt.name))
            .fg(COLORS[i % COLORS.len()])
            .to_string();
        let s = engine
            .logs(&container.id, args.follow, args.tail)
            .map(move |chunk| (prefix.clone(), chunk));
        streams.push(s.boxed());
    }
    if streams.is_empty() {
        return Err(CommandError::NoContainers {
            project: stack.project.clone(),
        }
        .into());
    }
    let mut merged = stream::select_all(streams);
    // Chunks need not end at line ends: keep each service's partial line until it does.
    let mut partial: std::collections::HashMap<String, String> = Default::default();
    let follow = async {
        while let Some((prefix, chunk)) = merged.next().await {
            let Ok(chunk) = chunk else { continue };
            let buf = partial.entry(prefix.clone()).or_default();
            buf.push_str(&String::from_utf8_lossy(log_bytes(&chunk)));
            while let Some(nl) = buf.find('\n') {
                let line: String = buf.drain(..=nl).collect();
                ctx.ui
                    .out(&format!("{prefix} {}", line.trim_end_matches(['\n', '\r'])));
            }
        }
        for (prefix, rest) in &partial {
            if !rest.is_empty() {
                ctx.ui.out(&format!("{prefix} {rest}"));
            }
        }
    };
    tokio::select! {
        _ = follow => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}
