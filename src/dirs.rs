//! The user's folders vibedev keeps things in, as the XDG base directories say (state: port
//! files, the fingerprint key; data: snapshots), and folders only their owner can enter.

use std::path::{Path, PathBuf};

/// `$XDG_STATE_HOME/vibedev`, else `$HOME/.local/state/vibedev`.
pub fn state_dir() -> Option<PathBuf> {
    base("XDG_STATE_HOME", ".local/state").map(|d| d.join("vibedev"))
}

/// `$XDG_DATA_HOME/vibedev`, else `$HOME/.local/share/vibedev`.
pub fn data_dir() -> Option<PathBuf> {
    base("XDG_DATA_HOME", ".local/share").map(|d| d.join("vibedev"))
}

/// The XDG variable when it holds an absolute path (the specification ignores a relative one),
/// else `$HOME/<fallback>` when HOME is an absolute path.
fn base(var: &str, fallback: &str) -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute(var).or_else(|| absolute("HOME").map(|home| home.join(fallback)))
}

/// Creates `dir` (and its parents) with mode 0700: it holds sockets, keys or records of one user.
pub fn create_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
