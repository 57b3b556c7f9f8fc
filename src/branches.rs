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
    #[error("no branch database {name:?}")]
    NotFound { name: String, known: Vec<String> },
    #[error("database {database} is the app database: it is not a branch's")]
    AppDatabase { database: String },
    #[error("database {database} is in use by this checkout (branch {branch})")]
    InUse { database: String, branch: String },
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
            BranchError::InUse { .. } => {
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

/// One database of the app database's family, with the git branch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub db: BranchDatabase,
    /// The git branch: as recorded on the database, else the local branch whose slug its
    /// name ends with; the default branch for the app database.
    pub branch: Option<String>,
    /// The git branch is still there (a local branch, or a commit a worktree has checked out
    /// detached); always true for the app database.
    pub exists: bool,
    /// The app database itself.
    pub default: bool,
    /// The database this checkout uses now.
    pub current: bool,
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
                    db,
                };
            }
            let detached_at = |branch: &str| {
                let commit = branch.strip_prefix("detached at ")?;
                Some(detached.iter().any(|d| d.starts_with(commit)))
            };
            let (branch, exists) = match &db.branch {
                Some(b) => (
                    Some(b.clone()),
                    detached_at(b).unwrap_or_else(|| local.contains(b)),
                ),
                None => {
                    let slug_of = |name: &str| database_name(app_database, name) == db.database;
                    let found = local
                        .iter()
                        .find(|b| slug_of(&slug(b)))
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
                db,
                branch,
                exists,
                default,
                current,
            }
        })
        .collect()
}

impl Listed {
    /// The branch's slug, read from its database's name (`None` for the app database).
    pub fn slug(&self) -> Option<&str> {
        if self.default {
            return None;
        }
        self.db.database.rsplit_once("__").map(|(_, slug)| slug)
    }
}

/// The branch database `name` names (a git branch or a database), unless it is the app
/// database or the one this checkout uses.
pub fn find<'a>(listed: &'a [Listed], name: &str) -> Result<&'a Listed, BranchError> {
    let found = listed
        .iter()
        .find(|l| l.db.database == name || l.branch.as_deref() == Some(name))
        .ok_or_else(|| BranchError::NotFound {
            name: name.to_string(),
            known: listed
                .iter()
                .filter(|l| !l.default)
                .map(|l| l.branch.clone().unwrap_or_else(|| l.db.database.clone()))
                .collect(),
        })?;
    if found.default {
        return Err(BranchError::AppDatabase {
            database: found.db.database.clone(),
        });
    }
    if found.current {
        return Err(BranchError::InUse {
            database: found.db.database.clone(),
            branch: found.branch.clone().unwrap_or_default(),
        });
    }
    Ok(found)
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
                    l.db.database.as_str(),
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
