//! `vibedev run -- CMD [ARGS...]`: CMD with `.env.gcp` and the stack's connection variables in its
//! environment; SIGINT, SIGTERM and SIGHUP are passed on, and CMD's exit status becomes vibedev's.
//!
//! Precedence, highest first: the environment vibedev was started with, then `.env.gcp` (its
//! local-overrides section included), then the running stack's variables (`vibedev env`). So an
//! explicit `DATABASE_URL=... vibedev run ...` or a line in the overrides section beats the stack.

use std::collections::HashSet;
use std::ffi::OsString;
use std::process::ExitStatus;

use indexmap::IndexMap;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::RunArgs;
use crate::config::Project;
use crate::envfile::{MAX_ENV_STRING, read_vars};
use crate::error::{CommandError, Error, Exit, Result};
use crate::runtime;
use crate::secrets::ENV_FILE;

use super::Context;

/// Exit codes when CMD cannot be started, as shells use them.
const EXIT_NOT_FOUND: u8 = 127;
const EXIT_NOT_EXECUTABLE: u8 = 126;

/// Where each variable given to CMD came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Stack,
    EnvFile,
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<u8> {
    let project = ctx.project()?;
    let mut vars: IndexMap<String, (String, Origin)> = IndexMap::new();
    for (k, v) in stack_vars(ctx).await {
        vars.insert(k, (v, Origin::Stack));
    }
    for (k, v) in env_file_vars(ctx, &project)? {
        vars.insert(k, (v, Origin::EnvFile));
    }
    let inherited: HashSet<OsString> = std::env::vars_os().map(|(k, _)| k).collect();
    let mut given = Vec::new();
    for (key, (value, origin)) in vars {
        if inherited.contains(&OsString::from(&key)) {
            let msg = format!(
                "{key} is already set in the environment, which wins over {}",
                match origin {
                    Origin::Stack => "the stack's value",
                    Origin::EnvFile => "the value in .env.gcp",
                }
            );
            if origin == Origin::Stack {
                ctx.ui.warn(&msg);
            } else {
                ctx.ui.detail(&msg);
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
        given.push((key, value));
    }
    ctx.ui.detail(&format!(
        "variables given: {}",
        given
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    spawn_and_wait(ctx, &args.command, given).await
}

/// The running stack's connection variables; a warning (not an error) when Docker or the stack
/// is not there, so the command still runs.
async fn stack_vars(ctx: &Context) -> Vec<(String, String)> {
    let (_project, stack) = match ctx.stack() {
        Ok(s) => s,
        Err(err) => {
            ctx.ui.warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    let engine = match crate::engine::Engine::connect().await {
        Ok(e) => e,
        Err(err) => {
            ctx.ui.warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    let runtimes = match runtime::observe(&engine, &stack).await {
        Ok(r) => r,
        Err(err) => {
            ctx.ui.warn(&format!(
                "the stack's connection variables are left out: {err}"
            ));
            return Vec::new();
        }
    };
    if !runtimes.iter().any(|r| r.running()) {
        ctx.ui.warn(&format!(
            "the stack of project {} is not running: its connection variables are left out (run `vibedev up`)",
            stack.project
        ));
        return Vec::new();
    }
    runtime::connection_env(&stack, &runtimes)
}

/// `.env.gcp` beside the config, as dotenvy reads it (later lines win); a warning when missing.
fn env_file_vars(ctx: &Context, project: &Project) -> Result<Vec<(String, String)>> {
    let path = project.root.join(ENV_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(read_vars(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ctx.ui.warn(&format!(
                "{} does not exist: running without secrets (run `vibedev secrets pull`)",
                path.display()
            ));
            Ok(Vec::new())
        }
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Starts CMD with the extra variables, passes SIGINT/SIGTERM/SIGHUP on to it, and returns its
/// exit code (128 + the signal's number when a signal ended it).
async fn spawn_and_wait(
    ctx: &Context,
    command: &[OsString],
    vars: Vec<(String, String)>,
) -> Result<u8> {
    let Some((program, rest)) = command.split_first() else {
        return Err(CommandError::NoCommand.into());
    };
    // Handlers first: a signal arriving while CMD starts is still passed on, not fatal to vibedev.
    let handler = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::io("cannot install the signal handlers", e))
    };
    let mut int = handler(SignalKind::interrupt())?;
    let mut term = handler(SignalKind::terminate())?;
    let mut hup = handler(SignalKind::hangup())?;
    let mut child = match tokio::process::Command::new(program)
        .args(rest)
        .envs(vars)
        .spawn()
    {
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
            return Ok(code);
        }
    };
    let pid = child.id();
    let status = loop {
        let forward = tokio::select! {
            status = child.wait() => break status,
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
            _ = hup.recv() => libc::SIGHUP,
        };
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with our own child's pid and a valid signal number.
            unsafe {
                libc::kill(pid, forward);
            }
        }
    };
    let status = status.map_err(|e| Error::io("cannot wait for the command", e))?;
    Ok(exit_code(status))
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
}
