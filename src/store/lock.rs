//! One run at a time per state: for a file, an OS file lock on `<state>.lock`; for a
//! PostgreSQL state, an advisory lock held by a session of its own for the length of
//! the pass (see `lock_postgres.rs`).
//!
//! Either way the lock dies with its holder, however it ends (a crash or SIGKILL
//! included): the operating system drops a file lock when the process ends, and
//! PostgreSQL an advisory lock when the session's connection closes. A dead run can
//! never leave rosterd unable to run. The lock file (or the session's
//! application_name) names the owner's pid, for the message a second run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::lock_postgres::PgRunLock;
use super::StateLocation;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another rosterd run holds {at} (pid {holder}); wait for it to finish")]
    Busy { at: String, holder: String },
    #[error("cannot open the run lock {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot take the run lock of {at}: {source}")]
    Postgres {
        at: String,
        #[source]
        source: super::StoreError,
    },
}

/// Held for the length of a run; dropping it releases the lock.
#[derive(Debug)]
pub enum RunLock {
    File(FileLock),
    Postgres(PgRunLock),
}

impl RunLock {
    /// Takes the run lock of `state`, or says who holds it. Never waits.
    pub async fn acquire(state: &StateLocation) -> Result<RunLock, LockError> {
        match state {
            StateLocation::File(path) => FileLock::acquire(path).map(RunLock::File),
            StateLocation::Postgres(pg) => PgRunLock::acquire(pg).await.map(RunLock::Postgres),
        }
    }

    /// The pid of the run holding the lock of `state`, if one is running. Never
    /// takes the lock (a `status` must not make a starting pass find it busy).
    pub async fn holder(state: &StateLocation) -> Option<u32> {
        match state {
            StateLocation::File(path) => FileLock::holder(path),
            StateLocation::Postgres(pg) => PgRunLock::holder(pg).await,
        }
    }

    /// The lock file that goes with a state file.
    pub fn path_for(state: &Path) -> PathBuf {
        FileLock::path_for(state)
    }

    /// Gives the lock back now (a PostgreSQL session says goodbye instead of
    /// dropping its connection; the server releases it either way).
    pub async fn release(self) {
        match self {
            RunLock::File(lock) => drop(lock),
            RunLock::Postgres(lock) => lock.release().await,
        }
    }
}

/// The run lock of a state file.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file that goes with a state file.
    pub fn path_for(state: &Path) -> PathBuf {
        let mut name = state
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        state.with_file_name(name)
    }

    /// Takes the lock for `state`, or says who holds it. Never waits.
    pub fn acquire(state: &Path) -> Result<FileLock, LockError> {
        let path = Self::path_for(state);
        let open_err = |source| LockError::Open {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(open_err)?;
        crate::files::private(&path).map_err(open_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    at: path.display().to_string(),
                    holder: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder.into()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        // Best effort: the pid is only for the message a second run prints.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(FileLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of the run holding the lock for `state`, if one is running: the pid
    /// the lock file names, when that process is alive. A run that ended cleanly
    /// empties the file; one that was killed leaves its pid, which is then not alive.
    pub fn holder(state: &Path) -> Option<u32> {
        let text = std::fs::read_to_string(Self::path_for(state)).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let alive = rustix::process::Pid::from_raw(pid).is_some_and(|pid| {
            match rustix::process::test_kill_process(pid) {
                Ok(()) => true,
                // It exists, but belongs to someone else.
                Err(e) => e == rustix::io::Errno::PERM,
            }
        });
        alive.then_some(pid.unsigned_abs())
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Emptied first: the file no longer names a holder once the lock is free.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("rosterd.db");
        let first = FileLock::acquire(&state).unwrap();
        assert_eq!(first.path(), dir.path().join("rosterd.db.lock"));
        match FileLock::acquire(&state) {
            Err(LockError::Busy { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        let again = FileLock::acquire(&state);
        assert!(again.is_ok(), "{again:?}");
    }

    #[test]
    fn locks_of_different_state_files_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let _a = FileLock::acquire(&dir.path().join("a.db")).unwrap();
        assert!(FileLock::acquire(&dir.path().join("b.db")).is_ok());
    }

    #[test]
    fn a_lock_in_a_missing_folder_is_a_clear_error() {
        let err = FileLock::acquire(Path::new("/nonexistent/dir/rosterd.db")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/dir/rosterd.db.lock"),
            "{err}"
        );
    }
}
