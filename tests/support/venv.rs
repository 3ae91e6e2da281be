//! Python tools the tests run (the real SCIM servers), each in
//! its own venv under `${TMPDIR:-/tmp}`: installed on first use (with a lock file,
//! since tests run at the same time), or taken from an environment variable that
//! `.ci/run` sets after installing them itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::wait_for;

/// A venv: its folder name, what to `pip install`, the file whose presence says the
/// install finished, and the environment variable that overrides it all.
pub struct Venv {
    pub name: &'static str,
    pub requirements: &'static [&'static str],
    /// Relative to the venv (`bin/waitress-serve`).
    pub ready: &'static str,
    /// Names the venv's `python` (or the tool) to use instead.
    pub env: &'static str,
}

impl Venv {
    /// The venv's `bin/python` (or `$env`), installing the venv first when needed.
    pub fn python(&self) -> PathBuf {
        self.file("bin/python")
    }

    /// `relative` in the venv (or `$env`), installing the venv first when needed.
    pub fn file(&self, relative: &str) -> PathBuf {
        if let Some(p) = std::env::var_os(self.env) {
            return PathBuf::from(p);
        }
        let tmp = std::env::var_os("TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let venv = tmp.join(self.name);
        let ready = venv.join(self.ready);
        let wanted = venv.join(relative);
        if ready.exists() {
            return wanted;
        }
        let lock = tmp.join(format!("{}.lock", self.name));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {
                let result = install(&venv, self.requirements);
                std::fs::remove_file(&lock).ok();
                result.unwrap_or_else(|e| {
                    panic!(
                        "cannot install {:?} into {}: {e}",
                        self.requirements,
                        venv.display()
                    )
                });
            }
            // Another test is installing it: wait for it.
            Err(_) => wait_for(
                &format!("{:?} to be installed", self.requirements),
                Duration::from_secs(600),
                || (ready.exists() && !lock.exists()).then_some(()),
            ),
        }
        wanted
    }
}

fn install(venv: &Path, requirements: &[&str]) -> Result<(), String> {
    let run = |c: &mut Command| -> Result<(), String> {
        let out = c.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .args(requirements))
}
