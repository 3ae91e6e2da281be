//! A vendor record: the flat set of fields rosterd pushes to one vendor for one user,
//! and its fingerprint.
//!
//! Records are flat on purpose: a vendor's adapter turns them into its request bodies
//! (nested or not), while the planner only needs to compare fields by name.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// The record a provider's mapping produces for a user, in the vendor's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    fields: Vec<(Cow<'static, str>, Option<String>)>,
}

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field; `None` is a field the vendor holds empty (sent as `null` where the
    /// vendor wants that).
    pub fn with(mut self, name: &'static str, value: Option<String>) -> Self {
        self.fields.push((Cow::Borrowed(name), value));
        self
    }

    /// Sets field `name`: in place when the record has it, else added at the end (a
    /// field only a mapping sets, so records without mappings keep their shape).
    pub fn set(mut self, name: &'static str, value: Option<String>) -> Self {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((Cow::Borrowed(name), value)),
        }
        self
    }

    /// Gives back the spare room left by [`Record::with`] (a 5-field record has room
    /// for 8): a plan keeps a record per operation, a million on a first run.
    pub fn shrink_to_fit(&mut self) {
        self.fields.shrink_to_fit();
    }

    /// A record read back from the snapshot or the journal (fields in name order).
    pub fn from_stored(stored: &StoredRecord) -> Self {
        Record {
            fields: stored
                .0
                .iter()
                .map(|(n, v)| (Cow::Owned(n.clone()), v.clone()))
                .collect(),
        }
    }

    /// The same record with field `name` emptied (`None`).
    pub fn without(&self, name: &str) -> Record {
        Record {
            fields: self
                .fields
                .iter()
                .map(|(n, v)| (n.clone(), if n == name { None } else { v.clone() }))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v.as_deref()))
    }

    /// A stable 128-bit fingerprint of the fields (names and values, in order).
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Xxh3::new();
        for (name, value) in &self.fields {
            h.update(name.as_bytes());
            match value {
                // A tag byte keeps `None` apart from `Some("")`.
                Some(v) => {
                    h.update(&[1]);
                    h.update(&(v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
                None => h.update(&[0]),
            }
        }
        Fingerprint(h.digest128())
    }

    /// The form kept in the snapshot, to show old → new on the next change.
    pub fn to_stored(&self) -> StoredRecord {
        StoredRecord(
            self.fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }
}

/// A record as kept in the snapshot (read back from JSON, so names are owned).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredRecord(pub BTreeMap<String, Option<String>>);

impl StoredRecord {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.as_deref())
    }

    pub fn to_json(&self) -> String {
        // Serialising a map of strings cannot fail.
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// Fingerprint of the last record pushed: equal fingerprints mean nothing to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u128);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u128::from_str_radix(s, 16).map(Fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        let a = Record::new()
            .with("email", Some("a@b.co".into()))
            .with("phone", None);
        let b = Record::new()
            .with("email", Some("a@b.co".into()))
            .with("phone", Some(String::new()));
        let c = Record::new()
            .with("email", Some("a@b.co".into()))
            .with("phone", None);
        assert_eq!(a.fingerprint(), c.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint(), "None and empty differ");
        // Value boundaries are part of the hash: ("ab","c") != ("a","bc").
        let d = Record::new()
            .with("x", Some("ab".into()))
            .with("y", Some("c".into()));
        let e = Record::new()
            .with("x", Some("a".into()))
            .with("y", Some("bc".into()));
        assert_ne!(d.fingerprint(), e.fingerprint());
    }

    #[test]
    fn fingerprint_round_trips_through_text() {
        let f = Record::new().with("a", Some("1".into())).fingerprint();
        let s = f.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<Fingerprint>().ok(), Some(f));
    }

    #[test]
    fn stored_record_round_trips_through_json() {
        let r = Record::new()
            .with("name", Some("Ada".into()))
            .with("tierId", None)
            .to_stored();
        let back = StoredRecord::from_json(&r.to_json()).ok();
        assert_eq!(back.as_ref(), Some(&r));
        let again = Record::from_stored(&r);
        assert_eq!(again.get("name"), Some("Ada"));
        assert_eq!(again.get("tierId"), None);
        assert_eq!(again.to_stored(), r);
    }
}
