//! An axum service storing and searching an agent's memory through the async facade:
//! `cargo run --example axum_memory` sends it a few requests in-process and prints the
//! answers; `cargo run --example axum_memory -- --serve` listens on 127.0.0.1:3000.
//!
//! ```sh
//! curl -X POST localhost:3000/users/$U/agents/$A/messages \
//!      -H 'content-type: application/json' -d '{"role":"user","text":"I like rye bread"}'
//! curl 'localhost:3000/users/$U/agents/$A/messages?limit=10'
//! curl 'localhost:3000/users/$U/agents/$A/search?q=rye'
//! curl localhost:3000/metrics                  # Prometheus: calls, checkouts, waits
//! ```
//!
//! Each handler awaits a connector call that runs on a worker thread of the store
//! (`AsyncStore`), so database work never blocks the async workers, and requests past the
//! store's connections wait without holding a thread.

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use memgpt_core::{Error, Message, Record, Role, Scope, TableType};
use memgpt_sqlite::{AsyncStore, SqliteConfig, SqliteStore};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

type Store = AsyncStore<SqliteStore>;

/// The body of `POST …/messages`.
#[derive(Deserialize)]
struct NewMessage {
    role: Role,
    text: String,
}

/// `?limit=N` / `?q=words`.
#[derive(Deserialize)]
struct Params {
    limit: Option<usize>,
    q: Option<String>,
}

/// A library error as an HTTP answer: the caller's mistakes are 4xx, the rest 5xx.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::AlreadyExists { .. } | Error::DuplicateId { .. } => StatusCode::CONFLICT,
            Error::PoolTimeout { .. } | Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

fn view(m: &Message) -> Value {
    json!({ "id": m.id(), "role": m.role().as_str(), "text": m.text() })
}

async fn remember(
    State(store): State<Store>,
    Path((user, agent)): Path<(Uuid, Uuid)>,
    Json(body): Json<NewMessage>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
    let message = Message::builder(user, agent, body.role)
        .text(body.text)
        .build()?;
    let id = message.id();
    recall.insert(message).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn recent(
    State(store): State<Store>,
    Path((user, agent)): Path<(Uuid, Uuid)>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
    let messages = recall
        .get_all(vec![], Some(params.limit.unwrap_or(20)))
        .await?;
    Ok(Json(messages.iter().map(view).collect()))
}

async fn search(
    State(store): State<Store>,
    Path((user, agent)): Path<(Uuid, Uuid)>,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
    let q = params.q.unwrap_or_default();
    let messages = recall.query_text(q, params.limit, 0).await?;
    Ok(Json(messages.iter().map(view).collect()))
}

/// The store's figures (`memgpt_core::telemetry`, the feature `metrics`) as Prometheus
/// scrapes them: durations as histograms of these bounds, in seconds.
fn prometheus() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    const BOUNDS: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BOUNDS)?
        .install_recorder()?)
}

fn app(store: Store, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route(
            "/users/{user}/agents/{agent}/messages",
            get(recent).post(remember),
        )
        .route("/users/{user}/agents/{agent}/search", get(search))
        .with_state(store)
}

/// Sends one request to the service, prints the answer and returns its body.
async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Result<String, Box<dyn std::error::Error>> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if uri != "/metrics" {
        println!("{method} {uri}\n  -> {status} {text}");
    }
    Ok(text)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::var_os("MEMGPT_SQLITE_PATH")
        .map(Into::into)
        .unwrap_or_else(|| dir.path().join("service.db"));
    // Opening (and migrating) is blocking work: before the server starts, or on the
    // blocking pool.
    let store =
        tokio::task::spawn_blocking(move || SqliteStore::open(SqliteConfig::new(path))).await??;
    let app = app(AsyncStore::new(store), prometheus()?);

    if std::env::args().any(|a| a == "--serve") {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        return Ok(());
    }
    let base = format!("/users/{}/agents/{}", Uuid::new_v4(), Uuid::new_v4());
    for (role, text) in [
        ("user", "I like rye bread with caraway"),
        ("assistant", "Rye with caraway it is: noted."),
        ("user", "And on Sundays, brioche."),
    ] {
        call(
            &app,
            "POST",
            &format!("{base}/messages"),
            Some(json!({ "role": role, "text": text })),
        )
        .await?;
    }
    call(&app, "GET", &format!("{base}/messages?limit=2"), None).await?;
    call(&app, "GET", &format!("{base}/search?q=rye"), None).await?;
    // A tool message must name its call: the library's InvalidInput becomes a 400.
    call(
        &app,
        "POST",
        &format!("{base}/messages"),
        Some(json!({ "role": "tool", "text": "42" })),
    )
    .await?;
    // What Prometheus would scrape: here, the calls by table, operation and outcome.
    let scraped = call(&app, "GET", "/metrics", None).await?;
    println!("GET /metrics (the calls)");
    let calls: Vec<&str> = scraped
        .lines()
        .filter(|l| l.starts_with("memgpt_store_calls_total{"))
        .collect();
    for line in &calls {
        println!("  {line}");
    }
    if calls.is_empty() {
        return Err("/metrics reports no calls".into());
    }
    Ok(())
}
