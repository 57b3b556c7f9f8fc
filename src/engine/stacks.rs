//! Every vibedev stack on the engine, whatever its project: containers and volumes carrying
//! vibedev's project label, grouped by project, with the facts `vibedev ls` and `prune` show
//! (checkout label, state, published ports, start and stop times, volume sizes).

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder};
use chrono::{DateTime, Utc};

use super::{Engine, EngineError, LABEL_CHECKOUT, LABEL_PROJECT, LABEL_SERVICE};

/// One container of a stack.
#[derive(Debug, Clone)]
pub struct StackContainer {
    pub name: String,
    pub service: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    pub checkout: Option<String>,
    /// (host port, container port) pairs it publishes.
    pub ports: Vec<(u16, u16)>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One named volume of a stack.
#[derive(Debug, Clone)]
pub struct StackVolume {
    pub name: String,
    pub checkout: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// Bytes on disk, when the engine tells.
    pub size: Option<u64>,
}

/// What the engine holds for one project.
#[derive(Debug, Clone, Default)]
pub struct EngineStack {
    pub project: String,
    pub containers: Vec<StackContainer>,
    pub volumes: Vec<StackVolume>,
}

/// A time the engine wrote, unless it is its "never" (`0001-01-01T00:00:00Z`).
fn engine_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s?).ok()?.with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

impl Engine {
    /// Every project with a container or volume carrying vibedev's label, sorted by name.
    pub async fn vibedev_stacks(&self) -> Result<Vec<EngineStack>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_PROJECT.to_string()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("list containers", e))?;
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| EngineError::api("list volumes", e))?
            .volumes
            .unwrap_or_default();
        // Measured on this machine where the engine is local and its volume folders are
        // readable (fast); asked of the engine otherwise (which measures everything it holds).
        let local: Vec<(String, std::path::PathBuf)> = if self.is_local() {
            volumes
                .iter()
                .filter(|v| v.labels.contains_key(LABEL_PROJECT))
                .map(|v| (v.name.clone(), std::path::PathBuf::from(&v.mountpoint)))
                .collect()
        } else {
            Vec::new()
        };
        let mut sizes: HashMap<String, u64> = tokio::task::spawn_blocking(move || {
            local
                .into_iter()
                .filter_map(|(name, path)| Some((name, folder_size(&path)?)))
                .collect()
        })
        .await
        .unwrap_or_default();
        let unmeasured = volumes
            .iter()
            .any(|v| v.labels.contains_key(LABEL_PROJECT) && !sizes.contains_key(&v.name));
        if unmeasured {
            for (name, size) in self.volume_sizes().await {
                sizes.entry(name).or_insert(size);
            }
        }
        let mut stacks: BTreeMap<String, EngineStack> = BTreeMap::new();
        for c in containers {
            let labels = c.labels.clone().unwrap_or_default();
            let Some(project) = labels.get(LABEL_PROJECT) else {
                continue;
            };
            let id = c.id.clone().unwrap_or_default();
            let (started_at, finished_at) = match self.inspect_container(&id).await? {
                Some(i) => {
                    let state = i.state.as_ref();
                    (
                        engine_time(state.and_then(|s| s.started_at.as_deref())),
                        engine_time(state.and_then(|s| s.finished_at.as_deref())),
                    )
                }
                // Removed meanwhile.
                None => continue,
            };
            let container = StackContainer {
                name: c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                checkout: labels.get(LABEL_CHECKOUT).cloned(),
                ports: c
                    .ports
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| Some((p.public_port?, p.private_port)))
                    .collect(),
                started_at,
                finished_at,
            };
            stacks
                .entry(project.clone())
                .or_insert_with(|| EngineStack {
                    project: project.clone(),
                    ..Default::default()
                })
                .containers
                .push(container);
        }
        for v in volumes {
            let Some(project) = v.labels.get(LABEL_PROJECT).cloned() else {
                continue;
            };
            let volume = StackVolume {
                size: sizes.get(&v.name).copied(),
                checkout: v.labels.get(LABEL_CHECKOUT).cloned(),
                created_at: engine_time(v.created_at.as_deref()),
                name: v.name,
            };
            stacks
                .entry(project.clone())
                .or_insert_with(|| EngineStack {
                    project,
                    ..Default::default()
                })
                .volumes
                .push(volume);
        }
        Ok(stacks.into_values().collect())
    }

    /// Bytes each volume uses, as the engine's disk-usage endpoint reports them (best effort: an
    /// engine that does not answer gives no sizes). Asked directly: the API client's typed
    /// answer knows only the newest engines' layout, and Debian 12's Docker 20.10 uses the older.
    pub async fn volume_sizes(&self) -> HashMap<String, u64> {
        let version = self.docker.client_version();
        let path = format!(
            "/v{}.{}/system/df?type=volume",
            version.major_version, version.minor_version
        );
        let url = &self.endpoint.url;
        let (client, base) = if let Some(socket) = url.strip_prefix("unix://") {
            (
                reqwest::Client::builder()
                    .unix_socket(socket.to_string())
                    .build(),
                "http://localhost".to_string(),
            )
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            (reqwest::Client::builder().build(), format!("http://{rest}"))
        } else {
            return HashMap::new();
        };
        let Ok(client) = client else {
            return HashMap::new();
        };
        let request = client
            .get(format!("{base}{path}"))
            .timeout(std::time::Duration::from_secs(60));
        let Ok(response) = request.send().await else {
            return HashMap::new();
        };
        match response.json::<serde_json::Value>().await {
            Ok(json) => sizes_from_df(&json),
            Err(_) => HashMap::new(),
        }
    }
}

/// The bytes of the files under `path` (each hard-linked file once, symbolic links not
/// followed), as the engine measures a volume; `None` when it cannot be read.
fn folder_size(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut todo = vec![path.to_path_buf()];
    let mut first = true;
    while let Some(dir) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // The volume's own folder must be readable; a folder inside that is not is skipped.
            Err(_) if first => return None,
            Err(_) => continue,
        };
        first = false;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.is_file() && (meta.nlink() < 2 || seen.insert(meta.ino())) {
                total += meta.len();
            }
        }
    }
    Some(total)
}

/// Volume sizes from `/system/df`: `Volumes` (older engines) or `VolumeUsage.Items` (API 1.52+).
fn sizes_from_df(json: &serde_json::Value) -> HashMap<String, u64> {
    let items = json.get("Volumes").and_then(|v| v.as_array()).or_else(|| {
        json.pointer("/VolumeUsage/Items")
            .and_then(|v| v.as_array())
    });
    items
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v.get("Name")?.as_str()?.to_string();
            // -1: not computed (a volume of another driver).
            let size = v.pointer("/UsageData/Size")?.as_i64()?;
            Some((name, u64::try_from(size).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_sizes_are_read_from_either_layout() {
        let old = serde_json::json!({"Volumes": [
            {"Name": "a_pgdata", "UsageData": {"Size": 4096, "RefCount": 1}},
            {"Name": "b_data", "UsageData": {"Size": -1, "RefCount": 0}}
        ]});
        assert_eq!(
            sizes_from_df(&old),
            HashMap::from([("a_pgdata".to_string(), 4096)])
        );
        let new = serde_json::json!({"VolumeUsage": {"Items": [
            {"Name": "c", "UsageData": {"Size": 7}}
        ]}});
        assert_eq!(sizes_from_df(&new), HashMap::from([("c".to_string(), 7)]));
        assert!(sizes_from_df(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn a_folder_is_measured_by_its_files_and_a_missing_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("one"), vec![0u8; 100]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), vec![0u8; 23]).unwrap();
        std::fs::hard_link(dir.path().join("one"), dir.path().join("a/link")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("a/etc")).unwrap();
        assert_eq!(folder_size(dir.path()), Some(123));
        assert_eq!(folder_size(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_engines_never_is_no_time() {
        assert_eq!(engine_time(Some("0001-01-01T00:00:00Z")), None);
        assert!(engine_time(Some("2025-03-01T10:00:00.123456789Z")).is_some());
        assert_eq!(engine_time(None), None);
    }
}
