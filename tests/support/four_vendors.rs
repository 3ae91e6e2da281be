//! The population of the four-vendor tests (tests/e2e_four_vendors.rs, tests/soak.rs):
//! people spread over departments and two email domains, and the scopes their
//! configs give each vendor, computed here independently of rosterd.

use std::collections::BTreeSet;

/// Departments, in the order people are given them.
pub const DEPARTMENTS: [&str; 5] = ["Sales", "Engineering", "Research", "Support", "Ops"];

/// One person in the source.
#[derive(Debug, Clone)]
pub struct Emp {
    pub id: String,
    pub email: String,
    pub first: String,
    pub last: String,
    pub phone: String,
    pub dept: String,
    pub active: bool,
}

impl Emp {
    /// Every eighth person has a partner address; departments go round.
    pub fn new(i: usize) -> Emp {
        let domain = if i % 8 == 7 {
            "partners.example"
        } else {
            "corp.example"
        };
        Emp {
            id: format!("E{i:05}"),
            email: format!("user{i}@{domain}"),
            first: format!("Fn{i}"),
            last: format!("Last{i}"),
            phone: format!("+1555{i:07}"),
            dept: DEPARTMENTS[i % DEPARTMENTS.len()].into(),
            active: true,
        }
    }

    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').unwrap().1
    }
}

/// The scopes the four-vendor configs give each vendor.
pub fn in_scope(vendor: &str, e: &Emp) -> bool {
    e.active
        && match vendor {
            "hesh" => e.domain() != "partners.example",
            "saleschat" => matches!(e.dept.as_str(), "Sales" | "Support"),
            "vyte" => e.domain() == "corp.example" && e.dept != "Ops",
            "zaia" => matches!(e.dept.as_str(), "Engineering" | "Research"),
            _ => unreachable!(),
        }
}

pub fn ids(vendor: &str, people: &[Emp]) -> BTreeSet<String> {
    people
        .iter()
        .filter(|e| in_scope(vendor, e))
        .map(|e| e.id.clone())
        .collect()
}
