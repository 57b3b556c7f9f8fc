//! `vibedev run --mask`: every value of `.env.gcp`'s secrets is replaced by `<secret:KEY>` in the
//! command's stdout and stderr, whole, split across writes, inside longer lines, and through a
//! pseudo-terminal; everything else arrives byte for byte, and values under 6 bytes stay.

mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use support::Run;
use support::secrets::SecretsProject;

const JWT: &str = "jwt-Mask-7f3a-value";
const API: &str = "sk-mask-Qp29-0000";
const SHORT: &str = "ab12x";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqMask\n-----END PRIVATE KEY-----\n";

fn pulled(tag: &str) -> SecretsProject {
    let p = SecretsProject::new(
        tag,
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nOPENAI_API_KEY={{ secret \"openai-api-key\" }}\nPIN={{ secret \"pin\" }}\nPRIVATE_KEY={{ secret \"private-key\" }}\nAPP_ENV=development\n",
    );
    p.server.add_secret("jwt-secret", &[], &[JWT.as_bytes()]);
    p.server
        .add_secret("openai-api-key", &[], &[API.as_bytes()]);
    p.server.add_secret("pin", &[], &[SHORT.as_bytes()]);
    p.server.add_secret("private-key", &[], &[PEM.as_bytes()]);
    p.ok(&["secrets", "pull"]);
    p
}

fn assert_no_secret(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for value in [JWT, API, "MIIEvQIBADANBgkqMask"] {
        assert!(!text.contains(value), "{value} got through:\n{text}");
    }
}

/// A child that prints the values whole, split across two writes (with a pause between them),
/// inside longer lines, in both streams.
const SCRIPT: &str = r#"
printf 'whole: %s\n' "$JWT_SECRET"
printf 'start %s' "${OPENAI_API_KEY%????????}"; sleep 0.05; printf '%s end\n' "${OPENAI_API_KEY#?????????}"
printf 'in a line [%s] and [%s] and the short pin %s\n' "$JWT_SECRET" "$OPENAI_API_KEY" "$PIN"
printf 'err: %s|' "$JWT_SECRET" >&2
printf '%s' "${JWT_SECRET%???????}" >&2; sleep 0.05; printf '%s\n' "${JWT_SECRET#????????????}" >&2
printf '%s' "$PRIVATE_KEY"
printf 'line of the key: %s\n' "$(printf '%s' "$PRIVATE_KEY" | sed -n 2p)"
if [ -t 1 ]; then t=yes; else t=no; fi
printf 'app env %s, tty %s\n' "$APP_ENV" "$t"
exit 3
"#;

#[test]
fn masked_values_never_reach_stdout_or_stderr() {
    let p = pulled("mask-pipes");
    let run = p.run(&["run", "--mask", "--", "sh", "-c", SCRIPT]);
    assert_eq!(run.code, Some(3), "exit code passes through: {run}");
    assert_no_secret(run.stdout.as_bytes());
    assert_no_secret(run.stderr.as_bytes());
    // Everything else is exactly what the command wrote.
    let expected_out = format!(
        "whole: <secret:JWT_SECRET>\nstart <secret:OPENAI_API_KEY> end\nin a line [<secret:JWT_SECRET>] and [<secret:OPENAI_API_KEY>] and the short pin {SHORT}\n<secret:PRIVATE_KEY>line of the key: <secret:PRIVATE_KEY>\napp env development, tty no\n"
    );
    assert_eq!(run.stdout, expected_out, "{run}");
    assert!(
        run.stderr
            .ends_with("err: <secret:JWT_SECRET>|<secret:JWT_SECRET>\n"),
        "{run}"
    );
}

#[test]
fn without_mask_output_is_untouched() {
    let p = pulled("mask-off");
    let run = p.run(&["run", "--", "sh", "-c", "printf '%s' \"$JWT_SECRET\""]);
    assert!(run.success(), "{run}");
    assert_eq!(run.stdout, JWT);
}

#[test]
fn large_binary_output_passes_byte_for_byte() {
    let p = pulled("mask-bytes");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(p.project.path().join("data.bin"), &data).unwrap();
    let out = p
        .cmd(&["run", "--mask", "--", "cat", "data.bin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "the bytes changed on the way");
}

/// A pseudo-terminal pair from the test's side: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills two descriptors; name, termios and size are not given.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here only.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn on_a_terminal_the_command_sees_a_terminal_and_values_are_still_masked() {
    let p = pulled("mask-pty");
    let (master, slave) = openpty();
    let err_path = p.project.path().join("stderr.out");
    let mut child = p
        .cmd(&["run", "--mask", "--", "sh", "-c", SCRIPT])
        .stdout(Stdio::from(slave))
        .stderr(std::fs::File::create(&err_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Our copies of the slave are gone (moved into the command and dropped with it).
    let mut seen = Vec::new();
    let mut reader = std::fs::File::from(master);
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO once vibedev (the last holder) has closed it
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_no_secret(&seen);
    let text = String::from_utf8_lossy(&seen).replace("\r\n", "\n");
    assert!(text.contains("tty yes"), "{text}");
    assert!(text.contains("whole: <secret:JWT_SECRET>\n"), "{text}");
    assert!(
        text.contains("start <secret:OPENAI_API_KEY> end\n"),
        "{text}"
    );
    let err = std::fs::read(&err_path).unwrap();
    assert_no_secret(&err);
    assert!(
        String::from_utf8_lossy(&err).ends_with("err: <secret:JWT_SECRET>|<secret:JWT_SECRET>\n"),
        "{}",
        String::from_utf8_lossy(&err)
    );
}

#[test]
fn mask_can_be_the_default_through_the_environment() {
    let p = pulled("mask-env");
    let run = Run::from(
        p.cmd(&["run", "--", "sh", "-c", "printf '%s' \"$JWT_SECRET\""])
            .env("VIBEDEV_RUN_MASK", "true")
            .output()
            .unwrap(),
    );
    assert!(run.success(), "{run}");
    assert_eq!(run.stdout, "<secret:JWT_SECRET>");
}
