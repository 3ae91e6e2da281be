//! A real, independent SCIM 2.0 server for the tests: `scim2-server` from PyPI
//! (0.8.x), started on a free 127.0.0.1 port with a bearer token, and killed on drop.
//!
//! The binary is `$ROSTERD_SCIM2_SERVER` (set by `.ci/run`), else the one in
//! `${TMPDIR:-/tmp}/rosterd-scim-venv`, which is created here when missing (with a
//! lock file, since test binaries run at the same time), so that a plain `cargo test`
//! works on a fresh machine with Python 3.
//!
//! Requests to it go through a tiny HTTP/1.0 client (the server closes each
//! connection), to seed users and to read its final state.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::process::{free_port, wait_for};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The pip requirement the tests run against.
const REQUIREMENT: &str = "scim2-server>=0.8,<0.9";

pub struct ScimServer {
    child: Child,
    port: u16,
    token: String,
    _dir: tempfile::TempDir,
}

/// `scim2-server`, installed into a venv first when needed.
pub fn server_binary() -> PathBuf {
    super::venv::Venv {
        name: "rosterd-scim-venv",
        requirements: &[REQUIREMENT],
        ready: "bin/scim2-server",
        env: "ROSTERD_SCIM2_SERVER",
    }
    .file("bin/scim2-server")
}

impl ScimServer {
    /// A server announcing every feature (PATCH, Bulk with 1000 operations / 1 MiB,
    /// filter, ETags).
    pub fn start() -> ScimServer {
        Self::start_with(None)
    }

    /// A server announcing `config` as its ServiceProviderConfig (the server also
    /// refuses what it does not announce: PATCH and /Bulk answer 501).
    pub fn start_with(config: Option<Value>) -> ScimServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let token = format!("scim-test-token-{port}-{}", std::process::id());
        let mut cmd = Command::new(server_binary());
        cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", &token])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(c) = config {
            let path = dir.path().join("spc.json");
            std::fs::write(&path, c.to_string()).unwrap();
            cmd.arg("--service-provider-config").arg(&path);
        }
        let child = cmd.spawn().unwrap();
        let mut server = ScimServer {
            child,
            port,
            token,
            _dir: dir,
        };
        wait_for("scim2-server to answer", Duration::from_secs(60), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("scim2-server exited at start: {status}");
            }
            server
                .try_request("GET", "/ServiceProviderConfig", None)
                .filter(|(s, _)| *s == 200)
        });
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    fn try_request(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        scim_request(self.port, &self.token, &format!("/v2{path}"), method, body)
    }

    /// One request as the test client: (status, JSON body or null).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("scim2-server did not answer {method} {path}"))
    }

    /// Creates a user directly on the server (not through rosterd); returns it.
    pub fn create_user(&self, user: Value) -> Value {
        let (status, body) = self.request("POST", "/Users", Some(&user));
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Every user the server holds (read page by page).
    pub fn users(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let path = format!("/Users?startIndex={}&count=100", out.len() + 1);
            let (status, body) = self.request("GET", &path, None);
            assert_eq!(status, 200, "{body}");
            let page = body["Resources"].as_array().cloned().unwrap_or_default();
            let total = body["totalResults"].as_u64().unwrap() as usize;
            let empty = page.is_empty();
            out.extend(page);
            if out.len() >= total || empty {
                return out;
            }
        }
    }

    /// Runs `rosterd sync --format json` on the config in `dir` (whose SCIM token is
    /// `${ROSTERD_TEST_SCIM_TOKEN}`): its exit code and document. The token must not be
    /// in what it prints.
    pub fn sync_json(&self, dir: &std::path::Path) -> (i32, Value) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(dir.join("rosterd.yaml"))
            .args(["sync", "--format", "json"])
            .env("ROSTERD_TEST_SCIM_TOKEN", self.token())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(!stdout.contains(self.token()));
        let doc = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), doc)
    }

    /// The user with this userName.
    pub fn user(&self, user_name: &str) -> Option<Value> {
        self.users()
            .into_iter()
            .find(|u| u["userName"].as_str() == Some(user_name))
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A ServiceProviderConfig document for [`ScimServer::start_with`].
pub fn service_provider_config(patch: bool, bulk: Option<(usize, usize)>, etag: bool) -> Value {
    service_provider_config_with_filter(patch, bulk, etag, true)
}

/// [`service_provider_config`], saying whether filtering is supported.
pub fn service_provider_config_with_filter(
    patch: bool,
    bulk: Option<(usize, usize)>,
    etag: bool,
    filter: bool,
) -> Value {
    let (bulk_supported, max_ops, max_bytes) = match bulk {
        Some((ops, bytes)) => (true, ops, bytes),
        None => (false, 0, 0),
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": patch},
        "bulk": {"supported": bulk_supported, "maxOperations": max_ops, "maxPayloadSize": max_bytes},
        "filter": {"supported": filter, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": etag},
        "authenticationSchemes": []
    })
}

/// A SCIM User body for seeding.
pub fn user_body(
    user_name: &str,
    external_id: Option<&str>,
    given: &str,
    family: &str,
    active: bool,
) -> Value {
    let mut u = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": active
    });
    if let Some(e) = external_id {
        u["externalId"] = json!(e);
    }
    u
}

/// One SCIM request over plain HTTP/1.0 to 127.0.0.1:`port` with the bearer token:
/// (status, JSON body or null), or `None` when nothing answered.
pub fn scim_request(
    port: u16,
    token: &str,
    path: &str,
    method: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
