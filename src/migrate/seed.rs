//! SQL seed files: read in the configured order and applied after migrations, each in its own
//! transaction, with errors placed at file:line like migration errors.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_postgres::Client;

use super::journal::{Statement, display_path, sha256_hex};
use super::{MigrateError, Progress, Reporter};

/// One seed file, read.
#[derive(Debug, Clone)]
pub struct SeedFile {
    pub path: PathBuf,
    pub display: String,
    pub text: String,
}

impl SeedFile {
    /// Reads the files in order; `base` is the folder paths are shown relative to.
    pub fn load_all(paths: &[PathBuf], base: &Path) -> Result<Vec<SeedFile>, MigrateError> {
        paths
            .iter()
            .map(|path| {
                let text =
                    std::fs::read_to_string(path).map_err(|source| MigrateError::SeedRead {
                        path: path.clone(),
                        source,
                    })?;
                Ok(SeedFile {
                    display: display_path(path, base),
                    path: path.clone(),
                    text,
                })
            })
            .collect()
    }

    pub fn hash(&self) -> String {
        sha256_hex(self.text.as_bytes())
    }
}

/// Applies the seed files in order, each in a transaction of its own.
pub async fn apply(
    client: &mut Client,
    seeds: &[SeedFile],
    report: &Reporter,
) -> Result<(), MigrateError> {
    for seed in seeds {
        let start = Instant::now();
        report(Progress::Seeding {
            file: seed.display.clone(),
        });
        let statement = Statement {
            number: 1,
            offset: 0,
            sql: seed.text.clone(),
        };
        let tx = client
            .transaction()
            .await
            .map_err(|e| MigrateError::query("cannot begin a transaction", &e))?;
        super::run_piece(tx.client(), &seed.text)
            .await
            .map_err(|failure| {
                super::statement_error(
                    "seed file",
                    &seed.display,
                    &seed.display,
                    &seed.text,
                    &statement,
                    1,
                    &failure,
                )
            })?;
        tx.commit()
            .await
            .map_err(|e| MigrateError::query(format!("cannot commit {}", seed.display), &e))?;
        report(Progress::Seeded {
            file: seed.display.clone(),
            elapsed: start.elapsed(),
        });
    }
    Ok(())
}

/// True when the database holds no table outside the system schemas (a fresh database).
pub async fn database_is_empty(client: &Client) -> Result<bool, MigrateError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%'",
            &[],
        )
        .await
        .map_err(|e| MigrateError::query("cannot list the database's tables", &e))?;
    Ok(row.get::<_, i64>(0) == 0)
}
