//! The audit trail in the log: one event per operation's outcome, written from one
//! place ([`OperationAudit::emit`]) so that every adapter's operations read alike.
//!
//! An event names the account by its source key and the vendor's id, and the changed
//! fields by name only: never a value, an email or a vendor's message (those may
//! carry personal data; `rosterd history` and the `warn` line of a failure say the
//! message). The same operation is in the journal, for `rosterd history`.

use tracing::{info, warn};

use crate::store::OpKind;

/// How one operation ended, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The vendor confirmed it.
    Done,
    /// The vendor confirmed it, on an account it held already (a create that took
    /// the existing account over).
    Adopted,
    /// The vendor carried it out, but the account needs a person now.
    Manual,
    /// The vendor refused it or it could not be sent; planned again next pass.
    Failed,
    /// Not this account's failure: its provider failed as a whole (unreachable,
    /// credentials rejected); planned again next pass.
    Deferred,
    /// The vendor may have carried it out (a 5xx, no answer): settled before the
    /// next plan.
    Unknown,
    /// The vendor has no such account (a leaver's disable sent by key, blind):
    /// recorded, never sent again.
    Absent,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Done => "done",
            AuditOutcome::Adopted => "adopted",
            AuditOutcome::Manual => "manual",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Deferred => "deferred",
            AuditOutcome::Unknown => "unknown",
            AuditOutcome::Absent => "absent",
        }
    }
}

/// One operation's outcome, as one log event.
#[derive(Debug, Clone)]
pub struct OperationAudit<'a> {
    pub run_id: &'a str,
    pub provider: &'a str,
    /// The source's key for the person.
    pub external_id: &'a str,
    pub op: OpKind,
    /// Names of the fields it changed (all of them for a create; none for a disable).
    pub fields: Vec<&'a str>,
    pub outcome: AuditOutcome,
    /// The vendor's id for the account, when known.
    pub vendor_id: Option<&'a str>,
    /// The vendor's HTTP status, for a failure it answered.
    pub http_status: Option<u16>,
}

impl OperationAudit<'_> {
    /// Writes the event: INFO when done, WARN when a person or the next pass has
    /// something to do about it.
    pub fn emit(&self) {
        let message = self.message();
        let fields = self.fields.join(",");
        let (run_id, provider, external_id, op, outcome, vendor_id, http_status) = (
            self.run_id,
            self.provider,
            self.external_id,
            self.op.as_str(),
            self.outcome.as_str(),
            self.vendor_id,
            self.http_status,
        );
        match self.outcome {
            AuditOutcome::Done
            | AuditOutcome::Adopted
            | AuditOutcome::Deferred
            | AuditOutcome::Absent => info!(
                audit = true,
                run_id,
                provider,
                external_id,
                op,
                fields,
                outcome,
                vendor_id,
                http_status,
                "{message}"
            ),
            AuditOutcome::Manual | AuditOutcome::Failed | AuditOutcome::Unknown => warn!(
                audit = true,
                run_id,
                provider,
                external_id,
                op,
                fields,
                outcome,
                vendor_id,
                http_status,
                "{message}"
            ),
        }
    }

    /// One sentence per kind of operation and outcome.
    pub fn message(&self) -> &'static str {
        use AuditOutcome as O;
        use OpKind as K;
        match (self.outcome, self.op) {
            (O::Done, K::Create) => "Account created.",
            (O::Adopted, K::Create) => "Account adopted.",
            (O::Adopted, _) => "Account adopted and changed.",
            (O::Done, K::Update) => "Account updated.",
            (O::Done, K::Disable) => "Account disabled.",
            (O::Done, K::Enable) => "Account re-enabled.",
            (O::Done, K::Delete) => "Account deleted.",
            (O::Done, K::Recreate) => "Account recreated.",
            (O::Manual, _) => "Account needs manual action.",
            (O::Failed, K::Create) => "Account creation failed.",
            (O::Failed, K::Update) => "Account update failed.",
            (O::Failed, K::Disable) => "Account disable failed.",
            (O::Failed, K::Enable) => "Account re-enable failed.",
            (O::Failed, K::Delete) => "Account deletion failed.",
            (O::Failed, K::Recreate) => "Account recreation failed.",
            (O::Deferred, _) => "Account operation deferred: the provider failed as a whole.",
            (O::Unknown, _) => "Account operation outcome unknown: settled before the next plan.",
            (O::Absent, _) => "Account not found at the vendor: nothing to change.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_outcome_has_a_sentence() {
        for op in OpKind::ALL {
            for outcome in [
                AuditOutcome::Done,
                AuditOutcome::Adopted,
                AuditOutcome::Manual,
                AuditOutcome::Failed,
                AuditOutcome::Deferred,
                AuditOutcome::Unknown,
                AuditOutcome::Absent,
            ] {
                let event = OperationAudit {
                    run_id: "r",
                    provider: "p",
                    external_id: "E1",
                    op,
                    fields: Vec::new(),
                    outcome,
                    vendor_id: None,
                    http_status: None,
                };
                let m = event.message();
                assert!(m.starts_with("Account ") && m.ends_with('.'), "{m}");
            }
        }
    }
}
