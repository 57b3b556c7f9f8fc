//! Secret Manager into `.env.gcp`: credentials, the REST client, the env template, and the pull
//! that turns a template into quoted lines, all or nothing. Nothing here prints or logs a value.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod mask;
pub mod project;
pub mod records;
pub mod relay;
pub mod status;
pub mod sync;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::future::join_all;

use crate::envfile::{MAX_ENV_STRING, Unportable, quote_dotenv};
use client::{Client, Failure, FailureKind};
use template::{Encoding, Entry, Template, TemplateError, derived_key};

/// A fetch that took this long is named as slow at the end of a pull.
pub const SLOW: Duration = Duration::from_secs(1);

/// The whole pull's deadline: when it falls, and how long it was (for messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub total: Duration,
}

impl Deadline {
    /// `total` from now; `None` for no deadline (one far in the future).
    pub fn after(total: Option<Duration>) -> Deadline {
        // As tokio's own "far future": 30 years.
        let total = total.unwrap_or(Duration::from_secs(30 * 365 * 24 * 3600));
        Deadline {
            at: tokio::time::Instant::now() + total,
            total,
        }
    }
}

/// The file a pull writes, beside `vibedev.toml`.
pub const ENV_FILE: &str = ".env.gcp";

/// A secret's bytes. `Debug` never shows them.
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// Progress of a pull, for the caller to show (names and versions only).
#[derive(Debug, Clone)]
pub enum Event {
    Listed {
        filter: String,
        secrets: usize,
        pages: usize,
    },
    /// The versions to fetch are known: this many requests follow.
    Fetching { secrets: usize },
    Fetched {
        secret: String,
        version: String,
        elapsed: Duration,
    },
    Retrying {
        what: String,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// A filter matched a secret whose derived name is written out explicitly: the explicit line wins.
    Shadowed { key: String, secret: String },
    /// The GCP project (and where it came from) and the template in use.
    Resolved {
        gcp: String,
        source: String,
        template: String,
    },
    /// A token was obtained; requests go to `endpoint`, this many at once.
    Connected {
        endpoint: String,
        concurrency: usize,
    },
    /// Every fetch is over (the counter can go).
    Done,
    /// The project is not in a git work tree: the git checks are skipped.
    NoGitWorkTree,
    /// Git tracks `.env.gcp` and `--allow-tracked` lets the pull write it anyway.
    TrackedAllowed { path: PathBuf },
    /// Git does not ignore `.env.gcp`: the line to add to `gitignore`.
    NotIgnored { gitignore: PathBuf },
}

pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

/// One secret version a pull could not fetch, with the keys that wanted it.
#[derive(Debug, Clone)]
pub struct FetchFailure {
    pub secret: String,
    pub version: String,
    pub keys: Vec<String>,
    pub failure: Failure,
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "secret {} (version {}, for {}): {}",
            self.secret,
            self.version,
            self.keys.join(", "),
            self.failure.reason
        )
    }
}

/// Everything that can stop a pull. Messages name secrets and keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("no GCP project to read secrets from")]
    NoProject,
    #[error("cannot read the env template {path}")]
    TemplateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A tuning variable (`VIBEDEV_SECRETS_*`) whose value is out of its range.
    #[error("{variable}={value:?} is not {allowed}")]
    BadSetting {
        variable: &'static str,
        value: String,
        allowed: &'static str,
        /// What is used when the variable is unset.
        otherwise: &'static str,
    },
    #[error("[secrets] deadline = {secs} is over 3600 seconds (0: no deadline)")]
    DeadlineTooLong { secs: u64 },
    #[error("no Google credentials found: {checked}")]
    NoCredentials { checked: String },
    #[error("cannot use the application-default credentials {path}")]
    UserCredentials {
        path: PathBuf,
        #[source]
        source: gcp_auth::Error,
    },
    #[error("cannot get a token from the metadata server (on Google Cloud: {why})")]
    Metadata {
        why: String,
        #[source]
        source: gcp_auth::Error,
    },
    #[error(
        "the token endpoint {token_uri} refused the service-account key of {email} ({}, GOOGLE_APPLICATION_CREDENTIALS): {reason}",
        path.display()
    )]
    KeyRejected {
        path: PathBuf,
        email: String,
        token_uri: String,
        reason: String,
    },
    #[error("cannot get a token from {token_uri}: {reason}")]
    TokenEndpoint { token_uri: String, reason: String },
    #[error("cannot use the credentials file {path} (GOOGLE_APPLICATION_CREDENTIALS)")]
    CredentialsFile {
        path: PathBuf,
        #[source]
        source: gcp_auth::Error,
    },
    #[error("cannot get an access token for Secret Manager")]
    Token {
        #[source]
        source: gcp_auth::Error,
    },
    #[error("cannot set up the HTTP client for {endpoint}")]
    Client {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Secret Manager endpoint {endpoint:?} is not an http:// or https:// URL")]
    BadEndpoint { endpoint: String },
    #[error("cannot list the secrets of project {project} matching {filter:?}: {}", failure.reason)]
    List {
        project: String,
        filter: String,
        failure: Failure,
    },
    #[error("{}", fetch_message(project, failures))]
    Fetch {
        project: String,
        failures: Vec<FetchFailure>,
    },
    #[error(
        "secret {secret} is {size} bytes: {key}=<value> would be {} bytes, over the {MAX_ENV_STRING}-byte limit Linux sets on one environment variable (MAX_ARG_STRLEN), so no command could be started with it",
        key.len() + 1 + size
    )]
    TooLarge {
        secret: String,
        key: String,
        size: usize,
    },
    #[error(
        "the pull did not finish within {}: {waiting}",
        crate::text::secs(*total)
    )]
    Deadline {
        total: Duration,
        /// What was still outstanding, in words (names only).
        waiting: String,
    },
    #[error("secret {secret} (for {key}) is not UTF-8 text")]
    NotUtf8 { secret: String, key: String },
    #[error("secret {secret} (for {key}) cannot be written to .env.gcp: {why}")]
    Unportable {
        secret: String,
        key: String,
        why: Unportable,
    },
    #[error(
        "filter {filter:?} (line {line}) matches secret {secret}, whose derived name {key:?} is not a valid variable name"
    )]
    BadDerivedName {
        filter: String,
        line: usize,
        secret: String,
        key: String,
    },
    #[error(
        "{key} would come from both secret {first} and secret {second} (filters on lines {line_a} and {line_b})"
    )]
    DerivedClash {
        key: String,
        first: String,
        second: String,
        line_a: usize,
        line_b: usize,
    },
    #[error("{path} is tracked by git: secrets written there would be committed")]
    Tracked { path: PathBuf },
    #[error("{path} exists and was not written by vibedev")]
    Foreign { path: PathBuf },
    #[error("{path} exists and was not written by vibedev")]
    ForeignFiles { path: PathBuf },
    #[error("no folder for this machine's fingerprint key: neither XDG_STATE_HOME nor HOME is set")]
    NoStateDir,
    #[error("cannot use this machine's fingerprint key {path}: {why}")]
    FingerprintKey { path: PathBuf, why: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn fetch_message(project: &str, failures: &[FetchFailure]) -> String {
    match failures {
        [one] => format!(
            "cannot fetch secret {} (version {}, for {}) from project {project}: {}",
            one.secret,
            one.version,
            one.keys.join(", "),
            one.failure.reason
        ),
        many => {
            let mut s = format!(
                "cannot fetch {} secrets from project {project}:",
                many.len()
            );
            for f in many {
                s.push_str("\n  ");
                s.push_str(&f.to_string());
            }
            s
        }
    }
}

fn failure_hint(kind: FailureKind, project: &str, secret: &str) -> String {
    match kind {
        FailureKind::PermissionDenied => format!(
            "the account needs roles/secretmanager.secretAccessor on the secret: `gcloud secrets add-iam-policy-binding {secret} --project {project} --member user:YOU --role roles/secretmanager.secretAccessor`"
        ),
        FailureKind::NotFound => format!(
            "check the secret's name and version in the env template; `gcloud secrets list --project {project}` shows what exists"
        ),
        FailureKind::Disabled => format!(
            "enable the version (`gcloud secrets versions enable VERSION --secret {secret} --project {project}`) or pin another one with version=\"N\" in the env template"
        ),
        FailureKind::Unauthenticated => {
            "the credentials were refused: run `gcloud auth application-default login` again".into()
        }
        FailureKind::Unavailable | FailureKind::Network => {
            "Secret Manager did not answer in time; run the pull again (nothing was written)".into()
        }
        FailureKind::Checksum => {
            "run the pull again; if it persists, the stored version is damaged: add a new version"
                .into()
        }
        FailureKind::Invalid | FailureKind::BadResponse => {
            "check VIBEDEV_SECRET_MANAGER_ENDPOINT / [secrets] endpoint if you set one".into()
        }
    }
}

impl SecretsError {
    /// The next step for the user.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SecretsError::NoProject => "pass --project ID, set `project = \"ID\"` under [secrets] in vibedev.toml, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project ID`".into(),
            SecretsError::TemplateRead { .. } => "check `template = ...` under [secrets] in vibedev.toml (relative to the toml), or remove it to use the built-in template".into(),
            SecretsError::Template(_) => "fix the line shown; the built-in template's header (`templates/env.gcp.tmpl`) documents the syntax".into(),
            SecretsError::BadSetting { otherwise, .. } => format!("unset it to use {otherwise}"),
            SecretsError::DeadlineTooLong { .. } => "use a number of seconds from 0 to 3600, or remove it for the default of 60".into(),
            SecretsError::NoCredentials { .. } => "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file".into(),
            SecretsError::CredentialsFile { .. } => "point GOOGLE_APPLICATION_CREDENTIALS at a valid service-account key (JSON), or unset it and run `gcloud auth application-default login`".into(),
            SecretsError::Token { .. } | SecretsError::UserCredentials { .. } => "run `gcloud auth application-default login` again (the credentials may be revoked or expired)".into(),
            SecretsError::Metadata { .. } => "check the machine's service account and its scopes, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file".into(),
            SecretsError::KeyRejected { email, .. } => format!(
                "the key was probably deleted or disabled, or its service account removed or disabled: create a new key (`gcloud iam service-accounts keys create KEY.json --iam-account {email}`) and point GOOGLE_APPLICATION_CREDENTIALS at it"
            ),
            SecretsError::TokenEndpoint { .. } => "check the network (and the key's token_uri); nothing was written".into(),
            SecretsError::Client { .. } => return None,
            SecretsError::BadEndpoint { .. } => "set VIBEDEV_SECRET_MANAGER_ENDPOINT or [secrets] endpoint to a URL such as https://secretmanager.googleapis.com".into(),
            SecretsError::List { project, failure, .. } => failure_hint(failure.kind, project, "SECRET"),
            SecretsError::Fetch { project, failures } => match failures.first() {
                Some(f) => failure_hint(f.failure.kind, project, &f.secret),
                None => return None,
            },
            SecretsError::TooLarge { secret, key, .. } => format!(
                "write it to a file instead: {key}={{{{ secret \"{secret}\" file=\"{secret}\" }}}} in the env template puts the value in {ENV_FILE}.d/{secret} (mode 0600) and that file's path in {key}"
            ),
            SecretsError::NotUtf8 { secret, .. } => format!(
                "read it base64-encoded instead: KEY={{{{ secret \"{secret}\" encoding=\"base64\" }}}} in the env template"
            ),
            SecretsError::Unportable { secret, .. } => format!(
                "change the value in Secret Manager, or read it base64-encoded: KEY={{{{ secret \"{secret}\" encoding=\"base64\" }}}} in the env template"
            ),
            SecretsError::BadDerivedName { .. } => "add prefix=\"SOMETHING_\" to the `secrets` line, or name that secret explicitly with KEY={{ secret \"name\" }}".into(),
            SecretsError::DerivedClash { key, .. } => format!("write {key}={{{{ secret \"...\" }}}} explicitly to choose, or give one filter a prefix"),
            SecretsError::Tracked { path } => format!(
                "run `git rm --cached {}` and add it to .gitignore; or pass --allow-tracked if this repository is private to you",
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            ),
            SecretsError::Foreign { .. } => format!(
                "move it aside, or put the line `{}` at its top to keep its lines as local overrides",
                crate::envfile::OVERRIDES_MARKER
            ),
            SecretsError::ForeignFiles { path } => format!(
                "vibedev keeps the files of file=\"...\" secrets there and replaces the folder on every pull: move {} aside",
                path.display()
            ),
            SecretsError::Deadline { .. } => "nothing was written. Secret Manager or the network is slow: run the pull again, or allow more time with VIBEDEV_SECRETS_DEADLINE=SECONDS or `deadline = SECONDS` under [secrets] in vibedev.toml".into(),
            SecretsError::NoStateDir => "set HOME (or XDG_STATE_HOME) to a folder of your own".into(),
            SecretsError::FingerprintKey { path, .. } => format!(
                "remove {}: a new key is made, and the next `vibedev secrets pull` records fingerprints with it",
                path.display()
            ),
            SecretsError::Read { .. } => "check the file's permissions".into(),
            SecretsError::Write { .. } => "check the folder is writable; the old file is unchanged".into(),
        })
    }
}

/// One variable of the pull's result.
#[derive(Debug, Clone)]
enum Planned {
    Literal {
        key: String,
        value: String,
    },
    Secret {
        key: String,
        secret: String,
        version: String,
        encoding: Encoding,
        file: Option<String>,
    },
}

/// What a pull produced: the `KEY=value` lines (values quoted), the files to write into the
/// files folder, and what was fetched.
#[derive(Debug, Default)]
pub struct Pulled {
    pub lines: Vec<(String, String)>,
    /// `file="NAME"` secrets: the file name and the bytes it holds.
    pub files: Vec<(String, SecretBytes)>,
    /// Secret versions fetched (each once, however many keys use it).
    pub fetched: usize,
    /// Secrets whose fetch took [`SLOW`] or longer, slowest first.
    pub slow: Vec<(String, Duration)>,
    /// Each secret variable's version and fingerprint, in the order of `lines`.
    pub records: Vec<records::Record>,
}

/// Fetches what the template asks for and renders every line; fails as a whole if any secret
/// cannot be fetched or written. `files_dir` is where `file="NAME"` values will be written
/// (their variables hold `files_dir/NAME`).
pub async fn pull(
    template: &Template,
    client: &Client,
    files_dir: &Path,
    machine_key: &records::MachineKey,
    report: &Reporter,
    deadline: Deadline,
) -> Result<Pulled, SecretsError> {
    let planned = tokio::time::timeout_at(deadline.at, plan(template, client, report))
        .await
        .map_err(|_| SecretsError::Deadline {
            total: deadline.total,
            waiting: "still listing the secrets the template's filters match".into(),
        })??;
    let mut unique: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut keys_of: HashMap<usize, Vec<String>> = HashMap::new();
    for p in &planned {
        if let Planned::Secret {
            key,
            secret,
            version,
            ..
        } = p
        {
            let id = (secret.clone(), version.clone());
            let i = *index.entry(id.clone()).or_insert_with(|| {
                unique.push(id);
                unique.len() - 1
            });
            keys_of.entry(i).or_default().push(key.clone());
        }
    }
    report(Event::Fetching {
        secrets: unique.len(),
    });
    let results = client.access_all(&unique, report, deadline.at).await;
    let pending: Vec<&str> = results
        .iter()
        .zip(&unique)
        .filter(|(r, _)| r.is_none())
        .map(|(_, (secret, _))| secret.as_str())
        .collect();
    if !pending.is_empty() {
        return Err(SecretsError::Deadline {
            total: deadline.total,
            waiting: format!(
                "{} of {} still pending: {}",
                pending.len(),
                crate::text::count(unique.len(), "secret", "secrets"),
                pending.join(", ")
            ),
        });
    }
    let mut failures = Vec::new();
    let mut values = Vec::with_capacity(results.len());
    let mut slow = Vec::new();
    for (i, result) in results.into_iter().flatten().enumerate() {
        match result {
            Ok(fetched) => {
                if fetched.elapsed >= SLOW {
                    slow.push((unique[i].0.clone(), fetched.elapsed));
                }
                values.push(Some((fetched.data, fetched.version)));
            }
            Err(failure) => {
                failures.push(FetchFailure {
                    secret: unique[i].0.clone(),
                    version: unique[i].1.clone(),
                    keys: keys_of.remove(&i).unwrap_or_default(),
                    failure,
                });
                values.push(None);
            }
        }
    }
    if !failures.is_empty() {
        return Err(SecretsError::Fetch {
            project: client.project().to_string(),
            failures,
        });
    }
    let mut lines = Vec::with_capacity(planned.len());
    let mut files = Vec::new();
    let mut records = Vec::new();
    for p in planned {
        match p {
            Planned::Literal { key, value } => lines.push((key, value)),
            Planned::Secret {
                key,
                secret,
                version,
                encoding,
                file,
            } => {
                let Some(Some((data, served))) = index
                    .get(&(secret.clone(), version))
                    .and_then(|&i| values.get(i))
                else {
                    continue;
                };
                let mut record = |delivered: &[u8]| {
                    records.push(records::Record {
                        key: key.clone(),
                        secret: secret.clone(),
                        version: served.clone(),
                        fingerprint: machine_key.fingerprint(&secret, delivered),
                    })
                };
                if let Some(name) = file {
                    let path = files_dir.join(&name);
                    let bytes = file_bytes(data, encoding);
                    record(&bytes);
                    files.push((name, SecretBytes::new(bytes)));
                    let shown = path.to_string_lossy().into_owned();
                    let quoted = quote_dotenv(&shown).map_err(|why| SecretsError::Unportable {
                        secret,
                        key: key.clone(),
                        why,
                    })?;
                    lines.push((key, quoted));
                    continue;
                }
                let value = render_value(data, encoding).map_err(|()| SecretsError::NotUtf8 {
                    secret: secret.clone(),
                    key: key.clone(),
                })?;
                record(value.as_bytes());
                // `KEY=value` and its NUL terminator must fit in one environment string.
                if key.len() + 1 + value.len() + 1 > MAX_ENV_STRING {
                    return Err(SecretsError::TooLarge {
                        secret,
                        key,
                        size: value.len(),
                    });
                }
                let quoted = quote_dotenv(&value).map_err(|why| SecretsError::Unportable {
                    secret,
                    key: key.clone(),
                    why,
                })?;
                lines.push((key, quoted));
            }
        }
    }
    slow.sort_by_key(|(_, took)| std::cmp::Reverse(*took));
    Ok(Pulled {
        lines,
        files,
        fetched: unique.len(),
        slow,
        records,
    })
}

/// The bytes a `file="..."` secret's file holds.
fn file_bytes(data: &SecretBytes, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Text => data.as_bytes().to_vec(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .encode(data.as_bytes())
            .into_bytes(),
    }
}

fn render_value(data: &SecretBytes, encoding: Encoding) -> Result<String, ()> {
    match encoding {
        Encoding::Text => std::str::from_utf8(data.as_bytes())
            .map(str::to_string)
            .map_err(|_| ()),
        Encoding::Base64 => Ok(base64::engine::general_purpose::STANDARD.encode(data.as_bytes())),
    }
}

/// The template's lines in order, with each filter expanded (sorted by derived name).
async fn plan(
    template: &Template,
    client: &Client,
    report: &Reporter,
) -> Result<Vec<Planned>, SecretsError> {
    let filters: Vec<&Entry> = template
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Filter { .. }))
        .collect();
    let listed = join_all(filters.iter().map(|e| async move {
        match e {
            Entry::Filter { filter, .. } => {
                client
                    .list(filter, report)
                    .await
                    .map_err(|failure| SecretsError::List {
                        project: client.project().to_string(),
                        filter: filter.clone(),
                        failure,
                    })
            }
            _ => Ok(Vec::new()),
        }
    }))
    .await;
    let mut listed = listed.into_iter();
    let explicit: Vec<&str> = template.explicit_keys();
    // Derived key -> (secret, version, encoding, line) of the filter that produced it.
    let mut derived: HashMap<String, (String, String, Encoding, usize)> = HashMap::new();
    let mut out = Vec::new();
    for entry in &template.entries {
        match entry {
            Entry::Literal { key, value, .. } => out.push(Planned::Literal {
                key: key.clone(),
                value: value.clone(),
            }),
            Entry::Secret {
                key,
                secret,
                version,
                encoding,
                file,
                ..
            } => out.push(Planned::Secret {
                key: key.clone(),
                secret: secret.clone(),
                version: version.clone(),
                encoding: *encoding,
                file: file.clone(),
            }),
            Entry::Filter {
                filter,
                prefix,
                version,
                encoding,
                line,
            } => {
                let ids = listed.next().unwrap_or(Ok(Vec::new()))?;
                let mut expanded = BTreeMap::new();
                for secret in ids {
                    let Some(key) = derived_key(prefix, &secret) else {
                        return Err(SecretsError::BadDerivedName {
                            filter: filter.clone(),
                            line: *line,
                            key: format!("{prefix}{}", secret.to_uppercase().replace('-', "_")),
                            secret,
                        });
                    };
                    if explicit.contains(&key.as_str()) {
                        report(Event::Shadowed { key, secret });
                        continue;
                    }
                    let this = (secret.clone(), version.clone(), *encoding, *line);
                    if let Some(prev) = derived.get(&key) {
                        if (&prev.0, &prev.1, prev.2) == (&this.0, &this.1, this.2) {
                            continue;
                        }
                        return Err(SecretsError::DerivedClash {
                            key,
                            first: prev.0.clone(),
                            second: secret,
                            line_a: prev.3,
                            line_b: *line,
                        });
                    }
                    derived.insert(key.clone(), this);
                    expanded.insert(
                        key.clone(),
                        Planned::Secret {
                            key,
                            secret,
                            version: version.clone(),
                            encoding: *encoding,
                            file: None,
                        },
                    );
                }
                out.extend(expanded.into_values());
            }
        }
    }
    Ok(out)
}

/// Keys added, changed and removed between two sets of variables (names only).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

pub fn diff(old: &[(String, String)], new: &[(String, String)]) -> Diff {
    let old_map: HashMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new_map: HashMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = Diff::default();
    for (k, v) in new {
        match old_map.get(k.as_str()) {
            None => d.added.push(k.clone()),
            Some(old_v) if old_v != v => d.changed.push(k.clone()),
            Some(_) => d.unchanged += 1,
        }
    }
    for (k, _) in old {
        if !new_map.contains_key(k.as_str()) {
            d.removed.push(k.clone());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn diff_names_added_changed_and_removed_keys() {
        let d = diff(
            &pairs(&[("A", "1"), ("B", "2"), ("C", "3")]),
            &pairs(&[("A", "1"), ("B", "x"), ("D", "4")]),
        );
        assert_eq!(d.added, ["D"]);
        assert_eq!(d.changed, ["B"]);
        assert_eq!(d.removed, ["C"]);
        assert_eq!(d.unchanged, 1);
    }

    #[test]
    fn secret_bytes_never_show_in_debug() {
        let s = format!("{:?}", SecretBytes::new(b"hunter2".to_vec()));
        assert_eq!(s, "SecretBytes(7 bytes)");
        let t = format!("{:?}", auth::AccessToken::new("ya29.secret".into()));
        assert!(!t.contains("ya29"));
    }

    #[test]
    fn values_render_as_text_or_base64() {
        let bytes = SecretBytes::new(vec![0xff, 0x00, b'a']);
        assert!(render_value(&bytes, Encoding::Text).is_err());
        assert_eq!(render_value(&bytes, Encoding::Base64).unwrap(), "/wBh");
    }
}
