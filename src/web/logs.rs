//! The Logs page.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use minijinja::context;

use super::{AppState, Notice, Page, WebError};

pub const PAGE: Page = Page {
    templates: &[("logs.html", include_str!("templates/logs.html"))],
    routes,
};

fn routes() -> Router<AppState> {
    Router::new().route("/logs", get(page))
}

async fn page(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, WebError> {
    state.page("logs.html", "logs", "Logs", &notice, context! {})
}
