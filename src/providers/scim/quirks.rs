//! What a SCIM service turned out not to do, whatever it announces: its quirks,
//! learned during a pass and remembered in the state file (`scim_quirks`), so later
//! passes use the fallback from the start instead of meeting the failure again.
//!
//! A quirk is remembered with a digest of the provider's config (base URL and the
//! `patch`, `bulk`, `etag`, `filter` settings): a changed config (a new server, an
//! operator forcing a feature back on) revisits it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use xxhash_rust::xxh3::xxh3_64;

/// One fallback rosterd takes for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quirk {
    /// PATCH refused (501 / 405) or answered with something other than was meant:
    /// changes go as a read and a PUT.
    PatchUnusable,
    /// A PATCH replacing `emails` / `phoneNumbers` was merged into the old values:
    /// changes go as a read and a PUT.
    MultiValuedMerge,
    /// Filtering refused (400 / 501 / 405): users are found in the listed `/Users`.
    FilterUnusable,
    /// `/Bulk` refused (501 / 405): operations go one by one.
    BulkUnusable,
    /// A group member remove by `members[value eq "…"]` refused (400 / 405 / 501)
    /// where one by value (`path: members` with the members in `value`, as Entra ID
    /// sends it) worked: members are removed by value.
    MemberRemoveByValue,
}

impl Quirk {
    pub const ALL: [Quirk; 5] = [
        Quirk::PatchUnusable,
        Quirk::MultiValuedMerge,
        Quirk::FilterUnusable,
        Quirk::BulkUnusable,
        Quirk::MemberRemoveByValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Quirk::PatchUnusable => "patch_unusable",
            Quirk::MultiValuedMerge => "multi_valued_merge",
            Quirk::FilterUnusable => "filter_unusable",
            Quirk::BulkUnusable => "bulk_unusable",
            Quirk::MemberRemoveByValue => "member_remove_by_value",
        }
    }

    pub fn parse(s: &str) -> Option<Quirk> {
        Quirk::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// The quirks known for one provider in this pass: remembered ones (of the same
/// config digest) and those learned now, each with what showed it. Shared by the
/// pass's units.
#[derive(Debug, Clone, Default)]
pub struct Quirks(Arc<Mutex<Known>>);

#[derive(Debug, Default)]
struct Known {
    /// Quirk → what showed it.
    all: BTreeMap<Quirk, String>,
    /// Learned in this pass (to be written to the state file).
    new: BTreeMap<Quirk, String>,
    /// A PATCH replacing `emails` / `phoneNumbers` was compared (its answer or its
    /// read-back) and matched this pass: later answers without a resource need not
    /// be read back.
    patch_checked: bool,
}

impl PartialEq for Quirks {
    /// Two sets are alike when they are the same one.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Quirks {}

impl Quirks {
    fn with<T>(&self, f: impl FnOnce(&mut Known) -> T) -> T {
        // A poisoned lock only means a unit panicked while holding it; the map is
        // still whole.
        let mut guard = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn has(&self, q: Quirk) -> bool {
        self.with(|k| k.all.contains_key(&q))
    }

    /// Remembered from an earlier pass: used, not written again.
    pub fn remember(&self, q: Quirk, detail: &str) {
        self.with(|k| {
            k.all.entry(q).or_insert_with(|| detail.to_string());
        });
    }

    /// Learned now: used for the rest of the pass and written to the state file.
    pub fn learn(&self, q: Quirk, detail: String) {
        self.with(|k| {
            if let std::collections::btree_map::Entry::Vacant(e) = k.all.entry(q) {
                tracing::warn!(quirk = q.as_str(), detail = %detail, "SCIM service quirk found: using the fallback from now on.");
                e.insert(detail.clone());
                k.new.insert(q, detail);
            }
        });
    }

    /// Whether a PATCH of a multi-valued attribute was seen doing what it was sent
    /// to do in this pass.
    pub fn patch_checked(&self) -> bool {
        self.with(|k| k.patch_checked)
    }

    pub fn mark_patch_checked(&self) {
        self.with(|k| k.patch_checked = true);
    }

    /// What this pass learned, as (quirk, detail).
    pub fn learned(&self) -> Vec<(Quirk, String)> {
        self.with(|k| k.new.iter().map(|(q, d)| (*q, d.clone())).collect())
    }
}

/// The digest of what a remembered quirk depends on: the service and the settings.
pub fn config_digest(base_url: &str, settings: &super::Settings) -> String {
    let key = format!(
        "{base_url}|patch={:?}|bulk={:?}|etag={:?}|filter={:?}",
        settings.patch, settings.bulk, settings.etag, settings.filter
    );
    format!("{:016x}", xxh3_64(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::{Mode, Settings};
    use super::*;

    fn settings(patch: Mode) -> Settings {
        Settings {
            bearer_token: secrecy::SecretString::from("t".to_string()),
            patch,
            bulk: Mode::Auto,
            etag: Mode::Auto,
            filter: Mode::Auto,
            bulk_size: 100,
        }
    }

    #[test]
    fn the_digest_changes_with_the_service_or_its_settings_not_with_the_token() {
        let base = config_digest("https://a.example/scim", &settings(Mode::Auto));
        assert_eq!(base, config_digest("https://a.example/scim", &settings(Mode::Auto)));
        assert_ne!(base, config_digest("https://b.example/scim", &settings(Mode::Auto)));
        assert_ne!(base, config_digest("https://a.example/scim", &settings(Mode::On)));
    }

    #[test]
    fn a_quirk_learned_is_reported_once_and_a_remembered_one_not_again() {
        let q = Quirks::default();
        q.remember(Quirk::BulkUnusable, "earlier");
        q.learn(Quirk::BulkUnusable, "again".into());
        q.learn(Quirk::PatchUnusable, "PATCH 501".into());
        q.learn(Quirk::PatchUnusable, "PATCH 501 again".into());
        assert!(q.has(Quirk::BulkUnusable) && q.has(Quirk::PatchUnusable));
        assert_eq!(q.learned(), [(Quirk::PatchUnusable, "PATCH 501".to_string())]);
        assert_eq!(Quirk::parse("multi_valued_merge"), Some(Quirk::MultiValuedMerge));
    }
}
