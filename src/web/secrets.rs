//! The Secrets page: each variable of the env template and whether `.env.gcp` is in sync with
//! Secret Manager, as `vibedev secrets status` compares them. Names and states only: no value
//! is ever read into a page. Compared when the page is opened (each check asks Secret Manager).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use minijinja::context;

use super::{AppState, Notice, Page, WebError, detached};
use crate::secrets::status;

pub const PAGE: Page = Page {
    templates: &[("secrets.html", include_str!("templates/secrets.html"))],
    routes,
};

fn routes() -> Router<AppState> {
    Router::new().route("/secrets", get(page))
}

#[derive(serde::Serialize)]
struct Row {
    key: String,
    secret: Option<String>,
    state: &'static str,
    words: String,
    in_sync: bool,
}

async fn page(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, WebError> {
    let project = state.project.clone();
    let compared = detached("the comparison", move || async move {
        let report: crate::secrets::Reporter = Arc::new(|_| {});
        Ok(status::diff_project(&project, None, &report).await)
    })
    .await?;
    let ctx = match compared {
        Ok(s) => {
            let rows: Vec<Row> = s
                .variables
                .iter()
                .map(|v| Row {
                    key: v.key.clone(),
                    secret: v.secret.clone(),
                    state: v.state.name(),
                    words: v.state.describe(),
                    in_sync: v.state.in_sync(),
                })
                .collect();
            context! {
                compared => true,
                gcp_project => s.project,
                env_file => s.env_file.display().to_string(),
                written => s.written.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                in_sync => s.in_sync,
                rows => minijinja::Value::from(minijinja::value::Serde(&rows)),
            }
        }
        // What the CLI would say (no credentials, no template, no project): the error and
        // its hint, as the page's content.
        Err(err) => {
            let err = WebError::from(err);
            context! {
                compared => false,
                error => err.chain(),
                hint => err.hint(),
            }
        }
    };
    state.page("secrets.html", "secrets", "Secrets", &notice, ctx)
}
