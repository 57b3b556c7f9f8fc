//! The Postgres page: the app database's tables with row counts and sizes (live), a table's
//! rows page by page (read-only), and the migrations' status in `vibedev migrate status`'s words.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::stores::{Reached, failure_text, link, reach, reached, shown, with_failure};
use super::{AppState, Notice, Page, WebError, live};
use crate::data::{self, DataError, Stores};
use crate::services::Kind;
use crate::services::postgres::browse::Target;

pub const PAGE: Page = Page {
    templates: &[
        ("postgres.html", include_str!("templates/postgres.html")),
        (
            "postgres_tables.html",
            include_str!("templates/postgres_tables.html"),
        ),
        (
            "postgres_rows.html",
            include_str!("templates/postgres_rows.html"),
        ),
    ],
    routes,
};

const NAV: &str = "postgres";
const TITLE: &str = "Postgres";

fn routes() -> Router<AppState> {
    Router::new()
        .route("/postgres", get(index))
        .route("/postgres/table", get(table))
        .route("/live/postgres", get(live_tables))
}

#[derive(Debug, Deserialize)]
struct TableQuery {
    schema: String,
    table: String,
    offset: Option<u64>,
}

async fn target(state: &AppState) -> Result<Reached<Target>, WebError> {
    reach(state, Kind::POSTGRES, NAV, TITLE, Target::of).await
}

async fn tables_html(state: &AppState, target: &Target) -> Result<String, WebError> {
    let (tables, failure) = match target.tables().await {
        Ok(t) => (t, None),
        Err(e) => (Vec::new(), Some(shown(e)?)),
    };
    let tables: Vec<minijinja::Value> = tables
        .iter()
        .map(|t| {
            context! {
                href => link("/postgres/table", &[("schema", &t.schema), ("table", &t.name)]),
                ..minijinja::Value::from(Serde(t))
            }
        })
        .collect();
    state.render("postgres_tables.html", context! { tables, failure })
}

/// The migrations' rows and summary, or why they could not be read; nothing when the project
/// has no migrations folder.
async fn migrations(state: &AppState) -> Result<minijinja::Value, WebError> {
    let stores = Stores::observe(&state.engine, &state.stack).await?;
    let db = match stores.database() {
        Ok(db) => db,
        Err(e @ (DataError::NotRunning { .. } | DataError::NoDatabase)) => {
            return Ok(context! { failure => e.to_string() });
        }
        Err(e) => return Err(e.into()),
    };
    match data::migration_status(&state.project, &db).await {
        Ok(None) => Ok(context! { none => true }),
        Ok(Some(plan)) => {
            let entries: Vec<minijinja::Value> = plan
                .entries
                .iter()
                .map(|e| {
                    context! {
                        tag => e.tag.clone(),
                        state => e.state.label(),
                        class => e.state.label().replace(' ', "-"),
                        when => e.when_utc(),
                        note => e.note(),
                    }
                })
                .collect();
            let unknown: Vec<i32> = plan.unknown_rows.iter().map(|r| r.id).collect();
            Ok(context! { entries, summary => plan.summary(), in_step => plan.in_step(), unknown })
        }
        Err(e) => Ok(context! {
            failure => match e.hint() {
                Some(h) => format!("{e} (hint: {h})"),
                None => e.to_string(),
            }
        }),
    }
}

async fn index(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let tables = tables_html(&state, &target).await?;
    let migrations = migrations(&state).await?;
    Ok(state
        .page(
            "postgres.html",
            NAV,
            TITLE,
            &notice,
            context! {
                database => target.database(),
                tables => minijinja::Value::from_safe_string(tables),
                live => "/live/postgres",
                migrations,
            },
        )?
        .into_response())
}

async fn live_tables(State(state): State<AppState>) -> Result<Response, WebError> {
    let target = Arc::new(reached!(&state));
    let st = state.clone();
    Ok(live::fragment(&state, move || {
        let (st, target) = (st.clone(), target.clone());
        async move { tables_html(&st, &target).await }
    })
    .into_response())
}

async fn table(
    State(state): State<AppState>,
    Query(q): Query<TableQuery>,
    Query(notice): Query<Notice>,
) -> Result<Response, WebError> {
    let target = reached!(&state);
    let offset = q.offset.unwrap_or(0);
    let (rows, failure) = match target.rows(&q.schema, &q.table, offset).await {
        Ok(r) => (Some(r), None),
        Err(e @ crate::services::browse::BrowseError::Invalid { .. }) => {
            return Err(WebError::BadRequest {
                what: failure_text(&e),
            });
        }
        Err(e) => (None, Some(shown(e)?)),
    };
    let page_link = |o: u64| {
        link(
            "/postgres/table",
            &[
                ("schema", &q.schema),
                ("table", &q.table),
                ("offset", &o.to_string()),
            ],
        )
    };
    let next = rows.as_ref().and_then(|r| r.next).map(page_link);
    let previous = rows.as_ref().and_then(|r| r.previous).map(page_link);
    Ok(state
        .page(
            "postgres_rows.html",
            NAV,
            TITLE,
            &with_failure(&notice, failure),
            context! {
                database => target.database(),
                schema => q.schema,
                table => q.table,
                rows => Serde(rows),
                next,
                previous,
            },
        )?
        .into_response())
}
