//! `vibedev run [--mask] [--watch] -- CMD [ARGS...]`: CMD with `.env.gcp` and the stack's
//! connection variables in its environment; SIGINT, SIGTERM and SIGHUP are passed on, and CMD's
//! exit status becomes vibedev's. `--mask` hides the secrets' values in CMD's output; `--watch`
//! restarts CMD when what it was given changes.
//!
//! Precedence, highest first: the environment vibedev was started with, then `.env.gcp` (its
//! local-overrides section included), then the running stack's variables (`vibedev env`). So an
//! explicit `DATABASE_URL=... vibedev run ...` or a line in the overrides section beats the stack.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::RunArgs;
use crate::config::Project;
use crate::envfile::{self, Existing, MAX_ENV_STRING, read_vars};
use crate::error::{CommandError, Error, Exit, Result};
use crate::runtime;
use crate::secrets::ENV_FILE;
use crate::secrets::records::Header;
use crate::secrets::relay::{Outputs, Relay};
use crate::secrets::sync::load_template;
use crate::ui;

use super::Context;

/// Exit codes when CMD cannot be started, as shells use them.
const EXIT_NOT_FOUND: u8 = 127;
const EXIT_NOT_EXECUTABLE: u8 = 126;

/// `.env.gcp` older than this is pointed out at start.
const OLD_FILE: Duration = Duration::from_secs(7 * 24 * 3600);
/// `--watch`: how often the stack's connection variables (and `.env.gcp`) are looked at, on
/// top of the file events.
const POLL: Duration = Duration::from_secs(2);
/// `--watch`: file events closer together than this are one change (a pull writes, renames).
const SETTLE: Duration = Duration::from_millis(100);
/// `--watch`: how long CMD has to exit after SIGTERM before SIGKILL (`VIBEDEV_RUN_GRACE`).
const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// After CMD exits, how long its output may still take to arrive through the masking relay
/// (something it started may keep the streams open).
const DRAIN: Duration = Duration::from_secs(2);

/// Where each variable given to CMD came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Stack,
    EnvFile,
}

/// What CMD is given: its extra variables, and the values `--mask` hides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Given {
    vars: Vec<(String, String, Origin)>,
    /// `(key, value)` of the secrets among them (and the contents of `file="..."` secrets).
    secrets: Vec<(String, String)>,
}

impl Given {
    fn env(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect()
    }
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<u8> {
    let project = ctx.project()?;
    let given = gather(ctx, &project, false).await?;
    ctx.ui.detail(&format!(
        "variables given: {}",
        given
            .vars
            .iter()
            .map(|(k, _, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    if args.mask {
        ctx.ui.detail(&format!(
            "masking the values of {} in the command's output",
            ui::count(
                given
                    .secrets
                    .iter()
                    .map(|(k, _)| k)
                    .collect::<BTreeSet<_>>()
                    .len(),
                "secret",
                "secrets"
            )
        ));
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CommandError::NoCommand.into());
    };
    let mut signals = Signals::install()?;
    let mut changes = if args.watch {
        Some(Changes::start(&project)?)
    } else {
        None
    };
    let grace = grace()?;
    let mut given = given;
    loop {
        let mut child = match start(ctx, program, rest, &given, args.mask)? {
            Ok(child) => child,
            Err(code) => return Ok(code),
        };
        let status = loop {
            tokio::select! {
                status = child.process.wait() => break Some(status),
                forward = signals.next() => match forward {
                    Some(sig) => child.signal(sig),
                    None => child.resize(),
                },
                () = next_change(&mut changes) => {
                    let now = gather(ctx, &project, true).await?;
                    if let Some(why) = why_restart(&given, &now) {
                        ctx.ui.info(&format!("restarting {}: {why}", program.to_string_lossy()));
                        given = now;
                        break None;
                    }
                }
            }
        };
        match status {
            Some(status) => {
                let status = status.map_err(|e| Error::io("cannot wait for the command", e))?;
                child.drain().await;
                return Ok(exit_code(status));
            }
            None => child.stop(grace).await?,
        }
    }
}

/// The variables for CMD, precedence applied. `quiet` (a re-read under `--watch`) says nothing.
async fn gather(ctx: &Context, project: &Project, quiet: bool) -> Result<Given> {
    let mut vars: IndexMap<String, (String, Origin)> = IndexMap::new();
    for (k, v) in stack_vars(ctx, project, quiet).await {
        vars.insert(k, (v, Origin::Stack));
    }
    let file = env_file(ctx, project, quiet)?;
    for (k, v) in &file.vars {
        vars.insert(k.clone(), (v.clone(), Origin::EnvFile));
    }
    let inherited: HashSet<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    let mut given = Given::default();
    for (key, (value, origin)) in vars {
        if inherited.contains(&OsString::from(&key)) {
            let msg = format!(
                "{key} is already set in the environment, which wins over {}",
                match origin {
                    Origin::Stack => "the stack's value",
                    Origin::EnvFile => "the value in .env.gcp",
                }
            );
            match (quiet, origin) {
                (true, _) => {}
                (false, Origin::Stack) => ctx.ui.warn(&msg),
                (false, Origin::EnvFile) => ctx.ui.detail(&msg),
            }
            continue;
        }
        if key.len() + 1 + value.len() + 1 > MAX_ENV_STRING {
            return Err(CommandError::VariableTooLarge {
                key,
                file: ENV_FILE,
                size: value.len(),
                limit: MAX_ENV_STRING,
            }
            .into());
        }
        if origin == Origin::EnvFile && file.secret_keys.contains(&key) {
            given.secrets.push((key.clone(), value.clone()));
        }
        given.vars.push((key, value, origin));
    }
    given.secrets.extend(file.secret_files);
    Ok(given)
}

/// The running stack's connection variables; a warning (not an error) when Docker or the stack
/// is not there, so the command still runs.
async fn stack_vars(ctx: &Context, project: &Project, quiet: bool) -> Vec<(String, String)> {
    let warn = |msg: &str| {
        if !quiet {
            ctx.ui.warn(msg);
        }
    };
    let stack = if quiet {
        crate::stack::Stack::resolve(project)
            .map_err(Error::from)
            .and_then(|mut stack| {
                stack.follow_branch(project)?;
                Ok(stack)
            })
    } else {
        ctx.stack().map(|(_, stack)| stack)
    };
    let stack = match stack {
        Ok(s) => s,
        Err(err) => {
            warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    let engine = match ctx.engine().await {
        Ok(e) => e,
        Err(err) => {
            warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    let runtimes = match runtime::observe(&engine, &stack).await {
        Ok(r) => r,
        Err(err) => {
            warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    if !runtimes.iter().any(|r| r.running()) {
        warn(&format!(
            "the stack of project {} is not running: its connection variables are left out (run `vibedev up`)",
            stack.project
        ));
        return Vec::new();
    }
    if let Some(state) = runtime::forwards_state(&engine, &stack.project).await
        && let Some((line, true)) = runtime::describe_forwards(&engine, &state)
    {
        warn(&line);
    }
    let stores = crate::data::Stores {
        stack: &stack,
        runtimes,
    };
    // A branch's database is made on first use, so CMD's DATABASE_URL reaches a database.
    if let Ok(db) = stores.database() {
        let report = if quiet {
            crate::data::Reporters::silent()
        } else {
            super::report::reporters(&ctx.ui)
        };
        match crate::data::branch_database(project, &db, true, &report).await {
            Ok(Some(used)) if !quiet => super::report::branch_line(&ctx.ui, &used),
            Ok(_) => {}
            Err(err) => warn(&format!(
                "the branch's database {} could not be made: {err}",
                db.target.app.database
            )),
        }
    }
    match crate::data::branch_stores(&stores).await {
        Ok(made) if !quiet => super::report::branch_stores_lines(&ctx.ui, &made),
        Ok(_) => {}
        Err(err) => warn(&format!("the branch's own data could not be made: {err}")),
    }
    runtime::connection_env(&stack, &stores.runtimes)
}

/// `.env.gcp` as CMD gets it.
#[derive(Debug, Default)]
struct EnvFile {
    /// As dotenvy reads it (later lines win).
    vars: Vec<(String, String)>,
    /// The keys holding secrets: those the header records, or every key of a file without
    /// records (written by an older vibedev).
    secret_keys: HashSet<String>,
    /// `(key, contents)` of the `file="..."` secrets' files.
    secret_files: Vec<(String, String)>,
}

/// Reads `.env.gcp` beside the config (a warning when it is missing) and, unless `quiet`, says
/// how old it is when that matters: the template names variables it lacks, or it is over a week old.
fn env_file(ctx: &Context, project: &Project, quiet: bool) -> Result<EnvFile> {
    let path = project.root.join(ENV_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !quiet {
                ctx.ui.warn(&format!(
                    "{} does not exist: running without secrets (run `vibedev secrets pull`)",
                    path.display()
                ));
            }
            return Ok(EnvFile::default());
        }
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let vars = read_vars(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    let header = Header::parse(&Existing::parse(&text).managed);
    if !quiet {
        say_if_stale(ctx, project, &path, &header, &vars);
    }
    let secret_keys: HashSet<String> = if header.records.is_empty() {
        vars.iter().map(|(k, _)| k.clone()).collect()
    } else {
        header.records.iter().map(|r| r.key.clone()).collect()
    };
    let files_dir = envfile::write_target(&path)
        .ok()
        .map(|t| envfile::files_dir(&t));
    let secret_files = vars
        .iter()
        .filter(|(k, _)| secret_keys.contains(k))
        .filter_map(|(k, v)| {
            let file = Path::new(v);
            let inside = files_dir.as_deref().is_some_and(|d| file.starts_with(d));
            let contents = inside.then(|| std::fs::read(file).ok()).flatten()?;
            Some((k.clone(), String::from_utf8(contents).ok()?))
        })
        .collect();
    Ok(EnvFile {
        vars,
        secret_keys,
        secret_files,
    })
}

/// The age of `.env.gcp`, as a warning with the variables the template names and the file
/// lacks, as information when it is over a week old, and with -v otherwise.
fn say_if_stale(
    ctx: &Context,
    project: &Project,
    path: &Path,
    header: &Header,
    vars: &[(String, String)],
) {
    let age = header
        .written
        .and_then(|t| (chrono::Utc::now() - t).to_std().ok());
    let written = age.map_or_else(
        || "written at an unknown time".to_string(),
        |a| format!("written {} ago", ui::uptime(a)),
    );
    let missing: Vec<String> = match load_template(project) {
        Ok(template) => template
            .explicit_keys()
            .into_iter()
            .filter(|k| !vars.iter().any(|(have, _)| have == k))
            .map(str::to_string)
            .collect(),
        Err(err) => {
            ctx.ui
                .detail(&format!("env template not compared with {ENV_FILE}: {err}"));
            Vec::new()
        }
    };
    if !missing.is_empty() {
        ctx.ui.warn(&format!(
            "{} ({written}) lacks {} the env template names: {}; running without {} (run `vibedev secrets pull`)",
            path.display(),
            ui::count(missing.len(), "variable", "variables"),
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ));
    } else if age.is_some_and(|a| a > OLD_FILE) {
        ctx.ui.info(&format!(
            "{} was {written}: `vibedev secrets diff` shows what changed since",
            path.display()
        ));
    } else {
        ctx.ui.detail(&format!("{} {written}", path.display()));
    }
}

/// Why `now` calls for a restart (the variables that differ, by source), or `None`.
fn why_restart(before: &Given, now: &Given) -> Option<String> {
    let map = |g: &Given| -> IndexMap<String, (String, Origin)> {
        g.vars
            .iter()
            .map(|(k, v, o)| (k.clone(), (v.clone(), *o)))
            .collect()
    };
    let (old, new) = (map(before), map(now));
    let mut file = BTreeSet::new();
    let mut stack = BTreeSet::new();
    for key in old.keys().chain(new.keys()) {
        let (a, b) = (old.get(key), new.get(key));
        if a.map(|x| &x.0) == b.map(|x| &x.0) {
            continue;
        }
        let origin = b.or(a).map_or(Origin::EnvFile, |x| x.1);
        match origin {
            Origin::EnvFile => file.insert(key.as_str()),
            Origin::Stack => stack.insert(key.as_str()),
        };
    }
    let mut why = Vec::new();
    if !file.is_empty() {
        why.push(format!(
            "{ENV_FILE} changed ({})",
            file.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !stack.is_empty() {
        why.push(format!(
            "the stack's connection variables changed ({})",
            stack.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// `VIBEDEV_RUN_GRACE`: seconds CMD has between SIGTERM and SIGKILL on a restart.
fn grace() -> Result<Duration> {
    match std::env::var("VIBEDEV_RUN_GRACE") {
        Err(_) => Ok(DEFAULT_GRACE),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=3600.0).contains(s))
            .map(Duration::from_secs_f64)
            .ok_or_else(|| CommandError::BadGrace { value: v.clone() }.into()),
    }
}

/// SIGINT, SIGTERM and SIGHUP to pass on, and SIGWINCH to resize the pseudo-terminals.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
    winch: Signal,
}

impl Signals {
    /// Handlers first: a signal arriving while CMD starts is still passed on, not fatal to vibedev.
    fn install() -> Result<Signals> {
        let handler = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::io("cannot install the signal handlers", e))
        };
        Ok(Signals {
            int: handler(SignalKind::interrupt())?,
            term: handler(SignalKind::terminate())?,
            hup: handler(SignalKind::hangup())?,
            winch: handler(SignalKind::window_change())?,
        })
    }

    /// The next signal to pass on, or `None` for a window size change.
    async fn next(&mut self) -> Option<i32> {
        tokio::select! {
            _ = self.int.recv() => Some(libc::SIGINT),
            _ = self.term.recv() => Some(libc::SIGTERM),
            _ = self.hup.recv() => Some(libc::SIGHUP),
            _ = self.winch.recv() => None,
        }
    }
}

/// CMD running, with its masking relay when `--mask`.
struct Running {
    process: tokio::process::Child,
    relay: Option<Relay>,
}

impl Running {
    fn signal(&self, sig: i32) {
        if let Some(pid) = self.process.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with our own child's pid and a valid signal number.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    fn resize(&self) {
        if let Some(relay) = &self.relay {
            relay.resize();
        }
    }

    /// Waits (a little) for the output still on its way through the relay.
    async fn drain(self) {
        if let Some(relay) = self.relay {
            let _ = tokio::time::timeout(DRAIN, relay.finished()).await;
        }
    }

    /// SIGTERM, then SIGKILL if CMD has not exited after `grace`.
    async fn stop(mut self, grace: Duration) -> Result<()> {
        self.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.start_kill();
            self.process
                .wait()
                .await
                .map_err(|e| Error::io("cannot wait for the command", e))?;
        }
        self.drain().await;
        Ok(())
    }
}

/// Starts CMD with the variables (and its output through the masking relay with `mask`);
/// `Err(code)` when it cannot be started (the error shown, the shell's exit code returned).
fn start(
    ctx: &Context,
    program: &OsString,
    rest: &[OsString],
    given: &Given,
    mask: bool,
) -> Result<std::result::Result<Running, u8>> {
    let mut command = tokio::process::Command::new(program);
    command.args(rest).envs(given.env());
    let readers = if mask {
        let (stdout, stderr, readers) =
            Outputs::open().map_err(|e| Error::io("cannot set up the masked output", e))?;
        command.stdout(stdout).stderr(stderr);
        Some(readers)
    } else {
        None
    };
    let spawned = command.spawn();
    // The command's ends of the pipes close here, so the relay sees the end of the output.
    drop(command);
    let process = match spawned {
        Ok(child) => child,
        Err(source) => {
            let code = match source.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => EXIT_NOT_EXECUTABLE,
                _ => Exit::Failure.code(),
            };
            ctx.ui.error(&Error::from(CommandError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            }));
            return Ok(Err(code));
        }
    };
    let relay = match readers {
        Some(o) => Some(
            o.start(&given.secrets)
                .map_err(|e| Error::io("cannot start masking the output", e))?,
        ),
        None => None,
    };
    Ok(Ok(Running { process, relay }))
}

/// `--watch`: file events on `.env.gcp` (and its link's target), and a regular tick.
struct Changes {
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
    tick: tokio::time::Interval,
}

impl Changes {
    fn start(project: &Project) -> Result<Changes> {
        use notify::Watcher;
        let path = project.root.join(ENV_FILE);
        let target = envfile::write_target(&path).unwrap_or_else(|_| path.clone());
        let mut names: Vec<OsString> = vec![OsString::from(ENV_FILE)];
        names.extend(target.file_name().map(|n| n.to_os_string()));
        let mut dirs: Vec<PathBuf> = vec![project.root.clone()];
        if let Some(dir) = target.parent().filter(|d| *d != project.root) {
            dirs.push(dir.to_path_buf());
        }
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let ours = event.is_ok_and(|e| {
                    e.paths.iter().any(|p| {
                        p.file_name()
                            .is_some_and(|n| names.iter().any(|m| m.as_os_str() == n))
                    })
                });
                if ours {
                    let _ = tx.send(());
                }
            })
            .map_err(|source| CommandError::Watch {
                path: path.to_path_buf(),
                source,
            })?;
        for dir in &dirs {
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|source| CommandError::Watch {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Changes {
            _watcher: watcher,
            events,
            tick,
        })
    }
}

/// The next moment to look again: a settled burst of file events, or the tick. Never, without
/// `--watch`.
async fn next_change(changes: &mut Option<Changes>) {
    let Some(c) = changes else {
        return std::future::pending().await;
    };
    tokio::select! {
        Some(()) = c.events.recv() => {
            while let Ok(Some(())) = tokio::time::timeout(SETTLE, c.events.recv()).await {}
        }
        _ = c.tick.tick() => {}
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => Exit::Failure.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
    }

    fn given(vars: &[(&str, &str, Origin)]) -> Given {
        Given {
            vars: vars
                .iter()
                .map(|(k, v, o)| (k.to_string(), v.to_string(), *o))
                .collect(),
            secrets: Vec::new(),
        }
    }

    #[test]
    fn a_restart_names_what_changed_and_where() {
        let before = given(&[
            ("JWT_SECRET", "a", Origin::EnvFile),
            ("DATABASE_URL", "postgres://x:5432", Origin::Stack),
        ]);
        assert_eq!(why_restart(&before, &before), None);
        let rotated = given(&[
            ("JWT_SECRET", "b", Origin::EnvFile),
            ("DATABASE_URL", "postgres://x:5433", Origin::Stack),
            ("NEW_KEY", "n", Origin::EnvFile),
        ]);
        assert_eq!(
            why_restart(&before, &rotated).as_deref(),
            Some(
                ".env.gcp changed (JWT_SECRET, NEW_KEY); the stack's connection variables changed (DATABASE_URL)"
            )
        );
    }
}
