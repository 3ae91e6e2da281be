//! The values the store hands to the planner and takes back from the executor.

use serde::{Deserialize, Serialize};

use crate::providers::Fingerprint;

/// What rosterd believes a vendor holds for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What to do to one account: what the planner plans, the executor sends, and the
/// journal and the failures table record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Create,
    Update,
    Disable,
    Enable,
    Delete,
    /// Create an account for a new email and disable the old one (email changes the
    /// vendor cannot make in place, with `on_email_change: recreate`).
    Recreate,
}

impl OpKind {
    pub const ALL: [OpKind; 6] = [
        OpKind::Create,
        OpKind::Update,
        OpKind::Disable,
        OpKind::Enable,
        OpKind::Delete,
        OpKind::Recreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Update => "update",
            OpKind::Disable => "disable",
            OpKind::Enable => "enable",
            OpKind::Delete => "delete",
            OpKind::Recreate => "recreate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether it makes a new account: one whose outcome, when unknown, may be an
    /// account the snapshot does not know of yet.
    pub fn creates(self) -> bool {
        matches!(self, OpKind::Create | OpKind::Recreate)
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
