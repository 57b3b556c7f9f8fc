//! Helpers for the migration and seed tests: the drizzle-kit fixtures, a Postgres client on the
//! test stack, and an independent re-implementation of drizzle-orm 0.45's migrator (its
//! `readMigrationFiles` and `PgDialect.migrate`), so the tests compare vibedev with drizzle's own
//! algorithm rather than with vibedev's idea of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::support::{self, TestProject};

/// A fixture folder under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a folder recursively, overwriting files that exist.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dir");
    for entry in std::fs::read_dir(src).expect("read dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// Puts a fixture's migrations into the project's `drizzle/` (or `rel`).
pub fn use_migrations(p: &TestProject, fixture_name: &str, rel: &str) {
    copy_dir(&fixture(fixture_name), &p.path().join(rel));
}

/// Appends an entry to a journal and writes its file.
pub fn add_migration(dir: &Path, tag: &str, when: i64, sql: &str) {
    let path = dir.join("meta/_journal.json");
    let mut journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("journal")).expect("json");
    let entries = journal["entries"].as_array_mut().expect("entries");
    let idx = entries.len();
    entries.push(serde_json::json!({
        "idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true
    }));
    std::fs::write(&path, serde_json::to_string_pretty(&journal).expect("json")).expect("write");
    std::fs::write(dir.join(format!("{tag}.sql")), sql).expect("write sql");
}

/// `(tag, when)` of every journal entry, in array order.
pub fn journal_entries(dir: &Path) -> Vec<(String, i64)> {
    let journal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("meta/_journal.json")).expect("journal"),
    )
    .expect("json");
    journal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["tag"].as_str().expect("tag").to_string(),
                e["when"].as_i64().expect("when"),
            )
        })
        .collect()
}

/// The rows drizzle-orm 0.45.4's own migrator wrote for a fixture folder (`drizzle-pg` or
/// `drizzle-pg-next`), read from tests/fixtures/drizzle-orm-rows/ (see its README.md): an
/// independent reference, recorded from drizzle-orm itself, not computed here.
pub fn drizzle_orm_rows(fixture_name: &str) -> Vec<(String, i64)> {
    let file = match fixture_name {
        "drizzle-pg" => "migrations_rows_after3.txt",
        "drizzle-pg-next" => "migrations_rows_after4.txt",
        other => panic!("no rows recorded from drizzle-orm for fixture {other}"),
    };
    let text = std::fs::read_to_string(fixture("drizzle-orm-rows").join(file)).expect("rows file");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('|').collect();
            assert_eq!(fields.len(), 3, "{file}: {line}");
            assert_eq!(fields[0], (i + 1).to_string(), "{file}: ids in order");
            (
                fields[1].to_string(),
                fields[2].parse().expect("created_at"),
            )
        })
        .collect()
}

/// The row drizzle-orm writes for a migration added by a test (not in a recorded fixture):
/// (lowercase hex SHA-256 of the file, `when`).
pub fn expected_rows(dir: &Path) -> Vec<(String, i64)> {
    journal_entries(dir)
        .into_iter()
        .map(|(tag, when)| {
            let bytes = std::fs::read(dir.join(format!("{tag}.sql"))).expect("sql file");
            (hex::encode(Sha256::digest(&bytes)), when)
        })
        .collect()
}

/// A blocking Postgres client for assertions.
pub struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    pub fn connect(url: &str) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config: tokio_postgres::Config = url.parse().expect("database url");
        let client = rt.block_on(async {
            let (client, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Db { rt, client }
    }

    pub fn exec(&self, sql: &str) {
        self.try_exec(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    pub fn try_exec(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.rt.block_on(self.client.batch_execute(sql))
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.rt
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    /// The first column of every row, as strings.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.query(sql, &[]).iter().map(|r| r.get(0)).collect()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql, &[])[0].get(0)
    }

    /// True when a relation exists.
    pub fn exists(&self, qualified: &str) -> bool {
        let row = &self.query("SELECT to_regclass($1)::text", &[&qualified])[0];
        row.get::<_, Option<String>>(0).is_some()
    }
}

/// The app database, as the app user (`DATABASE_URL` from `vibedev env`).
pub fn app_db(p: &TestProject) -> Db {
    Db::connect(&support::env(p)["DATABASE_URL"])
}

/// The server's admin database, as the admin user of the test stack.
pub fn admin_db(p: &TestProject) -> Db {
    let url = &support::env(p)["DATABASE_URL"];
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port in DATABASE_URL");
    Db::connect(&format!(
        "postgres://postgres:postgres@{host_port}/postgres"
    ))
}

fn qualified(schema: &str, table: &str) -> String {
    format!("\"{schema}\".\"{table}\"")
}

/// The bookkeeping rows in id order.
pub fn rows(db: &Db, schema: &str, table: &str) -> Vec<(String, i64)> {
    db.query(
        &format!(
            "SELECT hash, created_at FROM {} ORDER BY id",
            qualified(schema, table)
        ),
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

pub fn drizzle_rows(db: &Db) -> Vec<(String, i64)> {
    rows(db, "drizzle", "__drizzle_migrations")
}

/// drizzle-orm's idea of the newest row: `ORDER BY created_at DESC LIMIT 1`, `Number(null)` = 0.
fn drizzle_last(db: &Db, schema: &str, table: &str) -> Option<i64> {
    db.query(
        &format!(
            "select id, hash, created_at from {} order by created_at desc limit 1",
            qualified(schema, table)
        ),
        &[],
    )
    .first()
    .map(|r| r.get::<_, Option<i64>>(2).unwrap_or(0))
}

/// The tags drizzle-orm's migrator would apply now.
pub fn drizzle_pending(db: &Db, dir: &Path, schema: &str, table: &str) -> Vec<String> {
    let last = if db.exists(&qualified(schema, table)) {
        drizzle_last(db, schema, table)
    } else {
        None
    };
    journal_entries(dir)
        .into_iter()
        .filter(|(_, when)| last.is_none_or(|l| l < *when))
        .map(|(tag, _)| tag)
        .collect()
}

/// drizzle-orm 0.45's `migrate()` for node-postgres, step by step: create the schema and table,
/// read the newest row, then in ONE transaction run every statement of every entry newer than
/// it (split on the breakpoint marker, untrimmed) and insert its (hash, when) row.
pub fn drizzle_migrate(db: &Db, dir: &Path, schema: &str, table: &str) {
    if let Err(e) = try_drizzle_migrate(db, dir, schema, table) {
        panic!("drizzle's migrator failed: {e}");
    }
}

/// [`drizzle_migrate`], returning the server's error (its transaction rolled back) instead.
pub fn try_drizzle_migrate(db: &Db, dir: &Path, schema: &str, table: &str) -> Result<(), String> {
    let q = qualified(schema, table);
    db.exec(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""));
    db.exec(&format!(
        "CREATE TABLE IF NOT EXISTS {q} (\n\t\t\tid SERIAL PRIMARY KEY,\n\t\t\thash text NOT NULL,\n\t\t\tcreated_at bigint\n\t\t)"
    ));
    let last = drizzle_last(db, schema, table);
    db.exec("BEGIN");
    let result = (|| {
        for (tag, when) in journal_entries(dir) {
            if last.is_some_and(|l| l >= when) {
                continue;
            }
            let bytes = std::fs::read(dir.join(format!("{tag}.sql"))).expect("sql");
            let text = String::from_utf8(bytes.clone()).expect("utf8");
            for piece in text.split("--> statement-breakpoint") {
                db.try_exec(piece).map_err(|e| {
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string())
                })?;
            }
            let hash = hex::encode(Sha256::digest(&bytes));
            db.query(
                &format!("insert into {q} (\"hash\", \"created_at\") values($1, $2)"),
                &[&hash, &when],
            );
        }
        Ok(())
    })();
    db.exec(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    result
}

/// The user tables of the public schema, sorted.
pub fn tables(db: &Db) -> Vec<String> {
    db.strings("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
}
