//! The command line itself: shell completions for every supported shell, and `--version` with the
//! git revision the binary was built from. No Docker needed.

mod support;

use std::process::Command;

const SUBCOMMANDS: [&str; 8] = [
    "up",
    "down",
    "status",
    "logs",
    "env",
    "doctor",
    "init",
    "completions",
];

fn vibedev(args: &[&str]) -> support::Run {
    let mut cmd = Command::new(support::bin());
    cmd.args(args);
    support::hermetic(&mut cmd);
    support::Run::from(cmd.output().unwrap())
}

#[test]
fn completions_for_each_shell_name_every_subcommand() {
    // The subcommands are those of the help's command table (`help` itself aside), which must
    // include at least the onboarding ones.
    let help = vibedev(&["--help"]);
    assert!(help.success(), "{help}");
    let subs: Vec<String> = support::help_commands(&help.stdout)
        .into_iter()
        .filter(|c| c != "help")
        .collect();
    for sub in SUBCOMMANDS {
        assert!(
            subs.iter().any(|s| s == sub),
            "{sub} not in the help: {help}"
        );
    }
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = vibedev(&["completions", shell]);
        assert!(run.success(), "{shell}: {run}");
        assert!(
            run.stdout.len() > 500,
            "{shell}: suspiciously short:\n{run}"
        );
        assert!(run.stdout.contains("vibedev"), "{shell}");
        // Each subcommand as an entry of the shell's own top-level command list (a bare
        // substring would match nearly any script: `up` is in "upwards").
        for sub in &subs {
            let entry = match shell {
                "bash" => format!("            vibedev,{sub})"),
                "zsh" => format!("\n'{sub}:"),
                "fish" => format!(
                    "complete -c vibedev -n \"__fish_vibedev_needs_command\" -f -a \"{sub}\" -d "
                ),
                _ => format!("[CompletionResult]::new('{sub}', '{sub}', "),
            };
            assert!(
                run.stdout.contains(&entry),
                "{shell} completions have no command entry for {sub} ({entry:?})"
            );
        }
        // Flags of subcommands are there too (fish writes them as `-l volumes`).
        assert!(run.stdout.contains("volumes"), "{shell}");
        assert!(run.stdout.contains("json"), "{shell}");
    }
}

#[test]
fn completions_reject_an_unknown_shell() {
    let run = vibedev(&["completions", "tcsh"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("possible values"), "{run}");
}

#[test]
fn version_names_the_crate_version_and_the_git_revision() {
    let run = vibedev(&["--version"]);
    assert!(run.success(), "{run}");
    let line = run.stdout.trim();
    let expected_rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let prefix = format!("vibedev {} (", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&prefix), "{line}");
    let rev = line[prefix.len()..].trim_end_matches(')');
    match expected_rev {
        Some(expected) => assert!(
            rev == expected || rev == format!("{expected}-dirty"),
            "{line} does not name HEAD {expected}"
        ),
        None => assert_eq!(rev, "unknown revision"),
    }
    // Every subcommand reports the same version.
    let sub = vibedev(&["doctor", "--version"]);
    assert_eq!(
        sub.stdout.trim(),
        line.replacen("vibedev", "vibedev-doctor", 1)
    );
}
