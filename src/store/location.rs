//! Where the state lives: an SQLite file (the default), or a PostgreSQL database
//! (`state: postgres://…`), for state that outlives one machine.
//!
//! A [`StateLocation`] is what the rest of the program passes around; only the store
//! looks inside it. Its [`StateLocation::display`] is what messages name: the file's
//! path, or `postgres://user@host:port/db` — never the password, which is held as a
//! [`SecretString`] (its `Debug` prints a placeholder) and was registered with the
//! scrubber when the config took it in.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

/// The state: a file, or a database on a PostgreSQL server.
#[derive(Debug, Clone)]
pub enum StateLocation {
    File(PathBuf),
    Postgres(PgLocation),
}

/// A PostgreSQL state: the URL without its password, and the password apart.
#[derive(Clone)]
pub struct PgLocation {
    /// `postgres://user@host:port/db?params`, no password.
    url: url::Url,
    password: Option<SecretString>,
}

/// Why a `postgres://` state URL cannot be used; never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("names no database (write postgres://user@host:5432/DATABASE)")]
    NoDatabase,
    #[error("names no host (write postgres://user@HOST:5432/database)")]
    NoHost,
    #[error("is not a PostgreSQL URL PostgreSQL's client accepts: {0}")]
    Rejected(String),
}

/// Whether the `state:` text names a PostgreSQL database rather than a file.
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl PgLocation {
    /// Parses a `postgres://` / `postgresql://` URL. A password written in it is
    /// taken out of the URL and kept apart (the caller has checked and registered
    /// it); `password`, when given, is used instead.
    pub fn parse(text: &str, password: Option<SecretString>) -> Result<PgLocation, PgUrlError> {
        let mut url =
            url::Url::parse(text.trim()).map_err(|e| PgUrlError::NotAUrl(e.to_string()))?;
        let in_url = url.password().map(percent_decode);
        // Setting a password on a URL with a host cannot fail.
        let _ = url.set_password(None);
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PgUrlError::NoHost);
        }
        if url.path().trim_start_matches('/').is_empty() {
            return Err(PgUrlError::NoDatabase);
        }
        let location = PgLocation {
            password: password.or(in_url.map(SecretString::from)),
            url,
        };
        // What sqlx would refuse at connect time (a bad sslmode, say) is refused now.
        location.connect_options()?;
        Ok(location)
    }

    /// The password written in a URL's userinfo, decoded, if there is one: for the
    /// config, which must check and register it before anything prints the URL.
    pub fn password_in(text: &str) -> Option<String> {
        let url = url::Url::parse(text.trim()).ok()?;
        url.password().map(percent_decode)
    }

    /// Options for connecting, the password included.
    pub fn connect_options(&self) -> Result<PgConnectOptions, PgUrlError> {
        let options: PgConnectOptions = self
            .url
            .as_str()
            .parse()
            // sqlx's message about a URL it refuses names the part, not the URL.
            .map_err(|e: sqlx::Error| {
                PgUrlError::Rejected(crate::redact::scrub(&e.to_string()).into_owned())
            })?;
        let options = match &self.password {
            Some(p) => options.password(p.expose_secret()),
            None => options,
        };
        // Who holds the run lock shows in pg_stat_activity (`rosterd status`).
        Ok(options.application_name(&format!("rosterd pid {}", std::process::id())))
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(5432)
    }

    pub fn database(&self) -> &str {
        self.url.path().trim_start_matches('/')
    }

    /// `postgres://user@host:port/db`, without the password (or the query).
    pub fn display(&self) -> String {
        let user = self.url.username();
        let at = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        format!(
            "postgres://{at}{}:{}/{}",
            self.host(),
            self.port(),
            self.database()
        )
    }
}

impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLocation")
            .field("url", &self.display())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

fn percent_decode(text: &str) -> String {
    // The url crate has no decoder of its own; form_urlencoded's would turn `+` into a
    // space, which a userinfo never means.
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl StateLocation {
    /// A state named on the command line (`state copy --from/--to`): a postgres://
    /// URL, else a file path. A password in the URL (or in `PGPASSWORD`, which the
    /// PostgreSQL client reads) is registered with the scrubber first.
    pub fn from_arg(text: &str) -> Result<StateLocation, PgUrlError> {
        if !is_postgres_url(text) {
            return Ok(StateLocation::File(PathBuf::from(text)));
        }
        if let Some(password) = PgLocation::password_in(text) {
            crate::redact::register(&password);
        }
        if let Ok(password) = std::env::var("PGPASSWORD") {
            crate::redact::register(&password);
        }
        PgLocation::parse(text, None).map(StateLocation::Postgres)
    }

    /// What messages call it: the file's path, or the database without the password.
    pub fn display(&self) -> Shown<'_> {
        Shown(self)
    }

    /// The file, for a file state.
    pub fn file(&self) -> Option<&Path> {
        match self {
            StateLocation::File(p) => Some(p),
            StateLocation::Postgres(_) => None,
        }
    }
}

/// [`StateLocation::display`].
pub struct Shown<'a>(&'a StateLocation);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StateLocation::File(p) => write!(f, "{}", p.display()),
            StateLocation::Postgres(pg) => f.write_str(&pg.display()),
        }
    }
}

impl From<&Path> for StateLocation {
    fn from(p: &Path) -> Self {
        StateLocation::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for StateLocation {
    fn from(p: &PathBuf) -> Self {
        StateLocation::File(p.clone())
    }
}

impl From<PathBuf> for StateLocation {
    fn from(p: PathBuf) -> Self {
        StateLocation::File(p)
    }
}

impl From<&StateLocation> for StateLocation {
    fn from(s: &StateLocation) -> Self {
        s.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_password_is_kept_apart_and_never_shown() {
        let pg =
            PgLocation::parse("postgres://ro:s%40cret-pw@db.example:6543/roster", None).unwrap();
        assert_eq!(pg.display(), "postgres://ro@db.example:6543/roster");
        assert!(!format!("{pg:?}").contains("cret"), "{pg:?}");
        pg.connect_options().unwrap();
        assert_eq!(
            PgLocation::password_in("postgresql://ro:s%40cret-pw@db/x").as_deref(),
            Some("s@cret-pw")
        );
        let shown = StateLocation::Postgres(pg).display().to_string();
        assert!(!shown.contains("cret"), "{shown}");
    }

    #[test]
    fn a_url_without_database_or_host_is_refused() {
        assert_eq!(
            PgLocation::parse("postgres://u@db:5432", None).unwrap_err(),
            PgUrlError::NoDatabase
        );
        assert!(PgLocation::parse("postgres:///x", None).is_err());
        assert!(is_postgres_url("PostgreSQL://h/d"));
        assert!(!is_postgres_url("state/rosterd.db"));
    }
}
