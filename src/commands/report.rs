//! How the commands show the data layer's progress and results: migration, seed and reset
//! lines labelled with the service's name, as `up`'s reporter writes service names; and a
//! Secret Manager pull's progress. Shared by the commands; not a command.

use std::sync::Arc;

use crate::data::Reporters;
use crate::migrate::{self, Progress};
use crate::secrets::{self, ENV_FILE, Event as SecretsEvent};
use crate::services::seed::SeedEvent;
use crate::services::{Emptied, SeedReporter, Seeded};
use crate::ui::{self, Ui};

/// `postgres  ` as the reconcile reporter writes service names.
pub fn service_label(name: &str) -> String {
    console::style(format!("{name:<10}")).bold().to_string()
}

/// The reporters the data layer calls, writing through `ui`.
pub fn reporters(ui: &Ui) -> Reporters {
    let (m, s) = (ui.clone(), ui.clone());
    Reporters {
        migrate: Arc::new(move |service| migrate_reporter(&m, service)),
        seed: Arc::new(move |service| seed_reporter(&s, service)),
    }
}

/// Shows migration, SQL seed and reset progress.
pub fn migrate_reporter(ui: &Ui, service: &str) -> migrate::Reporter {
    let ui = ui.clone();
    let label = service_label(service);
    Arc::new(move |event| {
        match event {
        Progress::LockWait { what } => ui.info(&format!(
            "{label} waiting for another `{what}` on this database to finish"
        )),
        Progress::Applying { tag, statements } => {
            ui.detail(&format!("applying {tag} ({statements} statements)"))
        }
        Progress::Applied { tag, elapsed } => ui.info(&format!(
            "{label} applied {tag} in {}",
            ui::secs(elapsed)
        )),
        Progress::OwnTransactionControl { tag, file, at } => ui.warn(&format!(
            "migration {tag} controls its own transactions ({}): it runs as drizzle runs it, but cannot be rolled back as a whole; \
             if a statement of {file} fails, what was committed before it stays",
            at.iter()
                .map(|(line, sql)| format!("{sql} at line {line}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Progress::Extensions { database, names } => ui.detail(&format!(
            "extensions {} present in {database}",
            names.join(", ")
        )),
        Progress::Drifted { tag } => ui.warn(&format!(
            "migration {tag} changed after it was applied (its hash no longer matches the database's record); \
             it is not applied again: put further changes in a new migration"
        )),
        Progress::Seeding { file } => ui.detail(&format!("seeding {file}")),
        Progress::Seeded { file, elapsed } => ui.info(&format!(
            "{label} seeded {file} in {}",
            ui::secs(elapsed)
        )),
        Progress::TemplateBuilding { name, replaced } => ui.info(&if replaced.is_empty() {
            format!("{label} building template database {name}")
        } else {
            format!(
                "{label} rebuilding template database {name} (migrations or seeds changed; dropping {})",
                replaced.join(", ")
            )
        }),
        Progress::TemplateBuilt { name, elapsed } => {
            ui.detail(&format!("template {name} built in {}", ui::secs(elapsed)))
        }
        Progress::Disconnecting { sessions } if sessions > 0 => ui.info(&format!(
            "{label} disconnecting {sessions} session{}",
            if sessions == 1 { "" } else { "s" }
        )),
        Progress::Disconnecting { .. } => {}
    }
    })
}

/// Per-object and per-document lines (with --verbose); SQL seed files as migrations show them.
pub fn seed_reporter(ui: &Ui, service: &str) -> SeedReporter {
    let ui = ui.clone();
    let sql = migrate_reporter(&ui, service);
    Arc::new(move |event| match event {
        SeedEvent::Uploaded { bucket, object } => {
            ui.detail(&format!("uploaded gs://{bucket}/{object}"))
        }
        SeedEvent::Deleted { bucket, object } => {
            ui.detail(&format!("deleted gs://{bucket}/{object}"))
        }
        SeedEvent::Written { document } => ui.detail(&format!("wrote {document}")),
        SeedEvent::Sql(progress) => sql(progress),
    })
}

/// `gcs        seeded bucket b: 2 uploaded, 0 unchanged`; `None` for SQL seeds (their files
/// are reported as they run).
pub fn seeded_line(service: &str, seeded: &Seeded) -> Option<String> {
    match seeded {
        Seeded::SqlFiles { .. } => None,
        _ => Some(format!(
            "{} {}",
            service_label(service),
            seeded_text(seeded)
        )),
    }
}

/// `seeded bucket b: 2 uploaded, 0 unchanged`, `seeded 3 documents`, `seeded 1 SQL file`.
pub fn seeded_text(seeded: &Seeded) -> String {
    match seeded {
        Seeded::Objects {
            bucket,
            uploaded,
            unchanged,
            deleted,
        } => {
            let deleted = if *deleted == 0 {
                String::new()
            } else {
                format!(", {deleted} deleted")
            };
            format!("seeded bucket {bucket}: {uploaded} uploaded, {unchanged} unchanged{deleted}")
        }
        Seeded::Documents { count } => {
            format!(
                "seeded {count} document{}",
                if *count == 1 { "" } else { "s" }
            )
        }
        Seeded::SqlFiles { count } => {
            format!(
                "seeded {count} SQL file{}",
                if *count == 1 { "" } else { "s" }
            )
        }
    }
}

/// `redis      emptied` / `gcs        emptied bucket b (3 objects deleted)`.
pub fn emptied_lines(service: &str, emptied: &Emptied) -> Vec<String> {
    let label = service_label(service);
    match emptied {
        Emptied::Everything => vec![format!("{label} emptied")],
        Emptied::Buckets(buckets) => buckets
            .iter()
            .map(|(bucket, n)| format!("{label} emptied bucket {bucket} ({n} objects deleted)"))
            .collect(),
    }
}

/// `vibesdk: applied 2 migrations in 120ms (3 in the journal)` / `vibesdk: up to date (...)`.
pub fn migrate_summary(
    database: &str,
    journal_len: usize,
    outcome: &migrate::MigrateOutcome,
) -> String {
    match outcome.applied.len() {
        0 => format!("{database}: up to date ({journal_len} migrations in the journal)"),
        n => format!(
            "{database}: applied {n} migration{} in {} ({journal_len} in the journal)",
            if n == 1 { "" } else { "s" },
            ui::secs(outcome.elapsed)
        ),
    }
}

/// Says which automatic snapshot was taken before `command` changed the app database, and which
/// older ones went.
pub fn auto_snapshot_lines(ui: &Ui, command: &str, done: &crate::snapshot::AutoSaved) {
    let m = &done.saved.manifest;
    ui.info(&format!(
        "saved automatic snapshot {} ({}) before {command}; `vibedev snapshot restore --last` brings it back",
        m.name,
        crate::text::size(m.bytes())
    ));
    for name in &done.removed {
        ui.detail(&format!(
            "removed automatic snapshot {name} (`[snapshots] keep`)"
        ));
    }
}

/// Warns about bookkeeping rows for migrations the journal no longer lists.
pub fn warn_unknown_rows(
    ui: &Ui,
    rows: &[migrate::plan::AppliedRow],
    bookkeeping: &migrate::Bookkeeping,
) {
    if !rows.is_empty() {
        ui.warn(&format!(
            "{} has {} row(s) for migrations the journal no longer lists (ids {})",
            bookkeeping.qualified(),
            rows.len(),
            rows.iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

pub use crate::reconcile::touched;

/// What `up` (and `watch`) say about the data once the stack is ready.
pub fn after_up(ui: &Ui, paths: &crate::config::Paths, done: &crate::data::AfterUp) {
    if let Some(branch) = &done.branch {
        branch_line(ui, branch);
    }
    branch_stores_lines(ui, &done.branch_stores);
    if done.missing_migrations {
        ui.warn(&format!(
            "[migrations] dir names {}, which does not exist: no migrations applied",
            paths.migrations.display()
        ));
    }
    if let Some((service, outcome)) = &done.migrated
        && outcome.applied.is_empty()
    {
        ui.detail(&format!("{service}: migrations up to date"));
    }
    for (service, seeded) in &done.seeded {
        if let Some(line) = seeded_line(service, seeded) {
            ui.info(&line);
        }
    }
}

/// Which database the current branch uses: on stderr when it was made now, with `-v` otherwise.
pub fn branch_line(ui: &Ui, used: &crate::data::BranchUse) {
    let line = format!("{}{}", service_label(&used.service), branch_text(used));
    if used.made.is_some() {
        ui.info(&line);
    } else {
        ui.detail(&line);
    }
}

/// What the current branch's first use made in the stores other than the app database:
/// `gcs        made bucket app-feature-x (a copy of app: 3 objects) for the branch`.
pub fn branch_stores_lines(ui: &Ui, made: &[(String, Vec<String>)]) {
    for (service, made) in made {
        for what in made {
            ui.info(&format!(
                "{}made {what} for the branch",
                service_label(service)
            ));
        }
    }
}

/// `branch feature/x: database app__feature_x (created as a copy of app in 41ms)`.
pub fn branch_text(used: &crate::data::BranchUse) -> String {
    use crate::migrate::branch::MadeFrom;
    let mut text = format!("branch {}: database {}", used.branch, used.database);
    if let Some((from, elapsed, _)) = &used.made {
        let how = match from {
            MadeFrom::Copy {
                source,
                sessions_ended,
            } => {
                let ended = match sessions_ended {
                    0 => String::new(),
                    n => format!(
                        ", ending {} on it",
                        ui::count(*n as usize, "session", "sessions")
                    ),
                };
                format!("as a copy of {source}{ended}")
            }
            MadeFrom::Template(_) => "from the migrated template".to_string(),
            MadeFrom::Empty => "empty (the app database does not exist yet)".to_string(),
        };
        text.push_str(&format!(" (created {how} in {})", ui::secs(*elapsed)));
    }
    text
}

/// Secret Manager progress: an `n/N secrets` counter on a terminal (left in `bar` for the caller
/// to clear), git warnings, and detail lines with --verbose (names and versions only).
pub fn secrets_reporter(
    ui: &Ui,
    bar: Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>,
) -> secrets::Reporter {
    let ui = ui.clone();
    Arc::new(move |event| match event {
        SecretsEvent::Resolved {
            gcp,
            source,
            template,
        } => {
            ui.detail(&format!("GCP project {gcp} (from {source})"));
            ui.detail(&format!("env template: {template}"));
        }
        SecretsEvent::NoGitWorkTree => ui.detail("not in a git work tree: skipping the git checks"),
        SecretsEvent::TrackedAllowed { path } => ui.warn(&format!(
            "{} is tracked by git (--allow-tracked): do not commit it",
            path.display()
        )),
        SecretsEvent::NotIgnored { gitignore } => ui.warn(&format!(
            "{ENV_FILE} is not git-ignored: add the line `{ENV_FILE}` to {}",
            gitignore.display()
        )),
        SecretsEvent::Connected {
            endpoint,
            concurrency,
        } => ui.detail(&format!(
            "Secret Manager at {endpoint}, up to {concurrency} requests at once"
        )),
        SecretsEvent::Fetching { secrets } => {
            if let Some(counter) = ui.counter(secrets as u64, "secrets")
                && let Ok(mut slot) = bar.lock()
            {
                *slot = Some(counter);
            }
        }
        SecretsEvent::Listed {
            filter,
            secrets,
            pages,
        } => ui.detail(&format!(
            "filter {filter:?}: {secrets} secrets ({pages} page{})",
            if pages == 1 { "" } else { "s" }
        )),
        SecretsEvent::Fetched {
            secret, version, ..
        } => {
            if let Ok(slot) = bar.lock()
                && let Some(counter) = slot.as_ref()
            {
                counter.inc(1);
            }
            ui.detail(&format!("fetched {secret} (version {version})"))
        }
        SecretsEvent::Done => {
            if let Some(counter) = bar.lock().ok().and_then(|mut b| b.take()) {
                counter.finish_and_clear();
            }
        }
        SecretsEvent::Retrying {
            what,
            attempt,
            delay,
            reason,
        } => ui.detail(&format!(
            "retrying {what} in {} after try {attempt}: {reason}",
            ui::secs(delay)
        )),
        SecretsEvent::Shadowed { key, secret } => ui.detail(&format!(
            "{key}: the explicit line wins over secret {secret} matched by a filter"
        )),
    })
}
