//! The command line, as clap definitions only. Parsed once in `main`, then passed down as plain
//! structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `vibedev --version`: the crate version and the git revision the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VIBEDEV_GIT_REV"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "vibedev",
    version = VERSION,
    about = "The app's Google Cloud data layer, locally: PostgreSQL 15, the Firestore emulator, Redis and fake-gcs-server on Docker, kept in step with the project's files.",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Use this config file instead of searching for vibedev.toml upwards from here.
    #[arg(long, global = true, value_name = "PATH", env = "VIBEDEV_CONFIG")]
    pub config: Option<PathBuf>,
    /// When to use colours and progress bars.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print more about what is being done (never secret values).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the stack (or the named services): pull, create, start, wait until ready, prepare.
    Up(UpArgs),
    /// Stop and remove this project's containers and network; --volumes also removes its data (--snapshots its snapshots too).
    Down(DownArgs),
    /// Show each service's state, readiness, port, URL and uptime.
    Status(StatusArgs),
    /// Show the logs of one or all services, prefixed by service name.
    Logs(LogsArgs),
    /// Print the stack's connection variables (DATABASE_URL, REDIS_URL, ...).
    Env(EnvArgs),
    /// Check that this machine can run the stack: Docker, ports, disk, images, Google credentials, .env.gcp, migrations.
    #[command(
        after_help = "Exit codes: 0 when every check passes (skipped checks are fine), 4 when some warn, 5 when one fails."
    )]
    Doctor(DoctorArgs),
    /// Write the built-in defaults (vibedev.toml, compose file, env template, .gitignore line) into this project.
    Init,
    /// Print shell completions: `vibedev completions bash > /etc/bash_completion.d/vibedev`.
    Completions(CompletionsArgs),
    /// Apply pending Drizzle migrations to the app database; `migrate status` shows each entry.
    Migrate(MigrateArgs),
    /// Replace the app database with a clean, migrated and seeded one (from a template: fast).
    ResetDb(ResetDbArgs),
    /// Load the seed data again: SQL seed files, bucket objects, Firestore documents.
    Seed(SeedArgs),
    /// Google Secret Manager: fetch the app's secrets into .env.gcp.
    Secrets(SecretsArgs),
    /// Follow the config, compose file, env template, migrations and seed folders; apply each saved change.
    Watch(WatchArgs),
    /// Run a command with .env.gcp and the stack's connection variables in its environment.
    Run(RunArgs),
    /// Print the resolved stack as Compose (merged, interpolated, profiles and vibedev.toml applied).
    Config(ConfigArgs),
    /// Save the data of every store (Postgres, Firestore, buckets, Redis) under a name; restore, list and remove such snapshots.
    Snapshot(SnapshotArgs),
    /// List every vibedev stack on the engine: project, checkout, branch, services, ports, disk, last use.
    Ls(LsArgs),
    /// Remove the stacks whose checkout no longer exists (containers, networks, volumes), after asking.
    Prune(PruneArgs),
    /// The data of git branches (`[branches]`: databases, Firestore projects, buckets): list, remove, prune those whose branch is gone.
    Branch(BranchArgs),
    /// Serve a local web page over the stack (services, logs, data, secrets' state, snapshots) until Ctrl-C.
    Ui(UiArgs),
}

#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Listen on this port of 127.0.0.1 (default: a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
    /// Do not open a browser; just print the URL.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BranchArgs {
    #[command(subcommand)]
    pub command: BranchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BranchCommand {
    /// List the default branch and every branch with data of its own: git branch, database, size, last used, whether the git branch still exists, its other stores.
    Ls(BranchLsArgs),
    /// Remove the data of a git branch: its database, Firestore project and buckets (named by the branch or by the database).
    Rm(BranchRmArgs),
    /// Remove the data of branches whose git branch no longer exists, after asking.
    Prune(BranchPruneArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BranchLsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BranchRmArgs {
    /// The git branch, or the database's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct BranchPruneArgs {
    /// Do not ask for confirmation (required when not run from a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotCommand {
    /// Save every running store as snapshot NAME (default: the time and the git branch).
    Save(SnapshotSaveArgs),
    /// Make the stores hold exactly what snapshot NAME saved (each store as a whole, or not at all).
    Restore(SnapshotRestoreArgs),
    /// List this project's snapshots: when, git branch and commit, latest migration, size per store.
    List(SnapshotListArgs),
    /// Remove snapshots.
    Rm(SnapshotRmArgs),
    /// Write snapshot NAME into FILE: one zstd-compressed, checksummed file to share.
    Export(SnapshotExportArgs),
    /// Add the snapshot in FILE (from `snapshot export`) to this project, as NAME or its own name.
    Import(SnapshotImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotExportArgs {
    pub name: String,
    /// The file to write (it must not exist yet).
    pub file: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotImportArgs {
    pub file: std::path::PathBuf,
    /// The name it gets here (default: the name it was exported under).
    pub name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotSaveArgs {
    /// The snapshot's name: letters, digits, `.`, `_`, `-`.
    pub name: Option<String>,
    /// Only these services or kinds, e.g. `--only postgres,firestore`.
    #[arg(long, value_delimiter = ',', value_name = "SERVICE")]
    pub only: Vec<String>,
    /// Pause the stack's other running containers (app services, stores left out by --only)
    /// while the stores are read, so they are saved at one moment; unpaused afterwards, also
    /// when the save fails or is stopped with Ctrl-C.
    #[arg(long)]
    pub pause: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotRestoreArgs {
    /// The snapshot to restore (`vibedev snapshot list` names them).
    #[arg(required_unless_present = "last", conflicts_with = "last")]
    pub name: Option<String>,
    /// Restore the newest automatic snapshot (taken before the last `reset-db` or `migrate`).
    #[arg(long)]
    pub last: bool,
    /// Only these services or kinds, e.g. `--only postgres,firestore`.
    #[arg(long, value_delimiter = ',', value_name = "SERVICE")]
    pub only: Vec<String>,
    /// Apply the migrations the folder has and the restored database lacks.
    #[arg(long)]
    pub migrate: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotListArgs {
    /// Print JSON: {root, total_bytes, snapshots: [manifest...]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotRmArgs {
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Only these projects (as `vibedev ls` names them), when their checkout is gone.
    #[arg(value_name = "PROJECT")]
    pub projects: Vec<String>,
    /// Do not ask for confirmation (required when not run from a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Also remove the pruned projects' snapshots (kept otherwise).
    #[arg(long)]
    pub snapshots: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SecretsCommand {
    /// Fetch the secrets the env template names into .env.gcp (mode 0600), all or nothing.
    Pull(SecretsPullArgs),
    /// Compare .env.gcp with Secret Manager, per variable, without printing any value.
    #[command(visible_alias = "status")]
    Diff(SecretsDiffArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SecretsDiffArgs {
    /// The GCP project holding the secrets (default: [secrets] project, GOOGLE_CLOUD_PROJECT, gcloud's project).
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with 8 when any variable is not in sync (for a pre-commit hook or CI).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SecretsPullArgs {
    /// The GCP project holding the secrets (default: [secrets] project, GOOGLE_CLOUD_PROJECT, gcloud's project).
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Show which keys would be added, changed or removed (names only) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write .env.gcp even though git tracks it.
    #[arg(long)]
    pub allow_tracked: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The command and its arguments (after `--`).
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<std::ffi::OsString>,
    /// Replace the values of .env.gcp's secrets with <secret:KEY> in CMD's output (values of 6 bytes or more).
    #[arg(long, env = "VIBEDEV_RUN_MASK")]
    pub mask: bool,
    /// Restart CMD (SIGTERM, then SIGKILL after VIBEDEV_RUN_GRACE seconds) when .env.gcp or the stack's connection variables change.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Services to start (with what they depend on); all when none are named.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Activate a Compose profile (repeatable; also COMPOSE_PROFILES and `profiles` in vibedev.toml).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Then keep watching the project's files, as `vibedev watch` does.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: poll for changes instead of using the OS file watcher.
    #[arg(long, requires = "watch")]
    pub poll: bool,
    /// Remove the containers of services that are no longer in the stack (kept otherwise).
    #[arg(long)]
    pub remove_orphans: bool,
    /// Build the images of services with `build:` again, even when nothing changed.
    #[arg(long)]
    pub build: bool,
    /// Then serve the web page over the stack, as `vibedev ui` does (until Ctrl-C).
    #[arg(long)]
    pub ui: bool,
    /// With --ui: listen on this port of 127.0.0.1 (default: a free one).
    #[arg(long, requires = "ui", value_name = "N")]
    pub ui_port: Option<u16>,
    /// With --ui: do not open a browser.
    #[arg(long, requires = "ui")]
    pub no_open: bool,
    /// auto: this checkout gets its own stable, free host ports from now on (as `ports = "auto"`
    /// in vibedev.toml); fixed: the configured ports again.
    #[arg(long, value_enum, value_name = "MODE")]
    pub ports: Option<PortsChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PortsChoice {
    Auto,
    Fixed,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Poll for changes instead of using the OS file watcher (network file systems, inotify limits).
    #[arg(long)]
    pub poll: bool,
    /// Keep a Compose profile active when a saved file is applied (repeatable; as `up --profile`).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// Also remove the project's named volumes (its data).
    #[arg(long)]
    pub volumes: bool,
    /// With --volumes: also remove this project's snapshots (kept otherwise).
    #[arg(long, requires = "volumes")]
    pub snapshots: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Print only the service names, one a line.
    #[arg(long)]
    pub services: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
    /// Activate a Compose profile (repeatable), as `up --profile` does.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 7 unless every service is running and ready (for scripts).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Services to show; all when none are named.
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Keep following new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Show only the last N lines of each service.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: Option<MigrateCommand>,
    /// Also apply entries older than the newest applied migration that were never recorded.
    #[arg(long)]
    pub allow_out_of_order: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MigrateCommand {
    /// Show every journal entry: applied, pending, drifted or out of order.
    Status(MigrateStatusArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MigrateStatusArgs {
    /// Exit with code 6 unless every entry is applied unchanged.
    #[arg(long)]
    pub exit_code: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ResetDbArgs {
    /// Do not ask for confirmation (required when not run from a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Leave the seed data out (migrations only).
    #[arg(long)]
    pub no_seed: bool,
    /// Also empty Redis, reset the Firestore emulator and the buckets, and reseed them.
    #[arg(long)]
    pub all: bool,
    /// Drop, create and migrate directly instead of cloning the template database.
    #[arg(long)]
    pub no_template: bool,
    /// Internal: clone the template into a spare for the next reset (run in the background).
    #[arg(long, hide = true)]
    pub prepare_spare: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// What to seed; everything configured under [seed] when none are named.
    #[arg(value_enum, value_name = "KIND")]
    pub kinds: Vec<SeedKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeedKind {
    /// The SQL seed files, each in a transaction (they should be idempotent to run twice).
    Sql,
    /// The bucket seed folder (unchanged objects are skipped).
    Bucket,
    /// The Firestore seed documents (written over documents with the same path).
    Firestore,
}

#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = EnvFormat::Dotenv)]
    pub format: EnvFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    /// KEY=value lines, quoted where needed.
    Dotenv,
    /// `export KEY='value'` lines, for `eval "$(vibedev env --format shell)"`.
    Shell,
    /// A JSON object.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print a JSON object with one entry per check instead of lines.
    #[arg(long)]
    pub json: bool,
    /// The GCP project holding the app's secrets (overrides vibedev.toml and GOOGLE_CLOUD_PROJECT).
    #[arg(long, value_name = "GCP_PROJECT")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to print completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
