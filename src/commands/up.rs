//! `vibedev up [SERVICE...]`: reconcile the stack, wait until it is ready, show where it is.

use std::time::Instant;

use crate::autoports;
use crate::cli::{PortsChoice, UpArgs};
use crate::data::{self, Stores};
use crate::error::{Error, Result};
use crate::reconcile::{self, Cancel, UpOptions};

use super::report::{self, reporters, touched};
use super::{Context, status_table};

/// Runs `up`, Ctrl-C included: the first interrupt lets what the engine is doing finish (so the
/// next `up` does not trip over a container still starting), a second one quits at once.
pub async fn run(ctx: &Context, args: UpArgs) -> Result<u8> {
    let (project, mut stack) = ctx.stack()?;
    stack.activate_profiles(&args.profiles);
    stack.check_names(&args.services)?;
    let interrupted = || Error::Interrupted {
        hint: "run `vibedev up` again: it continues from where this run stopped".into(),
    };
    let _lock = tokio::select! {
        lock = ctx.lock(&stack.project, "up") => lock?,
        _ = tokio::signal::ctrl_c() => return Err(interrupted()),
    };
    let engine = ctx.engine().await?;
    let choice = args.ports.map(|p| match p {
        PortsChoice::Auto => autoports::Choice::Auto,
        PortsChoice::Fixed => autoports::Choice::Fixed,
    });
    if choice == Some(autoports::Choice::Fixed) {
        // The recorded auto ports were applied when the stack was read: read it afresh.
        stack = crate::stack::Stack::resolve(&project)?;
        stack.follow_branch(&project)?;
        stack.activate_profiles(&args.profiles);
    }
    ctx.settle_ports(&project, &mut stack, choice, &engine)
        .await?;
    let start = Instant::now();
    let (cancel_tx, cancel) = Cancel::new();
    let options = UpOptions {
        services: args.services.clone(),
        remove_orphans: args.remove_orphans,
        build: args.build,
        cancel,
    };
    let reconcile = reconcile::up(&engine, &stack, &options, ctx.ui.reporter());
    tokio::pin!(reconcile);
    let outcomes = tokio::select! {
        r = &mut reconcile => r?,
        _ = tokio::signal::ctrl_c() => {
            ctx.ui.info("interrupted: waiting for the engine to finish what it was asked (Ctrl-C again quits at once)");
            let _ = cancel_tx.send(true);
            tokio::select! {
                _ = &mut reconcile => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::time::sleep(WIND_DOWN) => {}
            }
            return Err(interrupted());
        }
    };
    let changed = outcomes.iter().filter(|o| o.action.changed()).count();
    let after = async {
        let stores = Stores::observe(&engine, &stack).await?;
        let done =
            data::after_up(&project, &stores, &touched(&outcomes), &reporters(&ctx.ui)).await?;
        report::after_up(&ctx.ui, &project.paths(), &done);
        Ok::<_, Error>(stores.runtimes)
    };
    let runtimes = tokio::select! {
        r = after => r?,
        _ = tokio::signal::ctrl_c() => return Err(interrupted()),
    };
    let selected: Vec<String> = outcomes.iter().map(|o| o.service.clone()).collect();
    let rows = status_table::rows(&stack, &runtimes, &vec![true; runtimes.len()])
        .into_iter()
        .filter(|r| selected.contains(&r.service))
        .collect::<Vec<_>>();
    for line in status_table::table(&ctx.ui, &rows) {
        ctx.ui.out(&line);
    }
    let prepared: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.prepared.iter().map(String::as_str))
        .collect();
    let what = summary(changed, &prepared);
    ctx.ui.out(&format!(
        "{} ready in {} ({what}); `vibedev env` prints the connection variables",
        stack.project,
        crate::ui::secs(start.elapsed())
    ));
    Ok(0)
}

/// How long an interrupted `up` waits for the engine to finish the requests already sent.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(30);

/// `2 services changed`, `nothing to change`, or what was made in unchanged containers.
fn summary(changed: usize, prepared: &[&str]) -> String {
    match (changed, prepared) {
        (0, []) => "nothing to change".to_string(),
        (0, made) => format!("containers unchanged; created {}", made.join(", ")),
        (1, _) => "1 service changed".to_string(),
        (n, _) => format!("{n} services changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_mentions_what_an_unchanged_stack_still_got() {
        assert_eq!(summary(0, &[]), "nothing to change");
        assert_eq!(
            summary(0, &["role vibesdk_app", "database vibesdk"]),
            "containers unchanged; created role vibesdk_app, database vibesdk"
        );
        assert_eq!(summary(1, &["bucket b"]), "1 service changed");
        assert_eq!(summary(4, &[]), "4 services changed");
    }
}
