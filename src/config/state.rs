//! `state:` — where rosterd keeps its state: an SQLite file (a path, the default
//! `rosterd.db`), or a PostgreSQL database:
//!
//! ```yaml
//! state: postgres://rosterd:${ROSTERD_PG_PASSWORD}@db.internal:5432/rosterd
//! # or, with the password apart:
//! state:
//!   url: postgres://rosterd@db.internal:5432/rosterd?sslmode=require
//!   password_file: /run/secrets/rosterd-pg   # or password: ${ROSTERD_PG_PASSWORD}
//! ```
//!
//! The password is a secret like any other: a literal one is refused, and the one
//! given is registered with the scrubber. A `${VAR}` written as the URL's password is
//! moved out of the URL before the environment is expanded
//! ([`separate_url_password`]), so that a password holding `@`, `/` or `:` cannot
//! garble the URL (nor end up shown as part of a host name).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::secret::{is_single_env_ref, take_secret};
use super::Issue;
use crate::store::location::{is_postgres_url, PgLocation};
use crate::store::StateLocation;

const AT: &str = "state";

/// The state when the config names none.
pub const DEFAULT_STATE_FILE: &str = "rosterd.db";

/// Before `${ENV}` expansion: turns `state: postgres://user:${VAR}@host/db` into
/// `state: {url: postgres://user@host/db, password: ${VAR}}`, and refuses a literal
/// password in the URL.
pub fn separate_url_password(tree: &mut Value, issues: &mut Vec<Issue>) {
    let Some(state) = tree.get_mut(AT) else {
        return;
    };
    let Value::String(text) = state else { return };
    if !is_postgres_url(text) {
        return;
    }
    let Some((url, password)) = split_password(text) else {
        return;
    };
    if !is_single_env_ref(&password) {
        issues.push(Issue::new(
            AT.into(),
            "a literal password in the PostgreSQL URL is refused; write \
             postgres://user:${ENV_VAR}@host/db, or give state.url with \
             state.password_file"
                .into(),
        ));
        // Not kept: the message about the rest of the config must not carry it.
        *state = Value::String(url);
        return;
    }
    let mut map = Map::new();
    map.insert("url".into(), Value::String(url));
    map.insert("password".into(), Value::String(password));
    *state = Value::Object(map);
}

/// `scheme://user:password@rest` → (`scheme://user@rest`, `password`), split on the
/// text alone (it is not a URL yet: `${…}` is not valid in one).
fn split_password(text: &str) -> Option<(String, String)> {
    let (scheme, rest) = text.split_once("://")?;
    // The authority ends at the first `/`, `?` or `#` after the last `@`.
    let at = rest.rfind('@')?;
    let (userinfo, after) = rest.split_at(at);
    let (user, password) = userinfo.split_once(':')?;
    Some((format!("{scheme}://{user}{after}"), password.to_string()))
}

/// `state:` (already `${ENV}`-expanded) as a [`StateLocation`]; problems are issues
/// at `state` / `state.url` / `state.password_file`.
pub fn parse(raw: Option<Value>, base_dir: &Path, issues: &mut Vec<Issue>) -> StateLocation {
    // Relative to the working folder, as it always was (not to the config's folder).
    let fallback = || StateLocation::File(PathBuf::from(DEFAULT_STATE_FILE));
    match raw {
        None | Some(Value::Null) => fallback(),
        Some(Value::String(text)) if is_postgres_url(&text) => {
            postgres(&text, None, AT, issues).unwrap_or_else(fallback)
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            issues.push(Issue::new(
                AT.into(),
                "is empty: give a file path or a postgres:// URL".into(),
            ));
            fallback()
        }
        Some(Value::String(text)) => StateLocation::File(base_dir.join(PathBuf::from(text))),
        Some(Value::Object(mut map)) => {
            let password = take_secret(&mut map, "password", base_dir, AT, false, issues);
            let url = map.remove("url");
            for key in map.keys() {
                issues.push(Issue::new(
                    format!("{AT}.{key}"),
                    "unknown key (expected url, and password or password_file)".into(),
                ));
            }
            match url {
                Some(Value::String(url)) if is_postgres_url(&url) => {
                    if PgLocation::password_in(&url).is_some() {
                        issues.push(Issue::new(
                            format!("{AT}.url"),
                            "holds a password: give it as state.password or \
                             state.password_file only"
                                .into(),
                        ));
                        return fallback();
                    }
                    postgres(&url, password, "state.url", issues).unwrap_or_else(fallback)
                }
                Some(_) => {
                    issues.push(Issue::new(
                        format!("{AT}.url"),
                        "expected a postgres:// or postgresql:// URL (a file state is \
                         written `state: path/to/rosterd.db`)"
                            .into(),
                    ));
                    fallback()
                }
                None => {
                    issues.push(Issue::new(
                        format!("{AT}.url"),
                        "missing: give the database as postgres://user@host:5432/db".into(),
                    ));
                    fallback()
                }
            }
        }
        Some(_) => {
            issues.push(Issue::new(
                AT.into(),
                "expected a file path, a postgres:// URL, or a mapping with url and \
                 password_file"
                    .into(),
            ));
            fallback()
        }
    }
}

fn postgres(
    url: &str,
    password: Option<secrecy::SecretString>,
    at: &str,
    issues: &mut Vec<Issue>,
) -> Option<StateLocation> {
    match PgLocation::parse(url, password) {
        Ok(pg) => Some(StateLocation::Postgres(pg)),
        Err(e) => {
            issues.push(Issue::new(at.into(), format!("the PostgreSQL URL {e}")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_password_in_the_url_moves_out_before_expansion() {
        let mut tree = serde_json::json!({
            "state": "postgres://ro:${PG_PW}@db.example:5432/roster?sslmode=require"
        });
        let mut issues = Vec::new();
        separate_url_password(&mut tree, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            tree["state"],
            serde_json::json!({
                "url": "postgres://ro@db.example:5432/roster?sslmode=require",
                "password": "${PG_PW}"
            })
        );
    }

    #[test]
    fn a_literal_password_in_the_url_is_refused_and_dropped() {
        let mut tree = serde_json::json!({ "state": "postgres://ro:hunter2-pw@db/roster" });
        let mut issues = Vec::new();
        separate_url_password(&mut tree, &mut issues);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("literal password"), "{issues:?}");
        assert!(!tree.to_string().contains("hunter2"), "{tree}");
    }

    #[test]
    fn a_path_is_a_file_and_a_mapping_without_url_is_an_issue() {
        let base = Path::new("/etc/rosterd");
        let mut issues = Vec::new();
        let s = parse(Some("state/x.db".into()), base, &mut issues);
        assert_eq!(s.file(), Some(Path::new("/etc/rosterd/state/x.db")));
        let s = parse(None, base, &mut issues);
        assert_eq!(s.file(), Some(Path::new("rosterd.db")));
        assert!(issues.is_empty());
        parse(
            Some(serde_json::json!({ "password_file": "/nonexistent" , "colour": 1})),
            base,
            &mut issues,
        );
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"state.url"), "{issues:?}");
        assert!(paths.contains(&"state.colour"), "{issues:?}");
        assert!(paths.contains(&"state.password_file"), "{issues:?}");
    }

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "file-Secret-99\n").unwrap();
        let mut issues = Vec::new();
        let s = parse(
            Some(serde_json::json!({
                "url": "postgresql://ro@db.example/roster",
                "password_file": file,
            })),
            dir.path(),
            &mut issues,
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            s.display().to_string(),
            "postgres://ro@db.example:5432/roster"
        );
        assert!(!format!("{s:?}").contains("file-Secret-99"));
        assert_eq!(crate::redact::scrub("x file-Secret-99 y"), "x *** y");
    }
}
