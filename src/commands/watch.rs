//! `vibedev watch [--poll]` (and `vibedev up --watch`): follow the project's files and apply each
//! saved change with the action a user would run by hand, one line per action.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::WatchArgs;
use crate::config::Project;
use crate::data::{self, Stores};
use crate::error::Result;
use crate::migrate;
use crate::reconcile::{self, UpOptions};
use crate::services::{Kind, SeedMode, Seeded};
use crate::stack::Step;
use crate::ui::{self, Ui};
use crate::watch::{self, Batch, Change, WatchPaths};

use super::Context;
use super::report::{self, reporters, seeded_text, touched};

/// After a batch arrives, later batches within this window join the same run, so a burst (a
/// `git checkout`, a formatter) becomes one run of each action.
const SETTLE: Duration = Duration::from_millis(80);
/// A steady stream of changes still gets acted on after this long.
const SETTLE_MAX: Duration = Duration::from_secs(2);

pub async fn run(ctx: &Context, args: WatchArgs) -> Result<u8> {
    let project = ctx.project()?;
    let mut paths = watch_paths(&project);
    let (mut watcher, mut rx) = watch::start(&paths, args.poll)?;
    // Already watching: what changes while this runs is acted on next.
    tokio::select! {
        _ = apply_pending_at_start(ctx) => {}
        _ = tokio::signal::ctrl_c() => {
            ctx.ui.info("stopped watching; the stack keeps running (`vibedev down` stops it)");
            return Ok(0);
        }
    }
    ctx.ui.info(&format!(
        "watching {} ({}); Ctrl-C stops watching, the stack keeps running",
        describe(&paths),
        if args.poll {
            "polling"
        } else {
            "OS file events"
        }
    ));
    let mut runs = 0usize;
    loop {
        // With -v, say when every change seen so far has been acted on (a script or a test can
        // wait for this instead of guessing how long a run takes).
        if rx.is_empty() {
            ctx.ui.detail(&format!(
                "{} idle: {runs} action{} run so far, no change queued",
                clock(),
                if runs == 1 { "" } else { "s" }
            ));
        }
        let first = tokio::select! {
            batch = rx.recv() => batch,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(first) = first else { break };
        let mut changes = BTreeSet::new();
        absorb(&ctx.ui, first, &mut changes);
        let settle_until = Instant::now() + SETTLE_MAX;
        while Instant::now() < settle_until {
            match tokio::time::timeout(SETTLE, rx.recv()).await {
                Ok(Some(batch)) => absorb(&ctx.ui, batch, &mut changes),
                _ => break,
            }
        }
        // A folder that came, went or was put back is watched as it is now, before its action
        // reads it (what changes from here on is seen).
        if changes.iter().any(|c| c.is_folder())
            && let Err(err) = watcher.rearm(&paths)
        {
            ctx.ui.warn(&format!("file watcher: {err}"));
        }
        for change in changes {
            let started = Instant::now();
            ctx.ui.detail(&format!(
                "{} {} changed: running its action",
                clock(),
                change.describe()
            ));
            let result = tokio::select! {
                r = act(ctx, change, &args.profiles) => r,
                _ = tokio::signal::ctrl_c() => {
                    ctx.ui.info("stopped watching; the stack keeps running (`vibedev down` stops it)");
                    return Ok(0);
                }
            };
            runs += 1;
            let took = ui::secs(started.elapsed());
            match result {
                Ok(done) => ctx.ui.out(&format!(
                    "{} {} changed: {done} ({took})",
                    clock(),
                    change.describe()
                )),
                Err(err) => {
                    ctx.ui.out(&format!(
                        "{} {} changed: failed ({took}); the last good state keeps running, fix and save again",
                        clock(),
                        change.describe()
                    ));
                    ctx.ui.error(&err);
                }
            }
            // A config change can name other files to follow.
            if change == Change::Stack
                && let Ok(project) = Project::load(ctx.global.config.as_deref())
            {
                let new_paths = watch_paths(&project);
                if new_paths != paths {
                    drop(watcher);
                    (watcher, rx) = watch::start(&new_paths, args.poll)?;
                    paths = new_paths;
                    ctx.ui.info(&format!("now watching {}", describe(&paths)));
                }
            }
        }
    }
    drop(watcher);
    ctx.ui
        .info("stopped watching; the stack keeps running (`vibedev down` stops it)");
    Ok(0)
}

/// Migrations that became pending while nothing watched (a pull, a branch switch) are applied
/// when watching starts; said only when there were some, or they failed.
async fn apply_pending_at_start(ctx: &Context) {
    let started = Instant::now();
    let (ui, _lines) = ctx.ui.capturing();
    let quiet = Context {
        global: ctx.global.clone(),
        ui,
    };
    let pending = async {
        let (project, stack) = quiet.stack()?;
        if migrate::project_journal(&project.paths(), false)?.is_none() {
            return Ok(None);
        }
        let engine = quiet.engine().await?;
        let stores = Stores::observe(&engine, &stack).await?;
        if stores.database().is_err() {
            return Ok(None);
        }
        migrations(&quiet, &project, &stores).await.map(Some)
    };
    let result: Result<Option<Done>> = pending.await;
    let took = ui::secs(started.elapsed());
    match result {
        Ok(Some(done @ Done::Migrated { .. })) if !done.nothing_pending() => ctx.ui.out(&format!(
            "{} migrations pending at start: {done} ({took})",
            clock()
        )),
        Ok(_) => ctx
            .ui
            .detail("no migration pending at start (or Postgres not running)"),
        Err(err) => {
            ctx.ui.out(&format!(
                "{} migrations pending at start: failed ({took}); fix and save again",
                clock()
            ));
            ctx.ui.error(&err);
        }
    }
}

fn absorb(ui: &Ui, batch: Batch, changes: &mut BTreeSet<Change>) {
    match batch {
        Ok(batch) => changes.extend(batch),
        Err(message) => ui.warn(&format!("file watcher: {message}")),
    }
}

/// The files a project's watch follows.
pub fn watch_paths(project: &Project) -> WatchPaths {
    WatchPaths::of(project)
}

fn describe(paths: &WatchPaths) -> String {
    let mut parts = Vec::new();
    let mut add = |label: &str, p: &Option<std::path::PathBuf>| {
        if let Some(p) = p {
            parts.push(format!("{label} {}", p.display()));
        }
    };
    add("config", &paths.config);
    add("compose", &paths.compose);
    add("env template", &paths.env_template);
    add("migrations", &paths.migrations);
    add("git HEAD", &paths.git_head);
    for (kind, dir) in &paths.seeds {
        parts.push(format!(
            "{} seed {}",
            kind.seed_name().unwrap_or(kind.name()),
            dir.display()
        ));
    }
    if parts.is_empty() {
        "nothing (no vibedev.toml)".to_string()
    } else {
        parts.join(", ")
    }
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// What one action did.
#[derive(Debug)]
enum Done {
    /// The stack reconciled: the services per step taken, and how many were part of the run.
    Stack {
        steps: Vec<(Step, Vec<String>)>,
        total: usize,
    },
    Migrated {
        applied: Vec<String>,
        drifted: Vec<String>,
    },
    NoMigrationsFolder(PathBuf),
    Seeded(Vec<(String, Seeded)>),
    /// The seed folder that changed is not configured (any more).
    NotConfigured(&'static str),
    /// The env template changed: what the pull wrote.
    SecretsPulled(crate::secrets::sync::PullOutcome),
    /// The checkout switched branches: the database now in use, and its pending migrations.
    Branch {
        /// The database now in use (`None`: databases do not follow branches).
        database: Option<String>,
        /// The branch's own database as found or made (`None`: the app database).
        used: Option<data::BranchUse>,
        migrated: Box<Done>,
        /// The branch's own data made now in the other stores (the service, what it made).
        stores: Vec<(String, Vec<String>)>,
    },
}

impl Done {
    fn nothing_pending(&self) -> bool {
        matches!(self, Done::Migrated { applied, .. } if applied.is_empty())
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Stack { steps, total } => {
                let mut done: Vec<String> = [Step::Create, Step::Recreate, Step::Start]
                    .iter()
                    .filter_map(|step| {
                        let names = steps.iter().find(|(s, _)| s == step)?.1.join(", ");
                        (!names.is_empty()).then(|| format!("{}d {names}", step.name()))
                    })
                    .collect();
                if done.is_empty() {
                    done.push("no service's settings changed".to_string());
                }
                let kept = steps
                    .iter()
                    .find(|(s, _)| *s == Step::Keep)
                    .map_or(0, |(_, names)| names.len());
                if kept > 0 && done.len() < *total {
                    done.push(format!("{kept} kept running"));
                }
                f.write_str(&done.join("; "))
            }
            Done::Migrated { applied, drifted } => {
                if applied.is_empty() {
                    f.write_str("no pending migration")?;
                } else {
                    write!(f, "applied {}", applied.join(", "))?;
                }
                if !drifted.is_empty() {
                    write!(
                        f,
                        "; drift: {} changed after being applied, not re-run",
                        drifted.join(", ")
                    )?;
                }
                Ok(())
            }
            Done::NoMigrationsFolder(dir) => write!(f, "no migrations folder at {}", dir.display()),
            Done::Seeded(seeded) => f.write_str(
                &seeded
                    .iter()
                    .map(|(service, s)| format!("{service} {}", seeded_text(s)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Done::NotConfigured(what) => write!(f, "{what} seed folder is not configured"),
            Done::Branch {
                database,
                used,
                migrated,
                stores,
            } => {
                match (used, database) {
                    (Some(used), _) => f.write_str(&report::branch_text(used))?,
                    (None, Some(database)) => write!(f, "default branch: database {database}")?,
                    (None, None) => f.write_str("branch switched")?,
                }
                if !migrated.nothing_pending() {
                    write!(f, "; {migrated}")?;
                }
                for (service, made) in stores {
                    for what in made {
                        write!(f, "; {service}: made {what}")?;
                    }
                }
                Ok(())
            }
            Done::SecretsPulled(outcome) => {
                let mut said = outcome.wrote_line();
                if let Some(slow) = outcome.slow_line() {
                    said.push_str("; ");
                    said.push_str(&slow);
                }
                f.write_str(&said.split_whitespace().collect::<Vec<_>>().join(" "))
            }
        }
    }
}

/// Runs the action for one kind of change; returns what was done.
async fn act(ctx: &Context, change: Change, profiles: &[String]) -> Result<Done> {
    let (ui, _lines) = ctx.ui.capturing();
    let quiet = Context {
        global: ctx.global.clone(),
        ui,
    };
    // Held for the action only: an idle watch never keeps another terminal waiting.
    // The stack's project name (a compose `name:` can set it); the config's when the files do
    // not resolve right now (the action then reports why).
    let project = ctx.project()?;
    let name = crate::stack::Stack::resolve(&project).map_or(project.name, |s| s.project);
    let _lock = ctx
        .lock(&name, &format!("watch ({})", change.describe()))
        .await?;
    match change {
        Change::Stack => reconcile_stack(&quiet, profiles).await,
        Change::Branch => branch(&quiet).await,
        Change::Migrations => {
            let (project, stack) = quiet.stack()?;
            let engine = quiet.engine().await?;
            let stores = Stores::observe(&engine, &stack).await?;
            migrations(&quiet, &project, &stores).await
        }
        Change::Seed(kind) => seed(&quiet, kind).await,
        Change::EnvTemplate => {
            let project = quiet.project()?;
            let bar = Arc::new(Mutex::new(None));
            let outcome = crate::secrets::sync::pull_project(
                &project,
                &crate::secrets::sync::PullOptions::default(),
                &report::secrets_reporter(&quiet.ui, bar),
            )
            .await?;
            Ok(Done::SecretsPulled(outcome))
        }
    }
}

/// A seed folder saved: make the store hold exactly the folder's files.
async fn seed(ctx: &Context, kind: Kind) -> Result<Done> {
    let (project, stack) = ctx.stack()?;
    let paths = project.paths();
    if !kind.seed_configured(&paths.seeds) {
        return Ok(Done::NotConfigured(kind.seed_name().unwrap_or(kind.name())));
    }
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let seeded = data::seed(
        &paths,
        &stores,
        &[kind],
        SeedMode::Exactly,
        &reporters(&ctx.ui),
    )
    .await?;
    Ok(Done::Seeded(seeded))
}

/// The checkout's HEAD moved: the stack's database follows the branch (made on first use) and
/// what is pending on it is applied.
async fn branch(ctx: &Context) -> Result<Done> {
    let (project, stack) = ctx.stack()?;
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let made = data::branch_stores(&stores).await?;
    if !project.file.branches.database {
        return Ok(Done::Branch {
            database: None,
            used: None,
            migrated: Box::new(Done::Migrated {
                applied: Vec::new(),
                drifted: Vec::new(),
            }),
            stores: made,
        });
    }
    let db = stores.database()?;
    let used = data::branch_database(&project, &db, false, &reporters(&ctx.ui)).await?;
    let migrated = migrations(ctx, &project, &stores).await?;
    Ok(Done::Branch {
        database: Some(db.target.app.database.clone()),
        used,
        migrated: Box::new(migrated),
        stores: made,
    })
}

/// Config or compose file saved: reload it and reconcile; only changed services are touched.
async fn reconcile_stack(ctx: &Context, profiles: &[String]) -> Result<Done> {
    let (project, mut stack) = ctx.stack()?;
    stack.activate_profiles(profiles);
    let engine = ctx.engine().await?;
    ctx.settle_ports(&project, &mut stack, None, &engine)
        .await?;
    let outcomes = reconcile::up(&engine, &stack, &UpOptions::default(), ctx.ui.reporter()).await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let done = data::after_up(&project, &stores, &touched(&outcomes), &reporters(&ctx.ui)).await?;
    report::after_up(&ctx.ui, &project.paths(), &done);
    let mut steps: Vec<(Step, Vec<String>)> = Vec::new();
    for o in &outcomes {
        match steps.iter_mut().find(|(s, _)| *s == o.action) {
            Some((_, names)) => names.push(o.service.clone()),
            None => steps.push((o.action, vec![o.service.clone()])),
        }
    }
    Ok(Done::Stack {
        steps,
        total: outcomes.len(),
    })
}

/// A migration added or changed: apply what is pending; a changed applied file is drift,
/// reported (by the migrate reporter) and never re-run.
async fn migrations(ctx: &Context, project: &Project, stores: &Stores<'_>) -> Result<Done> {
    let paths = project.paths();
    let Some(journal) = migrate::project_journal(&paths, false)? else {
        return Ok(Done::NoMigrationsFolder(paths.migrations));
    };
    let db = stores.database()?;
    data::branch_database(project, &db, false, &reporters(&ctx.ui)).await?;
    let outcome = data::migrate(project, &db, &journal, false, &reporters(&ctx.ui)).await?;
    Ok(Done::Migrated {
        drifted: outcome
            .plan
            .drifted()
            .iter()
            .map(|e| e.tag.clone())
            .collect(),
        applied: outcome.applied,
    })
}
