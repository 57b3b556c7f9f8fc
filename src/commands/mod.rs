//! One module per subcommand: thin glue between the command line, the domain modules and `ui`.
//! Leaves: no command imports another; what several show alike is in `report` and
//! `status_table`.

pub mod branch;
pub mod completions;
pub mod config;
pub mod doctor;
pub mod down;
pub mod env;
pub mod forward;
pub mod init;
pub mod logs;
pub mod ls;
pub mod migrate;
pub mod prune;
pub mod report;
pub mod reset_db;
pub mod run;
pub mod secrets;
pub mod seed;
pub mod snapshot;
pub mod status;
pub mod status_table;
pub mod ui;
pub mod up;
pub mod watch;

use crate::cli::{Cli, Command, GlobalArgs, SnapshotCommand};
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
    /// With auto ports, the stack carries the ports recorded for this checkout; with a
    /// database per branch, its Postgres settings name the branch's database.
    pub fn stack(&self) -> Result<(Project, Stack)> {
        let project = self.project()?;
        let mut stack = Stack::resolve(&project)?;
        crate::autoports::apply_recorded(&project, &mut stack)?;
        stack.follow_branch(&project)?;
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

    /// Whether the project asks for a `tcp://` engine's published ports on 127.0.0.1 here
    /// (`VIBEDEV_FORWARD`, else `[engine] forward`; a config that cannot be read says no).
    pub fn forward_ports(&self) -> Result<bool> {
        Ok(match self.project_for_name() {
            Ok((project, _)) => project.forward_ports()?,
            Err(_) => crate::config::forward_from_env()?.unwrap_or(false),
        })
    }

    /// Takes the project's lock for a command that changes its stack (see [`crate::lock`]); a
    /// second caller waits and is told who holds it.
    pub async fn lock(&self, project: &str, command: &str) -> Result<crate::lock::ProjectLock> {
        let ui = self.ui.clone();
        let project_name = project.to_string();
        let waiting = move |holder: Option<&crate::lock::Holder>| {
            ui.info(&format!(
                "waiting for {} to finish with project {project_name}",
                holder.map_or_else(
                    || "another vibedev command".to_string(),
                    ToString::to_string
                )
            ));
        };
        Ok(
            crate::lock::acquire(project, command, crate::lock::timeout_from_env(), &waiting)
                .await?,
        )
    }

    /// Settles the stack's host ports before a reconcile (see [`crate::autoports::assign`]):
    /// with auto ports, each published port gets this checkout's recorded or a new free port;
    /// what was given or moved is said.
    pub async fn settle_ports(
        &self,
        project: &Project,
        stack: &mut Stack,
        choice: Option<crate::autoports::Choice>,
        engine: &Engine,
    ) -> Result<()> {
        let own: Vec<u16> = engine
            .project_containers(&stack.project)
            .await?
            .into_iter()
            .flat_map(|c| c.public_ports)
            .collect();
        let done = crate::autoports::assign(project, stack, choice, |p| own.contains(&p))?;
        if !done.new.is_empty() {
            let ports: Vec<String> = done
                .new
                .iter()
                .map(|a| format!("{} {}", a.service, a.host_port))
                .collect();
            self.ui.info(&format!(
                "ports = \"auto\": {} (kept for this checkout)",
                ports.join(", ")
            ));
        }
        for m in &done.moved {
            self.ui.warn(&format!(
                "host port {} of {} ({}) is taken now: {} gets {} instead",
                m.from, m.service, m.container_port, m.service, m.to
            ));
        }
        Ok(())
    }

    /// The engine, with the relay of a `tcp://` engine's ports on when the project asks for it.
    /// Asks `question` on the terminal; without one, fails with `refusal` (scripts pass --yes).
    pub async fn ask(&self, question: String, refusal: impl FnOnce() -> Error) -> Result<bool> {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(refusal());
        }
        let ui = self.ui.clone();
        tokio::task::spawn_blocking(move || ui.confirm(&question))
            .await
            .map_err(|e| Error::io("cannot ask for confirmation", std::io::Error::other(e)))?
            .map_err(|e| Error::io("cannot read the answer", e))
    }

    /// Serves the web UI (see [`crate::web`]) until Ctrl-C: prints its URL (with the run's
    /// token) and opens a browser when asked and there is one.
    pub async fn serve_ui(&self, port: u16, open: bool) -> Result<()> {
        let (project, stack) = self.stack()?;
        let engine = self.engine().await?;
        let server = crate::web::Server::bind(port, project, stack, engine).await?;
        let url = server.url();
        self.ui.out(&format!("vibedev ui: {url}"));
        if open && crate::web::open_browser(&url, server.port()) {
            self.ui.detail("opened in the browser");
        }
        self.ui.info("serving until Ctrl-C");
        server
            .serve(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    }

    pub async fn engine(&self) -> Result<Engine> {
        let forward = self.forward_ports()?;
        let engine = Engine::connect().await?.with_forwarding(forward);
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
        // `up` handles Ctrl-C itself: it lets the engine finish what it was asked first.
        Command::Up(args) => {
            let then_watch = args.watch.then(|| crate::cli::WatchArgs {
                poll: args.poll,
                profiles: args.profiles.clone(),
            });
            let then_ui = args.ui.then(|| (args.ui_port.unwrap_or(0), !args.no_open));
            let code = up::run(&ctx, args).await?;
            match (then_watch, then_ui) {
                (Some(watch_args), Some((port, open))) => {
                    let (watched, served) =
                        tokio::join!(watch::run(&ctx, watch_args), ctx.serve_ui(port, open));
                    served?;
                    watched
                }
                (Some(watch_args), None) => watch::run(&ctx, watch_args).await,
                (None, Some((port, open))) => ctx.serve_ui(port, open).await.map(|()| code),
                (None, None) => Ok(code),
            }
        }
        // The server ends on Ctrl-C as a normal exit.
        Command::Ui(args) => ui::run(&ctx, args).await,
        // A restore handles Ctrl-C itself: it says which stores kept their data; a save
        // unpauses what it paused.
        Command::Snapshot(args)
            if matches!(
                args.command,
                SnapshotCommand::Restore(_) | SnapshotCommand::Save(_)
            ) =>
        {
            snapshot::run(&ctx, args).await
        }
        command => {
            let hint = match &command {
                Command::Migrate(_) => {
                    "run `vibedev migrate` again: the statement in progress was cancelled on the server and its migration rolled back (unless the file commits on its own: then the statements before its COMMIT stay)"
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
        Command::Snapshot(args) => snapshot::run(ctx, args).await,
        Command::Ls(args) => ls::run(ctx, args).await,
        Command::Prune(args) => prune::run(ctx, args).await,
        Command::Branch(args) => branch::run(ctx, args).await,
        Command::Ui(args) => ui::run(ctx, args).await,
    }
}
