//! Everything one kind of service means, one module per kind behind one trait ([`ServiceKind`]):
//! its settings from `x-vibedev`, its start rank, how it is waited for (as data, [`WaitFor`]),
//! how it is prepared, its URL and connection variables, how its data is seeded, emptied,
//! saved into a snapshot and restored from one, and how it follows a git branch.
//! Callers loop over the stack's services and call the trait; nothing outside this folder
//! matches on a kind or a service name. Free of Docker plumbing.

pub mod browse;
pub mod firestore;
pub mod gcs;
pub mod postgres;
pub mod pubsub;
pub mod redis;
pub mod seed;
pub mod snapshot;
pub mod wait;

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;

pub use seed::{SeedError, SeedReporter};
pub use snapshot::{ContainerExec, Counted, SnapshotIo};
pub use wait::{Stage, WaitFor};

use crate::branches::OnBranch;
pub use crate::branches::StoreMark;
use crate::compose::XVibedev;
use crate::config::BranchesConfig;
pub use crate::config::SeedPaths;
use crate::pg::PostgresApp;

/// A kind of service vibedev knows: a handle on its behaviour, compared by name.
#[derive(Clone, Copy)]
pub struct Kind(&'static dyn ServiceKind);

impl Kind {
    pub const POSTGRES: Kind = Kind(&postgres::Postgres);
    pub const REDIS: Kind = Kind(&redis::Redis);
    pub const FIRESTORE: Kind = Kind(&firestore::Firestore);
    pub const GCS: Kind = Kind(&gcs::Gcs);
    pub const PUBSUB: Kind = Kind(&pubsub::PubSub);

    /// Every kind, in the order `vibedev seed` and `reset-db --all` visit stores.
    pub const ALL: [Kind; 5] = [
        Kind::GCS,
        Kind::FIRESTORE,
        Kind::REDIS,
        Kind::PUBSUB,
        Kind::POSTGRES,
    ];

    /// The kind named in `x-vibedev: kind:` (or a label), aliases included.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s || k.aliases().contains(&s))
    }

    /// The kind a service has by its name alone (the built-in stack's names).
    pub fn by_service_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name && k.implied_by_service_name())
    }

    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// The names `x-vibedev: kind:` accepts, for error messages.
    pub fn names() -> String {
        Kind::ALL.map(|k| k.name()).join(", ")
    }
}

impl std::ops::Deref for Kind {
    type Target = dyn ServiceKind;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Kind {}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Kind) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    fn cmp(&self, other: &Kind) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl std::hash::Hash for Kind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a kind reads from the compose file once, when the stack is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Postgres: the app database and role, and the admin account.
    pub postgres: Option<PostgresApp>,
    /// fake-gcs: the buckets to create.
    pub buckets: Vec<String>,
    /// Pub/Sub: the topics to create.
    pub topics: Vec<String>,
    /// The git branch whose own data the service holds (`[branches]`), when it is not the
    /// default branch and this kind's data follows it.
    pub branch: Option<FollowedBranch>,
}

impl Settings {
    /// The buckets as the default branch names them.
    pub fn default_buckets(&self) -> &[String] {
        self.branch
            .as_ref()
            .map_or(&self.buckets, |b| &b.default_buckets)
    }
}

/// A git branch other than the default, as a service's data follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedBranch {
    /// The git branch.
    pub branch: String,
    /// What the branch's names add to the default branch's.
    pub slug: String,
    /// The project id the stack serves on the default branch.
    pub default_project: String,
    /// The buckets as the default branch names them (in the order of `buckets`).
    pub default_buckets: Vec<String>,
}

/// What a store holds for one git branch (`vibedev branch ls`, `branch rm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchData {
    /// What it is: `bucket app-feature-x`, `Firestore project demo-feature-x`.
    pub what: String,
    /// How many objects or documents it holds.
    pub count: Counted,
    /// Its size, when the store tells.
    pub bytes: Option<u64>,
}

/// What a kind's settings are read from.
pub struct SettingsInput<'a> {
    /// The service's environment, with `*_FILE` variables' values filled in where the file is
    /// the service's own secret or config.
    pub env: &'a BTreeMap<String, String>,
    pub x: &'a XVibedev,
}

/// A running service as a client reaches it from the host.
pub struct Store<'a> {
    /// The service's name in the stack (what messages call it).
    pub service: &'a str,
    pub host: String,
    pub port: u16,
    pub settings: &'a Settings,
    pub gcp_project: &'a str,
}

impl Store<'_> {
    /// `host` as it goes into a URL (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.url_host(), self.port)
    }

    /// The project id the stack serves on the default branch.
    pub fn default_gcp_project(&self) -> &str {
        self.settings
            .branch
            .as_ref()
            .map_or(self.gcp_project, |b| b.default_project.as_str())
    }

    /// The Postgres target, for a service that has Postgres settings.
    pub fn postgres(&self) -> Option<crate::pg::PgTarget> {
        self.settings
            .postgres
            .as_ref()
            .map(|app| crate::pg::PgTarget {
                host: self.host.clone(),
                port: self.port,
                app: app.clone(),
            })
    }
}

pub use crate::engine::images::ImageFacts;

/// The service's own start, as the compose file gives it ([`ServiceKind::launch`]).
#[derive(Debug, Clone)]
pub struct LaunchInput<'a> {
    pub entrypoint: Option<&'a [String]>,
    pub command: Option<&'a [String]>,
    pub env: &'a BTreeMap<String, String>,
    /// Where the service mounts volumes, host paths and files in the container.
    pub mount_targets: Vec<&'a str>,
}

/// How a kind starts a container of an image it recognises: what replaces or adds to the
/// service's own start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Variables set over the service's own.
    pub env: Vec<(String, String)>,
    /// Where vibedev's cache volume is mounted in the container, if it is.
    pub cache_target: Option<&'static str>,
}

/// Where [`Launch::cache_target`] mounts vibedev's cache volume.
pub const CACHE_MOUNT: &str = "/vibedev-cache";

/// When seeding: only into an empty store (after `up` created it), or always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// `up`: seed a store that holds nothing yet; leave one with data alone.
    IfEmpty,
    /// `vibedev seed`: load the seed again (unchanged objects are skipped).
    Again,
    /// `watch` and `reset-db --all`: make the store hold exactly the seed (objects without a
    /// file are deleted).
    Exactly,
}

/// What seeding one store did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeded {
    Objects {
        bucket: String,
        uploaded: usize,
        unchanged: usize,
        deleted: usize,
    },
    Documents {
        count: usize,
    },
    SqlFiles {
        count: usize,
    },
}

/// What emptying one store did (`reset-db --all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emptied {
    /// Every key or document is gone.
    Everything,
    /// These buckets were emptied, with how many objects each lost.
    Buckets(Vec<(String, usize)>),
}

/// Everything one kind of service means. Object safe: the stack holds `&'static dyn` handles.
pub trait ServiceKind: Send + Sync {
    /// The kind's name (`x-vibedev: kind:`, `vibedev status`).
    fn name(&self) -> &'static str;

    /// True when a service named like the kind has it without `x-vibedev: kind` (the
    /// built-in stack's names).
    fn implied_by_service_name(&self) -> bool {
        true
    }

    /// Other spellings `x-vibedev: kind:` accepts.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads the kind's settings (defaults where the file says nothing).
    fn settings(&self, _input: &SettingsInput<'_>) -> Result<Settings, String> {
        Ok(Settings::default())
    }

    /// When this run starts it, among services that wait for nothing (lower first): on a
    /// small machine starting containers is CPU-bound, so the services furthest from ready go
    /// first. `fresh_data`: its data volume was created by this run.
    fn start_rank(&self, fresh_data: bool) -> u8;

    /// How one readiness check is made from the host.
    fn wait(&self) -> WaitFor;

    /// A faster way to start a container of this image than the service's own command, when the
    /// kind recognises the image's layout (from its inspect data and the command it would run);
    /// `None` keeps the service's entrypoint and command. What it starts must behave as the
    /// command would, and fall back to running the command when the layout is not as expected.
    fn launch(&self, _image: &ImageFacts, _service: &LaunchInput<'_>) -> Option<Launch> {
        None
    }

    /// For `vibedev doctor`: the path in the container (under [`Launch::cache_target`]) whose
    /// presence means the cache that [`ServiceKind::launch`] speeds starts with is made, and what
    /// a start costs without it. `None` when the kind keeps no cache for this image and service.
    fn launch_cache(
        &self,
        _image: &ImageFacts,
        _service: &LaunchInput<'_>,
    ) -> Option<(String, &'static str)> {
        None
    }

    /// What the service needs before it is the stack's (a role and database, buckets), done
    /// when the readiness check says the server answered but refused ([`Stage::Refused`]) or
    /// once it is ready ([`Stage::Ready`]). Idempotent; returns what it made.
    fn prepare<'a>(
        &'a self,
        _store: &'a Store<'a>,
        _stage: Stage,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The URL `vibedev status` shows (a password only when asked for).
    fn url(&self, store: &Store<'_>, with_password: bool) -> String;

    /// The app's connection variables for this service (`vibedev env`).
    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)>;

    /// The word `vibedev seed` takes for this kind's seed, if it has one.
    fn seed_name(&self) -> Option<&'static str> {
        None
    }

    /// How messages name this kind's seed (`no SQL seed is configured`).
    fn seed_title(&self) -> &'static str {
        self.name()
    }

    /// The `[seed]` key that configures this kind's seed, as an example line.
    fn seed_setting(&self) -> &'static str {
        ""
    }

    /// True when the project names seed data for this kind (by default: its seed folder).
    fn seed_configured(&self, seeds: &SeedPaths) -> bool {
        self.seed_folder(seeds).is_some()
    }

    /// The folder `watch` follows for this kind's seed, when it has one.
    fn seed_folder<'a>(&self, _seeds: &'a SeedPaths) -> Option<&'a std::path::Path> {
        None
    }

    /// True for the kind that holds the app database (migrations, `reset-db`).
    fn holds_app_database(&self) -> bool {
        false
    }

    /// Loads the project's seed data into the store; `None` when there was nothing to do
    /// (no seed configured, or `IfEmpty` and the store holds data).
    fn seed<'a>(
        &'a self,
        _store: &'a Store<'a>,
        _seeds: &'a SeedPaths,
        _mode: SeedMode,
        _report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Seeded>, SeedError>> {
        Box::pin(async { Ok(None) })
    }

    /// Empties the store for `reset-db --all`; `None` for a kind whose data is reset another
    /// way (the app database: `reset-db` itself). `reseed`: the seed that is loaded right
    /// after (`SeedMode::Exactly`), so what it makes exact need not be emptied first.
    fn empty<'a>(
        &'a self,
        _store: &'a Store<'a>,
        _reseed: Option<&'a SeedPaths>,
        _report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Emptied>, SeedError>> {
        Box::pin(async { Ok(None) })
    }

    /// Points the service at a git branch's own data when `[branches]` says this kind's data
    /// follows the branch: records the branch in `settings` (renaming what they name, such as
    /// buckets) and returns the project id the stack serves on the branch when this kind keeps
    /// its data per project id. `gcp_project`: the default branch's. Default: nothing follows.
    fn follow_branch(
        &self,
        _config: &BranchesConfig,
        _settings: &mut Settings,
        _gcp_project: &str,
        _on: &OnBranch,
    ) -> Option<String> {
        None
    }

    /// Makes the branch's own data on its first use (see [`ServiceKind::follow_branch`]);
    /// returns what it made. Nothing to do on the default branch.
    fn ensure_branch<'a>(
        &'a self,
        _store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// What the store holds for the branch `slug` when this kind follows branches (nothing for
    /// data that was never made).
    fn branch_data<'a>(
        &'a self,
        _config: &'a BranchesConfig,
        _store: &'a Store<'a>,
        _slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The branches whose data the store recorded as made for them ([`ServiceKind::ensure_branch`]),
    /// so `branch ls` finds branches that have no database.
    fn branch_marks<'a>(
        &'a self,
        _config: &'a BranchesConfig,
        _store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<StoreMark>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Removes what the store holds for the branch `slug`, its marks included; returns what it
    /// removed.
    fn remove_branch<'a>(
        &'a self,
        _config: &'a BranchesConfig,
        _store: &'a Store<'a>,
        _slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Saves everything the store holds into `io.dir`, consistent within the store; `None` for
    /// a kind that keeps no data to snapshot (its state is remade by `prepare`).
    fn snapshot_save<'a>(
        &'a self,
        _store: &'a Store<'a>,
        _io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async { Ok(None) })
    }

    /// Makes the store hold exactly what [`ServiceKind::snapshot_save`] wrote into `io.dir`
    /// (whose files the caller has checked against their checksums). Reads the whole snapshot
    /// before changing the store, and builds the new state beside the old where the store
    /// allows, so a failure leaves the current data as it was.
    fn snapshot_restore<'a>(
        &'a self,
        _store: &'a Store<'a>,
        _io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        let name = self.name();
        Box::pin(async move { Err(format!("a {name} service keeps no data to snapshot")) })
    }

    /// Whether [`ServiceKind::snapshot_restore`] changes the store in one step (a swap, one
    /// transaction) or puts it back when it fails or is stopped, so that a
    /// restore stopped or failed at any point leaves the store as it was. Otherwise it changes
    /// the store piece by piece, and stopped midway the store may hold part of the snapshot.
    fn snapshot_restore_in_one_step(&self) -> bool {
        false
    }

    /// Removes what a [`ServiceKind::snapshot_restore`] stopped midway (Ctrl-C) built beside
    /// the store; the store itself is left as it is. Best effort.
    fn snapshot_abandon<'a>(&'a self, _store: &'a Store<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// RFC 3986's unreserved characters stay; everything else is percent-encoded.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL component (a userinfo part, a path segment).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A reqwest client for probes and API calls (no proxy, short timeouts).
pub fn http_client() -> reqwest::Client {
    crate::ready::http_client()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_alias() {
        assert_eq!(Kind::parse("postgresql"), Some(Kind::POSTGRES));
        assert_eq!(Kind::parse("fake-gcs"), Some(Kind::GCS));
        assert_eq!(Kind::parse("pubsub"), Some(Kind::PUBSUB));
        assert_eq!(Kind::parse("mysql"), None);
        assert_eq!(Kind::by_service_name("storage"), None);
        assert_eq!(Kind::by_service_name("redis"), Some(Kind::REDIS));
        assert_eq!(Kind::by_service_name("pubsub"), None);
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(encode("vibesdk_app"), "vibesdk_app");
        assert_eq!(encode("my bucket"), "my%20bucket");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
