//! A second real, independent SCIM 2.0 server for the tests: django-scim2 (PyPI,
//! 0.23.0) in the throwaway Django project of `tests/fixtures/django_scim/`, served
//! by waitress on a free 127.0.0.1 port with a bearer token and a fresh SQLite
//! database in a temp dir, and killed on drop.
//!
//! The Python is `$ROSTERD_DJANGO_SCIM` (set by `.ci/run`: the venv's `python`), else
//! the one in `${TMPDIR:-/tmp}/rosterd-django-scim-venv`, created here when missing
//! (with a lock file, since tests run at the same time).
//!
//! The project logs every request it gets (method and path), so tests count the
//! writes rosterd sent from the server's side ([`DjangoScim::writes`]).
//! [`RealScim`] is what the lifecycle tests need of either server.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::process::{free_port, wait_for};
use super::scim_server::ScimServer;

/// The pip requirements the tests run against.
const REQUIREMENTS: [&str; 3] = ["django-scim2==0.23.0", "Django>=5.2,<6", "waitress>=3,<4"];

/// What a lifecycle test needs of a real SCIM server.
pub trait RealScim {
    /// The server and its version, for messages.
    fn label(&self) -> &'static str;
    fn base_url(&self) -> String;
    fn token(&self) -> &str;
    /// One request as the test client (path below the base URL): (status, JSON or null).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value);
    /// Every user the server holds (read page by page).
    fn all_users(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let path = format!("/Users?startIndex={}&count=100", out.len() + 1);
            let (status, body) = self.call("GET", &path, None);
            assert_eq!(status, 200, "{} listing /Users: {body}", self.label());
            let page = body["Resources"].as_array().cloned().unwrap_or_default();
            let total = body["totalResults"].as_u64().unwrap() as usize;
            let empty = page.is_empty();
            out.extend(page);
            if out.len() >= total || empty {
                return out;
            }
        }
    }
    /// Creates a user directly on the server (not through rosterd).
    fn seed(&self, user: Value) -> Value {
        let (status, body) = self.call("POST", "/Users", Some(&user));
        assert_eq!(status, 201, "{} seeding: {body}", self.label());
        body
    }
}

impl RealScim for ScimServer {
    fn label(&self) -> &'static str {
        "scim2-server 0.8"
    }
    fn base_url(&self) -> String {
        ScimServer::base_url(self)
    }
    fn token(&self) -> &str {
        ScimServer::token(self)
    }
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request(method, path, body)
    }
}

pub struct DjangoScim {
    child: Child,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

/// The venv's Python with django-scim2 and waitress, installed first when needed.
pub fn python() -> PathBuf {
    super::venv::Venv {
        name: "rosterd-django-scim-venv",
        requirements: &REQUIREMENTS,
        ready: "bin/waitress-serve",
        env: "ROSTERD_DJANGO_SCIM",
    }
    .python()
}

impl DjangoScim {
    pub fn start() -> DjangoScim {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let token = format!("django-test-token-{port}-{}", std::process::id());
        let serve = super::fixture_path("django_scim/serve.py");
        let child = Command::new(python())
            .arg(serve)
            .env("ROSTERD_DJANGO_PORT", port.to_string())
            .env("ROSTERD_DJANGO_TOKEN", &token)
            .env("ROSTERD_DJANGO_DIR", dir.path())
            // The fixture folder stays clean of bytecode.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = DjangoScim {
            child,
            port,
            token,
            dir,
        };
        wait_for("django-scim2 to answer", Duration::from_secs(60), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = server.child.stderr.as_mut() {
                    e.read_to_string(&mut err).ok();
                }
                panic!("django-scim2 exited at start: {status}\n{err}");
            }
            server
                .try_request("GET", "/ServiceProviderConfig", None)
                .filter(|(s, _)| *s == 200)
        });
        std::fs::write(server.log_path(), "").unwrap();
        server
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.log")
    }

    /// Every request the server got since it started (or since the last
    /// [`DjangoScim::clear_log`]), as `METHOD path?query`, the test client's included.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn clear_log(&self) {
        std::fs::write(self.log_path(), "").unwrap();
    }

    /// The requests in the log that change something (POST, PUT, PATCH, DELETE).
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| !l.starts_with("GET "))
            .collect()
    }

    fn try_request(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        super::scim_server::scim_request(
            self.port,
            &self.token,
            &format!("/scim/v2{path}"),
            method,
            body,
        )
    }
}

impl RealScim for DjangoScim {
    fn label(&self) -> &'static str {
        "django-scim2 0.23.0"
    }
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/scim/v2", self.port)
    }
    fn token(&self) -> &str {
        &self.token
    }
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("django-scim2 did not answer {method} {path}"))
    }
}

impl Drop for DjangoScim {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
