//! The run lock of a PostgreSQL state: `pg_try_advisory_lock` on a session of its
//! own, held (idle) for the length of the pass.
//!
//! An advisory lock belongs to the session that took it: the server releases it when
//! that session ends, including when its client dies (SIGKILL, a crashed node — the
//! connection closes), so no dead run leaves the lock stuck. Two rosterd replicas on
//! one database thus pass one at a time: the one that finds the lock taken reports
//! [`LockError::Busy`], and takes the lock at its next tick once the holder is gone.
//!
//! The lock is per database (advisory locks are), so two rosterd on two databases of
//! one server never meet. The holder's session says who it is in its
//! `application_name` (`rosterd pid N`), which a second run names in its message and
//! `rosterd status` shows.

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::lock::LockError;
use super::{PgLocation, StoreError};

/// The advisory lock key: a fixed 64-bit number, "rosterd" in ASCII, so other
/// applications sharing the database are unlikely to pick it.
const LOCK_KEY: i64 = 0x0072_6f73_7465_7264;

/// A held PostgreSQL run lock; dropping it closes the session, which releases it.
#[derive(Debug)]
pub struct PgRunLock {
    /// The session holding the lock. Never used for anything else: a pool could
    /// hand it to another task, or close it while idle, and lose the lock.
    conn: PgConnection,
}

impl PgRunLock {
    /// Takes the lock, or says who holds it. Never waits.
    pub async fn acquire(pg: &PgLocation) -> Result<PgRunLock, LockError> {
        let at = pg.display();
        let failed = |source: sqlx::Error| LockError::Postgres {
            at: at.clone(),
            source: StoreError::Connect {
                at: at.clone(),
                source,
            },
        };
        let options = pg.connect_options().map_err(|e| LockError::Postgres {
            at: at.clone(),
            source: StoreError::BadDatabase {
                at: at.clone(),
                message: e.to_string(),
            },
        })?;
        let mut conn = PgConnection::connect_with(&options).await.map_err(failed)?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(failed)?;
        if taken {
            return Ok(PgRunLock { conn });
        }
        let holder = holder_on(&mut conn).await;
        // Closing is best effort: the connection is dropped either way.
        let _ = conn.close().await;
        Err(LockError::Busy {
            at: format!("the run lock of {at}"),
            holder: holder.map_or_else(|| "unknown".into(), |pid| pid.to_string()),
        })
    }

    /// The pid the holder's session names, when a session holds the lock.
    pub async fn holder(pg: &PgLocation) -> Option<u32> {
        let options = pg.connect_options().ok()?;
        let mut conn = PgConnection::connect_with(&options).await.ok()?;
        let holder = holder_on(&mut conn).await;
        let _ = conn.close().await;
        holder
    }

    /// Unlocks and ends the session.
    pub async fn release(mut self) {
        // Best effort: ending the session releases the lock anyway.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}

/// The rosterd pid of the session holding the lock in this database, if one does.
async fn holder_on(conn: &mut PgConnection) -> Option<u32> {
    // A bigint key shows in pg_locks as its high and low halves.
    let name: Option<String> = sqlx::query_scalar(
        "SELECT a.application_name::text FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid::bigint = ($1 >> 32) AND l.objid::bigint = ($1 & 4294967295) \
         LIMIT 1",
    )
    .bind(LOCK_KEY)
    .fetch_optional(&mut *conn)
    .await
    .ok()
    .flatten();
    name?.strip_prefix("rosterd pid ")?.trim().parse().ok()
}
