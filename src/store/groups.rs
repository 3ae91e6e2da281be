//! SCIM groups and memberships in the state file (`scim_groups`,
//! `scim_group_members`, `group_journal`; migration 0007): what rosterd knows of the
//! groups its `groups:` template names, and a journal of every group request.
//!
//! Like the user snapshot, a row changes only in the transaction that finishes the
//! journal entry of the request the server confirmed. Queries use `$n` placeholders
//! and plain SQL, so that another backend can take them as they are.

use std::collections::BTreeMap;

use super::backend::Begin;
use chrono::{DateTime, Utc};

use super::{query_err, time_text, Store, StoreError};

/// A group rosterd manages at a provider, by the name its template gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The server's id for it.
    pub group_id: String,
    /// Its displayName at the server.
    pub display_name: String,
    /// rosterd created it (only then may it delete it); `false`: adopted.
    pub created: bool,
}

/// A confirmed membership of a source user in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's id at the server (the user's vendor id) when it was confirmed.
    pub member_id: String,
    /// rosterd added it (only then may it remove it); `false`: it was there already.
    pub added: bool,
}

/// One provider's groups and memberships, by group name then `external_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub groups: BTreeMap<String, GroupRow>,
    pub members: BTreeMap<String, BTreeMap<String, MemberRow>>,
}

impl GroupSnapshot {
    /// Memberships rosterd added, over every group: the base of the membership guard.
    pub fn added_memberships(&self) -> usize {
        self.members
            .values()
            .flat_map(|m| m.values())
            .filter(|m| m.added)
            .count()
    }
}

/// What a confirmed group request changes in the snapshot.
#[derive(Debug, Clone, Copy)]
pub enum GroupRecord<'a> {
    /// The group exists at the server (created, or adopted): its row.
    Group {
        name: &'a str,
        group_id: &'a str,
        display_name: &'a str,
        created: bool,
    },
    /// These `(external_id, member_id)` are members now; `added`: by rosterd.
    Members {
        name: &'a str,
        members: &'a [(String, String)],
        added: bool,
    },
    /// These `external_id`s are no longer members.
    Removed {
        name: &'a str,
        external_ids: &'a [String],
    },
    /// The group is gone (deleted by rosterd, or no longer at the server).
    Gone { name: &'a str },
}

const READ: &str = "read the SCIM groups";
const WRITE: &str = "record a SCIM group change";

impl Store {
    /// The groups and memberships held for `provider`. A state file older than the
    /// tables (opened read-only by a dry run) has none.
    pub async fn group_snapshot(&self, provider: &str) -> Result<GroupSnapshot, StoreError> {
        let mut snapshot = GroupSnapshot::default();
        if !self
            .has_table("scim_groups")
            .await
            .map_err(query_err(READ))?
        {
            return Ok(snapshot);
        }
        let groups: Vec<(String, String, String, i64)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT name, group_id, display_name, created FROM scim_groups \
             WHERE provider = $1 ORDER BY name",
        )
        .bind(provider)
        .fetch_all(pool)
        .await)
        .map_err(query_err(READ))?;
        for (name, group_id, display_name, created) in groups {
            let row = GroupRow {
                group_id,
                display_name,
                created: created != 0,
            };
            snapshot.groups.insert(name, row);
        }
        let members: Vec<(String, String, String, i64)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT name, external_id, member_id, added FROM scim_group_members \
             WHERE provider = $1 ORDER BY name, external_id",
        )
        .bind(provider)
        .fetch_all(pool)
        .await)
        .map_err(query_err(READ))?;
        for (name, external_id, member_id, added) in members {
            let row = MemberRow {
                member_id,
                added: added != 0,
            };
            snapshot
                .members
                .entry(name)
                .or_default()
                .insert(external_id, row);
        }
        Ok(snapshot)
    }

    /// The vendor ids the snapshot holds for `external_ids` at `provider` (those with
    /// none are left out): a member's value is the user's id at that server, known
    /// only once its create was confirmed.
    pub async fn vendor_ids(
        &self,
        provider: &str,
        external_ids: &[&str],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let keys = external_ids.iter().map(|k| k.to_string()).collect();
        Ok(self
            .reference_ids(provider, &keys)
            .await?
            .into_iter()
            .collect())
    }

    /// Records a group request about to be sent; returns its journal id.
    pub async fn group_journal_begin(
        &self,
        run_id: &str,
        provider: &str,
        op: &str,
        name: &str,
        payload_json: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let payload = crate::redact::scrub(payload_json).into_owned();
        with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO group_journal (run_id, provider, op, name, payload, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'in_flight', $6) RETURNING id",
        )
        .bind(run_id)
        .bind(provider)
        .bind(op)
        .bind(name)
        .bind(&payload)
        .bind(time_text(now))
        .fetch_one(pool)
        .await)
        .map_err(query_err("write a group journal entry"))
    }

    /// Marks group request `id` done and, in the same transaction, records what the
    /// server confirmed: both are written or neither.
    pub async fn group_journal_finish(
        &self,
        id: i64,
        provider: &str,
        change: Option<&GroupRecord<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, async |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE group_journal SET status = 'done', finished_at = $1 \
             WHERE id = $2 AND status = 'in_flight'",
            )
            .bind(time_text(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok::<bool, sqlx::Error>(false);
            }
            let at = time_text(now);
            match change {
                None => {}
                Some(GroupRecord::Group {
                    name,
                    group_id,
                    display_name,
                    created,
                }) => {
                    sqlx::query(
                        "INSERT INTO scim_groups \
                         (provider, name, group_id, display_name, created, confirmed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (provider, name) DO UPDATE SET group_id = excluded.group_id, \
                         display_name = excluded.display_name, created = excluded.created, \
                         confirmed_at = excluded.confirmed_at",
                    )
                    .bind(provider)
                    .bind(*name)
                    .bind(*group_id)
                    .bind(*display_name)
                    .bind(i64::from(*created))
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(GroupRecord::Members {
                    name,
                    members,
                    added,
                }) => {
                    for (external_id, member_id) in members.iter() {
                        sqlx::query(
                            "INSERT INTO scim_group_members \
                             (provider, name, external_id, member_id, added, confirmed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (provider, name, external_id) DO UPDATE SET \
                             member_id = excluded.member_id, added = excluded.added, \
                             confirmed_at = excluded.confirmed_at",
                        )
                        .bind(provider)
                        .bind(*name)
                        .bind(external_id)
                        .bind(member_id)
                        .bind(i64::from(*added))
                        .bind(&at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Some(GroupRecord::Removed { name, external_ids }) => {
                    for external_id in external_ids.iter() {
                        sqlx::query(
                            "DELETE FROM scim_group_members \
                         WHERE provider = $1 AND name = $2 AND external_id = $3",
                        )
                        .bind(provider)
                        .bind(*name)
                        .bind(external_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Some(GroupRecord::Gone { name }) => {
                    for query in [
                        "DELETE FROM scim_group_members WHERE provider = $1 AND name = $2",
                        "DELETE FROM scim_groups WHERE provider = $1 AND name = $2",
                    ] {
                        sqlx::query(query)
                            .bind(provider)
                            .bind(*name)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(true)
        })
        .map_err(query_err(WRITE))?;
        if done {
            Ok(())
        } else {
            Err(StoreError::NotInFlight { id })
        }
    }

    /// Marks group request `id` failed, with the server's message (scrubbed).
    pub async fn group_journal_fail(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error = crate::redact::scrub(error).into_owned();
        with_pool!(self, |pool| sqlx::query(
            "UPDATE group_journal SET status = 'failed', error = $1, finished_at = $2 \
             WHERE id = $3 AND status = 'in_flight'",
        )
        .bind(&error)
        .bind(time_text(now))
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("mark a group journal entry failed"))?;
        Ok(())
    }

    /// Settles the group requests of `provider` an interrupted run left in flight:
    /// none changed the snapshot, so the next plan derives them again (and each is
    /// safe to repeat). Returns how many there were.
    pub async fn settle_group_in_flight(
        &self,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "UPDATE group_journal SET status = 'failed', \
                 error = 'interrupted; planned again from the snapshot', finished_at = $1 \
             WHERE provider = $2 AND status = 'in_flight'",
        )
        .bind(time_text(now))
        .bind(provider)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(query_err("settle interrupted group requests"))
    }

    /// The group journal of `provider`, oldest first: (op, name, status, error).
    pub async fn group_journal(
        &self,
        provider: &str,
    ) -> Result<Vec<(String, String, String, Option<String>)>, StoreError> {
        with_pool!(self, |pool| sqlx::query_as(
            "SELECT op, name, status, error FROM group_journal WHERE provider = $1 ORDER BY id",
        )
        .bind(provider)
        .fetch_all(pool)
        .await)
        .map_err(query_err(READ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_confirmed_group_request_changes_the_snapshot_and_an_unconfirmed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).await.unwrap();
        let id = store
            .group_journal_begin("r1", "scim", "create_group", "Sales", "{}", now())
            .await
            .unwrap();
        let group = GroupRecord::Group {
            name: "Sales",
            group_id: "g1",
            display_name: "Sales",
            created: true,
        };
        store
            .group_journal_finish(id, "scim", Some(&group), now())
            .await
            .unwrap();
        let members = [("E1".to_string(), "u1".to_string())];
        let id = store
            .group_journal_begin("r1", "scim", "add_members", "Sales", "{}", now())
            .await
            .unwrap();
        let change = GroupRecord::Members {
            name: "Sales",
            members: &members,
            added: true,
        };
        store
            .group_journal_finish(id, "scim", Some(&change), now())
            .await
            .unwrap();
        // Sent, never answered: nothing recorded, settled next pass.
        store
            .group_journal_begin("r1", "scim", "remove_members", "Sales", "{}", now())
            .await
            .unwrap();
        let snap = store.group_snapshot("scim").await.unwrap();
        assert_eq!(snap.groups["Sales"].group_id, "g1");
        assert!(snap.groups["Sales"].created);
        assert_eq!(snap.members["Sales"]["E1"].member_id, "u1");
        assert_eq!(snap.added_memberships(), 1);
        assert!(store
            .group_snapshot("other")
            .await
            .unwrap()
            .groups
            .is_empty());
        assert_eq!(
            store.settle_group_in_flight("scim", now()).await.unwrap(),
            1
        );
        let journal = store.group_journal("scim").await.unwrap();
        assert_eq!(journal.len(), 3);
        assert_eq!(journal[2].2, "failed");
        let gone = GroupRecord::Gone { name: "Sales" };
        let id = store
            .group_journal_begin("r2", "scim", "delete_group", "Sales", "{}", now())
            .await
            .unwrap();
        store
            .group_journal_finish(id, "scim", Some(&gone), now())
            .await
            .unwrap();
        assert_eq!(
            store.group_snapshot("scim").await.unwrap(),
            GroupSnapshot::default()
        );
    }
}
