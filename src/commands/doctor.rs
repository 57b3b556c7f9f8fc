//! `vibedev doctor [--json]`: one line per check with its mark and, where something is wrong, the
//! next step. Exit code 0 when all pass, 4 with warnings, 5 with a failure.

use console::style;

use crate::cli::DoctorArgs;
use crate::doctor::{self, Check, Options, Report, Status};
use crate::error::Result;
use crate::ui::Ui;

use super::Context;

pub async fn run(ctx: &Context, args: DoctorArgs) -> Result<u8> {
    let options = Options {
        config: ctx.global.config.clone(),
        gcp_project: args.project,
    };
    let report = doctor::run(&options).await;
    if args.json {
        ctx.ui
            .out(&serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        for line in lines(&ctx.ui, &report) {
            ctx.ui.out(&line);
        }
    }
    Ok(report.exit_code)
}

fn mark(status: Status) -> String {
    let text = format!("{:<4}", status.as_str());
    match status {
        Status::Pass => style(text).green().to_string(),
        Status::Skip => style(text).dim().to_string(),
        Status::Warn => style(text).yellow().bold().to_string(),
        Status::Fail => style(text).red().bold().to_string(),
    }
}

/// The human report: `pass  docker             Docker 24.0 ...`, a `hint:` line under each warning
/// and failure, then a summary. With --quiet, only warnings and failures.
pub fn lines(ui: &Ui, report: &Report) -> Vec<String> {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    let shown = |c: &&Check| !ui.quiet || matches!(c.status, Status::Warn | Status::Fail);
    for check in report.checks.iter().filter(shown) {
        out.push(format!(
            "{}  {:<width$}  {}",
            mark(check.status),
            check.name,
            check.message
        ));
        if let Some(hint) = &check.hint {
            out.push(format!(
                "{}  {:<width$}  {} {hint}",
                "    ",
                "",
                style("hint:").cyan().bold()
            ));
        }
    }
    let (pass, warn, fail, skip) = (
        report.count(Status::Pass),
        report.count(Status::Warn),
        report.count(Status::Fail),
        report.count(Status::Skip),
    );
    if !ui.quiet {
        let mut summary = format!("{pass} passed, {warn} warned, {fail} failed");
        if skip > 0 {
            summary.push_str(&format!(", {skip} skipped"));
        }
        out.push(summary);
    }
    out
}
