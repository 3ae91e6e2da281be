//! The values the store hands to the planner and takes back from the executor.

use serde::{Deserialize, Serialize};

use crate::providers::Fingerprint;

/// What rosterd believes a vendor holds for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    Disabled,
    /// An earlier operation left the account needing a person's attention.
    Manual,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Disabled => "disabled",
            AccountState::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AccountState::Active),
            "disabled" => Some(AccountState::Disabled),
            "manual" => Some(AccountState::Manual),
            _ => None,
        }
    }
}

/// One snapshot row as the planner needs it, kept lean: a large tenant has a million
/// of them in memory at once, and the planner compares only keys and fingerprints.
/// The rest ([`RowDetails`]) is loaded for the few rows a plan touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The source's stable key.
    pub external_id: Box<str>,
    /// Fingerprint of the last record the vendor confirmed.
    pub fingerprint: Fingerprint,
    pub state: AccountState,
    /// Consecutive failed runs for this user (quarantine counts these).
    pub failures: u32,
    /// Loaded on demand (`Store::fill_details`); the planner asks for the rows it needs.
    pub details: Option<Box<RowDetails>>,
}

/// The parts of a snapshot row that only the rows a plan touches need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDetails {
    /// The email the vendor account was last confirmed with (shown in plans).
    pub email: Box<str>,
    /// The vendor's own id, when it has one.
    pub vendor_id: Option<Box<str>>,
    /// The last confirmed record as JSON (a `StoredRecord`), to show old → new.
    pub record: Box<str>,
    /// The last error, when the last operation failed or needs manual action.
    pub last_error: Option<Box<str>>,
}

/// A provider's snapshot, sorted by `external_id` (the order the planner merges in).
pub type Snapshot = Vec<SnapshotRow>;
