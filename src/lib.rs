//! vibedev: a complete local copy of the app's Google Cloud data layer (PostgreSQL, the Firestore
//! emulator, Redis, fake-gcs-server) on a Docker engine, kept in step with the project's files.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod autoports;
pub mod backoff;
pub mod branches;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod data;
pub mod dirs;
pub mod doctor;
pub mod engine;
pub mod envfile;
pub mod error;
pub mod exit;
pub mod git;
pub mod lock;
pub mod migrate;
pub mod pg;
pub mod ports;
pub mod ready;
pub mod reconcile;
pub mod resp;
pub mod runtime;
pub mod scaffold;
pub mod secrets;
pub mod services;
pub mod snapshot;
pub mod stack;
pub mod stacks;
pub mod text;
pub mod ui;
pub mod watch;
pub mod web;

use std::process::ExitCode;

use clap::Parser;

/// Builds the runtime, runs the parsed command and renders any error once, on stderr.
pub fn main_entry() -> ExitCode {
    // The background relay of a tcp:// engine's ports, started by `up`: a process of vibedev's
    // own, not a command for people, so it stays out of the help and the shell completions.
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(engine::relay::SUBCOMMAND)) {
        return commands::forward::main(args.next());
    }
    let cli = cli::Cli::parse();
    let ui = ui::Ui::new(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return exit::Exit::Failure.into();
        }
    };
    let outcome = runtime.block_on(async {
        let outcome = commands::run(cli, ui.clone()).await;
        // A statement cancelled by Ctrl-C must be cancelled on the server before the process ends.
        migrate::cancel::deliver_pending().await;
        outcome
    });
    // Background tasks (log followers, probes) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            ui.error(&err);
            error::Diagnostic::exit_code(&err).into()
        }
    }
}
