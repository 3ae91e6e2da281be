//! A provider's `scope:` filter: which source users belong in that vendor.
//!
//! ```yaml
//! scope:
//!   include: { department: [Sales, Support] }   # every key must match one of its values
//!   exclude: { employment_type: [Contractor] }  # any key matching one of its values excludes
//! ```
//! Keys are source attribute names (or `email_domain`); values compare
//! case-insensitively. No `include` means everyone is included.

use std::collections::BTreeMap;

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

    /// Whether `user` is in this provider's scope.
    pub fn matches(&self, user: &User) -> bool {
        let value_of = |key: &str| -> Option<String> {
            if key == "email_domain" {
                return user.email.rsplit_once('@').map(|(_, d)| d.to_string());
            }
            user.attributes.get(key).map(str::to_string)
        };
        let hit = |key: &str, values: &[String]| {
            value_of(key).is_some_and(|v| values.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
        };
        self.include.iter().all(|(k, vs)| hit(k, vs))
            && !self.exclude.iter().any(|(k, vs)| hit(k, vs))
    }
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
}
