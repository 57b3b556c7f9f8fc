//! Building a service's image through the engine API, as Compose's `build:` does: the context
//! folder goes to the engine as a tar archive with `.dockerignore` applied, the build's output is
//! reported line by line, and the image carries a hash of everything that went into it (context
//! files, Dockerfile, args, target, labels) so that an unchanged build is never run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use regex::Regex;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError};

/// The label holding the build hash on an image vibedev built.
pub const LABEL_BUILD_HASH: &str = "dev.vibedev.build-hash";

/// The name under which an inline Dockerfile travels in the context.
const INLINE_DOCKERFILE: &str = ".vibedev.inline.Dockerfile";

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The context folder (absolute).
    pub context: PathBuf,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// A Dockerfile given in the compose file itself.
    pub dockerfile_inline: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The tag the image gets (`<project>-<service>` unless the service names an image).
    pub tag: String,
}

/// A build's progress: its output lines.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    Output(String),
}

/// The context as the engine receives it.
#[derive(Debug)]
pub struct Context {
    pub tar: Vec<u8>,
    /// Files sent (the Dockerfile included).
    pub files: usize,
    /// A hash of the files sent and every build setting.
    pub hash: String,
}

/// Why a context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {path} is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("build context: cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("build context: no Dockerfile at {path}")]
    NoDockerfile { path: PathBuf },
}

impl BuildRequest {
    fn dockerfile_name(&self) -> String {
        if self.dockerfile_inline.is_some() {
            INLINE_DOCKERFILE.to_string()
        } else {
            self.dockerfile
                .clone()
                .unwrap_or_else(|| "Dockerfile".to_string())
        }
    }

    /// Reads the context: every file `.dockerignore` does not exclude (the Dockerfile and
    /// `.dockerignore` always go), in a stable order, as a tar archive, with its hash.
    pub fn context(&self) -> Result<Context, ContextError> {
        let root = &self.context;
        if !root.is_dir() {
            return Err(ContextError::NotAFolder { path: root.clone() });
        }
        let dockerfile = self.dockerfile_name();
        if self.dockerfile_inline.is_none() && !root.join(&dockerfile).is_file() {
            return Err(ContextError::NoDockerfile {
                path: root.join(&dockerfile),
            });
        }
        let ignore = read_ignore(root, &dockerfile)?;
        let mut files = Vec::new();
        walk(root, Path::new(""), &ignore, &mut files)?;
        for always in [dockerfile.as_str(), ".dockerignore"] {
            let rel = PathBuf::from(always);
            if root.join(&rel).is_file() && !files.contains(&rel) {
                files.push(rel);
            }
        }
        files.sort();
        let mut hasher = Sha256::new();
        let mut builder = tar::Builder::new(Vec::new());
        let read = |path: PathBuf| {
            std::fs::read(&path).map_err(|source| ContextError::Read { path, source })
        };
        for rel in &files {
            let path = root.join(rel);
            let data = read(path.clone())?;
            let mode = file_mode(&path);
            append(&mut builder, rel, mode, &data).map_err(|source| ContextError::Read {
                path: path.clone(),
                source,
            })?;
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(mode.to_le_bytes());
            hasher.update((data.len() as u64).to_le_bytes());
            hasher.update(&data);
        }
        let mut count = files.len();
        if let Some(inline) = &self.dockerfile_inline {
            append(
                &mut builder,
                Path::new(INLINE_DOCKERFILE),
                0o644,
                inline.as_bytes(),
            )
            .map_err(|source| ContextError::Read {
                path: root.clone(),
                source,
            })?;
            count += 1;
        }
        let settings = serde_json::json!({
            "dockerfile": dockerfile,
            "inline": self.dockerfile_inline,
            "args": self.args,
            "target": self.target,
            "labels": self.labels,
        });
        hasher.update(settings.to_string().as_bytes());
        let tar = builder.into_inner().map_err(|source| ContextError::Read {
            path: root.clone(),
            source,
        })?;
        Ok(Context {
            tar,
            files: count,
            hash: hex::encode(hasher.finalize())[..16].to_string(),
        })
    }
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    rel: &Path,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, rel, data)
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777)
}

/// Files under `dir` (relative to the context root), skipping what `ignore` excludes. Symbolic
/// links to files are followed; folders are entered unless excluded with no exception under them.
fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    out: &mut Vec<PathBuf>,
) -> Result<(), ContextError> {
    let full = root.join(dir);
    let entries = std::fs::read_dir(&full).map_err(|source| ContextError::Read {
        path: full.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ContextError::Read {
            path: full.clone(),
            source,
        })?;
        let rel = dir.join(entry.file_name());
        let path = root.join(&rel);
        let meta = std::fs::metadata(&path).map_err(|source| ContextError::Read {
            path: path.clone(),
            source,
        })?;
        let rel_str = rel.to_string_lossy().into_owned();
        if meta.is_dir() {
            if !ignore.excludes(&rel_str) || ignore.has_exceptions() {
                walk(root, &rel, ignore, out)?;
            }
        } else if meta.is_file() && !ignore.excludes(&rel_str) {
            out.push(rel);
        }
    }
    Ok(())
}

/// `.dockerignore` rules: patterns relative to the context, `*`, `?`, `**`, `[...]`, and `!` for
/// exceptions; the last pattern that matches a path (or one of its parent folders) decides.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<(Regex, bool)>,
}

fn read_ignore(root: &Path, dockerfile: &str) -> Result<Ignore, ContextError> {
    // A Dockerfile-specific ignore file wins, as with BuildKit.
    for name in [format!("{dockerfile}.dockerignore"), ".dockerignore".into()] {
        let path = root.join(&name);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Ignore::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ContextError::Read { path, source }),
        }
    }
    Ok(Ignore::default())
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let pattern = clean(pattern);
                if pattern.is_empty() {
                    return None;
                }
                Regex::new(&glob_regex(&pattern)).ok().map(|r| (r, include))
            })
            .collect();
        Ignore { rules }
    }

    /// True when `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (re, include) in &self.rules {
            if matches_self_or_parent(re, path) {
                excluded = !include;
            }
        }
        excluded
    }

    /// True when some `!` pattern could bring back files under an excluded folder: the folder
    /// is then walked, as Docker does.
    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, include)| *include)
    }
}

fn matches_self_or_parent(re: &Regex, path: &str) -> bool {
    if re.is_match(path) {
        return true;
    }
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .any(|(i, _)| re.is_match(&path[..i]))
}

/// A pattern as Docker cleans it: no leading `/` or `./`, no trailing `/`, no `//`.
fn clean(pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// A `.dockerignore` glob as an anchored regular expression.
fn glob_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` matches any number of folders, `**` at the end anything.
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => match chars[i..].iter().position(|c| *c == ']') {
                Some(end) => {
                    let class: String = chars[i + 1..i + end].iter().collect();
                    let class = class
                        .strip_prefix('^')
                        .map_or(class.clone(), |c| format!("^{c}"));
                    re.push('[');
                    re.push_str(&class.replace('\\', "\\\\"));
                    re.push(']');
                    i += end + 1;
                    continue;
                }
                None => re.push_str("\\["),
            },
            '\\' if i + 1 < chars.len() => {
                re.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

impl Engine {
    /// The build hash an image carries, when vibedev built it.
    pub async fn image_build_hash(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(info
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(LABEL_BUILD_HASH).cloned())),
            Err(e) if super::is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspect image {image}"), e)),
        }
    }

    /// The context to build `request` from, when its image needs building: it is missing, was
    /// built from other files or settings than now (the hash label on the image), or `force`.
    /// With `only_if_missing` (the service also names `image:`), an image that is present is
    /// built again only when forced, as Compose does.
    pub async fn context_to_build(
        &self,
        request: &BuildRequest,
        only_if_missing: bool,
        force: bool,
    ) -> Result<Option<Context>, EngineError> {
        let existing = self.image_build_hash(&request.tag).await?;
        let present = existing.is_some() || self.has_image(&request.tag).await?;
        if only_if_missing && present && !force {
            return Ok(None);
        }
        let read = request.clone();
        let context = tokio::task::spawn_blocking(move || read.context())
            .await
            .map_err(|e| {
                EngineError::Context(ContextError::Read {
                    path: request.context.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })??;
        if !force && existing.as_deref() == Some(context.hash.as_str()) {
            return Ok(None);
        }
        Ok(Some(context))
    }

    /// Builds and tags an image from a context read with [`BuildRequest::context`]; the image is
    /// labelled with the context's hash. A failed build returns the engine's message and the last
    /// lines of the failing step's output.
    pub async fn build(
        &self,
        request: &BuildRequest,
        context: Context,
        progress: &(dyn Fn(BuildEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let mut labels: std::collections::HashMap<String, String> =
            request.labels.clone().into_iter().collect();
        labels.insert(LABEL_BUILD_HASH.to_string(), context.hash.clone());
        let args: std::collections::HashMap<String, String> =
            request.args.clone().into_iter().collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile_name())
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&args);
        if let Some(target) = &request.target {
            options = options.target(target);
        }
        let mut stream = self.docker.build_image(
            options.build(),
            None,
            Some(bollard::body_full(context.tar.into())),
        );
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(build_failed(request, error, tail));
                }
                Err(e) => return Err(EngineError::api(format!("build image {}", request.tag), e)),
            };
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    // A new step starts a new tail: the failing step's output is what matters.
                    if line.starts_with("Step ") {
                        tail.clear();
                    }
                    tail.push(line.to_string());
                    progress(BuildEvent::Output(line.to_string()));
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "the build failed".into());
                return Err(build_failed(request, message, tail));
            }
        }
        Ok(())
    }
}

fn build_failed(request: &BuildRequest, message: String, tail: Vec<String>) -> EngineError {
    let skip = tail.len().saturating_sub(20);
    EngineError::Build {
        image: request.tag.clone(),
        message: message.trim().to_string(),
        output: tail.into_iter().skip(skip).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let ig = Ignore::parse(
            "# comment\nnode_modules\n*.log\n/build/\n**/secret.txt\ndocs\n!docs/keep.md\ntmp?\n",
        );
        for excluded in [
            "node_modules",
            "node_modules/a/b.js",
            "app.log",
            "build/out.bin",
            "a/b/secret.txt",
            "secret.txt",
            "docs/other.md",
            "tmp1",
        ] {
            assert!(ig.excludes(excluded), "{excluded} should be excluded");
        }
        for kept in [
            "src/app.log",
            "src/main.rs",
            "docs/keep.md",
            "tmp12",
            "Dockerfile",
        ] {
            assert!(!ig.excludes(kept), "{kept} should be kept");
        }
    }

    fn request(dir: &Path) -> BuildRequest {
        BuildRequest {
            context: dir.to_path_buf(),
            dockerfile: None,
            dockerfile_inline: None,
            args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            tag: "demo-app".into(),
        }
    }

    #[test]
    fn context_hash_changes_with_files_and_settings_only() {
        let dir = tempfile::tempdir().unwrap();
        let w = |p: &str, c: &str| {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        };
        w("Dockerfile", "FROM scratch\nCOPY a.txt /\n");
        w("a.txt", "one");
        w(".dockerignore", "ignored/\n");
        w("ignored/big.bin", "x");
        let req = request(dir.path());
        let first = req.context().unwrap();
        assert_eq!(first.files, 3, "Dockerfile, .dockerignore, a.txt");
        assert_eq!(req.context().unwrap().hash, first.hash, "not stable");
        // An ignored file changes nothing; a sent file, an argument, the target do.
        w("ignored/big.bin", "y");
        assert_eq!(req.context().unwrap().hash, first.hash);
        w("a.txt", "two");
        let second = req.context().unwrap();
        assert_ne!(second.hash, first.hash);
        let mut with_arg = req.clone();
        with_arg.args.insert("V".into(), "1".into());
        assert_ne!(with_arg.context().unwrap().hash, second.hash);
        let mut with_target = req.clone();
        with_target.target = Some("dev".into());
        assert_ne!(with_target.context().unwrap().hash, second.hash);
        // The archive holds exactly the files sent.
        let mut archive = tar::Archive::new(second.tar.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "a.txt"]);
    }

    #[test]
    fn missing_dockerfile_or_context_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(dir.path()).context().unwrap_err();
        assert!(err.to_string().contains("no Dockerfile at"), "{err}");
        let err = request(&dir.path().join("nope")).context().unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        let mut inline = request(dir.path());
        inline.dockerfile_inline = Some("FROM scratch\n".into());
        assert_eq!(inline.context().unwrap().files, 1);
    }
}
