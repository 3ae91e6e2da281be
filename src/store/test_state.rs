//! A fresh, empty state on either backend, for the store's tests: the same test body
//! runs against an SQLite file and a PostgreSQL database ([`on_both_backends!`]).
//! PostgreSQL is the real server of `tests/support/postgres.rs`, one per test process
//! and a database per test; without PostgreSQL installed those runs say so and pass
//! (unless `CI` is set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use super::test_postgres::PgServer;
use super::{PgLocation, StateLocation, Store};

/// An empty state, removed with the value.
pub(crate) enum Fresh {
    Sqlite(tempfile::TempDir),
    Postgres(Arc<PgServer>, String),
}

impl Fresh {
    pub fn sqlite() -> Fresh {
        Fresh::Sqlite(tempfile::tempdir().unwrap())
    }

    /// `None` when PostgreSQL is not installed here (the reason is printed).
    pub async fn postgres() -> Option<Fresh> {
        let server = PgServer::shared()?;
        let db = server.database().await;
        Some(Fresh::Postgres(server, db))
    }

    pub fn location(&self) -> StateLocation {
        match self {
            Fresh::Sqlite(dir) => StateLocation::File(dir.path().join("state.db")),
            Fresh::Postgres(server, db) => {
                StateLocation::Postgres(PgLocation::parse(&server.url(db), None).unwrap())
            }
        }
    }

    /// [`Store::open`] on it.
    pub async fn open(&self) -> Store {
        Store::open(self.location()).await.unwrap()
    }
}

/// For each `async fn name(state: &Fresh)` listed, a test `on_sqlite::name` and a
/// test `on_postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let state = $crate::store::test_state::Fresh::sqlite();
                    super::$name(&state).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(state) = $crate::store::test_state::Fresh::postgres().await else {
                        return;
                    };
                    super::$name(&state).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
