//! `vibedev seed [sql|bucket|firestore]...`: load the seed data again.

use crate::cli::{SeedArgs, SeedKind};
use crate::data::{self, DataError, Stores};
use crate::error::Result;
use crate::services::{Kind, SeedMode};

use super::Context;
use super::report::{branch_line, branch_stores_lines, reporters, seeded_line};

pub async fn run(ctx: &Context, args: SeedArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let paths = project.paths();
    let kinds: Vec<Kind> = if args.kinds.is_empty() {
        data::seed_kinds()
            .into_iter()
            .filter(|k| k.seed_configured(&paths.seeds))
            .collect()
    } else {
        let asked: Vec<Kind> = args.kinds.iter().filter_map(|k| kind_of(*k)).collect();
        if let Some(k) = asked.iter().find(|k| !k.seed_configured(&paths.seeds)) {
            return Err(DataError::SeedNotConfigured {
                seed: k.seed_title(),
                setting: k.seed_setting(),
            }
            .into());
        }
        asked
    };
    if kinds.is_empty() {
        ctx.ui.out(
            "nothing to seed: [seed] in vibedev.toml names no sql files, bucket_dir or firestore_dir",
        );
        return Ok(0);
    }
    let _lock = ctx.lock(&stack.project, "seed").await?;
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    if kinds.iter().any(|k| k.holds_app_database())
        && let Ok(db) = stores.database()
        && let Some(used) = data::branch_database(&project, &db, true, &reporters(&ctx.ui)).await?
    {
        branch_line(&ctx.ui, &used);
    }
    branch_stores_lines(&ctx.ui, &data::branch_stores(&stores).await?);
    let seeded = data::seed(
        &paths,
        &stores,
        &kinds,
        SeedMode::Again,
        &reporters(&ctx.ui),
    )
    .await?;
    for (service, what) in &seeded {
        if let Some(line) = seeded_line(service, what) {
            ctx.ui.info(&line);
        }
    }
    Ok(0)
}

/// The kind whose seed a `vibedev seed` word names.
fn kind_of(k: SeedKind) -> Option<Kind> {
    let word = match k {
        SeedKind::Sql => "sql",
        SeedKind::Bucket => "bucket",
        SeedKind::Firestore => "firestore",
    };
    data::seed_kinds()
        .into_iter()
        .find(|kind| kind.seed_name() == Some(word))
}
