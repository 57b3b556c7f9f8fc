//! `.env.gcp` against Secret Manager without showing a value: per variable of the template, in
//! sync, changed (with versions), missing, no access, disabled, or not pulled yet; and the
//! variables the template no longer has. Reads as a pull does, writes nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::Project;
use crate::envfile;

use super::client::{Failure, FailureKind, Fetched};
use super::records::{Header, MachineKey, Record};
use super::sync::{Settings, read_existing};
use super::template::Encoding;
use super::{ENV_FILE, FetchFailure, Planned, Reporter, SecretsError, file_bytes, render_value};

/// The role that lets an account read secret values.
pub const ACCESSOR_ROLE: &str = "roles/secretmanager.secretAccessor";

/// Where one variable stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    InSync {
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// Secret Manager serves another value than `.env.gcp` holds (for a literal line: the
    /// template's value differs).
    Changed {
        local_version: Option<String>,
        latest_version: Option<String>,
    },
    /// The value above the overrides marker is not the one the pull wrote.
    EditedLocally { version: String },
    /// The secret (or the pinned version) does not exist.
    Missing { version: String },
    /// The account may not read the secret.
    NoAccess { role: &'static str },
    /// The version pulled (or pinned) is disabled or destroyed; `latest_version` is what
    /// `latest` serves now, when known.
    Disabled {
        version: String,
        latest_version: Option<String>,
    },
    /// In the template, not in `.env.gcp` yet.
    NotPulled,
    /// In `.env.gcp` (above the marker), no longer in the template.
    NotInTemplate,
}

impl State {
    pub fn in_sync(&self) -> bool {
        matches!(self, State::InSync { .. })
    }

    /// One variable's state in words (names and version numbers only).
    pub fn describe(&self) -> String {
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        match self {
            State::InSync { version: Some(n) } => format!("in sync (version {n})"),
            State::InSync { version: None } => "in sync".into(),
            State::Changed {
                local_version: None,
                latest_version: None,
            } => "changed in the template".into(),
            State::Changed {
                local_version,
                latest_version,
            } => format!(
                "changed in Secret Manager: local {}, latest {}",
                v(local_version),
                v(latest_version)
            ),
            State::EditedLocally { version } => {
                format!("edited in {ENV_FILE} since the pull of version {version}")
            }
            State::Missing { version } if version == "latest" => "missing in Secret Manager".into(),
            State::Missing { version } => format!("version {version} missing in Secret Manager"),
            State::NoAccess { role } => format!("no access: ask for {role} on the secret"),
            State::Disabled {
                version,
                latest_version: Some(latest),
            } => format!("version {version} disabled or destroyed (latest now {latest})"),
            State::Disabled { version, .. } => format!("version {version} disabled or destroyed"),
            State::NotPulled => format!("not in {ENV_FILE} yet"),
            State::NotInTemplate => format!("in {ENV_FILE}, no longer in the template"),
        }
    }

    /// A stable one-word name (as in `--json`).
    pub fn name(&self) -> &'static str {
        match self {
            State::InSync { .. } => "in-sync",
            State::Changed { .. } => "changed",
            State::EditedLocally { .. } => "edited-locally",
            State::Missing { .. } => "missing",
            State::NoAccess { .. } => "no-access",
            State::Disabled { .. } => "disabled",
            State::NotPulled => "not-pulled",
            State::NotInTemplate => "not-in-template",
        }
    }
}

/// One variable of the template or of `.env.gcp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variable {
    pub key: String,
    /// The secret it comes from (`None` for a literal line or a variable only the file has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(flatten)]
    pub state: State,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct SecretsStatus {
    pub project: String,
    pub env_file: PathBuf,
    /// When the file was written (its header), if it exists.
    pub written: Option<chrono::DateTime<chrono::Utc>>,
    pub in_sync: bool,
    pub variables: Vec<Variable>,
}

/// Compares `.env.gcp` with what a pull would write now.
pub async fn diff_project(
    project: &Project,
    flag_project: Option<&str>,
    report: &Reporter,
) -> Result<SecretsStatus, SecretsError> {
    let settings = Settings::resolve(project, flag_project, report)?;
    let existing = read_existing(&settings.env_path)?;
    let header = Header::parse(&existing.managed);
    let local: HashMap<String, String> = existing.managed_vars().into_iter().collect();
    let machine_key = MachineKey::load_or_create()?;
    let comparable = header.key_id.as_deref() == Some(machine_key.id().as_str());
    let files_dir = envfile::write_target(&settings.env_path)
        .map(|t| envfile::files_dir(&t))
        .map_err(|source| SecretsError::Read {
            path: settings.env_path.clone(),
            source,
        })?;
    let client = settings.connect(report).await?;
    let deadline = settings.deadline;
    let planned = tokio::time::timeout_at(
        deadline.at,
        super::plan(&settings.template, &client, report),
    )
    .await
    .map_err(|_| SecretsError::Deadline {
        total: deadline.total,
        waiting: "still listing the secrets the template's filters match".into(),
    })??;

    let mut unique: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for p in &planned {
        if let Planned::Secret {
            secret, version, ..
        } = p
        {
            let id = (secret.clone(), version.clone());
            index.entry(id.clone()).or_insert_with(|| {
                unique.push(id);
                unique.len() - 1
            });
        }
    }
    report(super::Event::Fetching {
        secrets: unique.len(),
    });
    let results = client.access_all(&unique, report, deadline.at).await;
    report(super::Event::Done);
    let pending: Vec<&str> = results
        .iter()
        .zip(&unique)
        .filter(|(r, _)| r.is_none())
        .map(|(_, (secret, _))| secret.as_str())
        .collect();
    if !pending.is_empty() {
        return Err(SecretsError::Deadline {
            total: deadline.total,
            waiting: format!("{} still pending: {}", pending.len(), pending.join(", ")),
        });
    }
    let results: Vec<Result<Fetched, Failure>> = results.into_iter().flatten().collect();
    // Failures that say nothing about the secret (the network, the server) fail the diff.
    let failures: Vec<FetchFailure> = results
        .iter()
        .zip(&unique)
        .filter_map(|(r, (secret, version))| match r {
            Err(f)
                if !matches!(
                    f.kind,
                    FailureKind::PermissionDenied | FailureKind::NotFound | FailureKind::Disabled
                ) =>
            {
                Some(FetchFailure {
                    secret: secret.clone(),
                    version: version.clone(),
                    keys: Vec::new(),
                    failure: f.clone(),
                })
            }
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Err(SecretsError::Fetch {
            project: settings.gcp,
            failures,
        });
    }

    let mut variables = Vec::new();
    for p in &planned {
        let (key, secret, state) = match p {
            Planned::Literal { key, value } => {
                let state = match local.get(key) {
                    None => State::NotPulled,
                    // The template's text is what dotenv reads from `KEY=text`.
                    Some(v) if Some(v) == literal_value(key, value).as_ref() => {
                        State::InSync { version: None }
                    }
                    Some(_) => State::Changed {
                        local_version: None,
                        latest_version: None,
                    },
                };
                (key, None, state)
            }
            Planned::Secret {
                key,
                secret,
                version,
                encoding,
                file,
            } => {
                let result = index
                    .get(&(secret.clone(), version.clone()))
                    .and_then(|&i| results.get(i));
                let Some(result) = result else { continue };
                let record = header.record(key).filter(|r| r.secret == *secret);
                let state = match result {
                    Err(f) => failed_state(f.kind, version, record),
                    Ok(fetched) => {
                        let served = delivered(fetched, *encoding, file.is_some());
                        let held = match file {
                            Some(name) if local.contains_key(key) => {
                                std::fs::read(files_dir.join(name)).ok()
                            }
                            _ => local.get(key).map(|v| v.as_bytes().to_vec()),
                        };
                        compare(&Compared {
                            secret,
                            version_spec: version,
                            served_version: &fetched.version,
                            served: &served,
                            held: held.as_deref(),
                            record,
                            key: comparable.then_some(&machine_key),
                        })
                    }
                };
                (key, Some(secret.clone()), state)
            }
        };
        variables.push(Variable {
            key: key.clone(),
            secret,
            state,
        });
    }
    let mut extra: Vec<&String> = local
        .keys()
        .filter(|k| !variables.iter().any(|v| &v.key == *k))
        .collect();
    extra.sort();
    for key in extra {
        variables.push(Variable {
            key: key.clone(),
            secret: header.record(key).map(|r| r.secret.clone()),
            state: State::NotInTemplate,
        });
    }
    Ok(SecretsStatus {
        project: settings.gcp,
        env_file: settings.env_path,
        written: header.written,
        in_sync: variables.iter().all(|v| v.state.in_sync()),
        variables,
    })
}

/// The value a literal template line gives its key, as a dotenv reader reads `KEY=value`.
fn literal_value(key: &str, value: &str) -> Option<String> {
    envfile::read_vars(format!("{key}={value}\n").as_bytes())
        .into_iter()
        .next()
        .map(|(_, v)| v)
}

/// What the variable (or its file) holds when pulled from `fetched`.
fn delivered(fetched: &Fetched, encoding: Encoding, file: bool) -> Vec<u8> {
    if file {
        return file_bytes(&fetched.data, encoding);
    }
    render_value(&fetched.data, encoding)
        .map(String::into_bytes)
        .unwrap_or_else(|()| fetched.data.as_bytes().to_vec())
}

fn failed_state(kind: FailureKind, version: &str, record: Option<&Record>) -> State {
    match kind {
        FailureKind::PermissionDenied => State::NoAccess {
            role: ACCESSOR_ROLE,
        },
        FailureKind::Disabled => State::Disabled {
            version: match (version, record) {
                ("latest", Some(r)) => r.version.clone(),
                _ => version.to_string(),
            },
            latest_version: None,
        },
        _ => State::Missing {
            version: version.to_string(),
        },
    }
}

/// One fetched secret variable next to what `.env.gcp` holds and recorded.
struct Compared<'a> {
    secret: &'a str,
    /// As the template asks: `latest` or a number.
    version_spec: &'a str,
    served_version: &'a str,
    /// What a pull would write now.
    served: &'a [u8],
    /// What the file (or its secret file) holds; `None` when the key is not in it.
    held: Option<&'a [u8]>,
    record: Option<&'a Record>,
    /// The machine key, when the record's fingerprints were made with it.
    key: Option<&'a MachineKey>,
}

fn compare(c: &Compared) -> State {
    let Some(held) = c.held else {
        return State::NotPulled;
    };
    let in_sync = State::InSync {
        version: Some(c.served_version.to_string()),
    };
    let changed = |local: Option<&str>| State::Changed {
        local_version: local.map(str::to_string),
        latest_version: Some(c.served_version.to_string()),
    };
    let Some(record) = c.record else {
        // No record (a file from an older vibedev): the values alone decide.
        return if held == c.served {
            in_sync
        } else {
            changed(None)
        };
    };
    let number = |v: &str| v.parse::<u64>().ok();
    if c.version_spec == "latest"
        && let (Some(pulled), Some(now)) = (number(&record.version), number(c.served_version))
        && now < pulled
    {
        // Versions only grow: `latest` going back means the pulled one was disabled or destroyed.
        return State::Disabled {
            version: record.version.clone(),
            latest_version: Some(c.served_version.to_string()),
        };
    }
    if record.version != c.served_version {
        return changed(Some(&record.version));
    }
    match c.key {
        Some(key) => {
            if key.fingerprint(c.secret, c.served) != record.fingerprint {
                // Same number, another value: the secret was deleted and made again.
                changed(Some(&record.version))
            } else if key.fingerprint(c.secret, held) != record.fingerprint {
                State::EditedLocally {
                    version: record.version.clone(),
                }
            } else {
                in_sync
            }
        }
        // Fingerprints from another machine's key: compare the values themselves.
        None if held == c.served => in_sync,
        None => changed(Some(&record.version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &MachineKey, version: &str, value: &[u8]) -> Record {
        Record {
            key: "K".into(),
            secret: "s".into(),
            version: version.into(),
            fingerprint: key.fingerprint("s", value),
        }
    }

    fn state(
        spec: &str,
        served_version: &str,
        served: &[u8],
        held: Option<&[u8]>,
        rec: Option<&Record>,
        key: Option<&MachineKey>,
    ) -> State {
        compare(&Compared {
            secret: "s",
            version_spec: spec,
            served_version,
            served,
            held,
            record: rec,
            key,
        })
    }

    #[test]
    fn versions_and_fingerprints_decide_the_state() {
        let key = MachineKey::from_bytes([9; 32]);
        let r3 = record(&key, "3", b"old-value");
        let k = Some(&key);
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            state(
                "latest",
                "3",
                b"old-value",
                Some(b"old-value"),
                Some(&r3),
                k
            ),
            State::InSync { version: v("3") }
        );
        assert_eq!(
            state(
                "latest",
                "5",
                b"new-value",
                Some(b"old-value"),
                Some(&r3),
                k
            ),
            State::Changed {
                local_version: v("3"),
                latest_version: v("5")
            }
        );
        assert_eq!(
            state("latest", "2", b"older", Some(b"old-value"), Some(&r3), k),
            State::Disabled {
                version: "3".into(),
                latest_version: v("2")
            }
        );
        assert_eq!(
            state(
                "latest",
                "3",
                b"old-value",
                Some(b"hand-edit"),
                Some(&r3),
                k
            ),
            State::EditedLocally {
                version: "3".into()
            }
        );
        assert_eq!(
            state(
                "latest",
                "3",
                b"recreated",
                Some(b"old-value"),
                Some(&r3),
                k
            ),
            State::Changed {
                local_version: v("3"),
                latest_version: v("3")
            }
        );
        assert_eq!(
            state("latest", "3", b"x", None, Some(&r3), k),
            State::NotPulled
        );
        // Without a record, or with another machine's fingerprints, the values decide.
        assert_eq!(
            state("latest", "3", b"same", Some(b"same"), None, None),
            State::InSync { version: v("3") }
        );
        assert_eq!(
            state("latest", "3", b"new", Some(b"hand-edit"), Some(&r3), None),
            State::Changed {
                local_version: v("3"),
                latest_version: v("3")
            }
        );
    }

    #[test]
    fn failures_name_the_state_and_the_role() {
        assert_eq!(
            failed_state(FailureKind::PermissionDenied, "latest", None),
            State::NoAccess {
                role: ACCESSOR_ROLE
            }
        );
        assert_eq!(
            failed_state(FailureKind::NotFound, "latest", None),
            State::Missing {
                version: "latest".into()
            }
        );
        assert_eq!(
            failed_state(FailureKind::Disabled, "4", None),
            State::Disabled {
                version: "4".into(),
                latest_version: None
            }
        );
    }

    #[test]
    fn json_names_the_state_and_its_facts() {
        let v = Variable {
            key: "JWT_SECRET".into(),
            secret: Some("jwt-secret".into()),
            state: State::Changed {
                local_version: Some("3".into()),
                latest_version: Some("5".into()),
            },
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"key": "JWT_SECRET", "secret": "jwt-secret", "state": "changed", "local_version": "3", "latest_version": "5"})
        );
        assert_eq!(State::NotInTemplate.name(), "not-in-template");
    }
}
