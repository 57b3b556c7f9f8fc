//! Postgres: the app role and database vibedev prepares (idempotent, safe to run concurrently),
//! ready when the app user can run `SELECT 1` on the app database; `DATABASE_URL`; SQL seeds;
//! snapshots of the app database (schema by the image's own `pg_dump`, rows by binary `COPY`
//! over parallel connections sharing one exported snapshot; restored beside, then swapped in).

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;

use super::seed::SeedEvent;
use super::{
    Counted, ImageFacts, Launch, LaunchInput, SeedError, SeedMode, SeedPaths, SeedReporter, Seeded,
    ServiceKind, Settings, SettingsInput, SnapshotIo, Stage, Store, WaitFor,
};
use crate::compose::XVibedev;

pub mod browse;
mod snapshot;
use crate::migrate::seed::{self as sql_seed, SeedFile};
use crate::pg::{
    self, PostgresApp, create_database_sql, is_duplicate, pg_error, quote_ident, quote_literal,
    server_version,
};

pub const DEFAULT_APP_DATABASE: &str = "vibesdk";
pub const DEFAULT_APP_USER: &str = "vibesdk_app";
pub const DEFAULT_APP_PASSWORD: &str = "vibesdk-local";

/// PostgreSQL (the app's Cloud SQL database).
pub struct Postgres;

impl ServiceKind for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["postgresql"]
    }

    fn settings(&self, input: &SettingsInput<'_>) -> Result<Settings, String> {
        Ok(Settings {
            postgres: Some(accounts(input.env, input.x)?),
            ..Settings::default()
        })
    }

    /// First when its volume is new (initdb: the longest way to ready), else with the others.
    fn start_rank(&self, fresh_data: bool) -> u8 {
        if fresh_data { 0 } else { 1 }
    }

    fn wait(&self) -> WaitFor {
        WaitFor::Postgres { query: "SELECT 1" }
    }

    /// The official image's entrypoint runs initdb on an empty volume, which syncs every file
    /// it writes to disk: `POSTGRES_INITDB_ARGS=--no-sync` (its documented way to pass initdb
    /// options) makes the same cluster without waiting for the disk, 2-3 s less on a busy
    /// machine. Only the first start of a volume reads it.
    fn launch(&self, image: &ImageFacts, service: &LaunchInput<'_>) -> Option<Launch> {
        let entrypoint = service.entrypoint.unwrap_or(&image.entrypoint);
        if entrypoint != ["docker-entrypoint.sh"]
            || service.env.contains_key("POSTGRES_INITDB_ARGS_FILE")
        {
            return None;
        }
        let args = service
            .env
            .get("POSTGRES_INITDB_ARGS")
            .map(String::as_str)
            .unwrap_or("");
        if args
            .split_whitespace()
            .any(|a| a == "--no-sync" || a == "-N")
        {
            return None;
        }
        let args = if args.trim().is_empty() {
            "--no-sync".to_string()
        } else {
            format!("{args} --no-sync")
        };
        Some(Launch {
            env: vec![("POSTGRES_INITDB_ARGS".into(), args)],
            ..Launch::default()
        })
    }

    fn prepare<'a>(
        &'a self,
        store: &'a Store<'a>,
        stage: Stage,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            match (&store.settings.postgres, stage) {
                (Some(app), Stage::Refused) => {
                    create_role_and_database(&store.host, store.port, app).await
                }
                _ => Ok(Vec::new()),
            }
        })
    }

    fn url(&self, store: &Store<'_>, with_password: bool) -> String {
        let Some(app) = &store.settings.postgres else {
            return format!("postgres://{}:{}", store.url_host(), store.port);
        };
        let auth = if with_password {
            format!(
                "{}:{}",
                super::encode(&app.user),
                super::encode(&app.password)
            )
        } else {
            super::encode(&app.user)
        };
        format!(
            "postgres://{auth}@{}:{}/{}",
            store.url_host(),
            store.port,
            super::encode(&app.database)
        )
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        vec![("DATABASE_URL".to_string(), self.url(store, true))]
    }

    fn holds_app_database(&self) -> bool {
        true
    }

    fn seed_name(&self) -> Option<&'static str> {
        Some("sql")
    }

    fn seed_title(&self) -> &'static str {
        "SQL"
    }

    fn seed_setting(&self) -> &'static str {
        "sql = [\"seed/data.sql\"]"
    }

    fn seed_configured(&self, seeds: &SeedPaths) -> bool {
        !seeds.sql.is_empty()
    }

    /// Runs the `[seed] sql` files as the app user, in one transaction each; with `IfEmpty`,
    /// only into a database without tables (migrations must not have run yet: the caller
    /// decides that with [`database_is_empty`] before migrating).
    fn seed<'a>(
        &'a self,
        store: &'a Store<'a>,
        seeds: &'a SeedPaths,
        _mode: SeedMode,
        report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Seeded>, SeedError>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Ok(None);
            };
            if seeds.sql.is_empty() {
                return Ok(None);
            }
            let files = SeedFile::load_all(&seeds.sql, &seeds.root)?;
            let mut client = crate::migrate::connect_app(&target, &target.app.database).await?;
            let report = report.clone();
            let progress: crate::migrate::Reporter =
                std::sync::Arc::new(move |p| report(SeedEvent::Sql(p)));
            sql_seed::apply(&mut client, &files, &progress).await?;
            Ok(Some(Seeded::SqlFiles { count: files.len() }))
        })
    }

    fn snapshot_save<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Ok(None);
            };
            snapshot::save(&target, io).await.map(Some)
        })
    }

    fn snapshot_restore<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Err("the service has no app database".into());
            };
            snapshot::restore(&target, io).await
        })
    }

    fn snapshot_abandon<'a>(&'a self, store: &'a Store<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(target) = store.postgres() {
                snapshot::abandon(&target).await;
            }
        })
    }
}

/// The Postgres accounts of a service. The compose file's values win: a `POSTGRES_USER` other
/// than the image's default `postgres` is the app's own role (with `POSTGRES_PASSWORD` and
/// `POSTGRES_DB`), unless `x-vibedev` names another; vibedev's defaults fill what neither says.
/// When the app role is the admin role, its password is the compose file's (never changed).
fn accounts(env: &BTreeMap<String, String>, x: &XVibedev) -> Result<PostgresApp, String> {
    let admin_user = env
        .get("POSTGRES_USER")
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let admin_password = env.get("POSTGRES_PASSWORD").cloned().unwrap_or_default();
    let admin_database = env
        .get("POSTGRES_DB")
        .filter(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| admin_user.clone());
    let own_role = admin_user != "postgres";
    let user = x.user.clone().unwrap_or_else(|| {
        if own_role {
            admin_user.clone()
        } else {
            DEFAULT_APP_USER.into()
        }
    });
    let password = if user == admin_user {
        if x.password.as_ref().is_some_and(|p| *p != admin_password) {
            return Err(format!(
                "x-vibedev password differs from POSTGRES_PASSWORD, but both are for role {user:?}: drop one of them"
            ));
        }
        admin_password.clone()
    } else {
        x.password
            .clone()
            .unwrap_or_else(|| DEFAULT_APP_PASSWORD.into())
    };
    let database = x.database.clone().unwrap_or_else(|| {
        if own_role {
            admin_database.clone()
        } else {
            DEFAULT_APP_DATABASE.into()
        }
    });
    Ok(PostgresApp {
        database,
        user,
        password,
        admin_user,
        admin_password,
        admin_database,
        branch: None,
    })
}

/// Creates (or repairs) the app role and database as the admin user.
async fn create_role_and_database(
    host: &str,
    port: u16,
    app: &PostgresApp,
) -> Result<Vec<String>, String> {
    let admin = pg::connect(
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
    let database = app.prepared_database();
    let db_exists = !admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| pg_error(&e))?
        .is_empty();
    if !db_exists {
        let version = server_version(admin).await.map_err(|e| pg_error(&e))?;
        let sql = create_database_sql(database, None, &app.user, version);
        match admin.batch_execute(&sql).await {
            Ok(()) => done.push(format!("database {database}")),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => {
                return Err(format!(
                    "cannot create database {database:?}: {}",
                    pg_error(&e)
                ));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initdb_skips_syncing_on_the_official_entrypoint_only() {
        let image = ImageFacts {
            id: "sha256:aa".into(),
            entrypoint: vec!["docker-entrypoint.sh".into()],
            cmd: vec!["postgres".into()],
        };
        let launch = |env: &BTreeMap<String, String>, entrypoint: Option<&[String]>| {
            Postgres.launch(
                &image,
                &LaunchInput {
                    entrypoint,
                    command: None,
                    env,
                },
            )
        };
        let mut env = BTreeMap::new();
        assert_eq!(
            launch(&env, None).unwrap().env,
            [("POSTGRES_INITDB_ARGS".to_string(), "--no-sync".to_string())]
        );
        // the user's own initdb options are kept
        env.insert("POSTGRES_INITDB_ARGS".into(), "--locale=C".into());
        assert_eq!(launch(&env, None).unwrap().env[0].1, "--locale=C --no-sync");
        env.insert("POSTGRES_INITDB_ARGS".into(), "-N".into());
        assert_eq!(launch(&env, None), None);
        env.clear();
        env.insert("POSTGRES_INITDB_ARGS_FILE".into(), "/run/secrets/a".into());
        assert_eq!(launch(&env, None), None);
        env.clear();
        let own = ["/my-entrypoint.sh".to_string()];
        assert_eq!(launch(&env, Some(&own)), None);
    }
}
