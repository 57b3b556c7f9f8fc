//! A Secret Manager REST v1 client on reqwest: list secrets (pages, filter), access versions with a
//! bound on concurrency, retries of 429/5xx/timeouts with capped exponential backoff and jitter, CRC32C checks.

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;

use super::auth::AccessToken;
use super::{Event, Reporter, SecretBytes};
use crate::backoff::Backoff;

/// The public Secret Manager endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// The largest page `secrets.list` serves.
const PAGE_SIZE: u32 = 25_000;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The waits between tries: 250 ms doubling to 4 s by default, with jitter.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(4)).with_jitter(),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Deadline of one request (connect to last byte); `None`: no limit of its own (the
    /// pull's deadline still applies).
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            concurrency: 32,
            timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
        }
    }
}

/// What went wrong with one request, in words fit for the user (never a secret's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    PermissionDenied,
    NotFound,
    /// 400 FAILED_PRECONDITION: the version is disabled or destroyed.
    Disabled,
    Unauthenticated,
    Invalid,
    /// 429 or 5xx after every retry.
    Unavailable,
    /// Timeouts or broken connections after every retry.
    Network,
    Checksum,
    BadResponse,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

/// One accessed version.
#[derive(Debug)]
pub struct Fetched {
    /// The version number that was served (`latest` resolved).
    pub version: String,
    pub data: SecretBytes,
    /// From the first request to the answer, retries included.
    pub elapsed: Duration,
}

/// A Secret Manager client for one project.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    project: String,
    token: AccessToken,
    options: ClientOptions,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    secrets: Vec<SecretResource>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct SecretResource {
    name: String,
}

#[derive(Deserialize)]
struct AccessResponse {
    #[serde(default)]
    name: String,
    payload: Payload,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    data: String,
    #[serde(default, rename = "dataCrc32c")]
    data_crc32c: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
}

enum Outcome {
    Done(Vec<u8>),
    Retry {
        reason: String,
        after: Option<Duration>,
        /// What it counts as when the retries run out.
        kind: FailureKind,
    },
    Fail(Failure),
}

impl Client {
    /// A client for `project` at `base` (such as [`DEFAULT_ENDPOINT`]).
    pub fn new(
        base: &str,
        project: &str,
        token: AccessToken,
        options: ClientOptions,
    ) -> Result<Client, reqwest::Error> {
        let connect = Duration::from_secs(10);
        let mut http = reqwest::Client::builder()
            .connect_timeout(options.timeout.map_or(connect, |t| t.min(connect)))
            .pool_max_idle_per_host(options.concurrency.max(1))
            .user_agent(concat!("vibedev/", env!("CARGO_PKG_VERSION")));
        if let Some(timeout) = options.timeout {
            http = http.timeout(timeout);
        }
        let http = http.build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            project: project.to_string(),
            token,
            options: ClientOptions {
                concurrency: options.concurrency.max(1),
                ..options
            },
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// The ids of every secret `filter` matches, over as many pages as the server makes.
    pub async fn list(&self, filter: &str, report: &Reporter) -> Result<Vec<String>, Failure> {
        let url = format!("{}/v1/projects/{}/secrets", self.base, self.project);
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = vec![
                ("pageSize", PAGE_SIZE.to_string()),
                ("filter", filter.to_string()),
            ];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let what = format!("the list of secrets matching {filter:?}");
            let body = self
                .send(&what, report, || self.http.get(&url).query(&query))
                .await?;
            let page: ListResponse = serde_json::from_slice(&body).map_err(|e| Failure {
                kind: FailureKind::BadResponse,
                reason: format!("the list response is not what Secret Manager sends: {e}"),
            })?;
            pages += 1;
            ids.extend(
                page.secrets
                    .into_iter()
                    .filter_map(|s| s.name.rsplit('/').next().map(str::to_string)),
            );
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        report(Event::Listed {
            filter: filter.to_string(),
            secrets: ids.len(),
            pages,
        });
        Ok(ids)
    }

    /// Accesses one version (`latest` or a number) and checks its CRC32C.
    pub async fn access(
        &self,
        secret: &str,
        version: &str,
        report: &Reporter,
    ) -> Result<Fetched, Failure> {
        let url = format!(
            "{}/v1/projects/{}/secrets/{secret}/versions/{version}:access",
            self.base, self.project
        );
        let started = Instant::now();
        let body = self.send(secret, report, || self.http.get(&url)).await?;
        let parsed: AccessResponse = serde_json::from_slice(&body).map_err(|e| Failure {
            kind: FailureKind::BadResponse,
            reason: format!(
                "the response is not a secret version as Secret Manager sends it (at line {} column {})",
                e.line(),
                e.column()
            ),
        })?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(parsed.payload.data.as_bytes())
            .map_err(|_| Failure {
                kind: FailureKind::BadResponse,
                reason: "the payload is not valid base64".into(),
            })?;
        if let Some(expected) = parsed.payload.data_crc32c.as_deref() {
            let actual = i64::from(crc32c::crc32c(&data));
            if expected.trim().parse::<i64>().ok() != Some(actual) {
                return Err(Failure {
                    kind: FailureKind::Checksum,
                    reason: "the payload does not match its dataCrc32c checksum (corrupted in transit or at rest)".into(),
                });
            }
        }
        let served = parsed
            .name
            .rsplit('/')
            .next()
            .filter(|v| !v.is_empty())
            .unwrap_or(version)
            .to_string();
        let elapsed = started.elapsed();
        report(Event::Fetched {
            secret: secret.to_string(),
            version: served.clone(),
            elapsed,
        });
        Ok(Fetched {
            version: served,
            data: SecretBytes::new(data),
            elapsed,
        })
    }

    /// Accesses every `(secret, version)` with at most `concurrency` requests in flight until
    /// `deadline`; the results come back in the order asked, `None` for those not finished by then.
    pub async fn access_all(
        &self,
        wanted: &[(String, String)],
        report: &Reporter,
        deadline: tokio::time::Instant,
    ) -> Vec<Option<Result<Fetched, Failure>>> {
        let mut results: Vec<Option<Result<Fetched, Failure>>> =
            wanted.iter().map(|_| None).collect();
        let mut stream =
            futures_util::stream::iter(wanted.iter().enumerate())
                .map(|(i, (secret, version))| async move {
                    (i, self.access(secret, version, report).await)
                })
                .buffer_unordered(self.options.concurrency);
        let collect = async {
            while let Some((i, result)) = stream.next().await {
                results[i] = Some(result);
            }
        };
        // Past the deadline the requests still in flight are dropped (cancelled).
        let _ = tokio::time::timeout_at(deadline, collect).await;
        drop(stream);
        results
    }

    /// Sends a request with the bearer token, retrying what is transient.
    async fn send(
        &self,
        what: &str,
        report: &Reporter,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, Failure> {
        let policy = self.options.retry;
        let mut backoff = policy.backoff;
        let mut attempt = 1;
        loop {
            let outcome = match request().bearer_auth(self.token.as_str()).send().await {
                Ok(response) => classify(response).await,
                Err(err) => network_outcome(&err),
            };
            match outcome {
                Outcome::Done(body) => return Ok(body),
                Outcome::Fail(f) => return Err(f),
                Outcome::Retry {
                    reason,
                    after,
                    kind,
                } => {
                    if attempt >= policy.attempts {
                        return Err(Failure {
                            kind,
                            reason: format!("{reason} (gave up after {attempt} tries)"),
                        });
                    }
                    let mut delay = backoff.next_delay();
                    if let Some(after) = after {
                        delay = delay.max(after.min(backoff.cap()));
                    }
                    report(Event::Retrying {
                        what: what.to_string(),
                        attempt,
                        delay,
                        reason,
                    });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Sorts a response into done, retry or fail.
async fn classify(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match response.bytes().await {
        Ok(b) => b.to_vec(),
        Err(err) => return network_outcome(&err),
    };
    if status.is_success() {
        return Outcome::Done(body);
    }
    let (google_status, message) = match serde_json::from_slice::<ErrorResponse>(&body) {
        Ok(e) => (e.error.status, e.error.message),
        Err(_) => (String::new(), String::new()),
    };
    let label = if google_status.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {} {google_status}", status.as_u16())
    };
    let reason = if message.is_empty() {
        label.clone()
    } else {
        format!("{label}: {message}")
    };
    if status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 500 | 502 | 503 | 504) {
        return Outcome::Retry {
            reason: label,
            after,
            kind: FailureKind::Unavailable,
        };
    }
    let kind = match status.as_u16() {
        401 => FailureKind::Unauthenticated,
        403 => FailureKind::PermissionDenied,
        404 => FailureKind::NotFound,
        400 if google_status == "FAILED_PRECONDITION" => FailureKind::Disabled,
        _ => FailureKind::Invalid,
    };
    Outcome::Fail(Failure { kind, reason })
}

/// Transport errors: timeouts and broken connections are retried.
fn network_outcome(err: &reqwest::Error) -> Outcome {
    let reason = error_chain(err);
    if err.is_timeout() || err.is_connect() || err.is_request() || err.is_body() {
        Outcome::Retry {
            reason: if err.is_timeout() {
                format!("timed out: {reason}")
            } else {
                reason
            },
            after: None,
            kind: FailureKind::Network,
        }
    } else {
        Outcome::Fail(Failure {
            kind: FailureKind::Network,
            reason,
        })
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_retried_five_times_with_jittered_waits_up_to_4_s() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts, 5);
        assert_eq!(policy.backoff.delay(1, 0.0), Duration::from_millis(125));
        assert_eq!(policy.backoff.delay(1, 1.0), Duration::from_millis(250));
        assert_eq!(policy.backoff.delay(9, 1.0), Duration::from_secs(4));
        assert_eq!(policy.backoff.cap(), Duration::from_secs(4));
    }
}
