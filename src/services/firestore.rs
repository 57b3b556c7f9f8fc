//! The Firestore emulator over its REST API: reset (the emulator's documented endpoint), whether it
//! holds anything, seed documents read from `<collection>/<id>.json` files, snapshots (every
//! document of every collection and subcollection, with its typed fields), and a branch's own
//! project made as a copy of the default branch's, recorded by a mark in the emulator.

pub mod browse;

use std::path::Path;

use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value, json};

use futures_util::future::BoxFuture;

use super::seed::{SeedError, SeedEvent, SeedReporter, failure, succeeded, walk};
use super::{
    BranchData, CACHE_MOUNT, Counted, Emptied, FollowedBranch, ImageFacts, Launch, LaunchInput,
    SeedMode, SeedPaths, Seeded, ServiceKind, Settings, SnapshotIo, Store, StoreMark, WaitFor,
};
use crate::branches::{OnBranch, project_id};
use crate::config::BranchesConfig;
use crate::ready::describe_reqwest;

/// Google's Firestore emulator (the app's key-value documents).
pub struct Firestore;

impl ServiceKind for Firestore {
    fn name(&self) -> &'static str {
        "firestore"
    }

    /// A JVM: among the first to start.
    fn start_rank(&self, _fresh_data: bool) -> u8 {
        1
    }

    /// `GET /` answers `Ok` once the emulator serves requests.
    fn wait(&self) -> WaitFor {
        WaitFor::Http {
            paths: vec!["/".into()],
            body: Some("Ok".into()),
        }
    }

    /// Google's emulators image runs `gcloud emulators firestore start`: gcloud's Python, then
    /// the emulator's JVM. Where the image has no entrypoint and the command is that one (with
    /// flags this knows), the container starts the JVM directly instead, as gcloud would start
    /// it, with a class-data archive of this image kept in vibedev's cache volume; it runs the
    /// command itself when the image has no emulator jar or no `java`.
    fn launch(&self, image: &ImageFacts, service: &LaunchInput<'_>) -> Option<Launch> {
        let entrypoint = service.entrypoint.unwrap_or(&image.entrypoint);
        if !entrypoint.is_empty() {
            return None;
        }
        let command = service.command.unwrap_or(&image.cmd);
        let args = gcloud_start_args(command)?;
        let archive = archive_name(&image.id)?;
        let mut script_args = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            direct_start_script(&archive, &args),
            "vibedev-firestore".to_string(),
        ];
        script_args.extend(command.iter().cloned());
        let (entrypoint, command) = script_args.split_at(2);
        Some(Launch {
            entrypoint: Some(entrypoint.to_vec()),
            command: Some(command.to_vec()),
            env: Vec::new(),
            cache_target: Some(CACHE_MOUNT),
        })
    }

    fn launch_cache(
        &self,
        image: &ImageFacts,
        _service: &LaunchInput<'_>,
    ) -> Option<(String, &'static str)> {
        let archive = archive_name(&image.id)?;
        Some((
            format!("{CACHE_MOUNT}/{ARCHIVE_DIR}/{archive}"),
            "its JVM loads every class from the jar (about 1-2 s more on a small machine); the archive is written when the emulator first stops",
        ))
    }

    fn url(&self, store: &Store<'_>, _with_password: bool) -> String {
        store.base_url()
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        vec![(
            "FIRESTORE_EMULATOR_HOST".to_string(),
            format!("{}:{}", store.url_host(), store.port),
        )]
    }

    fn seed_name(&self) -> Option<&'static str> {
        Some("firestore")
    }

    fn seed_title(&self) -> &'static str {
        "Firestore"
    }

    fn seed_setting(&self) -> &'static str {
        "firestore_dir = \"seed/firestore\""
    }

    fn seed_folder<'a>(&self, seeds: &'a SeedPaths) -> Option<&'a std::path::Path> {
        seeds.firestore_dir.as_deref()
    }

    fn seed<'a>(
        &'a self,
        store: &'a Store<'a>,
        seeds: &'a SeedPaths,
        mode: SeedMode,
        report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Seeded>, SeedError>> {
        Box::pin(async move {
            let Some(dir) = &seeds.firestore_dir else {
                return Ok(None);
            };
            let client = super::seed::http_client();
            let base = store.base_url();
            if mode == SeedMode::IfEmpty
                && !is_empty(&client, &base, store.gcp_project)
                    .await
                    .map_err(|e| e.for_service(store.service))?
            {
                return Ok(None);
            }
            let count = seed(&client, &base, store.gcp_project, dir, report)
                .await
                .map_err(|e| e.for_service(store.service))?;
            Ok(Some(Seeded::Documents { count }))
        })
    }

    fn empty<'a>(
        &'a self,
        store: &'a Store<'a>,
        _reseed: Option<&'a SeedPaths>,
        _report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Emptied>, SeedError>> {
        Box::pin(async move {
            reset(
                &super::seed::http_client(),
                &store.base_url(),
                store.gcp_project,
            )
            .await
            .map_err(|e| e.for_service(store.service))?;
            Ok(Some(Emptied::Everything))
        })
    }

    /// `[branches] firestore`: the emulator keeps documents per project id, so a branch gets
    /// its own (see [`project_id`]), made by [`ServiceKind::ensure_branch`].
    fn follow_branch(
        &self,
        config: &BranchesConfig,
        settings: &mut Settings,
        gcp_project: &str,
        on: &OnBranch,
    ) -> Option<String> {
        if !config.firestore {
            return None;
        }
        let buckets = settings.buckets.clone();
        Some(follow_project(settings, gcp_project, on, buckets))
    }

    /// A branch's project is made the first time the branch is used, as a copy of the default
    /// branch's documents (see [`copy_for_branch`]).
    fn ensure_branch<'a>(
        &'a self,
        store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let Some(branch) = &store.settings.branch else {
                return Ok(Vec::new());
            };
            let client = super::seed::http_client();
            let made =
                copy_for_branch(&client, &store.base_url(), store.gcp_project, branch).await?;
            Ok(made.into_iter().collect())
        })
    }

    fn branch_data<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async move {
            if !config.firestore {
                return Ok(Vec::new());
            }
            let project = project_id(store.default_gcp_project(), slug);
            let client = super::seed::http_client();
            let base = store.base_url();
            let docs = all_documents(&client, &base, &project).await?;
            if docs.is_empty() && read_mark(&client, &base, &project).await?.is_none() {
                return Ok(Vec::new());
            }
            Ok(vec![BranchData {
                what: format!("Firestore project {project}"),
                count: Counted::new(docs.len() as u64, "documents"),
                bytes: None,
            }])
        })
    }

    /// The branches whose project the emulator's marks record as made from this stack's.
    fn branch_marks<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
    ) -> BoxFuture<'a, Result<Vec<StoreMark>, String>> {
        Box::pin(async move {
            if !config.firestore {
                return Ok(Vec::new());
            }
            let client = super::seed::http_client();
            let marks = list_marks(&client, &store.base_url()).await?;
            Ok(marks
                .into_iter()
                .filter(|(_, m)| m.source == store.default_gcp_project())
                .map(|(_, m)| StoreMark {
                    slug: m.slug,
                    branch: m.branch,
                })
                .collect())
        })
    }

    /// Deletes the branch's documents through the emulator's reset endpoint for its project id,
    /// and then its mark.
    fn remove_branch<'a>(
        &'a self,
        config: &'a BranchesConfig,
        store: &'a Store<'a>,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BranchData>, String>> {
        Box::pin(async move {
            let held = self.branch_data(config, store, slug).await?;
            if held.is_empty() {
                return Ok(held);
            }
            let project = project_id(store.default_gcp_project(), slug);
            let client = super::seed::http_client();
            let base = store.base_url();
            reset(&client, &base, &project)
                .await
                .map_err(SeedError::into_message)?;
            delete_mark(&client, &base, &project).await?;
            Ok(held)
        })
    }

    fn snapshot_save<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async move {
            let client = super::seed::http_client();
            let docs = all_documents(&client, &store.base_url(), store.gcp_project).await?;
            super::snapshot::write(io.dir, DOCUMENTS_FILE, &encode_documents(&docs)?)?;
            Ok(Some(Counted::new(docs.len() as u64, "documents")))
        })
    }

    /// One commit when the documents fit in one; larger restores keep the documents aside and
    /// write them back when they fail or are stopped (see [`replace_documents`]).
    fn snapshot_restore_in_one_step(&self) -> bool {
        true
    }

    /// A restore too big for one commit stopped midway: the documents it held are written back.
    fn snapshot_abandon<'a>(&'a self, store: &'a Store<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = undo_restore(store).await;
        })
    }

    fn snapshot_restore<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        Box::pin(async move {
            let text = super::snapshot::read(io.dir, DOCUMENTS_FILE)?;
            let docs = parse_documents(&text)?;
            let client = super::seed::http_client();
            replace_documents(
                &client,
                &store.base_url(),
                store.gcp_project,
                &docs,
                undo_file(store).as_deref(),
            )
            .await?;
            Ok(Counted::new(docs.len() as u64, "documents"))
        })
    }
}

/// The emulator's jar in Google's images (the Debian package google-cloud-cli-firestore-emulator).
const EMULATOR_JAR: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";

/// The folder of the class-data archives in vibedev's cache volume.
const ARCHIVE_DIR: &str = "firestore";

/// The JVM's settings for a local emulator: the quick compiler only and the serial collector,
/// less CPU at start-up on a small machine (the same for making the archive and using it).
const JVM_FLAGS: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

/// The archive's file name for an image id (`sha256:<hex>`): one archive per image.
fn archive_name(image_id: &str) -> Option<String> {
    let hex = image_id.rsplit(':').next()?;
    (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("{hex}.jsa"))
}

/// The emulator's own arguments for `gcloud [beta] emulators firestore start [flags]` (as gcloud
/// passes them to the emulator), or `None` for any other command or a flag this does not know.
fn gcloud_start_args(command: &[String]) -> Option<Vec<String>> {
    let (first, rest) = command.split_first()?;
    if first != "gcloud" && !first.ends_with("/gcloud") {
        return None;
    }
    let rest = match rest.first().map(String::as_str) {
        Some("beta") => &rest[1..],
        _ => rest,
    };
    let ["emulators", "firestore", "start"] = rest
        .get(..3)?
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let mut host_port: Option<String> = None;
    let mut mode = "firestore-native".to_string();
    let mut extra = Vec::new();
    let mut flags = rest[3..].iter();
    while let Some(flag) = flags.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| flags.next().cloned());
        match name {
            "--host-port" => host_port = Some(value()?),
            "--database-mode" => mode = value()?,
            "--use-firestore-in-datastore-mode" if inline.is_none() => {
                mode = "datastore-mode".into()
            }
            "--rules" | "--import-data" | "--export-on-exit" => {
                extra.push(format!("{name}={}", value()?))
            }
            // gcloud's own flags, not passed to the emulator
            "--quiet" | "-q" if inline.is_none() => {}
            "--project" | "--verbosity" => {
                value()?;
            }
            _ => return None,
        }
    }
    // Without --host-port gcloud picks the address from its own configuration.
    let (host, port) = split_host_port(&host_port?)?;
    let mut args = vec![
        "start".to_string(),
        format!("--host={host}"),
        format!("--port={port}"),
        format!("--database-mode={mode}"),
    ];
    args.extend(extra);
    Some(args)
}

/// `host:port` as gcloud reads `--host-port` (`[v6]:port`; an empty part takes gcloud's default).
fn split_host_port(s: &str) -> Option<(String, String)> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (host, rest.strip_prefix(':').unwrap_or(rest))
        }
        None => s.rsplit_once(':').unwrap_or((s, "")),
    };
    let host = if host.is_empty() { "localhost" } else { host };
    let port = if port.is_empty() { "8080" } else { port };
    port.parse::<u16>().ok()?;
    Some((host.to_string(), port.to_string()))
}

/// A string as one word of a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The container's `sh -c` script (its arguments: the service's own command, run as it is when
/// the image has no emulator jar or no `java`). A new archive (written by the JVM when it stops)
/// is checked once by a JVM that must map it before it is used: a damaged one would crash the
/// emulator's JVM at start, so it is deleted with a warning and made again.
fn direct_start_script(archive: &str, emulator_args: &[String]) -> String {
    let args: Vec<String> = emulator_args.iter().map(|a| sh_quote(a)).collect();
    format!(
        r#"jar={jar}
java="${{JAVA:-$(command -v java)}}"
if [ ! -r "$jar" ] || [ -z "$java" ]; then exec "$@"; fi
dir={mount}/{dir}; a="$dir/{archive}"; set --
if mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; then
  if [ ! -s "$a" ] && [ -s "$a.new" ]; then
    if "$java" -Xshare:on -XX:SharedArchiveFile="$a.new" {flags} -cp "$jar" -version >/dev/null 2>&1; then
      mv -f "$a.new" "$a"
    else
      rm -f "$a.new"
      echo "vibedev: warning: the emulator's class-data archive $a.new is unusable: starting without it (a new one is written when the emulator stops)" >&2
    fi
  fi
  if [ -s "$a" ]; then set -- -XX:SharedArchiveFile="$a"; else set -- -XX:ArchiveClassesAtExit="$a.new"; fi
else
  echo "vibedev: warning: cannot write to $dir: starting without a class-data archive" >&2
fi
exec "$java" -Duser.language=en {flags} "$@" -cp "$jar" com.google.cloud.datastore.emulator.firestore.CloudFirestore {args}
"#,
        jar = sh_quote(EMULATOR_JAR),
        mount = CACHE_MOUNT,
        dir = ARCHIVE_DIR,
        flags = JVM_FLAGS,
        args = args.join(" "),
    )
}

/// The snapshot's file: one document per line.
const DOCUMENTS_FILE: &str = "documents.jsonl";

/// Documents per commit.
const PAGE: usize = 500;

/// Documents per page of the query that lists them all: each page is a query of its own that
/// the emulator starts from the name the last one ended at, so fewer pages are faster (5,000
/// documents: 0.65 s in pages of 500, 0.36 s in one).
const LIST_PAGE: usize = 10_000;

/// A kind that follows a branch through the project id (`[branches] firestore`): records the
/// branch on `settings` and gives the branch's project id.
pub(super) fn follow_project(
    settings: &mut Settings,
    gcp_project: &str,
    on: &OnBranch,
    default_buckets: Vec<String>,
) -> String {
    settings.branch = Some(FollowedBranch {
        branch: on.branch.clone(),
        slug: on.slug.clone(),
        default_project: gcp_project.to_string(),
        default_buckets,
    });
    project_id(gcp_project, &on.slug)
}

/// vibedev's own project id in the emulator, which holds one mark per branch project made: no
/// app uses it, and it has no `-`, so it is never a branch's project id (`<id>-<slug>`). Kept in
/// the emulator's memory, the marks go when the documents they describe go (a new container).
pub const MARKS_PROJECT: &str = "vibedevbranches";

/// The marks' collection; a mark's id is the branch's project id.
const MARKS: &str = "branches";

/// Where a branch's copy is: started (and not finished: a first use was interrupted), or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkState {
    Copying,
    Made,
}

/// What the emulator records about a branch's project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The git branch.
    pub branch: String,
    pub slug: String,
    /// The default branch's project id, which the copy was made from.
    pub source: String,
    pub state: MarkState,
}

impl Mark {
    /// The mark as Firestore fields.
    fn fields(&self) -> Value {
        let state = match self.state {
            MarkState::Copying => "copying",
            MarkState::Made => "made",
        };
        fields(Map::from_iter([
            ("branch".to_string(), json!(self.branch)),
            ("slug".to_string(), json!(self.slug)),
            ("source".to_string(), json!(self.source)),
            ("state".to_string(), json!(state)),
        ]))
    }

    /// A mark from Firestore fields; `None` for a document that is not one.
    fn parse(fields: &Value) -> Option<Mark> {
        let text = |k: &str| Some(fields.get(k)?.get("stringValue")?.as_str()?.to_string());
        let state = match text("state")?.as_str() {
            "copying" => MarkState::Copying,
            "made" => MarkState::Made,
            _ => return None,
        };
        Some(Mark {
            branch: text("branch")?,
            slug: text("slug")?,
            source: text("source")?,
            state,
        })
    }
}

fn mark_url(base: &str, project: &str) -> String {
    format!(
        "{}/{MARKS}/{}",
        documents_root(base, MARKS_PROJECT),
        super::encode(project)
    )
}

/// The mark of the branch project `project`, if the emulator holds one.
async fn read_mark(
    client: &reqwest::Client,
    base: &str,
    project: &str,
) -> Result<Option<Mark>, String> {
    let resp = client
        .get(mark_url(base, project))
        .header(reqwest::header::AUTHORIZATION, OWNER)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if resp.status().as_u16() == 404 {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(failure("reading the branch's mark", resp).await);
    }
    let doc: Value = resp.json().await.map_err(|e| describe_reqwest(&e))?;
    Ok(doc.get("fields").and_then(Mark::parse))
}

async fn write_mark(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    mark: &Mark,
) -> Result<(), String> {
    let resp = client
        .patch(mark_url(base, project))
        .header(reqwest::header::AUTHORIZATION, OWNER)
        .json(&json!({ "fields": mark.fields() }))
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    succeeded("recording the branch's mark", resp).await
}

async fn delete_mark(client: &reqwest::Client, base: &str, project: &str) -> Result<(), String> {
    let resp = client
        .delete(mark_url(base, project))
        .header(reqwest::header::AUTHORIZATION, OWNER)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    if resp.status().is_success() || resp.status().as_u16() == 404 {
        Ok(())
    } else {
        Err(failure("deleting the branch's mark", resp).await)
    }
}

/// Every mark the emulator holds, each with its branch project id.
async fn list_marks(client: &reqwest::Client, base: &str) -> Result<Vec<(String, Mark)>, String> {
    let docs = all_documents(client, base, MARKS_PROJECT).await?;
    Ok(docs
        .into_iter()
        .filter_map(|d| {
            let project = d.path.strip_prefix(&format!("{MARKS}/"))?;
            (!project.contains('/')).then_some(())?;
            Some((project.to_string(), Mark::parse(&d.fields)?))
        })
        .collect())
}

/// Makes the branch's project `project` on the branch's first use: a copy of every document of
/// the default branch's project, references pointed at the copy. A mark records it first as
/// being copied and then as made, so the copy is made once: emptied later, the project stays
/// empty. A copy whose mark says it was never finished (an interrupted first use) is made again
/// from the start: its documents are deleted and copied anew. A project holding documents
/// without a mark (made before marks were kept) is kept as it is and marked. Returns what it
/// made.
async fn copy_for_branch(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    branch: &FollowedBranch,
) -> Result<Option<String>, String> {
    let source = &branch.default_project;
    let mut mark = Mark {
        branch: branch.branch.clone(),
        slug: branch.slug.clone(),
        source: source.clone(),
        state: MarkState::Copying,
    };
    let again = match read_mark(client, base, project).await? {
        Some(m) if m.state == MarkState::Made => return Ok(None),
        Some(_) => true,
        None => {
            let empty = is_empty(client, base, project)
                .await
                .map_err(SeedError::into_message)?;
            if !empty {
                mark.state = MarkState::Made;
                write_mark(client, base, project, &mark).await?;
                return Ok(None);
            }
            false
        }
    };
    write_mark(client, base, project, &mark).await?;
    if again {
        reset(client, base, project)
            .await
            .map_err(SeedError::into_message)?;
    }
    let mut docs = all_documents(client, base, source).await?;
    for doc in &mut docs {
        repoint_references(&mut doc.fields, source, project);
    }
    write_documents(client, base, project, &docs).await?;
    mark.state = MarkState::Made;
    write_mark(client, base, project, &mark).await?;
    let count = Counted::new(docs.len() as u64, "documents");
    Ok(Some(if again {
        format!(
            "Firestore project {project} anew (a copy of {source}: {count}; the copy begun before was interrupted)"
        )
    } else {
        format!("Firestore project {project} (a copy of {source}: {count})")
    }))
}

/// Points every reference to a document of project `from` (in `fields`, arrays and maps
/// included) at the same document of project `to`.
fn repoint_references(fields: &mut Value, from: &str, to: &str) {
    let prefix = format!("projects/{from}/databases/");
    match fields {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "referenceValue"
                    && let Value::String(name) = value
                    && let Some(rest) = name.strip_prefix(&prefix)
                {
                    *name = format!("projects/{to}/databases/{rest}");
                } else {
                    repoint_references(value, from, to);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                repoint_references(item, from, to);
            }
        }
        _ => {}
    }
}

/// One document as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedDocument {
    /// `collection/id[/subcollection/id...]`.
    pub path: String,
    /// Firestore's typed `fields`, as the REST API gives them.
    pub fields: Value,
}

/// Every document under the project, subcollections included: one query over all collections
/// (`allDescendants` without a collection id), in name order, page by page.
async fn all_documents(
    client: &reqwest::Client,
    base: &str,
    project: &str,
) -> Result<Vec<SavedDocument>, String> {
    let root = documents_root(base, project);
    let prefix = format!("projects/{project}/databases/(default)/documents/");
    let mut docs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = json!({
            "from": [{ "allDescendants": true }],
            "orderBy": [{ "field": { "fieldPath": "__name__" }, "direction": "ASCENDING" }],
            "limit": LIST_PAGE,
        });
        if let Some(name) = &after {
            query["startAt"] = json!({ "values": [{ "referenceValue": name }], "before": false });
        }
        let resp = client
            .post(format!("{root}:runQuery"))
            .header(reqwest::header::AUTHORIZATION, OWNER)
            .json(&json!({ "structuredQuery": query }))
            .send()
            .await
            .map_err(|e| describe_reqwest(&e))?;
        if !resp.status().is_success() {
            return Err(failure("listing documents", resp).await);
        }
        let page: Vec<Value> = resp.json().await.map_err(|e| describe_reqwest(&e))?;
        let mut count = 0;
        for item in page {
            let Some(doc) = item.get("document") else {
                continue;
            };
            let Some(name) = doc.get("name").and_then(Value::as_str) else {
                continue;
            };
            count += 1;
            after = Some(name.to_string());
            let Some(path) = name.strip_prefix(&prefix) else {
                return Err(format!("the emulator named a document {name:?}"));
            };
            docs.push(SavedDocument {
                path: path.to_string(),
                fields: doc.get("fields").cloned().unwrap_or_else(|| json!({})),
            });
        }
        if count < LIST_PAGE {
            return Ok(docs);
        }
    }
}

/// Reads a snapshot's documents; a line that is not one is refused with its number.
fn parse_documents(text: &[u8]) -> Result<Vec<SavedDocument>, String> {
    text.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| {
                format!(
                    "{DOCUMENTS_FILE} in the snapshot is damaged at line {}: {e}",
                    i + 1
                )
            })
        })
        .collect()
}

/// The largest commit body sent as one: the emulator refuses a request over 4 MiB (its gRPC
/// message limit), and the JSON body is at least as big as the message it becomes.
const ONE_COMMIT_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// Makes `project` hold exactly `docs`. When every change fits in one commit (the usual size of
/// local data), it is one: the snapshot's documents written whole and the others deleted, all
/// or nothing, so a failure, Ctrl-C or a killed process leaves the documents as they were.
/// Larger sets are written in batches after emptying the project; a failure then writes the
/// documents it held back.
async fn replace_documents(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    docs: &[SavedDocument],
    undo: Option<&std::path::Path>,
) -> Result<(), String> {
    // What a killed earlier restore kept aside is not this one's to write back.
    if let Some(path) = undo {
        let _ = std::fs::remove_file(path);
    }
    let held = all_documents(client, base, project).await?;
    let prefix = format!("projects/{project}/databases/(default)/documents/");
    let keep: std::collections::HashSet<&str> = docs.iter().map(|d| d.path.as_str()).collect();
    let writes: Vec<Value> = docs
        .iter()
        .map(|d| json!({ "update": { "name": format!("{prefix}{}", d.path), "fields": d.fields } }))
        .chain(
            held.iter()
                .filter(|d| !keep.contains(d.path.as_str()))
                .map(|d| json!({ "delete": format!("{prefix}{}", d.path) })),
        )
        .collect();
    let body = serde_json::to_vec(&json!({ "writes": writes }))
        .map_err(|e| format!("cannot encode the documents: {e}"))?;
    if body.len() <= ONE_COMMIT_BYTES {
        let resp = client
            .post(format!("{}:commit", documents_root(base, project)))
            .header(reqwest::header::AUTHORIZATION, OWNER)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe_reqwest(&e))?;
        // Too big for the emulator after all (429 RESOURCE_EXHAUSTED): nothing was written.
        if resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return succeeded("writing documents", resp).await;
        }
    }
    // Kept aside first, so that Ctrl-C midway writes them back too (`snapshot_abandon`).
    if let Some(path) = undo {
        super::snapshot::write_aside(path, &encode_documents(&held)?)?;
    }
    let api = SeedError::into_message;
    let written = match reset(client, base, project).await.map_err(api) {
        Ok(()) => write_documents(client, base, project, docs).await,
        Err(e) => Err(e),
    };
    let Err(why) = written else {
        if let Some(path) = undo {
            let _ = std::fs::remove_file(path);
        }
        return Ok(());
    };
    let back = write_back(client, base, project, &held).await;
    if let Some(path) = undo
        && back.is_ok()
    {
        let _ = std::fs::remove_file(path);
    }
    Err(match back {
        Ok(()) => format!(
            "{why} (the {} documents it held were written back)",
            held.len()
        ),
        Err(e) => format!(
            "{why}; writing back the {} documents it held failed too: {e}; it holds part of the snapshot",
            held.len()
        ),
    })
}

/// The file where a restore too big for one commit keeps the documents the project held (see
/// [`super::snapshot::undo_path`]).
fn undo_file(store: &Store<'_>) -> Option<std::path::PathBuf> {
    super::snapshot::undo_path(store, &format!("firestore-{}.jsonl", store.gcp_project))
}

/// Documents as a snapshot's file holds them: one JSON object a line.
fn encode_documents(docs: &[SavedDocument]) -> Result<Vec<u8>, String> {
    let mut text = Vec::new();
    for doc in docs {
        serde_json::to_writer(&mut text, doc)
            .map_err(|e| format!("cannot encode {}: {e}", doc.path))?;
        text.push(b'\n');
    }
    Ok(text)
}

/// Makes `project` hold `docs` again: emptied, then written.
async fn write_back(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    docs: &[SavedDocument],
) -> Result<(), String> {
    reset(client, base, project)
        .await
        .map_err(SeedError::into_message)?;
    write_documents(client, base, project, docs).await
}

/// After a restore too big for one commit was stopped midway: writes back the documents it kept
/// aside, then forgets them. Nothing to do when it kept none.
async fn undo_restore(store: &Store<'_>) -> Result<(), String> {
    let base = store.base_url();
    let Some(path) = undo_file(store) else {
        return Ok(());
    };
    let Ok(text) = std::fs::read(&path) else {
        return Ok(());
    };
    let docs = parse_documents(&text)?;
    let client = super::seed::http_client();
    // A commit the stopped restore had sent may still land after the write-back: written back
    // again until the project holds exactly the kept documents.
    let mut wanted: Vec<(&str, &Value)> =
        docs.iter().map(|d| (d.path.as_str(), &d.fields)).collect();
    wanted.sort_by_key(|(path, _)| *path);
    for _ in 0..10 {
        write_back(&client, &base, store.gcp_project, &docs).await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = all_documents(&client, &base, store.gcp_project).await?;
        let mut held: Vec<(&str, &Value)> =
            now.iter().map(|d| (d.path.as_str(), &d.fields)).collect();
        held.sort_by_key(|(path, _)| *path);
        if held == wanted {
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
    }
    Err("the documents kept aside could not be written back".into())
}

/// Writes documents in batches (one commit each), several batches at once.
async fn write_documents(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    docs: &[SavedDocument],
) -> Result<(), String> {
    let root = documents_root(base, project);
    let prefix = format!("projects/{project}/databases/(default)/documents/");
    let batches: Vec<Value> = docs
        .chunks(PAGE)
        .map(|batch| {
            let writes: Vec<Value> = batch
                .iter()
                .map(|d| json!({ "update": { "name": format!("{prefix}{}", d.path), "fields": d.fields } }))
                .collect();
            json!({ "writes": writes })
        })
        .collect();
    let url = format!("{root}:commit");
    let results: Vec<Result<(), String>> = stream::iter(batches)
        .map(|body: Value| {
            let url = url.clone();
            async move {
                let resp = client
                    .post(url)
                    .header(reqwest::header::AUTHORIZATION, OWNER)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| describe_reqwest(&e))?;
                succeeded("writing documents", resp).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The emulator treats this bearer token as an administrator that security rules do not apply to.
const OWNER: &str = "Bearer owner";

/// Requests in flight at once while seeding.
const CONCURRENCY: usize = 16;

/// One seed document.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedDocument {
    /// `collection/id` (or deeper: `collection/id/sub/id`).
    pub path: String,
    /// Firestore `fields`, converted from the file's JSON object.
    pub fields: Value,
}

fn documents_root(base: &str, project: &str) -> String {
    format!(
        "{}/v1/projects/{project}/databases/(default)/documents",
        base.trim_end_matches('/')
    )
}

/// Deletes every document (`DELETE /emulator/v1/projects/{p}/databases/(default)/documents`).
pub async fn reset(client: &reqwest::Client, base: &str, project: &str) -> Result<(), SeedError> {
    let resp = client
        .delete(format!(
            "{}/emulator/v1/projects/{project}/databases/(default)/documents",
            base.trim_end_matches('/')
        ))
        .send()
        .await
        .map_err(|e| SeedError::api("firestore", describe_reqwest(&e)))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(SeedError::api(
            "firestore",
            failure("resetting the emulator", resp).await,
        ))
    }
}

/// True when the emulator holds no collection for `project`.
pub async fn is_empty(
    client: &reqwest::Client,
    base: &str,
    project: &str,
) -> Result<bool, SeedError> {
    let resp = client
        .post(format!(
            "{}:listCollectionIds",
            documents_root(base, project)
        ))
        .header(reqwest::header::AUTHORIZATION, OWNER)
        .json(&json!({ "pageSize": 1 }))
        .send()
        .await
        .map_err(|e| SeedError::api("firestore", describe_reqwest(&e)))?;
    if !resp.status().is_success() {
        return Err(SeedError::api(
            "firestore",
            failure("listing collections", resp).await,
        ));
    }
    let body: Value = resp
        .json()
        .await
        .map_err(|e| SeedError::api("firestore", describe_reqwest(&e)))?;
    Ok(body
        .get("collectionIds")
        .and_then(|c| c.as_array())
        .is_none_or(|c| c.is_empty()))
}

/// Reads `dir`: every `<collection>/<id>.json` (or `<collection>/<id>/<sub>/<id>.json`) holding
/// one JSON object.
pub fn read_documents(dir: &Path) -> Result<Vec<SeedDocument>, SeedError> {
    let mut docs = Vec::new();
    for (rel, path) in walk(dir)? {
        let invalid = |message: String| SeedError::Invalid {
            path: path.clone(),
            message,
        };
        let Some(doc_path) = rel.strip_suffix(".json") else {
            return Err(invalid(
                "only `<collection>/<id>.json` documents belong in the Firestore seed folder"
                    .into(),
            ));
        };
        if doc_path.split('/').count() % 2 != 0 {
            return Err(invalid(format!(
                "a document's path must be <collection>/<id> (optionally /<subcollection>/<id>), not {doc_path:?}"
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| SeedError::Read {
            path: path.clone(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("line {} column {}: {e}", e.line(), e.column())))?;
        let Value::Object(map) = value else {
            return Err(invalid("a document must be a JSON object".into()));
        };
        docs.push(SeedDocument {
            path: doc_path.to_string(),
            fields: fields(map),
        });
    }
    Ok(docs)
}

/// A JSON object as Firestore `fields`.
pub fn fields(map: Map<String, Value>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, to_value(v))).collect())
}

/// A JSON value as a Firestore `Value`: strings, integers, doubles, booleans, null, arrays, maps.
pub fn to_value(v: Value) -> Value {
    match v {
        Value::Null => json!({ "nullValue": null }),
        Value::Bool(b) => json!({ "booleanValue": b }),
        Value::Number(n) => match n.as_i64() {
            // The REST API carries 64-bit integers as strings.
            Some(i) => json!({ "integerValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64() }),
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => {
            json!({ "arrayValue": { "values": items.into_iter().map(to_value).collect::<Vec<_>>() } })
        }
        Value::Object(map) => json!({ "mapValue": { "fields": fields(map) } }),
    }
}

/// Writes every document of `dir` (replacing documents with the same path). Returns how many.
pub async fn seed(
    client: &reqwest::Client,
    base: &str,
    project: &str,
    dir: &Path,
    report: &SeedReporter,
) -> Result<usize, SeedError> {
    let docs = read_documents(dir)?;
    let root = documents_root(base, project);
    let count = docs.len();
    let results: Vec<Result<(), SeedError>> = stream::iter(docs)
        .map(|doc: SeedDocument| {
            let url = format!("{root}/{}", encode_path(&doc.path));
            async move {
                let resp = client
                    .patch(url)
                    .header(reqwest::header::AUTHORIZATION, OWNER)
                    .json(&json!({ "fields": doc.fields }))
                    .send()
                    .await
                    .map_err(|e| SeedError::api("firestore", describe_reqwest(&e)))?;
                if !resp.status().is_success() {
                    return Err(SeedError::api(
                        "firestore",
                        failure(&format!("writing {}", doc.path), resp).await,
                    ));
                }
                report(SeedEvent::Written { document: doc.path });
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(count)
}

/// Percent-encodes each segment of a document path, keeping the slashes between them.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(super::encode)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_become_typed_firestore_values() {
        let v: Value = serde_json::from_str(
            r#"{"name":"Ada","age":36,"score":1.5,"admin":true,"none":null,"tags":["a",1],"address":{"city":"London"}}"#,
        )
        .unwrap();
        let Value::Object(map) = v else {
            unreachable!()
        };
        assert_eq!(
            fields(map),
            json!({
                "name": {"stringValue": "Ada"},
                "age": {"integerValue": "36"},
                "score": {"doubleValue": 1.5},
                "admin": {"booleanValue": true},
                "none": {"nullValue": null},
                "tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"integerValue": "1"}]}},
                "address": {"mapValue": {"fields": {"city": {"stringValue": "London"}}}},
            })
        );
    }

    #[test]
    fn documents_are_read_from_collection_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("users/u1/posts")).unwrap();
        std::fs::write(dir.path().join("users/u1.json"), r#"{"n":1}"#).unwrap();
        std::fs::write(dir.path().join("users/u1/posts/p1.json"), r#"{"t":"x"}"#).unwrap();
        let docs = read_documents(dir.path()).unwrap();
        let paths: Vec<&str> = docs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["users/u1", "users/u1/posts/p1"]);
        assert_eq!(docs[0].fields, json!({"n": {"integerValue": "1"}}));
    }

    #[test]
    fn a_document_outside_a_collection_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loose.json"), "{}").unwrap();
        let err = read_documents(dir.path()).unwrap_err();
        assert!(err.to_string().contains("<collection>/<id>"), "{err}");
    }

    #[test]
    fn invalid_json_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("c/d.json"), "{\n  \"a\": ,\n}").unwrap();
        let err = read_documents(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c/d.json") && err.contains("line 2"), "{err}");
        std::fs::write(dir.path().join("c/d.json"), "[1]").unwrap();
        assert!(read_documents(dir.path()).is_err());
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn gclouds_start_command_becomes_the_emulators_arguments() {
        assert_eq!(
            gcloud_start_args(&words(
                "gcloud emulators firestore start --host-port=0.0.0.0:8080"
            )),
            Some(words(
                "start --host=0.0.0.0 --port=8080 --database-mode=firestore-native"
            ))
        );
        assert_eq!(
            gcloud_start_args(&words(
                "/usr/bin/gcloud beta emulators firestore start --host-port [::]:9000 --quiet --project=demo --use-firestore-in-datastore-mode --rules=/r.rules"
            )),
            Some(words(
                "start --host=:: --port=9000 --database-mode=datastore-mode --rules=/r.rules"
            ))
        );
        // without --host-port gcloud chooses the address; other commands and flags are left alone
        for cmd in [
            "gcloud emulators firestore start",
            "gcloud emulators firestore start --host-port=0.0.0.0:8080 --licenses",
            "gcloud emulators datastore start --host-port=0.0.0.0:8080",
            "java -jar x.jar",
            "gcloud emulators firestore start --host-port=0.0.0.0:notaport",
        ] {
            assert_eq!(gcloud_start_args(&words(cmd)), None, "{cmd}");
        }
    }

    fn official_image() -> ImageFacts {
        ImageFacts {
            id: "sha256:0123abcd".into(),
            entrypoint: vec![],
            cmd: words("/bin/bash"),
        }
    }

    fn input<'a>(
        entrypoint: Option<&'a [String]>,
        command: Option<&'a [String]>,
        env: &'a std::collections::BTreeMap<String, String>,
    ) -> LaunchInput<'a> {
        LaunchInput {
            entrypoint,
            command,
            env,
            mount_targets: Vec::new(),
        }
    }

    #[test]
    fn the_official_image_starts_the_jvm_with_its_own_archive() {
        let env = Default::default();
        let cmd = words("gcloud emulators firestore start --host-port=0.0.0.0:8080");
        let launch = Firestore
            .launch(&official_image(), &input(None, Some(&cmd), &env))
            .expect("recognised");
        assert_eq!(launch.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        let command = launch.command.unwrap();
        let script = &command[0];
        assert!(
            script.contains("dir=/vibedev-cache/firestore; a=\"$dir/0123abcd.jsa\""),
            "{script}"
        );
        assert!(
            script.contains("CloudFirestore 'start' '--host=0.0.0.0' '--port=8080'"),
            "{script}"
        );
        // the service's command follows, for the fallback
        assert_eq!(&command[2..], &cmd[..]);
        // another image id: another archive
        let other = ImageFacts {
            id: "sha256:ffff".into(),
            ..official_image()
        };
        let script2 = Firestore
            .launch(&other, &input(None, Some(&cmd), &env))
            .unwrap()
            .command
            .unwrap()
            .remove(0);
        assert!(script2.contains("/ffff.jsa"), "{script2}");
    }

    #[test]
    fn an_image_with_an_entrypoint_or_another_command_is_left_alone() {
        let env = Default::default();
        let cmd = words("gcloud emulators firestore start --host-port=0.0.0.0:8080");
        let with_entrypoint = ImageFacts {
            entrypoint: words("/usr/local/bin/firestore-entrypoint"),
            ..official_image()
        };
        assert_eq!(
            Firestore.launch(&with_entrypoint, &input(None, Some(&cmd), &env)),
            None
        );
        let own = words("/entry.sh");
        assert_eq!(
            Firestore.launch(&official_image(), &input(Some(&own), Some(&cmd), &env)),
            None
        );
        assert_eq!(
            Firestore.launch(&official_image(), &input(None, None, &env)),
            None
        );
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn references_are_pointed_at_the_copy() {
        let mut fields = json!({
            "owner": {"referenceValue": "projects/app/databases/(default)/documents/users/u1"},
            "other": {"referenceValue": "projects/apps/databases/(default)/documents/users/u1"},
            "list": {"arrayValue": {"values": [
                {"referenceValue": "projects/app/databases/(default)/documents/a/b"},
                {"stringValue": "projects/app/databases/(default)/documents/a/b"},
            ]}},
            "map": {"mapValue": {"fields": {
                "r": {"referenceValue": "projects/app/databases/(default)/documents/c/d/e/f"},
            }}},
        });
        repoint_references(&mut fields, "app", "app-feature-x");
        assert_eq!(
            fields,
            json!({
                "owner": {"referenceValue": "projects/app-feature-x/databases/(default)/documents/users/u1"},
                "other": {"referenceValue": "projects/apps/databases/(default)/documents/users/u1"},
                "list": {"arrayValue": {"values": [
                    {"referenceValue": "projects/app-feature-x/databases/(default)/documents/a/b"},
                    {"stringValue": "projects/app/databases/(default)/documents/a/b"},
                ]}},
                "map": {"mapValue": {"fields": {
                    "r": {"referenceValue": "projects/app-feature-x/databases/(default)/documents/c/d/e/f"},
                }}},
            })
        );
    }

    #[test]
    fn a_mark_reads_back_as_written() {
        let mark = Mark {
            branch: "feature/x".into(),
            slug: "feature_x".into(),
            source: "app".into(),
            state: MarkState::Copying,
        };
        assert_eq!(Mark::parse(&mark.fields()), Some(mark.clone()));
        let made = Mark {
            state: MarkState::Made,
            ..mark
        };
        assert_eq!(Mark::parse(&made.fields()), Some(made));
        assert_eq!(
            Mark::parse(&json!({"state": {"stringValue": "made"}})),
            None
        );
        // a branch's project id always has a `-`: it is never the marks' own
        assert!(!MARKS_PROJECT.contains('-'));
    }

    #[test]
    fn document_paths_are_encoded_per_segment() {
        assert_eq!(encode_path("users/a b"), "users/a%20b");
    }
}
