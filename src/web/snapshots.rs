//! The Snapshots page: this project's snapshots (as `vibedev snapshot list`) and the app
//! database's branch databases (as `vibedev branch ls`); save a snapshot, restore one (after a
//! confirmation, under the project's lock, as `vibedev snapshot save|restore` do).

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use minijinja::context;

use super::{AppState, Notice, Page, Shared, WebError, actions, done};
use crate::data::{self, Stores};
use crate::snapshot::{self, Manifest, RestoreProgress};
use crate::text::size;

pub const PAGE: Page = Page {
    templates: &[("snapshots.html", include_str!("templates/snapshots.html"))],
    routes,
};

fn routes() -> Router<AppState> {
    Router::new()
        .route("/snapshots", get(page))
        .route("/snapshots/save", post(save))
        .route("/snapshots/{name}/restore", post(restore))
}

#[derive(serde::Serialize)]
struct SnapshotRow {
    name: String,
    created: String,
    auto: Option<String>,
    branch: Option<String>,
    commit: Option<String>,
    migration: Option<String>,
    size: String,
    stores: Vec<String>,
}

impl From<&Manifest> for SnapshotRow {
    fn from(m: &Manifest) -> SnapshotRow {
        SnapshotRow {
            name: m.name.clone(),
            created: m.created.clone(),
            auto: m.auto.clone(),
            branch: m.git.as_ref().and_then(|g| g.branch.clone()),
            commit: m.git.as_ref().map(|g| g.commit.chars().take(10).collect()),
            migration: m.migrations.as_ref().and_then(|h| h.latest.clone()),
            size: size(m.bytes()),
            stores: m
                .stores
                .iter()
                .map(|s| format!("{} ({}, {})", s.service, s.saved, size(s.bytes)))
                .collect(),
        }
    }
}

#[derive(serde::Serialize)]
struct BranchRow {
    database: String,
    branch: Option<String>,
    exists: bool,
    default: bool,
    current: bool,
    size: String,
    last_used: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, WebError> {
    let snapshots: Vec<SnapshotRow> = snapshot::list(&state.stack.project)?
        .iter()
        .map(SnapshotRow::from)
        .collect();
    let (branches, branches_note) = match branches(&state).await {
        Ok(rows) => (rows, None),
        Err(err) => (Vec::new(), Some(err.chain().join(": "))),
    };
    state.page(
        "snapshots.html",
        "snapshots",
        "Snapshots and branches",
        &notice,
        context! {
            snapshots => minijinja::Value::from(minijinja::value::Serde(&snapshots)),
            branches => minijinja::Value::from(minijinja::value::Serde(&branches)),
            branches_note => branches_note,
            branch_databases => state.project.file.branches.database,
        },
    )
}

/// The app database and its branch databases (when Postgres runs).
async fn branches(state: &Shared) -> Result<Vec<BranchRow>, WebError> {
    let stores = Stores::observe(&state.engine, &state.stack).await?;
    let db = stores.database()?;
    let listed = data::branch_databases(&state.project, &db).await?;
    Ok(listed
        .into_iter()
        .filter_map(|l| {
            let db = l.db?;
            Some(BranchRow {
                size: size(db.bytes.max(0) as u64),
                last_used: db
                    .last_used
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                database: db.database,
                branch: l.branch,
                exists: l.exists,
                default: l.default,
                current: l.current,
            })
        })
        .collect())
}

#[derive(serde::Deserialize)]
struct SaveForm {
    #[serde(default)]
    name: String,
}

async fn save(State(state): State<AppState>, Form(form): Form<SaveForm>) -> Redirect {
    let name = form.name.trim();
    let name = (!name.is_empty()).then_some(name);
    done("/snapshots", save_now(&state, name).await)
}

async fn save_now(state: &Shared, name: Option<&str>) -> Result<String, WebError> {
    let _lock = actions::lock(state, "snapshot save").await?;
    let stores = Stores::observe(&state.engine, &state.stack).await?;
    let saved = snapshot::save(&state.engine, &state.project, &stores, name, &[], None).await?;
    let mut note = format!(
        "saved snapshot {} ({})",
        saved.manifest.name,
        size(saved.manifest.bytes())
    );
    if !saved.skipped.is_empty() {
        note.push_str(&format!(
            "; not running, so not in it: {}",
            saved.skipped.join(", ")
        ));
    }
    Ok(note)
}

async fn restore(State(state): State<AppState>, Path(name): Path<String>) -> Redirect {
    done("/snapshots", restore_now(&state, &name).await)
}

async fn restore_now(state: &Shared, name: &str) -> Result<String, WebError> {
    let _lock = actions::lock(state, "snapshot restore").await?;
    let stores = Stores::observe(&state.engine, &state.stack).await?;
    let progress = RestoreProgress::default();
    let (manifest, restored) =
        snapshot::restore(&state.engine, &stores, name, &[], &progress).await?;
    let what: Vec<String> = restored
        .iter()
        .map(|r| format!("{} ({})", r.service, r.restored))
        .collect();
    Ok(format!(
        "restored snapshot {}: {}",
        manifest.name,
        what.join(", ")
    ))
}
