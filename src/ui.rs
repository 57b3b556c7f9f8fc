//! All terminal output: colours (decided once), errors with hints, tables, progress bars for
//! pulls on a terminal and plain lines elsewhere. Results go to stdout, everything else to stderr.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use console::style;

/// Writes a line to stderr; a closed stderr is ignored rather than a panic.
macro_rules! elog {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{ColorChoice, GlobalArgs};
use crate::error::{Diagnostic, Error};
use crate::reconcile::{Event, Reporter};
pub use crate::text::{count, secs, uptime};

/// Output settings, decided once from flags and environment.
#[derive(Debug, Clone)]
pub struct Ui {
    pub color: bool,
    /// Progress bars and spinners: only on a terminal, and not under CI.
    pub progress: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// When set, information lines are collected here instead of printed (`watch` folds an
    /// action's lines into its one summary line).
    pub capture: Option<Arc<Mutex<Vec<String>>>>,
}

impl Ui {
    pub fn new(args: &GlobalArgs) -> Ui {
        let stderr_tty = std::io::stderr().is_terminal();
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stderr_tty
            }
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Ui {
            color,
            progress: stderr_tty && !ci && !args.quiet,
            quiet: args.quiet,
            verbose: args.verbose,
            capture: None,
        }
    }

    /// A plain Ui for tests and non-interactive callers.
    pub fn plain() -> Ui {
        Ui {
            color: false,
            progress: false,
            quiet: false,
            verbose: false,
            capture: None,
        }
    }

    /// A copy whose information lines are collected rather than printed, and without progress
    /// bars; warnings and errors still go to stderr.
    pub fn capturing(&self) -> (Ui, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let ui = Ui {
            progress: false,
            capture: Some(lines.clone()),
            ..self.clone()
        };
        (ui, lines)
    }

    /// A result line on stdout: what the command produced (a table, JSON, variables, or the
    /// one line saying what it did), shown with --quiet too. A closed pipe (`vibedev status |
    /// head -1`) ends quietly. In capturing mode it is collected with the information lines.
    pub fn out(&self, line: &str) {
        if let Some(lines) = &self.capture {
            if let Ok(mut lines) = lines.lock() {
                lines.push(console::strip_ansi_codes(line).into_owned());
            }
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, "{line}").and_then(|_| stdout.flush())
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }

    /// A progress or information line on stderr (not with --quiet).
    pub fn info(&self, line: &str) {
        if let Some(lines) = &self.capture {
            if let Ok(mut lines) = lines.lock() {
                lines.push(console::strip_ansi_codes(line).into_owned());
            }
        } else if !self.quiet {
            elog!("{line}");
        }
    }

    /// A detail line shown with --verbose.
    pub fn detail(&self, line: &str) {
        if self.verbose {
            elog!("{}", style(line).dim());
        }
    }

    /// Asks a yes/no question on the terminal; anything but `y`/`yes` is no. Blocks: call it
    /// from a blocking task.
    pub fn confirm(&self, question: &str) -> std::io::Result<bool> {
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    pub fn warn(&self, message: &str) {
        elog!("{} {message}", style("warning:").yellow().bold());
    }

    /// Renders an error: the message, the container logs that explain it, the next step,
    /// then the chain of causes.
    pub fn error(&self, err: &Error) {
        elog!("{} {err}", style("error:").red().bold());
        for (service, lines) in err.log_lines() {
            if lines.is_empty() {
                elog!("  ({service} printed nothing)");
                continue;
            }
            elog!("  last {} log lines of {service}:", lines.len());
            for line in lines {
                elog!("  {} {line}", style("|").dim());
            }
        }
        let mut source = std::error::Error::source(err);
        // Transparent variants repeat their inner message as the first source: skip repeats.
        let mut last = err.to_string();
        while let Some(cause) = source {
            let text = cause.to_string();
            if text != last && !last.contains(&text) {
                elog!("  {} {text}", style("caused by:").dim());
            }
            last = text;
            source = cause.source();
        }
        if let Some(hint) = err.hint() {
            elog!("{} {hint}", style("hint:").cyan().bold());
        }
    }

    /// Lays out rows under headers, columns padded to their widest cell.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(console::measure_text_width(cell));
                }
            }
        }
        let render = |cells: Vec<String>| {
            let last = cells.len().saturating_sub(1);
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == last {
                        c.clone()
                    } else {
                        let pad = widths[i].saturating_sub(console::measure_text_width(c));
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = vec![render(
            headers
                .iter()
                .map(|h| style(h.to_uppercase()).bold().to_string())
                .collect(),
        )];
        out.extend(rows.iter().map(|r| render(r.clone())));
        out
    }

    /// A counter (`n/N what`) on stderr when progress is shown (a terminal, not CI, not
    /// --quiet); `None` otherwise.
    pub fn counter(&self, total: u64, what: &str) -> Option<ProgressBar> {
        if !self.progress || self.capture.is_some() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!("{{pos}}/{{len}} {what} {{elapsed}}"))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.tick();
        Some(bar)
    }

    /// The reporter `up` and `down` send their events to.
    pub fn reporter(&self) -> Reporter {
        let state = Arc::new(ReporterState {
            ui: self.clone(),
            multi: self
                .progress
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
        });
        Arc::new(move |event| state.handle(event))
    }
}

struct ReporterState {
    ui: Ui,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl ReporterState {
    fn line(&self, text: String) {
        if self.ui.capture.is_some() {
            self.ui.info(&text);
            return;
        }
        if self.ui.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => elog!("{text}"),
        }
    }

    fn handle(&self, event: Event) {
        let name = |s: &str| style(format!("{s:<10}")).bold().to_string();
        match event {
            Event::PullStarted { image } => {
                if let Some(m) = &self.multi {
                    let bar = m.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} {bar:30} {bytes}/{total_bytes} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_prefix(format!("pulling {image}"));
                    if let Ok(mut bars) = self.bars.lock() {
                        bars.insert(image, bar);
                    }
                } else {
                    self.line(format!("pulling {image}"));
                }
            }
            Event::PullProgress {
                image,
                current,
                total,
            } => {
                if let Ok(bars) = self.bars.lock()
                    && let Some(bar) = bars.get(&image)
                {
                    bar.set_length(total);
                    bar.set_position(current);
                }
            }
            Event::PullStatus { image, status } => {
                if self.multi.is_none() {
                    self.ui.detail(&format!("  {image}: {status}"));
                }
            }
            Event::PullDone { image, elapsed } => {
                if let Ok(mut bars) = self.bars.lock()
                    && let Some(bar) = bars.remove(&image)
                {
                    bar.finish_and_clear();
                }
                self.line(format!("pulled {image} in {}", secs(elapsed)));
            }
            Event::Planned { service, action } => {
                let verb = match action {
                    "create" => "creating",
                    "recreate" => "recreating (its settings changed)",
                    "start" => "starting",
                    "unpause" => "unpausing",
                    _ => return,
                };
                self.line(format!("{} {verb}", name(&service)));
            }
            Event::Waiting { .. } => {}
            Event::Ready {
                service,
                action,
                elapsed,
            } => {
                if action == "keep" {
                    self.ui
                        .detail(&format!("{service}: unchanged, ready in {}", secs(elapsed)));
                    return;
                }
                self.line(format!(
                    "{} {} in {}",
                    name(&service),
                    style("ready").green(),
                    secs(elapsed)
                ));
            }
            Event::Prepared { service, what } => {
                self.line(format!("{} created {what}", name(&service)));
            }
            Event::OrphanRemoved { service } => {
                self.line(format!(
                    "{} removed (no longer in the stack)",
                    name(&service)
                ));
            }
            Event::OrphanKept { service } => {
                self.line(format!(
                    "{} kept: no longer in the stack (`vibedev up --remove-orphans` removes it)",
                    name(&service)
                ));
            }
            Event::NetworkRepaired { what } => self.line(format!("network: {what}")),
            Event::BuildStarted { service, image } => {
                self.line(format!("{} building image {image}", name(&service)));
            }
            // Each step's first line shows progress; the whole output with --verbose.
            Event::BuildOutput { service, line } => {
                if line.starts_with("Step ") {
                    self.line(format!("{} {line}", name(&service)));
                } else {
                    self.ui.detail(&format!("{service}: {line}"));
                }
            }
            Event::BuildDone {
                service,
                image,
                elapsed,
            } => {
                self.line(format!(
                    "{} built image {image} in {}",
                    name(&service),
                    secs(elapsed)
                ));
            }
            Event::MountSourceCreated { service, path } => {
                self.line(format!(
                    "{} created the missing bind-mount folder {}",
                    name(&service),
                    path.display()
                ));
            }
            Event::RemoteBindMounts { service, paths } => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.line(format!(
                    "{} bind-mounts {}: the engine runs on another machine, so these paths are that machine's (they must exist there)",
                    name(&service),
                    paths.join(", ")
                ));
            }
            Event::Removed { name: n } => self.line(format!("removed {n}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let ui = Ui::plain();
        console::set_colors_enabled(false);
        let lines = ui.table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(lines, ["A    BB", "xxx  y"]);
    }
}
