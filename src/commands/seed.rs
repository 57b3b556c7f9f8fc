//! `vibedev seed [sql|bucket|firestore]...`: load the seed data again; and what `up` does once the
//! stack is ready: apply pending migrations, and seed the stores that were just created empty.

use std::sync::Arc;

use crate::cli::{SeedArgs, SeedKind};
use crate::config::Project;
use crate::error::{Error, Result};
use crate::migrate::seed::{self as sql_seed, SeedFile};
use crate::migrate::{self};
use crate::reconcile::Outcome;
use crate::runtime::ServiceRuntime;
use crate::services::seed::{SeedEvent, SeedReporter, http_client};
use crate::services::targets::Targets;
use crate::services::{firestore, gcs};
use crate::stack::{Kind, Stack};
use crate::ui::Ui;

use super::Context;
use super::migrate::{DataConfig, apply, reporter, require_postgres, service_label};

pub async fn run(ctx: &Context, args: SeedArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let config = DataConfig::new(&project);
    let configured = |k: SeedKind| match k {
        SeedKind::Sql => !config.seed_sql.is_empty(),
        SeedKind::Bucket => config.bucket_dir.is_some(),
        SeedKind::Firestore => config.firestore_dir.is_some(),
    };
    let kinds: Vec<SeedKind> = if args.kinds.is_empty() {
        // The emulators first: their seeds are idempotent, SQL seeds may refuse to run twice.
        [SeedKind::Bucket, SeedKind::Firestore, SeedKind::Sql]
            .into_iter()
            .filter(|k| configured(*k))
            .collect()
    } else {
        args.kinds.clone()
    };
    if let Some(k) = kinds.iter().find(|k| !configured(**k)) {
        let key = match k {
            SeedKind::Sql => "sql = [\"seed/data.sql\"]",
            SeedKind::Bucket => "bucket_dir = \"seed/bucket\"",
            SeedKind::Firestore => "firestore_dir = \"seed/firestore\"",
        };
        return Err(Error::failed(
            format!("no {} seed is configured", kind_name(*k)),
            Some(format!("add it under [seed] in vibedev.toml, e.g. {key}")),
        ));
    }
    if kinds.is_empty() {
        ctx.ui.out(
            "nothing to seed: [seed] in vibedev.toml names no sql files, bucket_dir or firestore_dir",
        );
        return Ok(0);
    }
    let _lock = ctx.lock(&stack.project, "seed").await?;
    let targets = super::migrate::locate(ctx, &stack).await?;
    for kind in kinds {
        match kind {
            SeedKind::Sql => {
                let pg = require_postgres(&targets)?;
                let seeds = SeedFile::load_all(&config.seed_sql, &config.root)?;
                let mut client = migrate::connect_app(pg, &pg.app.database).await?;
                sql_seed::apply(&mut client, &seeds, &reporter(&ctx.ui, "postgres")).await?;
            }
            SeedKind::Bucket => seed_bucket(&ctx.ui, &config, &targets, false).await?,
            SeedKind::Firestore => seed_firestore(&ctx.ui, &config, &targets).await?,
        }
    }
    Ok(0)
}

fn kind_name(k: SeedKind) -> &'static str {
    match k {
        SeedKind::Sql => "SQL",
        SeedKind::Bucket => "bucket",
        SeedKind::Firestore => "Firestore",
    }
}

/// Per-object and per-document lines, shown with --verbose.
pub fn seed_reporter(ui: &Ui) -> SeedReporter {
    let ui = ui.clone();
    Arc::new(move |event| match event {
        SeedEvent::Uploaded { bucket, object } => {
            ui.detail(&format!("uploaded gs://{bucket}/{object}"))
        }
        SeedEvent::Deleted { bucket, object } => {
            ui.detail(&format!("deleted gs://{bucket}/{object}"))
        }
        SeedEvent::Written { document } => ui.detail(&format!("wrote {document}")),
    })
}

/// Uploads the bucket seed folder (unchanged objects skipped; `prune` deletes the others).
pub async fn seed_bucket(
    ui: &Ui,
    config: &DataConfig,
    targets: &Targets,
    prune: bool,
) -> Result<()> {
    let Some(dir) = &config.bucket_dir else {
        return Ok(());
    };
    let (base, _) = targets.gcs.as_ref().ok_or_else(|| not_running("gcs"))?;
    let bucket = config.seed_bucket(targets);
    let out = gcs::seed_bucket(
        &http_client(),
        base,
        &targets.gcp_project,
        &bucket,
        dir,
        prune,
        &seed_reporter(ui),
    )
    .await?;
    let deleted = if out.deleted.is_empty() {
        String::new()
    } else {
        format!(", {} deleted", out.deleted.len())
    };
    ui.info(&format!(
        "{} seeded bucket {bucket}: {} uploaded, {} unchanged{deleted}",
        service_label("gcs"),
        out.uploaded.len(),
        out.unchanged
    ));
    Ok(())
}

/// Writes the Firestore seed documents.
pub async fn seed_firestore(ui: &Ui, config: &DataConfig, targets: &Targets) -> Result<()> {
    let Some(dir) = &config.firestore_dir else {
        return Ok(());
    };
    let base = targets
        .firestore
        .as_ref()
        .ok_or_else(|| not_running("firestore"))?;
    let n = firestore::seed(
        &http_client(),
        base,
        &targets.gcp_project,
        dir,
        &seed_reporter(ui),
    )
    .await?;
    ui.info(&format!(
        "{} seeded {n} document{}",
        service_label("firestore"),
        if n == 1 { "" } else { "s" }
    ));
    Ok(())
}

pub fn not_running(service: &str) -> Error {
    Error::failed(
        format!("{service} is not running"),
        Some(format!("start it with `vibedev up {service}`")),
    )
}

/// After `up`: apply pending migrations once Postgres is ready, and seed each store whose
/// service was created, recreated or started in this run and which holds nothing yet.
pub async fn after_up(
    ctx: &Context,
    project: &Project,
    stack: &Stack,
    runtimes: &[ServiceRuntime],
    outcomes: &[Outcome],
) -> Result<()> {
    let config = DataConfig::new(project);
    let targets = Targets::new(stack, runtimes);
    // The action `up` took for the first service of a kind, when it was part of this run.
    let action = |kind: Kind| {
        stack
            .of_kind(kind)
            .and_then(|s| outcomes.iter().find(|o| o.service == s.name))
            .map(|o| o.action)
    };
    let fresh = |kind: Kind| action(kind).is_some_and(|a| a != "keep");
    let postgres = async {
        if action(Kind::Postgres).is_none() {
            return Ok(());
        }
        let Some(pg) = &targets.postgres else {
            return Ok(());
        };
        let journal = config.journal(false)?;
        if journal.is_none() && config.migrations_dir_set {
            ctx.ui.warn(&format!(
                "[migrations] dir names {}, which does not exist: no migrations applied",
                config.migrations_dir.display()
            ));
        }
        if journal.is_none() && config.seed_sql.is_empty() {
            return Ok(());
        }
        // Seeds go into a database this run created empty; look before migrations fill it.
        let seed = fresh(Kind::Postgres) && !config.seed_sql.is_empty() && {
            let client = migrate::connect_app(pg, &pg.app.database).await?;
            sql_seed::database_is_empty(&client).await?
        };
        let name = stack
            .of_kind(Kind::Postgres)
            .map_or("postgres", |s| s.name.as_str());
        if let Some(journal) = &journal {
            let outcome = apply(&ctx.ui, pg, journal, &config.options(false), name).await?;
            if outcome.applied.is_empty() {
                ctx.ui.detail(&format!("{name}: migrations up to date"));
            }
        }
        if seed {
            let seeds = SeedFile::load_all(&config.seed_sql, &config.root)?;
            let mut client = migrate::connect_app(pg, &pg.app.database).await?;
            sql_seed::apply(&mut client, &seeds, &reporter(&ctx.ui, name)).await?;
        }
        Ok::<(), Error>(())
    };
    let bucket = async {
        if !fresh(Kind::Gcs) || config.bucket_dir.is_none() {
            return Ok(());
        }
        let Some((base, _)) = &targets.gcs else {
            return Ok(());
        };
        let bucket = config.seed_bucket(&targets);
        let objects = gcs::list_objects(&http_client(), base, &bucket).await;
        // A bucket that does not exist yet is empty too (seeding creates it).
        if objects.is_ok_and(|o| !o.is_empty()) {
            return Ok(());
        }
        seed_bucket(&ctx.ui, &config, &targets, false).await
    };
    let documents = async {
        if !fresh(Kind::Firestore) || config.firestore_dir.is_none() {
            return Ok(());
        }
        let Some(base) = &targets.firestore else {
            return Ok(());
        };
        if !firestore::is_empty(&http_client(), base, &targets.gcp_project).await? {
            return Ok(());
        }
        seed_firestore(&ctx.ui, &config, &targets).await
    };
    let (a, b, c) = tokio::join!(postgres, bucket, documents);
    a.and(b).and(c)
}
