//! A provider's `scope:` filter: which source users belong in that vendor.
//!
//! ```yaml
//! scope:
//!   include: { department: [Sales, Support] }   # every key must match one of its values
//!   exclude: { employment_type: [Contractor] }  # any key matching one of its values excludes
//! ```
//! Keys are source attribute names (or `email_domain`); values compare
//! case-insensitively. No `include` means everyone is included.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Issue;
use crate::user::User;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    pub include: BTreeMap<String, Vec<String>>,
    pub exclude: BTreeMap<String, Vec<String>>,
}

impl Scope {
    pub(crate) fn validate(&self, path: &str, issues: &mut Vec<Issue>) {
        for (section, map) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (k, values) in map {
                if values.is_empty() {
                    issues.push(Issue::new(
                        format!("{path}.{section}.{k}"),
                        "empty list: give at least one value".into(),
                    ));
                }
            }
        }
    }

    /// Every rule as `(section, key, values)`: `include` rules first.
    pub fn rules(&self) -> impl Iterator<Item = (&'static str, &str, &[String])> {
        let include = self
            .include
            .iter()
            .map(|(k, v)| ("include", k.as_str(), v.as_slice()));
        let exclude = self
            .exclude
            .iter()
            .map(|(k, v)| ("exclude", k.as_str(), v.as_slice()));
        include.chain(exclude)
    }

    /// The scope keys no source record carries, each as `<path>.<section>.<key>: why`,
    /// with the closest column seen as a suggestion: a misspelt `exclude` key would
    /// exclude nobody, a misspelt `include` key include nobody, silently.
    /// `columns` are the attribute columns the source had (see
    /// `SourceLoad::attribute_columns`).
    pub fn unknown_keys(&self, path: &str, columns: &BTreeSet<String>) -> Vec<String> {
        self.rules()
            .filter(|(_, key, _)| *key != EMAIL_DOMAIN && !columns.contains(*key))
            .map(|(section, key, _)| {
                let hint = did_you_mean(key, columns)
                    .map(|c| format!("; did you mean {c}?"))
                    .unwrap_or_default();
                format!("{path}.scope.{section}.{key}: no source record has this attribute{hint}")
            })
            .collect()
    }

    /// How many of `users` each rule matches, in [`Scope::rules`] order.
    pub fn rule_matches(&self, users: &[User]) -> Vec<(&'static str, String, usize)> {
        self.rules()
            .map(|(section, key, values)| {
                let n = users.iter().filter(|u| hit(u, key, values)).count();
                (section, key.to_string(), n)
            })
            .collect()
    }

    /// Whether `user` is in this provider's scope.
    pub fn matches(&self, user: &User) -> bool {
        self.include.iter().all(|(k, vs)| hit(user, k, vs))
            && !self.exclude.iter().any(|(k, vs)| hit(user, k, vs))
    }
}

/// The scope key that is not a column: the part of the email after `@`.
const EMAIL_DOMAIN: &str = "email_domain";

/// Whether `user`'s value for `key` is one of `values` (case-insensitively).
fn hit(user: &User, key: &str, values: &[String]) -> bool {
    let value = if key == EMAIL_DOMAIN {
        user.email.rsplit_once('@').map(|(_, d)| d)
    } else {
        user.attributes.get(key)
    };
    value.is_some_and(|v| values.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
}

/// The column closest to `key`, when it is close enough to be a typo (Jaro-Winkler
/// similarity of at least 0.8, case-insensitive).
fn did_you_mean<'c>(key: &str, columns: &'c BTreeSet<String>) -> Option<&'c str> {
    let key = key.to_lowercase();
    columns
        .iter()
        .map(|c| (strsim::jaro_winkler(&key, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Attributes;

    fn user(dept: &str, kind: &str) -> User {
        User {
            external_id: "1".into(),
            email: "a@corp.example".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            phone: None,
            status_active: true,
            start_date: None,
            termination_date: None,
            attributes: Attributes::from_pairs([
                ("department".to_string(), dept.to_string()),
                ("employment_type".to_string(), kind.to_string()),
            ]),
        }
    }

    #[test]
    fn empty_scope_includes_everyone() {
        assert!(Scope::default().matches(&user("Sales", "Employee")));
    }

    #[test]
    fn include_and_exclude_combine() {
        let s = Scope {
            include: [(
                "department".to_string(),
                vec!["sales".to_string(), "Support".to_string()],
            )]
            .into(),
            exclude: [(
                "employment_type".to_string(),
                vec!["Contractor".to_string()],
            )]
            .into(),
        };
        assert!(s.matches(&user("Sales", "Employee")));
        assert!(!s.matches(&user("Sales", "contractor")));
        assert!(!s.matches(&user("Engineering", "Employee")));
    }

    #[test]
    fn missing_attribute_is_not_included() {
        let s = Scope {
            include: [("location".to_string(), vec!["Paris".to_string()])].into(),
            ..Scope::default()
        };
        assert!(!s.matches(&user("Sales", "Employee")));
    }

    #[test]
    fn email_domain_is_a_scope_key() {
        let s = Scope {
            include: [("email_domain".to_string(), vec!["corp.example".to_string()])].into(),
            ..Scope::default()
        };
        assert!(s.matches(&user("Sales", "Employee")));
    }

    #[test]
    fn a_scope_key_no_record_carries_is_named_with_a_suggestion() {
        let s = Scope {
            include: [("Departmnt".to_string(), vec!["Sales".to_string()])].into(),
            exclude: [
                ("employment_typ".to_string(), vec!["Contractor".to_string()]),
                ("email_domain".to_string(), vec!["x.example".to_string()]),
                ("zzz".to_string(), vec!["1".to_string()]),
            ]
            .into(),
        };
        let columns: BTreeSet<String> = ["department", "employment_type", "title"]
            .into_iter()
            .map(String::from)
            .collect();
        let problems = s.unknown_keys("providers[0]", &columns);
        assert_eq!(
            problems,
            [
                "providers[0].scope.include.Departmnt: no source record has this attribute; did you mean department?",
                "providers[0].scope.exclude.employment_typ: no source record has this attribute; did you mean employment_type?",
                "providers[0].scope.exclude.zzz: no source record has this attribute",
            ]
        );
        assert!(Scope::default().unknown_keys("p", &columns).is_empty());
    }

    #[test]
    fn each_rule_counts_the_users_it_matches() {
        let s = Scope {
            include: [("department".to_string(), vec!["sales".to_string()])].into(),
            exclude: [(
                "employment_type".to_string(),
                vec!["Contractor".to_string()],
            )]
            .into(),
        };
        let users = [
            user("Sales", "Employee"),
            user("Sales", "Contractor"),
            user("Engineering", "Contractor"),
        ];
        assert_eq!(
            s.rule_matches(&users),
            [
                ("include", "department".to_string(), 2),
                ("exclude", "employment_type".to_string(), 2)
            ]
        );
    }
}
