//! A git branch's own database: made on first use as a file-level copy of the app database (or
//! from the reset template), marked with its branch and last use, listed with its size, and
//! removed together with the reset templates made for it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::template::{self, ResetOptions};
use super::{MigrateError, Reporter, advisory_lock, advisory_unlock, lock_key};
use crate::config::BranchSource;
use crate::pg::{
    BranchOf, PgTarget, create_database_sql, quote_ident, quote_literal, snapshot_copy_name,
};

/// How many times a copy is tried while clients of the source reconnect as fast as they are
/// ended.
const COPY_ATTEMPTS: u32 = 5;

/// How long one process waits for another making the same branch database.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// A last use this recent is not written again (each write is a catalog update).
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What a new branch database was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MadeFrom {
    /// A file-level copy of this database (the app database).
    Copy { source: String, sessions_ended: i64 },
    /// A copy of the reset template.
    Template(template::Source),
    /// Created empty: the app database does not exist yet.
    Empty,
}

/// The branch database as found or made.
#[derive(Debug, Clone)]
pub enum Ensured {
    /// It was there.
    Existed,
    /// It was made now.
    Made { from: MadeFrom, elapsed: Duration },
}

/// Makes the target's branch database unless it exists (nothing to do for the app database
/// itself). Another process making the same one is waited for, so it is made once.
pub async fn ensure(
    target: &PgTarget,
    from: BranchSource,
    reset: &ResetOptions<'_>,
    report: &Reporter,
) -> Result<Ensured, MigrateError> {
    let Some(branch) = &target.app.branch else {
        return Ok(Ensured::Existed);
    };
    let start = Instant::now();
    let db = &target.app.database;
    let admin = super::connect_admin(target).await?;
    let key = lock_key("branch", db);
    advisory_lock(&admin, key, "branch database", LOCK_TIMEOUT, report).await?;
    let result = async {
        if let Some(comment) = comment(&admin, db).await? {
            touch(&admin, db, branch, comment.as_deref()).await;
            return Ok(Ensured::Existed);
        }
        let from = match from {
            BranchSource::Default => copy(&admin, target, &branch.default_database).await?,
            BranchSource::Template => {
                MadeFrom::Template(template::reset(target, reset, report).await?.source)
            }
        };
        mark(&admin, db, branch).await;
        Ok(Ensured::Made {
            from,
            elapsed: start.elapsed(),
        })
    }
    .await;
    advisory_unlock(&admin, key).await;
    result
}

/// Copies `source` into the target's database, file by file, after ending the sessions on
/// `source` (a copy needs its source to itself); an empty database when `source` is missing.
async fn copy(admin: &Client, target: &PgTarget, source: &str) -> Result<MadeFrom, MigrateError> {
    let db = &target.app.database;
    let version = crate::pg::server_version(admin)
        .await
        .map_err(|e| MigrateError::query("cannot read the server version", &e))?;
    if comment(admin, source).await?.is_none() {
        let sql = create_database_sql(db, None, &target.app.user, version);
        exec(admin, &sql).await?;
        return Ok(MadeFrom::Empty);
    }
    let sql = create_database_sql(db, Some(source), &target.app.user, version);
    let mut sessions_ended = 0;
    let mut backoff = crate::backoff::Backoff::default();
    for attempt in 1..=COPY_ATTEMPTS {
        sessions_ended += end_sessions(admin, source).await?;
        match admin.batch_execute(&sql).await {
            Ok(()) => break,
            // 55006 object_in_use: a client of the source connected again meanwhile.
            Err(e) if attempt < COPY_ATTEMPTS && e.code().is_some_and(|c| c.code() == "55006") => {
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                return Err(MigrateError::query(
                    format!("cannot copy database {source:?} into {db:?}"),
                    &e,
                ));
            }
        }
    }
    Ok(MadeFrom::Copy {
        source: source.to_string(),
        sessions_ended,
    })
}

/// Ends every other session on `database`; returns how many.
async fn end_sessions(admin: &Client, database: &str) -> Result<i64, MigrateError> {
    let row = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .map_err(|e| MigrateError::query("cannot end the sessions on the source database", &e))?;
    Ok(row.get(0))
}

/// What vibedev records on a branch database (as its comment): which app database it belongs
/// to, its git branch, and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Mark {
    vibedev_branch_of: String,
    branch: String,
    /// RFC 3339, UTC.
    last_used: String,
}

impl Mark {
    fn last_used(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.last_used)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// `Some(comment)` when the database exists.
async fn comment(admin: &Client, database: &str) -> Result<Option<Option<String>>, MigrateError> {
    let row = admin
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(|e| MigrateError::query("cannot look up the branch database", &e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Records the branch and its last use on the database. Best effort: the mark only informs
/// `branch ls`, and a database made by hand may not be the admin's to comment on.
async fn mark(admin: &Client, database: &str, branch: &BranchOf) {
    let mark = Mark {
        vibedev_branch_of: branch.default_database.clone(),
        branch: branch.branch.clone(),
        last_used: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let Ok(json) = serde_json::to_string(&mark) else {
        return;
    };
    let sql = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(database),
        quote_literal(&json)
    );
    let _ = admin.batch_execute(&sql).await;
}

/// Records a use, unless one was recorded within the last minute.
async fn touch(admin: &Client, database: &str, branch: &BranchOf, comment: Option<&str>) {
    let recent = comment
        .and_then(|c| serde_json::from_str::<Mark>(c).ok())
        .is_some_and(|m| {
            m.branch == branch.branch
                && m.last_used()
                    .is_some_and(|used| Utc::now() - used < TOUCH_EVERY)
        });
    if !recent {
        mark(admin, database, branch).await;
    }
}

/// Whether the target's database exists (for a branch's: whether it was made yet).
pub async fn exists(target: &PgTarget) -> Result<bool, MigrateError> {
    let admin = super::connect_admin(target).await?;
    Ok(comment(&admin, &target.app.database).await?.is_some())
}

/// Marks the target's branch database again (a reset made it anew, without its mark).
pub async fn mark_target(target: &PgTarget) -> Result<(), MigrateError> {
    let Some(branch) = &target.app.branch else {
        return Ok(());
    };
    let admin = super::connect_admin(target).await?;
    mark(&admin, &target.app.database, branch).await;
    Ok(())
}

/// One database of the app database's family: the app database itself or a branch's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchDatabase {
    pub database: String,
    /// The git branch recorded on it (`None` for the app database, or when it carries no mark).
    pub branch: Option<String>,
    pub last_used: Option<DateTime<Utc>>,
    pub bytes: i64,
}

/// The app database `default_database` and every branch database made from it: those marked
/// as its branches, and unmarked ones named `<db>__<slug>`.
pub async fn list(
    target: &PgTarget,
    default_database: &str,
) -> Result<Vec<BranchDatabase>, MigrateError> {
    let admin = super::connect_admin(target).await?;
    let rows = admin
        .query(
            "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(oid) FROM pg_database WHERE NOT datistemplate ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| MigrateError::query("cannot list the databases", &e))?;
    let prefix = format!("{default_database}__");
    let mut out = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let comment: Option<String> = row.get(1);
        let bytes: i64 = row.get(2);
        let mark = comment
            .as_deref()
            .and_then(|c| serde_json::from_str::<Mark>(c).ok());
        let ours = match &mark {
            Some(m) => m.vibedev_branch_of == default_database,
            None => {
                name == default_database || name.strip_prefix(&prefix).is_some_and(is_slug_shaped)
            }
        };
        if !ours {
            continue;
        }
        out.push(BranchDatabase {
            database: name,
            branch: mark.as_ref().map(|m| m.branch.clone()),
            last_used: mark.as_ref().and_then(Mark::last_used),
            bytes,
        });
    }
    Ok(out)
}

/// A suffix a branch slug could be (vibedev's own databases are `<db>__vibedev_...`, and their
/// names hold `__` again).
fn is_slug_shaped(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with("vibedev")
        && !s.contains("__")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Drops a branch database (its sessions ended) and the reset templates and spares made for it;
/// returns the names dropped.
pub async fn remove(target: &PgTarget, database: &str) -> Result<Vec<String>, MigrateError> {
    let admin = super::connect_admin(target).await?;
    let mut dropped = Vec::new();
    let family: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1) OR starts_with(datname, $2) OR datname = $3 OR datname = $4 ORDER BY datname",
            &[
                &template::template_prefix(database, true),
                &template::template_prefix(database, false),
                &template::staging_name(database),
                &snapshot_copy_name(database),
            ],
        )
        .await
        .map_err(|e| MigrateError::query("cannot list the branch's templates", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for name in family {
        template::drop_template(&admin, &name).await?;
        dropped.push(name);
    }
    exec(
        &admin,
        &format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(database)
        ),
    )
    .await?;
    dropped.insert(0, database.to_string());
    Ok(dropped)
}

async fn exec(admin: &Client, sql: &str) -> Result<(), MigrateError> {
    admin
        .batch_execute(sql)
        .await
        .map_err(|e| MigrateError::query(sql.to_string(), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slug_shaped_suffixes_are_branches() {
        assert!(is_slug_shaped("feature_x"));
        assert!(is_slug_shaped("detached_0123456789ab"));
        assert!(!is_slug_shaped("vibedev_next"));
        assert!(!is_slug_shaped("vibedev_seeded_0123456789ab"));
        assert!(!is_slug_shaped("feature_x__vibedev_bare_0123"));
        assert!(!is_slug_shaped("Upper"));
        assert!(!is_slug_shaped(""));
    }

    #[test]
    fn the_mark_reads_back() {
        let mark = Mark {
            vibedev_branch_of: "vibesdk".into(),
            branch: "feature/ü".into(),
            last_used: "2023-11-14T22:13:20Z".into(),
        };
        let json = serde_json::to_string(&mark).unwrap();
        assert_eq!(
            json,
            r#"{"vibedev_branch_of":"vibesdk","branch":"feature/ü","last_used":"2023-11-14T22:13:20Z"}"#
        );
        assert_eq!(serde_json::from_str::<Mark>(&json).unwrap(), mark);
        assert_eq!(mark.last_used(), DateTime::from_timestamp(1_700_000_000, 0));
    }
}
