//! A command's stdout and stderr through a [`Masker`] on their way to vibedev's own: each stream
//! is a pseudo-terminal when vibedev's is a terminal (so the command still sees one: colours,
//! line buffering, interactive servers) and a pipe otherwise, copied by a thread of its own.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use super::mask::Masker;

/// Bytes read at once.
const CHUNK: usize = 64 * 1024;

/// Which of vibedev's streams one relay feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn ours(self) -> BorrowedFd<'static> {
        match self {
            // SAFETY: descriptors 1 and 2 stay open for the life of the process.
            Stream::Stdout => unsafe { BorrowedFd::borrow_raw(1) },
            Stream::Stderr => unsafe { BorrowedFd::borrow_raw(2) },
        }
    }
}

/// The reading ends of the command's two streams, waiting for [`Outputs::start`].
pub struct Outputs {
    readers: Vec<Reader>,
}

struct Reader {
    stream: Stream,
    from: File,
    /// A pseudo-terminal's master, kept to pass on window size changes.
    pty: Option<OwnedFd>,
}

/// Copies running; [`Relay::finished`] resolves when every stream reached its end.
pub struct Relay {
    ptys: Vec<(Stream, OwnedFd)>,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl Outputs {
    /// A pseudo-terminal for each of vibedev's streams that is a terminal, a pipe for the
    /// others: the command's stdout and stderr, and the reading ends.
    pub fn open() -> std::io::Result<(Stdio, Stdio, Outputs)> {
        let mut ends = Vec::new();
        let mut readers = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (child, reader) = if std::io::stdout().is_terminal() && stream == Stream::Stdout
                || std::io::stderr().is_terminal() && stream == Stream::Stderr
            {
                let (master, slave) = open_pty(stream.ours())?;
                let from = File::from(master.try_clone()?);
                (
                    slave,
                    Reader {
                        stream,
                        from,
                        pty: Some(master),
                    },
                )
            } else {
                let (read, write) = pipe()?;
                (
                    write,
                    Reader {
                        stream,
                        from: File::from(read),
                        pty: None,
                    },
                )
            };
            ends.push(child);
            readers.push(reader);
        }
        let stderr = ends.pop().map(Stdio::from).unwrap_or_else(Stdio::inherit);
        let stdout = ends.pop().map(Stdio::from).unwrap_or_else(Stdio::inherit);
        Ok((stdout, stderr, Outputs { readers }))
    }

    /// Starts one copying thread per stream, each with its own masker from `secrets`.
    pub fn start(self, secrets: &[(String, String)]) -> std::io::Result<Relay> {
        let mut ptys = Vec::new();
        let mut done = Vec::new();
        for reader in self.readers {
            if let Some(master) = reader.pty {
                ptys.push((reader.stream, master));
            }
            let to = File::from(reader.stream.ours().try_clone_to_owned()?);
            let masker = Masker::new(secrets);
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("vibedev-mask".into())
                .spawn(move || {
                    copy(reader.from, to, masker);
                    let _ = tx.send(());
                })?;
            done.push(rx);
        }
        Ok(Relay { ptys, done })
    }
}

impl Relay {
    /// Gives each pseudo-terminal the size of the terminal it stands in for (after SIGWINCH).
    pub fn resize(&self) {
        for (stream, master) in &self.ptys {
            if let Some(size) = window_size(stream.ours()) {
                // SAFETY: TIOCSWINSZ with a valid winsize on a descriptor we own.
                unsafe {
                    libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
                }
            }
        }
    }

    /// Resolves when every stream has ended (the command and whatever it started closed them).
    pub async fn finished(self) {
        for rx in self.done {
            let _ = rx.await;
        }
    }
}

/// Reads until the end (EIO on a pseudo-terminal whose other side is closed), masking, and
/// writes on. A closed output (`| head`) ends the copy, so the command sees its pipe close.
fn copy(mut from: File, mut to: File, mut masker: Masker) {
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + 1024);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: the pseudo-terminal's last writer is gone.
            Err(_) => break,
        };
        out.clear();
        masker.push(&buf[..n], &mut out);
        if !out.is_empty() && to.write_all(&out).is_err() {
            return;
        }
    }
    out.clear();
    masker.finish(&mut out);
    let _ = to.write_all(&out);
}

fn window_size(fd: BorrowedFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it or fails.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } == 0;
    ok.then_some(size)
}

/// A pseudo-terminal sized like `like`, whose output is passed on byte for byte (no `\n` to
/// `\r\n`: the real terminal does that). Both ends close on exec.
fn open_pty(like: BorrowedFd) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let size = window_size(like);
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors; the name is not asked for, the size may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            size.as_ref()
                .map_or(std::ptr::null(), |s| s as *const libc::winsize),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: fcntl on descriptors we own.
        unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave.as_raw_fd(), &mut t) == 0 {
            t.c_oflag &= !libc::OPOST;
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t);
        }
    }
    Ok((master, slave))
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pseudo_terminal_passes_bytes_unchanged() {
        let (master, slave) = open_pty(std::io::stdin().as_fd()).unwrap();
        let mut w = File::from(slave);
        w.write_all(b"a\nb\r\n").unwrap();
        drop(w);
        let mut r = File::from(master);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"a\nb\r\n");
    }
}
