//! The Stack page: each service's state, readiness, ports, URL, uptime, image and last probe (as
//! `vibedev status` computes them), live; start, stop, restart a service, `up` the whole stack.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use futures_util::future::join_all;
use minijinja::context;

use super::{AppState, Notice, Page, Shared, WebError, actions, detached, done, live};
use crate::runtime;

pub const PAGE: Page = Page {
    templates: &[
        ("stack.html", include_str!("templates/stack.html")),
        (
            "stack_services.html",
            include_str!("templates/stack_services.html"),
        ),
    ],
    routes,
};

fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/live/stack", get(live_services))
        .route("/stack/up", post(up_all))
        .route("/stack/{service}/{action}", post(act))
}

async fn page(
    State(state): State<AppState>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, WebError> {
    let services = services(&state).await?;
    state.page(
        "stack.html",
        "stack",
        "Stack",
        &notice,
        context! { services => services },
    )
}

async fn live_services(State(state): State<AppState>) -> impl IntoResponse {
    let s = state.clone();
    live::fragment(&state, move || {
        let s = s.clone();
        async move { services(&s).await }
    })
}

/// One row of the table, as shown.
#[derive(serde::Serialize)]
struct Row {
    service: String,
    kind: Option<String>,
    state: String,
    outdated: bool,
    ready: bool,
    ports: Vec<String>,
    url: Option<String>,
    uptime: Option<String>,
    image: String,
    container: Option<String>,
    /// What the last readiness probe said (`answers`, `no answer`, `not probed`).
    probe: &'static str,
    running: bool,
}

/// The services table (the live fragment).
async fn services(state: &Shared) -> Result<String, WebError> {
    let stack = &state.stack;
    let runtimes = runtime::observe(&state.engine, stack).await?;
    let http = &state.http;
    let ready = join_all(
        stack
            .services
            .iter()
            .zip(&runtimes)
            .map(|(spec, rt)| runtime::probe_once(stack, spec, rt, http)),
    )
    .await;
    let rows: Vec<Row> = runtime::status_rows(stack, &runtimes, &ready)
        .into_iter()
        .map(|r| {
            let running = r.state == "running";
            let probe = match (running, r.ready) {
                (false, _) => "not probed",
                (true, true) => "answers",
                (true, false) => "no answer",
            };
            Row {
                ports: r
                    .ports
                    .iter()
                    .map(|p| format!("{}:{}→{}", p.host, p.host_port, p.container_port))
                    .collect(),
                uptime: r
                    .uptime_seconds
                    .map(|s| crate::text::uptime(std::time::Duration::from_secs(s))),
                outdated: running && !r.up_to_date,
                service: r.service,
                kind: r.kind,
                state: r.state,
                ready: r.ready,
                url: r.url,
                image: r.image,
                container: r.container,
                probe,
                running,
            }
        })
        .collect();
    state.render(
        "stack_services.html",
        context! { rows => minijinja::Value::from(minijinja::value::Serde(&rows)) },
    )
}

async fn up_all(State(state): State<AppState>) -> Redirect {
    let outcome = detached("up", move || async move {
        actions::up(&state, Vec::new()).await
    })
    .await;
    done("/", outcome)
}

async fn act(
    State(state): State<AppState>,
    Path((service, action)): Path<(String, String)>,
) -> Result<Redirect, WebError> {
    if !state.stack.services.iter().any(|s| s.name == service) {
        return Err(WebError::NotFound {
            what: format!("service {service}"),
        });
    }
    if !["start", "stop", "restart"].contains(&action.as_str()) {
        return Err(WebError::NotFound {
            what: format!("action {action}"),
        });
    }
    let outcome = detached(&action.clone(), move || async move {
        match action.as_str() {
            "start" => actions::up(&state, vec![service.clone()])
                .await
                .map(|_| format!("{service} started")),
            "stop" => actions::stop(&state, &service).await,
            _ => actions::restart(&state, &service).await,
        }
    })
    .await;
    Ok(done("/", outcome))
}
