//! Plain-text formatting shared by the terminal output and the domain's messages: counts with
//! the word that fits them, and durations as people read them.

use std::time::Duration;

/// `1 migration`, `3 migrations`: the count with the word that fits it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `1.23s` / `45ms`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// `512 B`, `3.4 KiB`, `12.0 MiB`, `1.25 GiB`: a size in bytes as people read it.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else {
        format!("{:.2} GiB", b / KIB / KIB / KIB)
    }
}

/// `3h12m`, `4m05s`, `12s`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `512 B`, `4.0 KiB`, `23.4 MiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `12s ago`, `4m ago`, `3h ago`, `2d ago`: how long ago, roughly.
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// The last `n` non-blank lines of `text`, joined with `; ` (a tool's error output on one line).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(24_536_000), "23.4 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(ago(Duration::from_secs(42)), "42s ago");
        assert_eq!(ago(Duration::from_secs(3 * 3600 + 5)), "3h ago");
        assert_eq!(ago(Duration::from_secs(2 * 86400)), "2d ago");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(Duration::from_millis(45)), "45ms");
        assert_eq!(secs(Duration::from_millis(1234)), "1.23s");
        assert_eq!(uptime(Duration::from_secs(245)), "4m05s");
        assert_eq!(uptime(Duration::from_secs(3 * 3600 + 720)), "3h12m");
    }

    #[test]
    fn counts_take_the_word_that_fits() {
        assert_eq!(count(1, "secret", "secrets"), "1 secret");
        assert_eq!(count(0, "secret", "secrets"), "0 secrets");
        assert_eq!(
            count(3, "migration is", "migrations are"),
            "3 migrations are"
        );
    }
}
