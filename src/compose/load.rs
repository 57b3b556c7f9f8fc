//! From files to one resolved document, in compose's order: parse (anchors, aliases, merge keys),
//! interpolate scalar values, then `include` and `extends`. Paths written in an included or
//! extended file are made absolute against that file's folder (or its `project_directory`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::interpolate::{Unset, interpolate_tree};
use super::yaml::{self, Files, Key, Node, Pos, Value};
use crate::config::ConfigError;

/// Variables for interpolation: the process environment, then the project's `.env` (or the
/// `env_file`s an `include` names).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    dotenv: BTreeMap<String, String>,
}

impl Vars {
    /// The `.env` in `dir`, when there is one.
    pub fn for_dir(dir: &Path) -> Vars {
        let mut vars = Vars::default();
        vars.read(&dir.join(".env"));
        vars
    }

    fn read(&mut self, path: &Path) -> bool {
        match dotenvy::from_path_iter(path) {
            Ok(iter) => {
                for (k, v) in iter.flatten() {
                    self.dotenv.insert(k, v);
                }
                true
            }
            Err(_) => false,
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }
}

/// Loads the files of one stack.
#[derive(Debug, Default)]
pub struct Loader {
    pub files: Files,
    pub unset: Vec<Unset>,
    /// Files parsed and interpolated (not yet extended), by path.
    cache: BTreeMap<PathBuf, Node>,
}

impl Loader {
    /// An error at a node's position.
    pub fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            path: self.files.path(pos),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// Parses and interpolates one file (its text given, or read from disk).
    fn parse_file(
        &mut self,
        path: &Path,
        text: Option<&str>,
        vars: &Vars,
    ) -> Result<Node, ConfigError> {
        if let Some(node) = self.cache.get(path) {
            return Ok(node.clone());
        }
        let owned;
        let text = match text {
            Some(t) => t,
            None => {
                owned = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                &owned
            }
        };
        let file = self.files.add(path.to_path_buf());
        let mut node = yaml::parse(text, file).map_err(|e| self.error(e.pos, e.message))?;
        if !matches!(node.value, Value::Map(_)) {
            return Err(self.error(node.pos, "a Compose file is a mapping (with `services:`)"));
        }
        interpolate_tree(
            &mut node,
            &|n| vars.get(n),
            &mut Vec::new(),
            &mut self.unset,
        )
        .map_err(|e| self.error(e.pos, e.message))?;
        self.cache.insert(path.to_path_buf(), node.clone());
        Ok(node)
    }

    /// The fully loaded document of a project file: its includes merged in, `extends` resolved.
    pub fn load(
        &mut self,
        path: &Path,
        text: Option<&str>,
        vars: &Vars,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Node, ConfigError> {
        if chain.iter().any(|p| p == path) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: "includes itself (through `include:`)".into(),
            });
        }
        chain.push(path.to_path_buf());
        let mut doc = self.parse_file(path, text, vars)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if let Some((key, include)) = doc.remove("include") {
            self.apply_include(&mut doc, key, include, &dir, chain)?;
        }
        self.resolve_extends(&mut doc, path, vars)?;
        chain.pop();
        Ok(doc)
    }

    fn apply_include(
        &mut self,
        doc: &mut Node,
        key: Key,
        include: Node,
        dir: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let Value::Seq(entries) = include.value else {
            return Err(self.error(key.pos, "`include` takes a list"));
        };
        for entry in entries {
            let (paths, project_dir, env_files) = match &entry.value {
                Value::Str(s) => (vec![(s.clone(), entry.pos)], None, Vec::new()),
                Value::Map(_) => {
                    let paths = match entry.get("path") {
                        Some(Node {
                            value: Value::Str(s),
                            pos,
                        }) => vec![(s.clone(), *pos)],
                        Some(Node {
                            value: Value::Seq(items),
                            ..
                        }) => items
                            .iter()
                            .map(|n| {
                                n.as_str().map(|s| (s.to_string(), n.pos)).ok_or_else(|| {
                                    self.error(n.pos, "include path must be a string")
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => return Err(self.error(entry.pos, "an include entry needs `path:`")),
                    };
                    let project_dir = entry.get("project_directory").and_then(Node::as_str);
                    let env_files = match entry.get("env_file") {
                        None => Vec::new(),
                        Some(n) => match &n.value {
                            Value::Str(s) => vec![(s.clone(), n.pos)],
                            Value::Seq(items) => items
                                .iter()
                                .filter_map(|i| i.as_str().map(|s| (s.to_string(), i.pos)))
                                .collect(),
                            _ => Vec::new(),
                        },
                    };
                    (paths, project_dir.map(str::to_string), env_files)
                }
                _ => return Err(self.error(entry.pos, "an include entry is a path or a mapping")),
            };
            let first = dir.join(&paths[0].0);
            let project_dir = match &project_dir {
                Some(p) => dir.join(p),
                None => first.parent().unwrap_or(dir).to_path_buf(),
            };
            let vars = if env_files.is_empty() {
                Vars::for_dir(&project_dir)
            } else {
                let mut vars = Vars::default();
                for (file, pos) in &env_files {
                    if !vars.read(&dir.join(file)) {
                        return Err(self.error(*pos, format!("env_file {file} not found")));
                    }
                }
                vars
            };
            let mut included: Option<Node> = None;
            for (p, pos) in &paths {
                let path = dir.join(p);
                if !path.is_file() {
                    return Err(self.error(*pos, format!("included file {p} not found")));
                }
                let mut part = self.load(&path, None, &vars, chain)?;
                rebase_document(&mut part, &project_dir);
                included = Some(match included {
                    None => part,
                    Some(base) => merge_documents(base, part),
                });
            }
            let Some(included) = included else { continue };
            for section in ["services", "volumes", "networks", "secrets", "configs"] {
                let Some(Value::Map(items)) = included.get(section).map(|n| n.value.clone()) else {
                    continue;
                };
                if doc
                    .get(section)
                    .is_none_or(|n| matches!(n.value, Value::Null))
                {
                    doc.set(section, Node::new(included.pos, Value::Map(Vec::new())));
                }
                let Some(target) = doc.get_mut(section) else {
                    continue;
                };
                let Value::Map(existing) = &mut target.value else {
                    continue;
                };
                for (k, v) in items {
                    if let Some((ek, _)) = existing.iter().find(|(ek, _)| ek.name == k.name) {
                        let pos = ek.pos;
                        return Err(self.error(
                            pos,
                            format!(
                                "{section}.{} is also defined by the included file {}",
                                k.name, paths[0].0
                            ),
                        ));
                    }
                    existing.push((k, v));
                }
            }
        }
        Ok(())
    }

    /// Resolves `extends:` in every service of the document.
    fn resolve_extends(
        &mut self,
        doc: &mut Node,
        path: &Path,
        vars: &Vars,
    ) -> Result<(), ConfigError> {
        let Some(services) = doc.get("services").cloned() else {
            return Ok(());
        };
        let Value::Map(entries) = &services.value else {
            return Ok(());
        };
        let mut resolved = Vec::new();
        for (key, _) in entries {
            let mut chain = Vec::new();
            let svc = self.extended(&services, path, &key.name, key.pos, vars, &mut chain)?;
            resolved.push((key.clone(), svc));
        }
        doc.set("services", Node::new(services.pos, Value::Map(resolved)));
        Ok(())
    }

    /// A service of `services` (a file's `services:` node) with its `extends` applied.
    fn extended(
        &mut self,
        services: &Node,
        path: &Path,
        name: &str,
        at: Pos,
        vars: &Vars,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Result<Node, ConfigError> {
        let Some(svc) = services.get(name) else {
            return Err(self.error(
                at,
                format!(
                    "extends names service {name:?}, which {} does not define",
                    path.display()
                ),
            ));
        };
        let mut svc = svc.clone();
        if chain.iter().any(|(p, n)| p == path && n == name) {
            return Err(self.error(at, format!("service {name:?} extends itself")));
        }
        chain.push((path.to_path_buf(), name.to_string()));
        let Some((key, ext)) = svc.remove("extends") else {
            chain.pop();
            return Ok(svc);
        };
        let (base_name, file) = match &ext.value {
            Value::Str(s) => (s.clone(), None),
            Value::Map(_) => {
                let base = ext
                    .get("service")
                    .and_then(Node::as_str)
                    .ok_or_else(|| self.error(ext.pos, "extends needs `service:`"))?;
                let file = match ext.get("file") {
                    None => None,
                    Some(n) => Some((
                        n.as_str()
                            .ok_or_else(|| self.error(n.pos, "extends.file must be a path"))?
                            .to_string(),
                        n.pos,
                    )),
                };
                (base.to_string(), file)
            }
            _ => return Err(self.error(key.pos, "extends takes a service name or a mapping")),
        };
        let base = match file {
            None => self.extended(services, path, &base_name, ext.pos, vars, chain)?,
            Some((file, pos)) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let other = dir.join(&file);
                if !other.is_file() {
                    return Err(self.error(pos, format!("extends.file {file} not found")));
                }
                let other_doc = self.parse_file(&other, None, vars)?;
                let other_services = other_doc
                    .get("services")
                    .cloned()
                    .unwrap_or_else(|| Node::new(other_doc.pos, Value::Map(Vec::new())));
                let mut base =
                    self.extended(&other_services, &other, &base_name, ext.pos, vars, chain)?;
                rebase_service(&mut base, other.parent().unwrap_or(Path::new(".")));
                base
            }
        };
        chain.pop();
        Ok(merge_service(base, svc))
    }
}

/// Makes the relative paths of a document's services and file-based objects absolute.
pub fn rebase_document(doc: &mut Node, dir: &Path) {
    if let Some(Value::Map(services)) = doc.get_mut("services").map(|n| &mut n.value) {
        for (_, svc) in services.iter_mut() {
            rebase_service(svc, dir);
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Value::Map(items)) = doc.get_mut(section).map(|n| &mut n.value) {
            for (_, item) in items.iter_mut() {
                if let Some(file) = item.get_mut("file") {
                    rebase_str(file, dir);
                }
            }
        }
    }
}

/// `dir` joined with a relative path, `.` and `..` resolved lexically.
pub fn join_clean(dir: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn is_relative_path(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('/') && !s.starts_with('~') && !s.contains("://")
}

fn rebase_str(node: &mut Node, dir: &Path) {
    if let Value::Str(s) = &mut node.value
        && is_relative_path(s)
        && !s.starts_with("git@")
    {
        *s = join_clean(dir, s).display().to_string();
    }
}

/// Makes a service's relative paths (build context, env_file, bind mounts) absolute.
pub fn rebase_service(svc: &mut Node, dir: &Path) {
    if let Some(build) = svc.get_mut("build") {
        match &mut build.value {
            Value::Str(_) => rebase_str(build, dir),
            Value::Map(_) => {
                if let Some(ctx) = build.get_mut("context") {
                    rebase_str(ctx, dir);
                } else {
                    let pos = build.pos;
                    build.set(
                        "context",
                        Node::new(pos, Value::Str(dir.display().to_string())),
                    );
                }
            }
            _ => {}
        }
    }
    if let Some(env_file) = svc.get_mut("env_file") {
        match &mut env_file.value {
            Value::Str(_) => rebase_str(env_file, dir),
            Value::Seq(items) => {
                for item in items {
                    match &item.value {
                        Value::Str(_) => rebase_str(item, dir),
                        Value::Map(_) => {
                            if let Some(p) = item.get_mut("path") {
                                rebase_str(p, dir);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Seq(items)) = svc.get_mut("volumes").map(|n| &mut n.value) {
        for item in items {
            match &mut item.value {
                Value::Str(s) => {
                    if let Some((src, rest)) = s.split_once(':')
                        && src.starts_with('.')
                    {
                        *s = format!("{}:{rest}", join_clean(dir, src).display());
                    }
                }
                Value::Map(_) => {
                    let is_bind = item.get("type").and_then(Node::as_str) == Some("bind");
                    if is_bind && let Some(src) = item.get_mut("source") {
                        rebase_str(src, dir);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Two files given together (`include: [{path: [a, b]}]`): b overrides a, as compose merges them.
pub fn merge_documents(base: Node, over: Node) -> Node {
    let (Value::Map(mut b), Value::Map(o)) = (base.value, over.value) else {
        return Node::new(base.pos, Value::Map(Vec::new()));
    };
    for (k, v) in o {
        match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
            Some(slot) if k.name == "services" => {
                let (Value::Map(mut bs), Value::Map(os)) =
                    (std::mem::replace(&mut slot.1.value, Value::Null), v.value)
                else {
                    continue;
                };
                for (sk, sv) in os {
                    match bs.iter_mut().find(|(bk, _)| bk.name == sk.name) {
                        Some(s) => {
                            let old = std::mem::replace(&mut s.1, Node::new(sv.pos, Value::Null));
                            s.1 = merge_service(old, sv);
                        }
                        None => bs.push((sk, sv)),
                    }
                }
                slot.1.value = Value::Map(bs);
            }
            Some(slot) => {
                let old = std::mem::replace(&mut slot.1, Node::new(v.pos, Value::Null));
                slot.1 = merge_maps(old, v);
            }
            None => b.push((k, v)),
        }
    }
    Node::new(base.pos, Value::Map(b))
}

/// Keys whose list form is `KEY=value` and that merge like mappings.
const MAPPING_LISTS: &[&str] = &[
    "environment",
    "labels",
    "annotations",
    "sysctls",
    "extra_hosts",
];
/// Keys whose lists are appended to (duplicates dropped).
const APPENDED_LISTS: &[&str] = &[
    "ports",
    "expose",
    "dns",
    "dns_search",
    "dns_opt",
    "env_file",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "profiles",
    "secrets",
    "configs",
    "devices",
    "security_opt",
    "external_links",
    "links",
    "volumes_from",
    "group_add",
    "device_cgroup_rules",
];

/// A service `over` written over `base` (extends, or a second file), as compose merges them.
pub fn merge_service(base: Node, over: Node) -> Node {
    let pos = over.pos;
    let (Value::Map(mut b), Value::Map(o)) = (base.value, over.value) else {
        return Node::new(pos, Value::Map(Vec::new()));
    };
    for (k, v) in o {
        let Some(slot) = b.iter_mut().find(|(bk, _)| bk.name == k.name) else {
            b.push((k, v));
            continue;
        };
        let old = std::mem::replace(&mut slot.1, Node::new(v.pos, Value::Null));
        let name = k.name.as_str();
        slot.1 = if MAPPING_LISTS.contains(&name) {
            merge_maps(as_mapping(old), as_mapping(v))
        } else if name == "depends_on" {
            merge_maps(depends_mapping(old), depends_mapping(v))
        } else if name == "build" {
            let (old, v) = (build_mapping(old), build_mapping(v));
            merge_maps(old, v)
        } else if name == "volumes" {
            merge_volumes(old, v)
        } else if APPENDED_LISTS.contains(&name) {
            append_unique(old, v)
        } else if name == "healthcheck" || name == "logging" || name == "deploy" {
            merge_maps(old, v)
        } else {
            v
        };
    }
    Node::new(pos, Value::Map(b))
}

/// Mappings merged key by key (the later value wins; nested mappings merge too).
fn merge_maps(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
                    Some(slot) => {
                        let old = std::mem::replace(&mut slot.1, Node::new(v.pos, Value::Null));
                        slot.1 = if matches!(old.value, Value::Map(_))
                            && matches!(v.value, Value::Map(_))
                        {
                            merge_maps(old, v)
                        } else {
                            v
                        };
                    }
                    None => b.push((k, v)),
                }
            }
            Node::new(over.pos, Value::Map(b))
        }
        (_, value) => Node::new(over.pos, value),
    }
}

/// `[KEY=value, KEY]` as a mapping (`KEY` alone maps to null).
fn as_mapping(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .map(|item| {
            let text = match &item.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => String::new(),
            };
            let (k, v) = match text.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
                None => (text, Value::Null),
            };
            (
                Key {
                    name: k,
                    pos: item.pos,
                },
                Node::new(item.pos, v),
            )
        })
        .collect();
    Node::new(node.pos, Value::Map(entries))
}

fn depends_mapping(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .filter_map(|item| {
            let name = item.as_str()?.to_string();
            let cond = Node::new(
                item.pos,
                Value::Map(vec![(
                    Key {
                        name: "condition".into(),
                        pos: item.pos,
                    },
                    Node::new(item.pos, Value::Str("service_started".into())),
                )]),
            );
            Some((
                Key {
                    name,
                    pos: item.pos,
                },
                cond,
            ))
        })
        .collect();
    Node::new(node.pos, Value::Map(entries))
}

fn build_mapping(node: Node) -> Node {
    match node.value {
        Value::Str(s) => Node::new(
            node.pos,
            Value::Map(vec![(
                Key {
                    name: "context".into(),
                    pos: node.pos,
                },
                Node::new(node.pos, Value::Str(s)),
            )]),
        ),
        Value::Map(mut m) => {
            for (k, v) in m.iter_mut() {
                if k.name == "args" || k.name == "labels" {
                    let old = std::mem::replace(v, Node::new(k.pos, Value::Null));
                    *v = as_mapping(old);
                }
            }
            Node::new(node.pos, Value::Map(m))
        }
        other => Node::new(node.pos, other),
    }
}

fn append_unique(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Seq(mut b), Value::Seq(o)) => {
            for item in o {
                if !b.iter().any(|x| x.value == item.value) {
                    b.push(item);
                }
            }
            Node::new(over.pos, Value::Seq(b))
        }
        (Value::Str(a), Value::Seq(mut o)) => {
            o.insert(0, Node::new(base.pos, Value::Str(a)));
            Node::new(over.pos, Value::Seq(o))
        }
        (Value::Seq(mut b), Value::Str(s)) => {
            b.push(Node::new(over.pos, Value::Str(s)));
            Node::new(over.pos, Value::Seq(b))
        }
        (_, value) => Node::new(over.pos, value),
    }
}

/// The container path a volume entry mounts on.
fn volume_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [t] => Some(t.to_string()),
                [_, t] | [_, t, _] => Some(t.to_string()),
                _ => None,
            }
        }
        Value::Map(_) => n.get("target").and_then(Node::as_str).map(str::to_string),
        _ => None,
    }
}

/// Volumes merged by their target path (the later mount of a path wins).
fn merge_volumes(base: Node, over: Node) -> Node {
    match (base.value, over.value) {
        (Value::Seq(mut b), Value::Seq(o)) => {
            for item in o {
                let target = volume_target(&item);
                match b
                    .iter_mut()
                    .find(|x| target.is_some() && volume_target(x) == target)
                {
                    Some(slot) => *slot = item,
                    None => b.push(item),
                }
            }
            Node::new(over.pos, Value::Seq(b))
        }
        (_, value) => Node::new(over.pos, value),
    }
}
