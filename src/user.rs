//! The canonical user: what every source produces and every provider maps from.
//!
//! Normalisation (trimming, collapsing whitespace, lower-casing emails) happens once,
//! here, so that a planner comparing two exports never sees a difference that is only
//! spacing or case. Status is evaluated against a `today` passed in by the caller:
//! nothing in this module reads the clock.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

/// Free attributes of a user (department, title, manager, …), sorted by name.
///
/// A sorted vector of shared strings rather than a map of owned ones: most users
/// carry a handful of attributes whose names (and often values: departments,
/// locations, titles) repeat across the whole export. With an [`Interner`] each
/// distinct string is stored once, which matters at a million users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(Arc<str>, Arc<str>)>);

impl Attributes {
    /// Builds attributes from pairs; later duplicates of a name win.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::from_shared(pairs.into_iter().map(|(k, v)| (Arc::from(k), Arc::from(v))))
    }

    /// Builds attributes from already shared (interned) strings; later duplicates win.
    pub fn from_shared(pairs: impl IntoIterator<Item = (Arc<str>, Arc<str>)>) -> Self {
        let mut v: Vec<(Arc<str>, Arc<str>)> = pairs.into_iter().collect();
        // Stable sort keeps input order among equal names, so dedup keeps the last one.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        out.shrink_to_fit();
        Attributes(out)
    }

    /// The value of attribute `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&**k, &**v)?;
        }
        map.end()
    }
}

/// Hands out one shared copy of each distinct string (attribute names and values).
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(s) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(s);
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

/// A validated, normalised source user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Stable key: the HR system's employee id.
    pub external_id: String,
    /// Lower-cased, trimmed.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    /// What the source's status field says, before dates are considered.
    pub status_active: bool,
    /// First working day, when the source gives one.
    pub start_date: Option<NaiveDate>,
    /// Termination date, when the source gives one: the user is inactive from this day on.
    pub termination_date: Option<NaiveDate>,
    pub attributes: Attributes,
}

/// Where a user stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Should hold an account.
    Active,
    /// Should not hold an active account (left, or marked inactive).
    Inactive,
    /// Hired but not yet inside the provisioning window: not created yet.
    PreHire { starts: NaiveDate },
}

impl User {
    /// The user's lifecycle on `today`.
    ///
    /// - A termination date on or before `today` makes the user inactive, whatever the
    ///   status field says.
    /// - A termination date after `today` keeps the user active until that day, even when
    ///   the status field already says terminated: HR systems flip the status when the
    ///   termination is entered, not when it takes effect.
    /// - A start date more than `provision_days_before_start` days ahead makes a pre-hire.
    pub fn lifecycle(&self, today: NaiveDate, provision_days_before_start: u32) -> Lifecycle {
        let active = match self.termination_date {
            Some(end) if end <= today => false,
            Some(_) => true,
            None => self.status_active,
        };
        if !active {
            return Lifecycle::Inactive;
        }
        if let Some(starts) = self.start_date {
            let window_opens = starts - chrono::Days::new(u64::from(provision_days_before_start));
            if today < window_opens {
                return Lifecycle::PreHire { starts };
            }
        }
        Lifecycle::Active
    }
}

/// Trims and collapses every run of whitespace to one space.
pub fn collapse_whitespace(s: &str) -> String {
    // Almost every cell of an export is already clean ASCII: copied as it is.
    let b = s.as_bytes();
    let clean_ascii = s.is_ascii()
        && b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && !b.windows(2).any(|w| w == b"  ")
        && !b
            .iter()
            .any(|c| (c.is_ascii_whitespace() && *c != b' ') || *c == 0x0B);
    if clean_ascii {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Normalises an email address: trimmed and lower-cased.
pub fn normalise_email(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no
/// whitespace or control characters. Vendors validate further; this catches the
/// typos and empty cells an HR export really contains.
pub fn is_valid_email(s: &str) -> bool {
    // For ASCII, whitespace and control characters are exactly the bytes up to a
    // space, and DEL: checked bytewise (the common case, a million times a read).
    let odd = if s.is_ascii() {
        s.bytes().any(|b| b <= b' ' || b == 0x7F)
    } else {
        s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if s.len() > 254 || odd {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return false;
    }
    let mut labels = 0;
    for l in domain.split('.') {
        labels += 1;
        if l.is_empty()
            || l.starts_with('-')
            || l.ends_with('-')
            || l.contains(['(', ')', ',', ';', ':', '<', '>', '[', ']', '"', '\\'])
        {
            return false;
        }
    }
    labels >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn user() -> User {
        User {
            external_id: "E1".into(),
            email: "a@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            phone: None,
            status_active: true,
            start_date: None,
            termination_date: None,
            attributes: Attributes::default(),
        }
    }

    #[test]
    fn future_termination_keeps_user_active_until_that_day() {
        let mut u = user();
        u.status_active = false;
        u.termination_date = Some(day("2026-12-01"));
        assert_eq!(u.lifecycle(day("2026-11-30"), 0), Lifecycle::Active);
        assert_eq!(u.lifecycle(day("2026-12-01"), 0), Lifecycle::Inactive);
        assert_eq!(u.lifecycle(day("2027-01-01"), 0), Lifecycle::Inactive);
    }

    #[test]
    fn past_termination_wins_over_active_status() {
        let mut u = user();
        u.termination_date = Some(day("2026-01-01"));
        assert_eq!(u.lifecycle(day("2026-11-24"), 0), Lifecycle::Inactive);
    }

    #[test]
    fn status_field_decides_without_dates() {
        let mut u = user();
        assert_eq!(u.lifecycle(day("2026-11-24"), 0), Lifecycle::Active);
        u.status_active = false;
        assert_eq!(u.lifecycle(day("2026-11-24"), 0), Lifecycle::Inactive);
    }

    #[test]
    fn pre_hire_is_provisioned_only_inside_the_window() {
        let mut u = user();
        u.start_date = Some(day("2026-12-10"));
        let starts = day("2026-12-10");
        assert_eq!(
            u.lifecycle(day("2026-11-24"), 0),
            Lifecycle::PreHire { starts }
        );
        assert_eq!(
            u.lifecycle(day("2026-12-09"), 0),
            Lifecycle::PreHire { starts }
        );
        assert_eq!(u.lifecycle(day("2026-12-10"), 0), Lifecycle::Active);
        assert_eq!(u.lifecycle(day("2026-12-03"), 7), Lifecycle::Active);
        assert_eq!(
            u.lifecycle(day("2026-12-02"), 7),
            Lifecycle::PreHire { starts }
        );
    }

    #[test]
    fn normalisation_collapses_and_lowercases() {
        assert_eq!(collapse_whitespace("  Mary \t Ann  "), "Mary Ann");
        assert_eq!(normalise_email("  Ada@Example.COM "), "ada@example.com");
    }

    #[test]
    fn clean_text_is_copied_and_the_rest_collapsed_alike() {
        for s in [
            "Ada",
            "Mary Ann",
            " Ada",
            "Ada ",
            "Mary  Ann",
            "a\tb",
            "a\u{0B}b",
            "a\nb",
            "Zoë  Ann",
            "a\u{A0}b",
            "",
            " ",
            "x y z",
        ] {
            let slow = s.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(collapse_whitespace(s), slow, "{s:?}");
        }
    }

    #[test]
    fn email_validation() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a b@c.de",
            "a@@b.co",
            "a@b..co",
            "a@-b.co",
            "a\u{7F}@b.co",
            "a\t@b.co",
            "a\u{A0}@b.co",
            "a\u{85}@b.co",
            "a@b.co-",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn attributes_are_sorted_and_last_duplicate_wins() {
        let a = Attributes::from_pairs([
            ("title".to_string(), "x".to_string()),
            ("dept".to_string(), "Sales".to_string()),
            ("title".to_string(), "y".to_string()),
        ]);
        assert_eq!(a.get("dept"), Some("Sales"));
        assert_eq!(a.get("title"), Some("y"));
        assert_eq!(a.get("nope"), None);
        assert_eq!(a.len(), 2);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"dept":"Sales","title":"y"}"#
        );
    }

    #[test]
    fn interner_shares_equal_strings() {
        let mut i = Interner::default();
        let a = i.intern("Sales");
        let b = i.intern("Sales");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &i.intern("Support")));
    }
}
