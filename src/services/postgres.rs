//! Postgres: make sure the app role and database exist (idempotent, safe to run concurrently),
//! then prove the app user can run `SELECT 1` on the app database.

use std::time::Instant;

use crate::ready::{self, pg_connect, pg_server_answered};
use crate::stack::PostgresApp;

/// Waits until the app user can query the app database, creating the role and database
/// through the admin account when they are missing. Returns what was created, if anything.
pub async fn ready_and_prepared(
    host: &str,
    port: u16,
    app: &PostgresApp,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let mut created = Vec::new();
    let mut backoff = ready::Backoff::probe();
    loop {
        let last = match ready::postgres_select1(
            host,
            port,
            &app.user,
            &app.password,
            &app.database,
        )
        .await
        {
            Ok(()) => return Ok(created),
            Err(e) if pg_server_answered(&e) => match prepare(host, port, app).await {
                Ok(mut done) => {
                    created.append(&mut done);
                    continue;
                }
                Err(e) => e,
            },
            Err(e) => pg_error(&e),
        };
        let delay = backoff.next_delay();
        if Instant::now() + delay >= deadline {
            return Err(last);
        }
        tokio::time::sleep(delay).await;
    }
}

/// Creates (or repairs) the app role and database as the admin user.
async fn prepare(host: &str, port: u16, app: &PostgresApp) -> Result<Vec<String>, String> {
    let admin = pg_connect(
        host,
        port,
        &app.admin_user,
        &app.admin_password,
        &app.admin_database,
    )
    .await
    .map_err(|e| format!("as admin user {:?}: {}", app.admin_user, pg_error(&e)))?;
    let mut done = Vec::new();
    // The app role is the admin role: it exists and its password is the compose file's.
    if app.user == app.admin_user {
        return create_database(&admin, app, done).await;
    }
    let role_exists = !admin
        .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&app.user])
        .await
        .map_err(|e| pg_error(&e))?
        .is_empty();
    let user = quote_ident(&app.user);
    let password = quote_literal(&app.password);
    let sql = if role_exists {
        format!("ALTER ROLE {user} WITH LOGIN PASSWORD {password}")
    } else {
        format!("CREATE ROLE {user} WITH LOGIN PASSWORD {password}")
    };
    match admin.batch_execute(&sql).await {
        Ok(()) if !role_exists => done.push(format!("role {}", app.user)),
        Ok(()) => {}
        // Created by a concurrent run between the check and the create.
        Err(e) if is_duplicate(&e) => {}
        Err(e) => {
            return Err(format!(
                "cannot create role {:?}: {}",
                app.user,
                pg_error(&e)
            ));
        }
    }
    create_database(&admin, app, done).await
}

/// Creates the app database, owned by the app role, unless it exists.
async fn create_database(
    admin: &tokio_postgres::Client,
    app: &PostgresApp,
    mut done: Vec<String>,
) -> Result<Vec<String>, String> {
    let db_exists = !admin
        .query(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&app.database],
        )
        .await
        .map_err(|e| pg_error(&e))?
        .is_empty();
    if !db_exists {
        let version = server_version(admin).await.map_err(|e| pg_error(&e))?;
        let sql = create_database_sql(&app.database, None, &app.user, version);
        match admin.batch_execute(&sql).await {
            Ok(()) => done.push(format!("database {}", app.database)),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => {
                return Err(format!(
                    "cannot create database {:?}: {}",
                    app.database,
                    pg_error(&e)
                ));
            }
        }
    }
    Ok(done)
}

/// Where the app's Postgres is reached from the host, with the app and admin credentials.
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub app: PostgresApp,
}

impl PgTarget {
    /// A connection as the app user.
    pub async fn connect_app(
        &self,
        database: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        pg_connect(
            &self.host,
            self.port,
            &self.app.user,
            &self.app.password,
            database,
        )
        .await
    }

    /// A connection as the admin user on [`PgTarget::maintenance_database`].
    pub async fn connect_admin(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        pg_connect(
            &self.host,
            self.port,
            &self.app.admin_user,
            &self.app.admin_password,
            self.maintenance_database(),
        )
        .await
    }

    /// The admin's database, unless that is the app database (which a reset drops).
    pub fn maintenance_database(&self) -> &str {
        if self.app.admin_database == self.app.database {
            "postgres"
        } else {
            &self.app.admin_database
        }
    }
}

fn is_duplicate(e: &tokio_postgres::Error) -> bool {
    // 42710 duplicate_object, 42P04 duplicate_database, 23505 unique_violation (catalog race).
    e.code()
        .is_some_and(|c| matches!(c.code(), "42710" | "42P04" | "23505"))
}

/// A Postgres error with the server's message when there is one.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut msg = e.to_string();
            if let Some(src) = std::error::Error::source(e) {
                msg.push_str(": ");
                msg.push_str(&src.to_string());
            }
            msg
        }
    }
}

/// The server's version as a number (150004 for 15.4).
pub async fn server_version(client: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(row.get(0))
}

/// `CREATE DATABASE name [TEMPLATE t] OWNER owner`, copying the template's files where the server
/// can choose: PostgreSQL 15 copies a template block by block through the WAL by default, which
/// for a small template (template1 included) is several times slower than copying its files, the
/// only way before 15 (on a fresh cluster: ~11 ms against 20-110 ms).
pub fn create_database_sql(
    name: &str,
    template: Option<&str>,
    owner: &str,
    server_version: i32,
) -> String {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(t) = template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
    }
    sql.push_str(&format!(" OWNER {}", quote_ident(owner)));
    if server_version >= 150000 {
        sql.push_str(" STRATEGY FILE_COPY");
    }
    sql
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn create_database_copies_files_from_15_on() {
        assert_eq!(
            create_database_sql("app", None, "u\"x", 150004),
            "CREATE DATABASE \"app\" OWNER \"u\"\"x\" STRATEGY FILE_COPY"
        );
        assert_eq!(
            create_database_sql("new", Some("tpl"), "u", 140010),
            "CREATE DATABASE \"new\" TEMPLATE \"tpl\" OWNER \"u\""
        );
    }
}
