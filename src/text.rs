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

#[cfg(test)]
mod tests {
    use super::*;

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
