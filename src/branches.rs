//! A database, Firestore data and buckets per git branch (`[branches]`): which branch a checkout
//! has, the slug and names it gets, and the stack's settings pointed at them. Pure naming rules
//! plus a few questions to git; making and removing the databases is in `migrate::branch`, the
//! other stores' part in each kind's module, and the orchestration in `data`.

use sha2::{Digest, Sha256};

use crate::config::Project;
use crate::git::{self, Checkout};
pub use crate::migrate::branch::BranchDatabase;

/// The longest slug; a longer name is cut and gets a hash of the whole name.
pub const MAX_SLUG: usize = 40;

/// Postgres truncates identifiers beyond this many bytes.
const MAX_IDENT: usize = 63;

/// The longest GCP project id (Google's rule: 6 to 30 characters).
const MAX_PROJECT_ID: usize = 30;

/// The longest bucket name without dots (Cloud Storage's rule: 3 to 63 characters).
const MAX_BUCKET: usize = 63;

/// Characters of the hash that tells cut, transliterated-with-loss and colliding names apart.
const HASH_LEN: usize = 7;

/// Why the branch's database cannot be named.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    #[error(
        "branches {a:?} and {b:?} both get the database suffix {slug:?}: their databases would be one"
    )]
    SlugCollision { a: String, b: String, slug: String },
    #[error("cannot tell the repository's default branch (no origin HEAD, no `main`, no `master`)")]
    NoDefaultBranch,
    #[error("no branch or branch database {name:?}")]
    NotFound { name: String, known: Vec<String> },
    #[error("database {database} is the app database: it is not a branch's")]
    AppDatabase { database: String },
    #[error("database {database} is in use by this checkout (branch {branch})")]
    InUse { database: String, branch: String },
    #[error("branch {branch} is the default branch: its data is the stack's own, not a branch's")]
    DefaultBranch { branch: String },
    #[error("branch {branch} is the one this checkout uses")]
    BranchInUse { branch: String },
}

impl BranchError {
    pub fn hint(&self) -> Option<String> {
        match self {
            BranchError::SlugCollision { b, .. } => Some(format!(
                "rename one of them (`git branch -m {b:?} <new name>`): branch names are lower-cased and every run of characters other than a-z and 0-9 becomes `_`"
            )),
            BranchError::NoDefaultBranch => Some(
                "name it in vibedev.toml: `[branches] default = \"<branch>\"` (it keeps the app database; other branches get copies)".into(),
            ),
            BranchError::NotFound { known, .. } if known.is_empty() => {
                Some("there are none: `vibedev branch ls` lists them".into())
            }
            BranchError::NotFound { known, .. } => Some(format!(
                "name a git branch or a database `vibedev branch ls` lists: {}",
                known.join(", ")
            )),
            BranchError::AppDatabase { .. } => {
                Some("`vibedev reset-db` replaces it with a clean one".into())
            }
            BranchError::DefaultBranch { .. } => {
                Some("`vibedev reset-db --all` empties the stores instead".into())
            }
            BranchError::InUse { .. } | BranchError::BranchInUse { .. } => {
                Some("switch this checkout to another branch first".into())
            }
        }
    }
}

/// The branch a checkout works on, when it has a database of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBranch {
    /// The git branch (`detached at <commit>` on a detached HEAD).
    pub branch: String,
    /// What its database name adds to the app database's.
    pub slug: String,
}

/// The checkout's branch when something under `[branches]` follows it and it is not the default
/// branch (`None`: the stores as they are). A repository without commits, a folder outside git
/// and the default branch use the app database.
pub fn current(project: &Project) -> Result<Option<OnBranch>, BranchError> {
    let config = &project.file.branches;
    if !config.follows_any() {
        return Ok(None);
    }
    let (branch, slug) = match git::checkout(&project.root) {
        Checkout::Unborn => return Ok(None),
        Checkout::Detached(commit) => (
            format!("detached at {}", &commit[..commit.len().min(12)]),
            detached_slug(&commit),
        ),
        Checkout::Branch(name) => {
            let default = match &config.default_branch {
                Some(d) => d.clone(),
                None => git::default_branch(&project.root).ok_or(BranchError::NoDefaultBranch)?,
            };
            if name == default {
                return Ok(None);
            }
            let slug = slug(&name);
            (name, slug)
        }
    };
    let others = git::local_branches(&project.root).unwrap_or_default();
    if let Some(other) = others
        .iter()
        .find(|b| **b != branch && self::slug(b) == slug)
    {
        return Err(BranchError::SlugCollision {
            a: branch,
            b: other.clone(),
            slug,
        });
    }
    Ok(Some(OnBranch { branch, slug }))
}

/// One git branch with data of its own (a database, data in the other stores, or both), or the
/// default branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The branch's database (the app database for the default branch); `None` when it has none
    /// (`[branches] database` off).
    pub db: Option<BranchDatabase>,
    /// What the branch's names add to the default branch's (`None` for the default branch).
    pub slug: Option<String>,
    /// The git branch: as recorded on the database or in a store, else the local branch whose
    /// slug its database's name ends with; the default branch for the app database.
    pub branch: Option<String>,
    /// The git branch is still there (a local branch, or a commit a worktree has checked out
    /// detached); always true for the default branch.
    pub exists: bool,
    /// The default branch (the app database itself).
    pub default: bool,
    /// The branch this checkout uses now.
    pub current: bool,
    /// vibedev recorded the data as this branch's (on its database, or in a store's mark).
    pub recorded: bool,
}

/// A git branch's data as a store other than the database records it (a Firestore project's
/// mark, a bucket's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMark {
    pub slug: String,
    /// The git branch (`detached at <commit>` for a detached HEAD).
    pub branch: String,
}

/// True while the git branch is there: a local branch, or (`detached at <commit>`) a commit a
/// worktree has checked out detached.
fn branch_exists(branch: &str, local: &[String], detached: &[String]) -> bool {
    match branch.strip_prefix("detached at ") {
        Some(commit) => detached.iter().any(|d| d.starts_with(commit)),
        None => local.iter().any(|b| b == branch),
    }
}

/// Each database of the family with its git branch and whether that branch is still there.
/// `local`: the repository's branches; `detached`: commits checked out detached in its
/// worktrees (full hashes).
pub fn classify(
    app_database: &str,
    current_database: &str,
    default_branch: Option<&str>,
    databases: Vec<BranchDatabase>,
    local: &[String],
    detached: &[String],
) -> Vec<Listed> {
    databases
        .into_iter()
        .map(|db| {
            let default = db.database == app_database;
            let current = db.database == current_database;
            if default {
                return Listed {
                    branch: default_branch.map(str::to_string),
                    exists: true,
                    default,
                    current,
                    slug: None,
                    recorded: false,
                    db: Some(db),
                };
            }
            let slug = db
                .database
                .rsplit_once("__")
                .map(|(_, slug)| slug.to_string());
            let (branch, exists) = match &db.branch {
                Some(b) => (Some(b.clone()), branch_exists(b, local, detached)),
                None => {
                    let slug_of = |name: &str| database_name(app_database, name) == db.database;
                    let found = local
                        .iter()
                        .find(|b| slug_of(&self::slug(b)))
                        .cloned()
                        .or_else(|| {
                            detached
                                .iter()
                                .find(|c| slug_of(&detached_slug(c)))
                                .map(|c| format!("detached at {}", &c[..c.len().min(12)]))
                        });
                    let exists = found.is_some();
                    (found, exists)
                }
            };
            Listed {
                recorded: db.branch.is_some(),
                db: Some(db),
                slug,
                branch,
                exists,
                default,
                current,
            }
        })
        .collect()
}

/// The default branch's row when branches have no databases (`[branches] database` off).
/// `current`: this checkout is on it.
pub fn default_row(default_branch: Option<&str>, current: bool) -> Listed {
    Listed {
        db: None,
        slug: None,
        branch: default_branch.map(str::to_string),
        exists: true,
        default: true,
        current,
        recorded: false,
    }
}

/// Adds to `listed` the branches the other stores recorded (one row per slug; a branch with a
/// database keeps its row and gets the recorded git branch when its database has none).
/// `current_slug`: the slug of the branch this checkout uses.
pub fn with_marks(
    mut listed: Vec<Listed>,
    marks: Vec<StoreMark>,
    current_slug: Option<&str>,
    local: &[String],
    detached: &[String],
) -> Vec<Listed> {
    let mut marks = marks;
    marks.sort_by(|a, b| a.slug.cmp(&b.slug));
    marks.dedup_by(|a, b| a.slug == b.slug);
    for mark in marks {
        let exists = branch_exists(&mark.branch, local, detached);
        match listed
            .iter_mut()
            .find(|l| l.slug.as_deref() == Some(mark.slug.as_str()))
        {
            Some(row) => {
                if row.branch.is_none() {
                    row.branch = Some(mark.branch);
                    row.exists = exists;
                }
                row.recorded = true;
            }
            None => listed.push(Listed {
                db: None,
                current: current_slug == Some(mark.slug.as_str()),
                slug: Some(mark.slug),
                branch: Some(mark.branch),
                exists,
                default: false,
                recorded: true,
            }),
        }
    }
    listed
}

impl Listed {
    /// The branch's slug (`None` for the default branch).
    pub fn slug(&self) -> Option<&str> {
        self.slug.as_deref()
    }

    /// The branch's database's name, when it has one.
    pub fn database(&self) -> Option<&str> {
        self.db.as_ref().map(|db| db.database.as_str())
    }

    /// How messages name the branch: its git branch, else its database or slug.
    pub fn name(&self) -> String {
        self.branch
            .clone()
            .or_else(|| self.database().map(str::to_string))
            .or_else(|| self.slug.clone())
            .unwrap_or_else(|| "?".into())
    }
}

/// The branch `name` names (a git branch or a database), unless it is the default branch or the
/// one this checkout uses.
pub fn find<'a>(listed: &'a [Listed], name: &str) -> Result<&'a Listed, BranchError> {
    let found = listed
        .iter()
        .find(|l| l.database() == Some(name) || l.branch.as_deref() == Some(name))
        .ok_or_else(|| BranchError::NotFound {
            name: name.to_string(),
            known: listed
                .iter()
                .filter(|l| !l.default)
                .map(Listed::name)
                .collect(),
        })?;
    match (&found.db, found.default, found.current) {
        (Some(db), true, _) => Err(BranchError::AppDatabase {
            database: db.database.clone(),
        }),
        (None, true, _) => Err(BranchError::DefaultBranch {
            branch: found.name(),
        }),
        (Some(db), false, true) => Err(BranchError::InUse {
            database: db.database.clone(),
            branch: found.branch.clone().unwrap_or_default(),
        }),
        (None, false, true) => Err(BranchError::BranchInUse {
            branch: found.name(),
        }),
        (_, false, false) => Ok(found),
    }
}

/// `<db>__<slug>`, the app database's name cut when both together are over Postgres's limit.
pub fn database_name(database: &str, slug: &str) -> String {
    let mut base = database.to_string();
    while base.len() + 2 + slug.len() > MAX_IDENT {
        base.pop();
    }
    format!("{base}__{slug}")
}

/// The branch's GCP project id, `<project id>-<slug>` (`_` as `-`): Google's rules (lowercase
/// letters, digits and hyphens, at most 30 characters); a longer one is cut and ends in `-` and a
/// hash of the whole name.
pub fn project_id(gcp_project: &str, slug: &str) -> String {
    suffixed(gcp_project, slug, MAX_PROJECT_ID)
}

/// The branch's bucket, `<bucket>-<slug>` (`_` as `-`): Cloud Storage's rules (lowercase, at
/// most 63 characters, ending in a letter or digit); a longer one is cut and ends in `-` and a
/// hash of the whole name.
pub fn bucket_name(bucket: &str, slug: &str) -> String {
    suffixed(bucket, slug, MAX_BUCKET)
}

fn suffixed(base: &str, slug: &str, max: usize) -> String {
    let name = format!("{}-{}", base.to_lowercase(), slug.replace('_', "-"));
    if name.len() <= max {
        return name;
    }
    let hash = &hex::encode(Sha256::digest(name.as_bytes()))[..HASH_LEN];
    let mut cut: String = name.chars().take(max - HASH_LEN - 1).collect();
    while cut.len() > max - HASH_LEN - 1 {
        cut.pop();
    }
    while cut.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        cut.pop();
    }
    format!("{cut}-{hash}")
}

/// The slug of a detached HEAD: `detached_` and the commit's first 12 characters.
pub fn detached_slug(commit: &str) -> String {
    format!(
        "detached_{}",
        &commit[..commit.len().min(12)].to_lowercase()
    )
}

/// A branch name as a database name suffix: lower-cased; letters with accents and other
/// compatibility forms transliterated (`é` -> `e`, `ß` -> `ss`); every run of anything else
/// one `_`, none at either end. Names that start with `vibedev` (vibedev's own databases are
/// `<db>__vibedev_...`) get `b_` in front. A name cut to [`MAX_SLUG`], a name with a
/// character that has no transliteration (`日本`), and an empty result end in `_` and a hash
/// of the whole name, so they stay apart.
pub fn slug(name: &str) -> String {
    let mut text = String::new();
    let mut lossy = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            text.push(c.to_ascii_lowercase());
        } else if c.is_ascii() {
            text.push('_');
        } else {
            match transliterate(c) {
                Some(t) => text.push_str(&t),
                None => {
                    lossy = true;
                    text.push('_');
                }
            }
        }
    }
    let mut slug = String::new();
    for c in text.chars() {
        if c == '_' && (slug.is_empty() || slug.ends_with('_')) {
            continue;
        }
        slug.push(c);
    }
    while slug.ends_with('_') {
        slug.pop();
    }
    if slug.starts_with("vibedev") {
        slug.insert_str(0, "b_");
    }
    if !lossy && !slug.is_empty() && slug.len() <= MAX_SLUG {
        return slug;
    }
    let hash = &hex::encode(Sha256::digest(name.as_bytes()))[..HASH_LEN];
    slug.truncate(MAX_SLUG - HASH_LEN - 1);
    while slug.ends_with('_') {
        slug.pop();
    }
    if slug.is_empty() {
        format!("b_{hash}")
    } else {
        format!("{slug}_{hash}")
    }
}

/// The ASCII letters and digits a character stands for, `_` for ASCII punctuation it holds;
/// `None` when it has none.
fn transliterate(c: char) -> Option<String> {
    let special = match c {
        'ß' => Some("ss"),
        'æ' | 'Æ' => Some("ae"),
        'œ' | 'Œ' => Some("oe"),
        'ø' | 'Ø' => Some("o"),
        'đ' | 'Đ' | 'ð' | 'Ð' => Some("d"),
        'ł' | 'Ł' => Some("l"),
        'þ' | 'Þ' => Some("th"),
        'ı' => Some("i"),
        _ => None,
    };
    if let Some(s) = special {
        return Some(s.to_string());
    }
    let mut parts = Vec::new();
    unicode_normalization::char::decompose_compatible(c, |d| parts.push(d));
    let mut out = String::new();
    for d in parts {
        if unicode_normalization::char::is_combining_mark(d) {
            continue;
        }
        if d.is_ascii_alphanumeric() {
            out.push(d.to_ascii_lowercase());
        } else if d.is_ascii() {
            out.push('_');
        } else {
            return None;
        }
    }
    out.chars()
        .any(|c| c.is_ascii_alphanumeric())
        .then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_with_single_underscores() {
        assert_eq!(slug("feature/Add-Login"), "feature_add_login");
        assert_eq!(slug("fix//double--dash__x"), "fix_double_dash_x");
        assert_eq!(slug("-lead/trail-"), "lead_trail");
        assert_eq!(slug("v1.2.3"), "v1_2_3");
    }

    #[test]
    fn unicode_is_transliterated_or_hashed() {
        assert_eq!(slug("feature/ünïcödé"), "feature_unicode");
        assert_eq!(slug("straße"), "strasse");
        assert_eq!(slug("ﬁx"), "fix");
        // No transliteration: what is left, and a hash of the whole name.
        let ja = slug("feature/日本");
        assert!(
            ja.starts_with("feature_") && ja.len() == "feature_".len() + HASH_LEN,
            "{ja}"
        );
        assert_ne!(ja, slug("feature/中国"));
        let only = slug("日本");
        assert!(
            only.starts_with("b_") && only.len() == 2 + HASH_LEN,
            "{only}"
        );
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = format!("feature/{}", "very-long-name-".repeat(8));
        let s = slug(&long);
        assert!(s.len() <= MAX_SLUG, "{s}");
        assert!(s.starts_with("feature_very_long_name"), "{s}");
        let other = slug(&format!("{long}2"));
        assert_ne!(s, other);
        assert_eq!(s.len(), other.len());
        assert_eq!(slug(&"a".repeat(MAX_SLUG)), "a".repeat(MAX_SLUG));
    }

    #[test]
    fn vibedevs_own_names_are_kept_apart() {
        assert_eq!(slug("vibedev/next"), "b_vibedev_next");
        assert_eq!(slug("VIBEDEV_seeded"), "b_vibedev_seeded");
        assert!(slug("").starts_with("b_"));
        assert!(slug("///").starts_with("b_"));
    }

    fn db(name: &str, branch: Option<&str>) -> BranchDatabase {
        BranchDatabase {
            database: name.into(),
            branch: branch.map(str::to_string),
            last_used: None,
            bytes: 1,
        }
    }

    #[test]
    fn databases_are_matched_with_their_git_branches() {
        let local = vec!["main".to_string(), "feature/a".to_string()];
        let detached = vec!["0123456789abcdef0123".to_string()];
        let listed = classify(
            "app",
            "app__feature_a",
            Some("main"),
            vec![
                db("app", None),
                db("app__feature_a", Some("feature/a")),
                db("app__feature_b", Some("feature/b")),
                db("app__unmarked_gone", None),
                db("app__feature_a_copy", None),
                db(
                    "app__detached_0123456789ab",
                    Some("detached at 0123456789ab"),
                ),
                db("app__detached_ffffffffffff", None),
            ],
            &local,
            &detached,
        );
        let view: Vec<(&str, Option<&str>, bool, bool)> = listed
            .iter()
            .map(|l| {
                (
                    l.database().unwrap(),
                    l.branch.as_deref(),
                    l.exists,
                    l.current,
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("app", Some("main"), true, false),
                ("app__feature_a", Some("feature/a"), true, true),
                ("app__feature_b", Some("feature/b"), false, false),
                ("app__unmarked_gone", None, false, false),
                ("app__feature_a_copy", None, false, false),
                (
                    "app__detached_0123456789ab",
                    Some("detached at 0123456789ab"),
                    true,
                    false
                ),
                ("app__detached_ffffffffffff", None, false, false),
            ]
        );
        // An unmarked database is matched by its name.
        let unmarked = classify(
            "app",
            "app",
            None,
            vec![db("app__feature_a", None)],
            &local,
            &[],
        );
        assert_eq!(unmarked[0].branch.as_deref(), Some("feature/a"));
        assert!(unmarked[0].exists);
        assert!(!unmarked[0].recorded);
        assert_eq!(unmarked[0].slug(), Some("feature_a"));
    }

    fn mark(slug: &str, branch: &str) -> StoreMark {
        StoreMark {
            slug: slug.into(),
            branch: branch.into(),
        }
    }

    #[test]
    fn branches_without_databases_are_found_from_the_stores_marks() {
        let local = vec!["main".to_string(), "feature/a".to_string()];
        let detached = vec!["0123456789abcdef0123".to_string()];
        let listed = with_marks(
            vec![default_row(Some("main"), false)],
            vec![
                // a bucket's record and the Firestore mark of one branch: one row
                mark("feature_a", "feature/a"),
                mark("feature_a", "feature/a"),
                mark("feature_gone", "feature/gone"),
                mark("detached_0123456789ab", "detached at 0123456789ab"),
                mark("detached_ffffffffffff", "detached at ffffffffffff"),
            ],
            Some("feature_a"),
            &local,
            &detached,
        );
        type Row<'a> = (Option<&'a str>, Option<&'a str>, bool, bool, bool);
        let view: Vec<Row> = listed
            .iter()
            .map(|l| {
                (
                    l.slug(),
                    l.branch.as_deref(),
                    l.exists,
                    l.current,
                    l.recorded,
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (None, Some("main"), true, false, false),
                (
                    Some("detached_0123456789ab"),
                    Some("detached at 0123456789ab"),
                    true,
                    false,
                    true
                ),
                (
                    Some("detached_ffffffffffff"),
                    Some("detached at ffffffffffff"),
                    false,
                    false,
                    true
                ),
                (Some("feature_a"), Some("feature/a"), true, true, true),
                (
                    Some("feature_gone"),
                    Some("feature/gone"),
                    false,
                    false,
                    true
                ),
            ]
        );
        assert!(listed.iter().all(|l| l.database().is_none()));
        // the default branch and the one in use are refused; a gone one is found by its name
        assert!(matches!(
            find(&listed, "main"),
            Err(BranchError::DefaultBranch { .. })
        ));
        assert!(matches!(
            find(&listed, "feature/a"),
            Err(BranchError::BranchInUse { .. })
        ));
        assert_eq!(
            find(&listed, "feature/gone").unwrap().slug(),
            Some("feature_gone")
        );
        let Err(BranchError::NotFound { known, .. }) = find(&listed, "nope") else {
            panic!("found")
        };
        assert!(known.contains(&"feature/gone".to_string()), "{known:?}");
    }

    #[test]
    fn a_mark_names_the_git_branch_of_an_unrecorded_database() {
        let listed = with_marks(
            classify(
                "app",
                "app",
                Some("main"),
                vec![db("app", None), db("app__old_name", None)],
                &[],
                &[],
            ),
            vec![mark("old_name", "old/name")],
            None,
            &["old/name".to_string()],
            &[],
        );
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].branch.as_deref(), Some("old/name"));
        assert!(listed[1].exists && listed[1].recorded);
        assert!(matches!(
            find(&listed, "app"),
            Err(BranchError::AppDatabase { .. })
        ));
        assert_eq!(
            find(&listed, "old/name").unwrap().database(),
            Some("app__old_name")
        );
    }

    #[test]
    fn project_ids_and_buckets_follow_google_rules() {
        assert_eq!(
            project_id("vibesdk-local", "feature_login"),
            "vibesdk-local-feature-login"
        );
        assert_eq!(
            bucket_name("vibesdk-templates", "feature_login"),
            "vibesdk-templates-feature-login"
        );
        let long = slug("feature/a-rather-long-branch-name");
        let id = project_id("vibesdk-local", &long);
        assert!(id.len() <= MAX_PROJECT_ID, "{id}");
        assert!(id.starts_with("vibesdk-local-feature-"), "{id}");
        assert_ne!(
            id,
            project_id("vibesdk-local", &slug("feature/a-rather-long-branch-name2"))
        );
        let valid = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && !s.ends_with('-')
        };
        assert!(valid(&id), "{id}");
        let bucket = bucket_name("vibesdk-templates", &"x".repeat(MAX_SLUG));
        assert!(bucket.len() <= MAX_BUCKET && valid(&bucket), "{bucket}");
        assert_eq!(
            bucket_name("B", &detached_slug("0123456789abcdef")),
            "b-detached-0123456789ab"
        );
    }

    #[test]
    fn database_names_fit_postgres() {
        assert_eq!(database_name("vibesdk", "feature_x"), "vibesdk__feature_x");
        let long = "d".repeat(60);
        let name = database_name(&long, &"s".repeat(MAX_SLUG));
        assert_eq!(name.len(), MAX_IDENT);
        assert!(name.ends_with(&format!("__{}", "s".repeat(MAX_SLUG))));
        assert_eq!(detached_slug("ABCDEF0123456789"), "detached_abcdef012345");
    }
}
