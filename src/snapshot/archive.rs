//! One snapshot as one file, to move it to another machine: `snapshot export` / `import`.
//!
//! Layout: a header (`vibedev-snapshot`, then the archive format as a little-endian u32), the
//! payload (a zstd-compressed tar of `manifest.json` and `stores/...`), and a trailer (the
//! payload's length as a little-endian u64, its CRC32C as a little-endian u32, then `VDSE`).
//! An import checks, before anything is unpacked, that the file is one (header), that this
//! vibedev reads its format, that it is whole (trailer, length) and unchanged (CRC32C); it then
//! unpacks beside the project's snapshots, checks every file against the manifest's sizes and
//! CRC32Cs, and only then renames the result into place. Whatever fails, nothing changes.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use super::{MANIFEST, Manifest, SnapshotError};

/// The archive format this vibedev writes and reads.
pub const ARCHIVE_FORMAT: u32 = 1;

const MAGIC: &[u8; 16] = b"vibedev-snapshot";
const HEADER: u64 = 16 + 4;
const END: &[u8; 4] = b"VDSE";
const TRAILER: u64 = 8 + 4 + 4;

/// zstd's default level: fast, and most of the gain.
const LEVEL: i32 = 3;

/// Writes the snapshot in `dir` (already checked against `manifest`) to `file`, through a
/// file beside it renamed into place when complete. Returns the file's size.
pub fn export(manifest: &Manifest, dir: &Path, file: &Path) -> Result<u64, SnapshotError> {
    if file.exists() {
        return Err(SnapshotError::FileExists {
            path: file.to_path_buf(),
        });
    }
    let partial = partial_path(file);
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io {
            action,
            path,
            source,
        }
    };
    let result = (|| {
        let out = File::create(&partial).map_err(io_err("create", &partial))?;
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(MAGIC)
            .and_then(|()| out.write_all(&ARCHIVE_FORMAT.to_le_bytes()))
            .map_err(io_err("write", &partial))?;
        let payload = Checked::new(out);
        let encoder =
            zstd::Encoder::new(payload, LEVEL).map_err(io_err("compress into", &partial))?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        let bytes = serde_json::to_vec_pretty(manifest).map_err(io::Error::other);
        let bytes = bytes.map_err(io_err("encode the manifest of", dir))?;
        append(&mut tar, MANIFEST, &mut &bytes[..], bytes.len() as u64)
            .map_err(io_err("write", &partial))?;
        for store in &manifest.stores {
            for f in &store.files {
                let name = format!("stores/{}/{}", store.service, f.path);
                let path = dir.join("stores").join(&store.service).join(&f.path);
                let mut src = File::open(&path).map_err(io_err("read", &path))?;
                append(&mut tar, &name, &mut src, f.size).map_err(io_err("write", &partial))?;
            }
        }
        let encoder = tar.into_inner().map_err(io_err("write", &partial))?;
        let payload = encoder
            .finish()
            .map_err(io_err("compress into", &partial))?;
        let (mut out, len, crc) = payload.into_parts();
        out.write_all(&len.to_le_bytes())
            .and_then(|()| out.write_all(&crc.to_le_bytes()))
            .and_then(|()| out.write_all(END))
            .and_then(|()| out.flush())
            .map_err(io_err("write", &partial))?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(io_err("write", &partial))?;
        std::fs::rename(&partial, file).map_err(io_err("write", file))?;
        Ok(HEADER + len + TRAILER)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `FILE.partial-<pid>` beside `file`.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    file.with_file_name(name)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &mut dyn Read,
    size: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // A file that changed size since it was checked would make a broken archive: it fails here.
    tar.append_data(&mut header, name, data.take(size))
}

/// A writer that counts the bytes written through it and their CRC32C.
struct Checked<W> {
    inner: W,
    len: u64,
    crc: u32,
}

impl<W: Write> Checked<W> {
    fn new(inner: W) -> Checked<W> {
        Checked {
            inner,
            len: 0,
            crc: 0,
        }
    }

    fn into_parts(self) -> (W, u64, u32) {
        (self.inner, self.len, self.crc)
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Checks `file` as a whole (header, format, trailer, length, CRC32C) and unpacks it into
/// `into` (a folder that does not exist yet). Returns the manifest it holds, unchecked.
pub fn unpack(file: &Path, into: &Path) -> Result<Manifest, SnapshotError> {
    let bad = |why: String| SnapshotError::BadArchive {
        path: file.to_path_buf(),
        why,
    };
    let read_err = |source| SnapshotError::Io {
        action: "read",
        path: file.to_path_buf(),
        source,
    };
    let mut f = File::open(file).map_err(read_err)?;
    let total = f.metadata().map_err(read_err)?.len();
    let mut header = [0u8; HEADER as usize];
    if total < HEADER || f.read_exact(&mut header).is_err() || &header[..16] != MAGIC {
        return Err(bad(
            "it is not a snapshot file written by `vibedev snapshot export`".into(),
        ));
    }
    let version = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if version > ARCHIVE_FORMAT {
        return Err(SnapshotError::NewerArchive {
            path: file.to_path_buf(),
            found: version,
        });
    }
    if total < HEADER + TRAILER {
        return Err(bad(format!(
            "it is truncated: {total} bytes, too short for a snapshot"
        )));
    }
    let mut trailer = [0u8; TRAILER as usize];
    f.seek(SeekFrom::Start(total - TRAILER))
        .and_then(|_| f.read_exact(&mut trailer))
        .map_err(read_err)?;
    let len = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(trailer[8..12].try_into().unwrap_or_default());
    if &trailer[12..] != END || len != total - HEADER - TRAILER {
        return Err(bad(format!(
            "it is truncated: it ends after {total} bytes without the end a complete export has"
        )));
    }
    f.seek(SeekFrom::Start(HEADER)).map_err(read_err)?;
    let mut payload = BufReader::with_capacity(1 << 20, (&mut f).take(len));
    let mut found = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = payload.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        found = crc32c::crc32c_append(found, &buf[..n]);
    }
    if found != crc {
        return Err(bad(
            "it is corrupt: its content does not match its checksum".into(),
        ));
    }
    f.seek(SeekFrom::Start(HEADER)).map_err(read_err)?;
    let decoder =
        zstd::Decoder::new(f.take(len)).map_err(|e| bad(format!("it does not decompress: {e}")))?;
    std::fs::create_dir_all(into).map_err(|source| SnapshotError::Io {
        action: "create",
        path: into.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("it does not unpack: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("it does not unpack: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("it does not unpack: {e}")))?
            .into_owned();
        if !allowed(&path) {
            return Err(bad(format!(
                "it holds {}, which is no part of a snapshot",
                path.display()
            )));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular => {}
            tar::EntryType::Directory => continue,
            other => {
                return Err(bad(format!(
                    "it holds {} as a {other:?} entry, not a file",
                    path.display()
                )));
            }
        }
        let dest = into.join(&path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SnapshotError::Io {
                action: "create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut out = File::create(&dest).map_err(|source| SnapshotError::Io {
            action: "write",
            path: dest.clone(),
            source,
        })?;
        io::copy(&mut entry, &mut out).map_err(|e| bad(format!("it does not unpack: {e}")))?;
    }
    let bytes =
        std::fs::read(into.join(MANIFEST)).map_err(|_| bad("it holds no manifest.json".into()))?;
    super::parse_manifest(&file.display().to_string(), &bytes)
}

/// Only `manifest.json` and plain relative paths under `stores/`.
fn allowed(path: &Path) -> bool {
    let parts: Vec<Component<'_>> = path.components().collect();
    if !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
        return false;
    }
    match parts.first() {
        Some(Component::Normal(first)) if parts.len() == 1 => *first == MANIFEST,
        Some(Component::Normal(first)) => *first == "stores",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_snapshot_paths_unpack() {
        assert!(allowed(Path::new("manifest.json")));
        assert!(allowed(Path::new("stores/postgres/data/0.copy")));
        for bad in [
            "../x",
            "/etc/passwd",
            "stores/../../x",
            "other/file",
            "manifest.json/x",
        ] {
            assert!(!allowed(Path::new(bad)), "{bad}");
        }
    }
}
