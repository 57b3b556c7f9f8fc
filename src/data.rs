//! The stack's data stores as commands use them: where each running store is reached, the app
//! database's migrations, seeds loaded and stores emptied, each through its service's kind.
//! Progress goes through callbacks, results come back typed; nothing here prints.

use std::sync::Arc;

use crate::config::BranchSource;
use crate::config::{Paths, Project};
use crate::engine::{Engine, EngineError};
use crate::migrate::branch::{self as branch_db, Ensured, MadeFrom};
use crate::migrate::seed::{SeedFile, database_is_empty};
use crate::migrate::template::ResetOptions;
use crate::migrate::{self, Journal, MigrateError, MigrateOutcome};
use crate::pg::PgTarget;
use crate::runtime::{self, ServiceRuntime};
use crate::services::{
    BranchData, Emptied, Kind, SeedError, SeedMode, SeedReporter, Seeded, Store,
};
use crate::stack::{ServiceSpec, Stack};

/// Why a data command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{service} is not running")]
    NotRunning { service: String },
    #[error("the stack has no {kind} service running")]
    KindNotRunning { kind: &'static str },
    #[error("the stack has no Postgres service (`x-vibedev: kind: postgres` marks one)")]
    NoDatabase,
    #[error("no {seed} seed is configured")]
    SeedNotConfigured {
        seed: &'static str,
        setting: &'static str,
    },
    #[error("{service}: {message}")]
    BranchData { service: String, message: String },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl DataError {
    pub fn hint(&self) -> Option<String> {
        match self {
            DataError::NotRunning { service } => {
                Some(format!("start it with `vibedev up {service}`"))
            }
            DataError::KindNotRunning { .. } => Some("start it with `vibedev up`".into()),
            DataError::NoDatabase => Some(
                "add a Postgres service to the compose file, or run `vibedev init` for the default stack".into(),
            ),
            DataError::SeedNotConfigured { setting, .. } => Some(format!(
                "add it under [seed] in vibedev.toml, e.g. {setting}"
            )),
            DataError::BranchData { service, .. } => Some(format!(
                "check that {service} is up and ready (`vibedev status`), then run the command again"
            )),
            DataError::Seed(e) => e.hint(),
            DataError::Migrate(e) => e.hint(),
            DataError::Engine(e) => e.hint(),
        }
    }
}

/// Progress callbacks, per service (named as the stack names it).
#[derive(Clone)]
pub struct Reporters {
    pub migrate: Arc<dyn Fn(&str) -> migrate::Reporter + Send + Sync>,
    pub seed: Arc<dyn Fn(&str) -> SeedReporter + Send + Sync>,
}

impl Reporters {
    /// Reporters that drop everything.
    pub fn silent() -> Reporters {
        Reporters {
            migrate: Arc::new(|_| migrate::silent()),
            seed: Arc::new(|_| Arc::new(|_| {})),
        }
    }
}

/// The app database: the stack's first Postgres service, as it is reached.
#[derive(Debug, Clone)]
pub struct Database {
    /// The service's name in the stack.
    pub service: String,
    pub kind: Kind,
    pub target: PgTarget,
}

/// The running stack's stores.
pub struct Stores<'a> {
    pub stack: &'a Stack,
    pub runtimes: Vec<ServiceRuntime>,
}

impl<'a> Stores<'a> {
    /// Observes the stack on the engine.
    pub async fn observe(engine: &Engine, stack: &'a Stack) -> Result<Stores<'a>, EngineError> {
        Ok(Stores {
            stack,
            runtimes: runtime::observe(engine, stack).await?,
        })
    }

    /// Each running service of a known kind, reachable from the host (the first of each kind:
    /// the one the app's connection variables point at).
    pub fn running(&self) -> Vec<(Kind, Store<'_>)> {
        let mut out: Vec<(Kind, Store<'_>)> = Vec::new();
        for (spec, rt) in self.stack.services.iter().zip(&self.runtimes) {
            let Some(kind) = spec.kind else { continue };
            if !rt.running() || out.iter().any(|(k, _)| *k == kind) {
                continue;
            }
            if let Some(store) = rt.store(self.stack, spec) {
                out.push((kind, store));
            }
        }
        out
    }

    /// The running store of a kind.
    pub fn store(&self, kind: Kind) -> Option<Store<'_>> {
        self.running()
            .into_iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s)
    }

    /// Services of a known kind that are not running (each named once per kind).
    pub fn stopped(&self) -> Vec<&ServiceSpec> {
        let running = self.running();
        let mut out: Vec<&ServiceSpec> = Vec::new();
        for spec in &self.stack.services {
            let Some(kind) = spec.kind else { continue };
            if running.iter().any(|(k, _)| *k == kind) || out.iter().any(|s| s.kind == Some(kind)) {
                continue;
            }
            out.push(spec);
        }
        out
    }

    /// The app database (the first service of the kind that holds it), or an error naming
    /// the service to start.
    pub fn database(&self) -> Result<Database, DataError> {
        let found = self
            .running()
            .into_iter()
            .find(|(kind, _)| kind.holds_app_database());
        if let Some((kind, store)) = found
            && let Some(target) = store.postgres()
        {
            return Ok(Database {
                kind,
                service: store.service.to_string(),
                target,
            });
        }
        let spec = self
            .stack
            .services
            .iter()
            .find(|s| s.kind.is_some_and(|k| k.holds_app_database()));
        Err(match spec {
            Some(spec) => DataError::NotRunning {
                service: spec.name.clone(),
            },
            None => DataError::NoDatabase,
        })
    }
}

/// Where each migration of the project's journal stands on the app database, as `vibedev
/// migrate status` says it (read-only); `None` when the project has no migrations folder.
pub async fn migration_status(
    project: &Project,
    db: &Database,
) -> Result<Option<migrate::Plan>, DataError> {
    let Some(journal) = migrate::project_journal(&project.paths(), false)? else {
        return Ok(None);
    };
    let bookkeeping = migrate::Bookkeeping::configured(&project.file.migrations);
    let client = migrate::connect_app(&db.target, &db.target.app.database).await?;
    Ok(Some(
        migrate::runner::status(&client, &journal, &bookkeeping).await?,
    ))
}

/// The current git branch's own database, as a command found or made it.
#[derive(Debug)]
pub struct BranchUse {
    /// The service holding it.
    pub service: String,
    /// The git branch.
    pub branch: String,
    pub database: String,
    /// Set when it was made now: from what, how long it took, and what migrating it did.
    pub made: Option<(MadeFrom, std::time::Duration, Option<MigrateOutcome>)>,
}

/// Makes the current branch's database on first use (`[branches] database = true`; `None` when
/// the checkout uses the app database itself): a file-level copy of the app database, or of the
/// reset template with `[branches] from = "template"`; then, with `migrate_new`, the branch's
/// pending migrations are applied to it.
pub async fn branch_database(
    project: &Project,
    db: &Database,
    migrate_new: bool,
    report: &Reporters,
) -> Result<Option<BranchUse>, DataError> {
    let Some(branch) = &db.target.app.branch else {
        return Ok(None);
    };
    let paths = project.paths();
    let from = project.file.branches.from.unwrap_or_default();
    let journal = migrate::project_journal(&paths, false)?;
    let seeds = match from {
        BranchSource::Template => SeedFile::load_all(&paths.seeds.sql, &paths.root)?,
        BranchSource::Default => Vec::new(),
    };
    let options = ResetOptions {
        journal: journal.as_ref(),
        seeds: &seeds,
        migrate: migrate::project_options(project, false),
        use_template: true,
    };
    let progress = (report.migrate)(&db.service);
    let ensured = branch_db::ensure(&db.target, from, &options, &progress).await?;
    let made = match ensured {
        Ensured::Existed => None,
        Ensured::Made { from, elapsed } => {
            let migrated = match &journal {
                Some(journal) if migrate_new => {
                    Some(self::migrate(project, db, journal, false, report).await?)
                }
                _ => None,
            };
            Some((from, elapsed, migrated))
        }
    };
    Ok(Some(BranchUse {
        service: db.service.clone(),
        branch: branch.branch.clone(),
        database: db.target.app.database.clone(),
        made,
    }))
}

/// The app database and every branch database made from it, each with its git branch and
/// whether that branch still exists.
pub async fn branch_databases(
    project: &Project,
    db: &Database,
) -> Result<Vec<crate::branches::Listed>, DataError> {
    let app = db.target.app.prepared_database().to_string();
    let found = branch_db::list(&db.target, &app).await?;
    let root = &project.root;
    let local = crate::git::local_branches(root).unwrap_or_default();
    let detached = crate::git::detached_heads(root);
    let default_branch = default_branch(project);
    Ok(crate::branches::classify(
        &app,
        &db.target.app.database,
        default_branch.as_deref(),
        found,
        &local,
        &detached,
    ))
}

/// The repository's default branch: `[branches] default`, else git's.
fn default_branch(project: &Project) -> Option<String> {
    project
        .file
        .branches
        .default_branch
        .clone()
        .or_else(|| crate::git::default_branch(&project.root))
}

/// Every git branch with data of its own, and the default branch: the branch databases (with
/// `[branches] database`) and the branches the other running stores recorded, each with its git
/// branch and whether that branch still exists.
pub async fn branches(
    project: &Project,
    stores: &Stores<'_>,
) -> Result<Vec<crate::branches::Listed>, DataError> {
    let root = &project.root;
    let current_slug = crate::branches::current(project)
        .ok()
        .flatten()
        .map(|on| on.slug);
    let listed = if project.file.branches.database {
        branch_databases(project, &stores.database()?).await?
    } else {
        vec![crate::branches::default_row(
            default_branch(project).as_deref(),
            current_slug.is_none(),
        )]
    };
    let config = &project.file.branches;
    let mut marks = Vec::new();
    for (kind, store) in stores.running() {
        let found =
            kind.branch_marks(config, &store)
                .await
                .map_err(|message| DataError::BranchData {
                    service: store.service.to_string(),
                    message,
                })?;
        marks.extend(found);
    }
    let local = crate::git::local_branches(root).unwrap_or_default();
    let detached = crate::git::detached_heads(root);
    Ok(crate::branches::with_marks(
        listed,
        marks,
        current_slug.as_deref(),
        &local,
        &detached,
    ))
}

/// Drops a branch database and the reset templates made for it; returns the names dropped.
pub async fn remove_branch_database(
    db: &Database,
    database: &str,
) -> Result<Vec<String>, DataError> {
    Ok(branch_db::remove(&db.target, database).await?)
}

/// Makes the current branch's own data in each running store whose kind follows the git branch
/// (`[branches] firestore`, `bucket`) when the branch uses it for the first time; returns each
/// service with what it made (nothing on the default branch).
pub async fn branch_stores(stores: &Stores<'_>) -> Result<Vec<(String, Vec<String>)>, DataError> {
    let running = stores.running();
    let results = futures_util::future::join_all(
        running
            .iter()
            .filter(|(_, store)| store.settings.branch.is_some())
            .map(|(kind, store)| async move {
                let made =
                    kind.ensure_branch(store)
                        .await
                        .map_err(|message| DataError::BranchData {
                            service: store.service.to_string(),
                            message,
                        })?;
                Ok::<_, DataError>((store.service.to_string(), made))
            }),
    )
    .await;
    let mut done = Vec::new();
    for result in results {
        let (service, made) = result?;
        if !made.is_empty() {
            done.push((service, made));
        }
    }
    Ok(done)
}

/// What the running stores other than the app database hold for the git branch `slug`, each
/// with its service.
pub async fn branch_data(
    project: &Project,
    stores: &Stores<'_>,
    slug: &str,
) -> Result<Vec<(String, BranchData)>, DataError> {
    branch_data_op(project, stores, slug, false).await
}

/// Removes what the running stores other than the app database hold for the git branch
/// `slug`; returns what was removed, each with its service.
pub async fn remove_branch_data(
    project: &Project,
    stores: &Stores<'_>,
    slug: &str,
) -> Result<Vec<(String, BranchData)>, DataError> {
    branch_data_op(project, stores, slug, true).await
}

async fn branch_data_op(
    project: &Project,
    stores: &Stores<'_>,
    slug: &str,
    remove: bool,
) -> Result<Vec<(String, BranchData)>, DataError> {
    let config = &project.file.branches;
    let mut done = Vec::new();
    for (kind, store) in stores.running() {
        let held = if remove {
            kind.remove_branch(config, &store, slug).await
        } else {
            kind.branch_data(config, &store, slug).await
        };
        let held = held.map_err(|message| DataError::BranchData {
            service: store.service.to_string(),
            message,
        })?;
        done.extend(held.into_iter().map(|h| (store.service.to_string(), h)));
    }
    Ok(done)
}

/// Applies the pending migrations of the project's journal to the app database.
pub async fn migrate(
    project: &Project,
    db: &Database,
    journal: &Journal,
    allow_out_of_order: bool,
    report: &Reporters,
) -> Result<MigrateOutcome, DataError> {
    let options = migrate::project_options(project, allow_out_of_order);
    let progress = (report.migrate)(&db.service);
    Ok(migrate::apply(&db.target, journal, &options, &progress).await?)
}

/// What `up` did to the data once the stack was ready.
#[derive(Debug, Default)]
pub struct AfterUp {
    /// The app database's service and what migrating it did.
    pub migrated: Option<(String, MigrateOutcome)>,
    /// Each store seeded (the service, what was loaded).
    pub seeded: Vec<(String, Seeded)>,
    /// `[migrations] dir` names a folder that does not exist.
    pub missing_migrations: bool,
    /// The current branch's own database, when it has one.
    pub branch: Option<BranchUse>,
    /// The current branch's own data made in the other stores (the service, what it made).
    pub branch_stores: Vec<(String, Vec<String>)>,
}

/// After `up`: apply pending migrations once the app database is ready, and seed each store
/// whose service this run created, recreated or started and which holds nothing yet.
/// `touched(service)`: the service was part of this run (`Some(true)` when its container was
/// created, recreated or started).
pub async fn after_up(
    project: &Project,
    stores: &Stores<'_>,
    touched: &(dyn Fn(&str) -> Option<bool> + Sync),
    report: &Reporters,
) -> Result<AfterUp, DataError> {
    let paths = project.paths();
    let mut done = AfterUp::default();
    let database = async {
        let Ok(db) = stores.database() else {
            return Ok(None);
        };
        // A branch database made now is migrated (and seeded while empty) as a fresh one.
        let branch = branch_database(project, &db, false, report).await?;
        let made = branch.as_ref().is_some_and(|b| b.made.is_some());
        let fresh = match touched(&db.service) {
            Some(fresh) => fresh || made,
            None if made => true,
            None => {
                return Ok(Some(AfterUp {
                    branch,
                    ..AfterUp::default()
                }));
            }
        };
        let mut done = database_after_up(project, &paths, stores, &db, fresh, report).await?;
        done.branch = branch;
        Ok(Some(done))
    };
    // A branch's own bucket is made (as a copy) before a seed goes into it.
    let others = async {
        let made = branch_stores(stores).await?;
        let seeded = futures_util::future::join_all(
            stores
                .running()
                .into_iter()
                .filter(|(kind, store)| {
                    !kind.holds_app_database()
                        && kind.seed_configured(&paths.seeds)
                        && touched(store.service) == Some(true)
                })
                .map(|(kind, store)| {
                    let paths = &paths;
                    async move {
                        let reporter = (report.seed)(store.service);
                        let seeded = kind
                            .seed(&store, &paths.seeds, SeedMode::IfEmpty, &reporter)
                            .await?;
                        Ok::<_, DataError>(seeded.map(|s| (store.service.to_string(), s)))
                    }
                }),
        )
        .await;
        Ok::<_, DataError>((made, seeded))
    };
    let (database, others) = tokio::join!(database, others);
    let mut first_error = None;
    let others = match others {
        Ok((made, seeded)) => {
            done.branch_stores = made;
            seeded
        }
        Err(e) => {
            first_error = Some(e);
            Vec::new()
        }
    };
    match database {
        Ok(Some(db)) => {
            done.missing_migrations = db.missing_migrations;
            done.migrated = db.migrated;
            done.seeded.extend(db.seeded);
            done.branch = db.branch;
        }
        Ok(None) => {}
        Err(e) => first_error = Some(e),
    }
    for result in others {
        match result {
            Ok(Some(seeded)) => done.seeded.push(seeded),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// The app database's part of [`after_up`]: seeds go into a database this run created empty
/// (looked at before migrations fill it), after the migrations.
async fn database_after_up(
    project: &Project,
    paths: &Paths,
    stores: &Stores<'_>,
    db: &Database,
    fresh: bool,
    report: &Reporters,
) -> Result<AfterUp, DataError> {
    let mut done = AfterUp::default();
    let journal = migrate::project_journal(paths, false)?;
    done.missing_migrations = journal.is_none() && paths.migrations_named;
    let kind = db.kind;
    let seeding = kind.seed_configured(&paths.seeds);
    if journal.is_none() && !seeding {
        return Ok(done);
    }
    let seed = fresh && seeding && {
        let client = migrate::connect_app(&db.target, &db.target.app.database).await?;
        database_is_empty(&client).await?
    };
    if let Some(journal) = &journal {
        let outcome = migrate(project, db, journal, false, report).await?;
        done.migrated = Some((db.service.clone(), outcome));
    }
    let store = stores
        .running()
        .into_iter()
        .find(|(_, s)| s.service == db.service)
        .map(|(_, s)| s);
    if seed && let Some(store) = store {
        let reporter = (report.seed)(&db.service);
        if let Some(seeded) = kind
            .seed(&store, &paths.seeds, SeedMode::Again, &reporter)
            .await?
        {
            done.seeded.push((db.service.clone(), seeded));
        }
    }
    Ok(done)
}

/// Loads the seed of each kind asked for (every configured one when `kinds` is empty, the
/// emulators first: their seeds are idempotent, SQL seeds may refuse to run twice).
pub async fn seed(
    paths: &Paths,
    stores: &Stores<'_>,
    kinds: &[Kind],
    mode: SeedMode,
    report: &Reporters,
) -> Result<Vec<(String, Seeded)>, DataError> {
    let mut done = Vec::new();
    for kind in kinds {
        let store = match stores.store(*kind) {
            Some(store) => store,
            None => {
                return Err(match stores.stack.of_kind(*kind) {
                    Some(spec) => DataError::NotRunning {
                        service: spec.name.clone(),
                    },
                    None => DataError::KindNotRunning { kind: kind.name() },
                });
            }
        };
        let reporter = (report.seed)(store.service);
        if let Some(seeded) = kind.seed(&store, &paths.seeds, mode, &reporter).await? {
            done.push((store.service.to_string(), seeded));
        }
    }
    Ok(done)
}

/// The kinds with a seed, in the order `vibedev seed` runs them.
pub fn seed_kinds() -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| k.seed_name().is_some())
        .collect()
}

/// What `reset-db --all` did to one store other than the app database.
#[derive(Debug)]
pub struct StoreReset {
    pub service: String,
    pub emptied: Emptied,
    pub seeded: Option<Seeded>,
}

/// `reset-db --all`: empties every running store but the app database (which `reset-db`
/// rebuilds itself), then, with `reseed`, loads its seed again.
pub async fn empty_stores(
    paths: &Paths,
    stores: &Stores<'_>,
    reseed: bool,
    report: &Reporters,
) -> Result<Vec<StoreReset>, DataError> {
    let running = stores.running();
    let results = futures_util::future::join_all(
        running
            .iter()
            .filter(|(kind, _)| !kind.holds_app_database())
            .map(|(kind, store)| async move {
                let reporter = (report.seed)(store.service);
                let seeds = reseed.then_some(&paths.seeds);
                let Some(emptied) = kind.empty(store, seeds, &reporter).await? else {
                    return Ok::<_, DataError>(None);
                };
                let seeded = match seeds {
                    Some(seeds) => {
                        kind.seed(store, seeds, SeedMode::Exactly, &reporter)
                            .await?
                    }
                    None => None,
                };
                Ok(Some(StoreReset {
                    service: store.service.to_string(),
                    emptied,
                    seeded,
                }))
            }),
    )
    .await;
    let mut done = Vec::new();
    for result in results {
        if let Some(reset) = result? {
            done.push(reset);
        }
    }
    Ok(done)
}
