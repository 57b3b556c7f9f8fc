//! A local stand-in for Google Secret Manager (REST v1) and Google's OAuth 2.0 token endpoint, for
//! tests and `scripts/bench-secrets`. No emulator of either exists, so this speaks their documented HTTP APIs.
//!
//! - `POST /token`: the service-account JWT-bearer grant. The assertion's RS256 signature is checked
//!   against the public half of a freshly generated RSA key, and its `aud` (this URL), `iss`, `scope`
//!   (cloud-platform), `iat` and `exp` before an access token is issued. A key can be revoked: then
//!   every grant is refused with 400 `invalid_grant`, as Google refuses a deleted key.
//! - `GET /v1/projects/{p}/secrets?pageSize=&pageToken=&filter=`: `secrets`, `nextPageToken`, `totalSize`.
//!   Filters: space- or `AND`-separated `labels.K=V`, `labels.K:V` (contains), `labels.K:*`, `name:X`, `name=X`.
//! - `GET /v1/projects/{p}/secrets/{s}/versions/{v|latest}:access`: `payload.data` (base64) and
//!   `payload.dataCrc32c` (CRC32C of the bytes, an int64 as a string).
//! - Errors as Google sends them: `{"error":{"code","message","status"}}` with 401 UNAUTHENTICATED
//!   (no or unknown bearer token), 403 PERMISSION_DENIED, 404 NOT_FOUND, 400 FAILED_PRECONDITION (disabled
//!   version), 400 INVALID_ARGUMENT, 429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE.
//!
//! Faults (a fixed status, the first N answers failing, a wrong CRC, a stall) and latency are injected
//! per secret; every request is counted so tests can check what the client did.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// The scope a token must be asked for.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The service account the key file names.
pub const CLIENT_EMAIL: &str = "vibedev-test@local-test.iam.gserviceaccount.com";
/// Secret names carry a project number, as Google's do.
const PROJECT_NUMBER: &str = "123456789012";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The service account's RSA key: generated once per process (2048-bit generation is slow in
/// debug builds; aws-lc-rs, which signs for gcp_auth, refuses smaller keys).
pub fn signing_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate an RSA key")
    })
}

/// A fault injected into one secret's access requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every access answers this status (403, 404, 500, ...).
    Status(u16),
    /// The first N accesses answer this status (429, 503, ...), then the real answer.
    FirstN(u32, u16),
    /// The payload's `dataCrc32c` is wrong.
    WrongCrc,
    /// The first N accesses wait this long before answering.
    Stall(u32, Duration),
}

struct Version {
    data: Vec<u8>,
    enabled: bool,
}

struct Secret {
    labels: BTreeMap<String, String>,
    versions: Vec<Version>,
}

#[derive(Default)]
struct State {
    project: String,
    secrets: BTreeMap<String, Secret>,
    faults: HashMap<String, Fault>,
    fault_hits: HashMap<String, u32>,
    latency: Duration,
    max_page: usize,
    tokens: HashSet<String>,
    issued: u32,
    access_calls: HashMap<String, u32>,
    list_calls: u32,
    list_filters: Vec<String>,
    unauthenticated: u32,
    token_rejections: Vec<String>,
    token_uri: String,
    /// When set, every grant is refused with `invalid_grant` and this description, as Google
    /// refuses a deleted or disabled key.
    revoked: Option<String>,
    /// Grants still to answer 503 before the real answer.
    token_outage: u32,
}

/// A running server on 127.0.0.1 (port chosen by the system); stops when dropped.
pub struct SecretManagerServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SecretManagerServer {
    /// Starts a server holding the secrets of GCP project `project`.
    pub fn start(project: &str) -> SecretManagerServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            project: project.to_string(),
            max_page: 25_000,
            token_uri: format!("http://{addr}/token"),
            ..State::default()
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(serve(listener, shared, rx));
        });
        SecretManagerServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL vibedev is pointed at (`VIBEDEV_SECRET_MANAGER_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_uri(&self) -> String {
        self.state().token_uri.clone()
    }

    /// Adds a secret with these versions (numbered from 1), all enabled.
    pub fn add_secret(&self, name: &str, labels: &[(&str, &str)], versions: &[&[u8]]) {
        self.state().secrets.insert(
            name.to_string(),
            Secret {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                versions: versions
                    .iter()
                    .map(|d| Version {
                        data: d.to_vec(),
                        enabled: true,
                    })
                    .collect(),
            },
        );
    }

    /// Adds a version (the next number) to an existing secret: a rotation.
    pub fn add_version(&self, name: &str, data: &[u8]) {
        if let Some(s) = self.state().secrets.get_mut(name) {
            s.versions.push(Version {
                data: data.to_vec(),
                enabled: true,
            });
        }
    }

    pub fn disable_version(&self, name: &str, version: usize) {
        if let Some(v) = self
            .state()
            .secrets
            .get_mut(name)
            .and_then(|s| s.versions.get_mut(version - 1))
        {
            v.enabled = false;
        }
    }

    pub fn fault(&self, name: &str, fault: Fault) {
        self.state().faults.insert(name.to_string(), fault);
    }

    pub fn clear_fault(&self, name: &str) {
        self.state().faults.remove(name);
    }

    /// Latency added before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// The largest page the list serves, whatever `pageSize` asks for.
    pub fn set_max_page(&self, n: usize) {
        self.state().max_page = n.max(1);
    }

    /// Access requests seen for a secret (authenticated ones).
    pub fn access_calls(&self, name: &str) -> u32 {
        self.state().access_calls.get(name).copied().unwrap_or(0)
    }

    pub fn total_access_calls(&self) -> u32 {
        self.state().access_calls.values().sum()
    }

    /// List requests (one per page).
    pub fn list_calls(&self) -> u32 {
        self.state().list_calls
    }

    pub fn list_filters(&self) -> Vec<String> {
        self.state().list_filters.clone()
    }

    /// Access tokens issued by the token endpoint.
    pub fn tokens_issued(&self) -> u32 {
        self.state().issued
    }

    /// Requests refused for want of a valid bearer token.
    pub fn unauthenticated(&self) -> u32 {
        self.state().unauthenticated
    }

    /// Makes the token endpoint refuse the key from now on, with Google's answer for a deleted
    /// key (`invalid_grant`, "Invalid JWT Signature.") or the description given.
    pub fn revoke_key(&self, description: Option<&str>) {
        self.state().revoked = Some(description.unwrap_or("Invalid JWT Signature.").to_string());
    }

    /// The next `n` grants answer 503 UNAVAILABLE.
    pub fn token_outage(&self, n: u32) {
        self.state().token_outage = n;
    }

    /// Why the token endpoint refused assertions.
    pub fn token_rejections(&self) -> Vec<String> {
        self.state().token_rejections.clone()
    }

    /// A token accepted without the JWT grant, for clients that take a ready token
    /// (`gcloud --access-token-file`).
    pub fn issue_token(&self) -> String {
        new_token(&mut self.state())
    }

    /// The service-account key JSON: the generated private key and `token_uri` pointing here.
    pub fn key_json(&self) -> String {
        let pem = signing_key()
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string();
        serde_json::json!({
            "type": "service_account",
            "project_id": self.state().project,
            "private_key_id": "local-test-key",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    /// Writes the key file into `dir` and returns its path.
    pub fn write_key_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("service-account.json");
        std::fs::write(&path, self.key_json()).expect("write key file");
        path
    }
}

impl Drop for SecretManagerServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A signed JWT-bearer assertion as a service account makes it (for testing the token endpoint).
pub fn sign_assertion(claims: &serde_json::Value) -> String {
    sign_assertion_with(signing_key(), claims)
}

/// A JWT-bearer assertion signed with `key` (another key than the service account's, to show
/// that the token endpoint refuses it).
pub fn sign_assertion_with(key: &RsaPrivateKey, claims: &serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut jwt = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(jwt.as_bytes());
    jwt.push('.');
    jwt.push_str(&b64.encode(sig.to_bytes()));
    jwt
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn new_token(state: &mut State) -> String {
    state.issued += 1;
    let token = format!("ya29.local.{}.{:016x}", state.issued, rand::random::<u64>());
    state.tokens.insert(token.clone());
    token
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn json(status: StatusCode, body: serde_json::Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// An error in Google's JSON shape.
fn google_error(code: u16, message: &str) -> Answer {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    google_error_status(code, status, message)
}

fn google_error_status(code: u16, status: &str, message: &str) -> Answer {
    json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        serde_json::json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Answer {
    let latency = lock(&state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_form(req.uri().query().unwrap_or(""));
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if method == Method::POST && path == "/token" {
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return google_error(400, "unreadable body"),
        };
        return token_grant(&state, &body);
    }
    if method != Method::GET {
        return google_error(404, "no such method");
    }
    let authorized = bearer.is_some_and(|t| lock(&state).tokens.contains(&t));
    if !authorized {
        lock(&state).unauthenticated += 1;
        return google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    }
    let Some(rest) = path.strip_prefix("/v1/projects/") else {
        return google_error(404, "not found");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [project, "secrets"] => list(&state, project, &query),
        [project, "secrets", secret, "versions", version_access] => {
            match version_access.strip_suffix(":access") {
                Some(version) => access(&state, project, secret, version).await,
                None => google_error(404, "not found"),
            }
        }
        _ => google_error(404, "not found"),
    }
}

/// The JWT-bearer grant: verify the assertion, then issue a token.
fn token_grant(state: &Mutex<State>, body: &[u8]) -> Answer {
    {
        let mut st = lock(state);
        if st.token_outage > 0 {
            st.token_outage -= 1;
            return google_error(503, "The service is currently unavailable.");
        }
    }
    let form = parse_form(&String::from_utf8_lossy(body));
    let token_uri = lock(state).token_uri.clone();
    let verdict = (|| -> Result<(), String> {
        if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(format!("grant_type must be {JWT_BEARER}"));
        }
        let assertion = form.get("assertion").ok_or("no assertion")?;
        verify_assertion(assertion, &token_uri)?;
        match lock(state).revoked.clone() {
            Some(description) => Err(description),
            None => Ok(()),
        }
    })();
    match verdict {
        Ok(()) => {
            let token = new_token(&mut lock(state));
            json(
                StatusCode::OK,
                serde_json::json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
            )
        }
        Err(why) => {
            lock(state).token_rejections.push(why.clone());
            json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "invalid_grant", "error_description": why}),
            )
        }
    }
}

/// Checks an RS256 JWT: signature against the service account's public key, then the claims.
pub fn verify_assertion(assertion: &str, token_uri: &str) -> Result<(), String> {
    let pieces: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = pieces.as_slice() else {
        return Err("the assertion is not a JWT (three dot-separated parts)".into());
    };
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| "a JWT part is not base64url".to_string())
    };
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "the JWT header is not JSON")?;
    if header["alg"] != "RS256" {
        return Err(format!("alg must be RS256, not {}", header["alg"]));
    }
    let signature = Signature::try_from(decode(signature)?.as_slice())
        .map_err(|_| "the signature is malformed")?;
    let signed = &assertion[..assertion.rfind('.').unwrap_or(0)];
    VerifyingKey::<Sha256>::new(RsaPublicKey::from(signing_key()))
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the signature does not verify with the service account's key")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&decode(claims)?).map_err(|_| "the JWT claims are not JSON")?;
    if claims["aud"] != token_uri {
        return Err(format!("aud must be {token_uri}, not {}", claims["aud"]));
    }
    if claims["iss"] != CLIENT_EMAIL {
        return Err(format!("iss must be {CLIENT_EMAIL}"));
    }
    let scopes = claims["scope"].as_str().unwrap_or("");
    if !scopes.split(' ').any(|s| s == CLOUD_PLATFORM) {
        return Err(format!(
            "scope must include {CLOUD_PLATFORM}, not {scopes:?}"
        ));
    }
    let now = now_secs();
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if iat > now + 60 || exp <= now || exp - iat > 3600 {
        return Err("iat/exp are not a valid window of at most an hour around now".into());
    }
    Ok(())
}

fn list(state: &Mutex<State>, project: &str, query: &HashMap<String, String>) -> Answer {
    let mut st = lock(state);
    if project != st.project {
        return google_error(
            403,
            &format!(
                "Permission 'secretmanager.secrets.list' denied for resource 'projects/{project}' (or it may not exist)."
            ),
        );
    }
    st.list_calls += 1;
    let filter = query.get("filter").cloned().unwrap_or_default();
    st.list_filters.push(filter.clone());
    let terms = match parse_filter(&filter) {
        Ok(t) => t,
        Err(why) => return google_error(400, &format!("Invalid filter {filter:?}: {why}")),
    };
    let page_size = query
        .get("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|&p| p > 0)
        .unwrap_or(25_000)
        .min(st.max_page);
    let offset = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return google_error(400, "Invalid page token."),
        },
    };
    let matching: Vec<(&String, &Secret)> = st
        .secrets
        .iter()
        .filter(|(name, s)| terms.iter().all(|t| t.matches(name, &s.labels)))
        .collect();
    let total = matching.len();
    let page: Vec<serde_json::Value> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(name, s)| {
            serde_json::json!({
                "name": format!("projects/{PROJECT_NUMBER}/secrets/{name}"),
                "replication": {"automatic": {}},
                "createTime": "2026-01-01T00:00:00.000000Z",
                "labels": s.labels,
                "etag": "\"1\"",
            })
        })
        .collect();
    let mut body = serde_json::json!({"secrets": page, "totalSize": total});
    if offset + page_size < total {
        body["nextPageToken"] = serde_json::json!(format!("page-{}", offset + page_size));
    }
    if page.is_empty() && total == 0 {
        // Google leaves out empty fields.
        body = serde_json::json!({});
    }
    json(StatusCode::OK, body)
}

async fn access(state: &Mutex<State>, project: &str, secret: &str, version: &str) -> Answer {
    let (fault, hits) = {
        let mut st = lock(state);
        *st.access_calls.entry(secret.to_string()).or_default() += 1;
        let fault = st.faults.get(secret).cloned();
        let hits = st.fault_hits.entry(secret.to_string()).or_default();
        *hits += 1;
        (fault, *hits)
    };
    let resource = format!("projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{version}");
    match &fault {
        Some(Fault::Status(code)) => return fault_answer(*code, &resource),
        Some(Fault::FirstN(n, code)) if hits <= *n => return fault_answer(*code, &resource),
        Some(Fault::Stall(n, d)) if hits <= *n => tokio::time::sleep(*d).await,
        _ => {}
    }
    let st = lock(state);
    if project != st.project {
        return google_error(
            403,
            &format!(
                "Permission 'secretmanager.versions.access' denied for resource '{resource}' (or it may not exist)."
            ),
        );
    }
    let Some(s) = st.secrets.get(secret) else {
        return google_error(
            404,
            &format!(
                "Secret [projects/{PROJECT_NUMBER}/secrets/{secret}] not found or has no versions."
            ),
        );
    };
    let number = if version == "latest" {
        match s.versions.iter().rposition(|v| v.enabled) {
            Some(i) => i + 1,
            None => {
                return google_error(
                    404,
                    &format!(
                        "Secret [projects/{PROJECT_NUMBER}/secrets/{secret}] not found or has no versions."
                    ),
                );
            }
        }
    } else {
        match version.parse::<usize>() {
            Ok(n) if n >= 1 && n <= s.versions.len() => n,
            _ => return google_error(404, &format!("Secret Version [{resource}] not found.")),
        }
    };
    let v = &s.versions[number - 1];
    if !v.enabled {
        return google_error_status(
            400,
            "FAILED_PRECONDITION",
            &format!(
                "Secret Version [projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{number}] is in DISABLED state."
            ),
        );
    }
    let mut crc = i64::from(crc32c::crc32c(&v.data));
    if fault == Some(Fault::WrongCrc) {
        crc ^= 0x5a5a;
    }
    json(
        StatusCode::OK,
        serde_json::json!({
            "name": format!("projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{number}"),
            "payload": {
                "data": base64::engine::general_purpose::STANDARD.encode(&v.data),
                "dataCrc32c": crc.to_string(),
            }
        }),
    )
}

fn fault_answer(code: u16, resource: &str) -> Answer {
    match code {
        403 => google_error(
            403,
            &format!(
                "Permission 'secretmanager.versions.access' denied for resource '{resource}' (or it may not exist)."
            ),
        ),
        404 => google_error(404, &format!("Secret Version [{resource}] not found.")),
        429 => google_error(
            429,
            "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute per project'.",
        ),
        code => google_error(code, "The service encountered an internal error."),
    }
}

/// One term of a list filter.
enum Term {
    LabelEq(String, String),
    LabelHas(String, String),
    LabelPresent(String),
    NameHas(String),
    NameEq(String),
}

impl Term {
    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Term::LabelEq(k, v) => labels.get(k) == Some(v),
            Term::LabelHas(k, v) => labels.get(k).is_some_and(|l| l.contains(v.as_str())),
            Term::LabelPresent(k) => labels.contains_key(k),
            Term::NameHas(x) => name.contains(x.as_str()),
            Term::NameEq(x) => name == x,
        }
    }
}

fn parse_filter(filter: &str) -> Result<Vec<Term>, String> {
    let mut terms = Vec::new();
    for word in filter.split_whitespace().filter(|w| *w != "AND") {
        let unquote = |s: &str| s.trim_matches('"').to_string();
        let term = if let Some(rest) = word.strip_prefix("labels.") {
            if let Some((k, v)) = rest.split_once('=') {
                Term::LabelEq(k.to_string(), unquote(v))
            } else if let Some((k, v)) = rest.split_once(':') {
                if v == "*" {
                    Term::LabelPresent(k.to_string())
                } else {
                    Term::LabelHas(k.to_string(), unquote(v))
                }
            } else {
                return Err(format!("no operator in {word:?}"));
            }
        } else if let Some(x) = word.strip_prefix("name:") {
            Term::NameHas(unquote(x))
        } else if let Some(x) = word.strip_prefix("name=") {
            Term::NameEq(unquote(x))
        } else {
            return Err(format!("unsupported term {word:?}"));
        };
        terms.push(term);
    }
    Ok(terms)
}

/// `application/x-www-form-urlencoded` (also query strings).
fn parse_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
