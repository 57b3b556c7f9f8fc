//! One module per subcommand: thin glue between the command line, the domain modules and `ui`.

pub mod completions;
pub mod config;
pub mod doctor;
pub mod down;
pub mod env;
pub mod init;
pub mod logs;
pub mod migrate;
pub mod reset_db;
pub mod run;
pub mod secrets;
pub mod seed;
pub mod status;
pub mod up;
pub mod watch;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::Project;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stack::Stack;
use crate::ui::Ui;

/// What every command gets: the global flags and the output settings.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
}

impl Context {
    pub fn project(&self) -> Result<Project> {
        Ok(Project::load(self.global.config.as_deref())?)
    }

    /// The project read leniently, with its config's error if it has one (see
    /// [`Project::load_for_name`]).
    pub fn project_for_name(&self) -> Result<(Project, Option<crate::config::ConfigError>)> {
        Ok(Project::load_for_name(self.global.config.as_deref())?)
    }

    /// The project and its resolved stack; compose keys vibedev ignores are mentioned with -v.
    pub fn stack(&self) -> Result<(Project, Stack)> {
        let project = self.project()?;
        let stack = Stack::resolve(&project)?;
        for warning in &stack.warnings {
            self.ui.warn(warning);
        }
        for key in &stack.ignored_keys {
            self.ui.detail(&format!(
                "compose key {key} is accepted but not used by vibedev"
            ));
        }
        Ok((project, stack))
    }

    pub async fn engine(&self) -> Result<Engine> {
        let engine = Engine::connect().await?;
        self.ui
            .detail(&format!("docker engine: {}", engine.endpoint));
        Ok(engine)
    }
}

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli, ui: Ui) -> Result<u8> {
    let ctx = Context {
        global: cli.global,
        ui,
    };
    match cli.command {
        // Following logs ends on Ctrl-C as a normal exit.
        Command::Logs(args) => logs::run(&ctx, args).await,
        // The child gets the signals; vibedev waits for it and passes its exit code on.
        Command::Run(args) => run::run(&ctx, args).await,
        // Watching ends on Ctrl-C as a normal exit; the stack keeps running.
        Command::Watch(args) => watch::run(&ctx, args).await,
        Command::Up(args) if args.watch => {
            let poll = args.poll;
            tokio::select! {
                r = up::run(&ctx, args) => r?,
                _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted {
                    hint: "run `vibedev up --watch` again: it continues from where this run stopped".into(),
                }),
            };
            watch::run(&ctx, crate::cli::WatchArgs { poll }).await
        }
        command => {
            let hint = match &command {
                Command::Up(_) => {
                    "run `vibedev up` again: it continues from where this run stopped"
                }
                Command::Migrate(_) => {
                    "run `vibedev migrate` again: the migration in progress was rolled back"
                }
                _ => "run the command again",
            };
            tokio::select! {
                r = dispatch(&ctx, command) => r,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted { hint: hint.to_string() }),
            }
        }
    }
}

async fn dispatch(ctx: &Context, command: Command) -> Result<u8> {
    match command {
        Command::Up(args) => up::run(ctx, args).await,
        Command::Down(args) => down::run(ctx, args).await,
        Command::Status(args) => status::run(ctx, args).await,
        Command::Env(args) => env::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Doctor(args) => doctor::run(ctx, args).await,
        Command::Init => init::run(ctx),
        Command::Completions(args) => completions::run(ctx, args),
        Command::Migrate(args) => migrate::run(ctx, args).await,
        Command::ResetDb(args) => reset_db::run(ctx, args).await,
        Command::Seed(args) => seed::run(ctx, args).await,
        Command::Secrets(args) => secrets::run(ctx, args).await,
        Command::Run(args) => run::run(ctx, args).await,
        Command::Watch(args) => watch::run(ctx, args).await,
        Command::Config(args) => config::run(ctx, args),
    }
}
