//! Files rosterd reads and creates. The small files a config names (the config
//! itself, secret files) are read safely: only regular files, never more than a limit,
//! and never blocking on a FIFO or a device (`/dev/zero`, a named pipe nobody writes
//! to). The files rosterd creates (state, its `-wal`/`-shm`, the lock, logs) are
//! private: 0600, in folders of 0700.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Files and folders rosterd creates are its own: the state file holds every
/// employee's name and email, the logs their changes. With this mask every file is
/// created 0600 and every folder 0700, whatever the umask rosterd was started with.
/// (The state and lock files also ask for 0600 themselves: see [`private`].)
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Makes the existing file at `path` 0600 if group or others may use it (a file made
/// by an older rosterd, or by hand); a missing file is left missing. Returns whether
/// it was changed.
pub fn private(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates `path` empty with mode 0600 unless it exists, so that SQLite (which gives
/// its `-wal` and `-shm` files the database file's mode) never makes it 0644.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file (a {0}): refused")]
    NotRegular(&'static str),
    #[error("larger than the limit of {}: refused", crate::net::show_bytes(*limit))]
    TooLarge { limit: usize },
}

/// Opens the regular file at `path` for reading, refusing anything else without
/// blocking.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    // Look before opening: opening a FIFO for reading blocks until a writer comes.
    check_regular(&std::fs::metadata(path)?)?;
    // And open without blocking anyway, in case the file was swapped between the look
    // and the open; then check what was actually opened.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    check_regular(&file.metadata()?)?;
    Ok(file)
}

/// The whole of the regular file at `path`, at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let meta = file.metadata()?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // A file that grows while being read is still cut at the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        });
    }
    Ok(bytes)
}

/// Refuses anything but a regular file, naming what it is.
fn check_regular(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    Err(ReadError::NotRegular(if t.is_dir() {
        "folder"
    } else if t.is_fifo() {
        "named pipe"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_are_private_and_open_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("made");
        create_private(&made).unwrap();
        assert_eq!(mode(&made), 0o600);
        let open = dir.path().join("open");
        std::fs::write(&open, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(private(&open).unwrap());
        assert_eq!(mode(&open), 0o600);
        assert!(!private(&open).unwrap());
        assert!(!private(&dir.path().join("missing")).unwrap());
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"hello");
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello!").unwrap();
        let e = read_regular(&p, 5).unwrap_err();
        assert!(e.to_string().contains("limit of 5 bytes"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_regular(&p, 1024).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
    }

    #[test]
    fn devices_and_folders_are_refused() {
        let e = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = read_regular(dir.path(), 1024).unwrap_err();
        assert!(e.to_string().contains("folder"), "{e}");
    }
}
