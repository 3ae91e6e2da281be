//! From raw records to validated users: field mapping, normalisation, status and dates,
//! and duplicate keys and emails. Shared by every source type.

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDate;

use super::{RawRecord, SourceLoad, SourceRejection};
use crate::config::SourceConfig;
use crate::user::{
    collapse_whitespace, is_valid_email, normalise_email, Attributes, Interner, User,
};

/// How many other locations a duplicate message lists before it says "and N more".
const MAX_LISTED_DUPLICATES: usize = 5;

/// Validates and normalises raw records into users; invalid records become rejections
/// and the rest go on.
///
/// Records that share an `external_id` are all rejected, and so are records with
/// different `external_id`s that share an email: which of them is right is for HR to
/// decide, and a rejected key is held by the planner rather than guessed at.
pub fn build_users(
    records: impl IntoIterator<Item = RawRecord>,
    config: &SourceConfig,
) -> SourceLoad {
    let mut builder = Builder::new(config);
    for record in records {
        builder.push_record(record);
    }
    builder.finish()
}

/// [`build_users`] fed one record at a time, so that file sources can stream records
/// in (and add the records they could not even split into fields) without collecting
/// them first.
///
/// Valid users go straight into their final vector and only the few rejected records
/// are kept aside: at a million users, a second per-record vector (or a copy of every
/// key and email) would cost hundreds of megabytes at the peak.
pub(super) struct Builder<'c> {
    config: &'c SourceConfig,
    /// `status.active_values`, trimmed and lower-cased.
    active_values: Vec<String>,
    /// Columns that feed canonical fields, status or dates: never attributes.
    reserved: Vec<&'c str>,
    /// Attribute names and values repeat across an export: each is stored once.
    interner: Interner,
    users: Vec<User>,
    /// Parallel to `users`: each user's record number and location.
    user_origins: Vec<(usize, Box<str>)>,
    /// Rejected records with their record numbers, in input order.
    rejected: Vec<(usize, Pending)>,
    /// Records pushed so far.
    records: usize,
    /// Every attribute column seen in any record, with a value or empty.
    attribute_columns: BTreeSet<String>,
}

/// A rejected record, while more problems (duplicates) may still be found.
struct Pending {
    location: String,
    /// The key as written (trimmed), even when it is what is wrong: the planner holds
    /// the account it names.
    external_id: Option<String>,
    /// The address normalised (trimmed, lower-cased), even when it is not valid: the
    /// planner holds the account that has it. Only valid ones take part in duplicate
    /// checks.
    email: Option<String>,
    problems: Vec<String>,
}

/// A record in duplicate checks: a valid user or an already rejected record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    User(usize),
    Rejected(usize),
}

impl<'c> Builder<'c> {
    pub(super) fn new(config: &'c SourceConfig) -> Self {
        let status = &config.status;
        let mut reserved = config.fields.columns();
        reserved.extend(
            [
                &status.field,
                &status.start_date_field,
                &status.termination_date_field,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        );
        Builder {
            config,
            active_values: status
                .active_values
                .iter()
                .map(|v| v.trim().to_lowercase())
                .collect(),
            reserved,
            interner: Interner::default(),
            users: Vec::new(),
            user_origins: Vec::new(),
            rejected: Vec::new(),
            records: 0,
            attribute_columns: BTreeSet::new(),
        }
    }

    /// Adds a record that the source could not even read into fields (wrong field
    /// count, bad encoding, not an object). It still takes part in duplicate checks
    /// through whatever key and email it carries.
    pub(super) fn push_rejected(&mut self, rejection: SourceRejection) {
        let pending = Pending {
            location: rejection.location,
            external_id: rejection.external_id,
            email: rejection.email,
            problems: vec![rejection.reason],
        };
        self.rejected.push((self.records, pending));
        self.records += 1;
    }

    /// The column the key (`external_id`) is read from.
    pub(super) fn key_column(&self) -> &str {
        &self.config.fields.external_id
    }

    pub(super) fn push_record(&mut self, record: RawRecord) {
        self.push_flawed(record, Vec::new());
    }

    /// Adds a record that the source could split into fields but found something wrong
    /// with on the way (a repeated JSON key, a number that is not an exact integer):
    /// it is rejected with those `problems` (and any others it has), and carries the
    /// key and email it has so that the planner holds their account.
    pub(super) fn push_flawed(&mut self, record: RawRecord, problems: Vec<String>) {
        let validated = self.validate(record);
        let validated = match validated {
            Ok((user, location)) if !problems.is_empty() => Err(Pending {
                location,
                external_id: Some(user.external_id),
                email: Some(user.email),
                problems,
            }),
            Err(mut pending) => {
                pending.problems.splice(0..0, problems);
                Err(pending)
            }
            ok => ok,
        };
        match validated {
            Ok((user, location)) => {
                self.users.push(user);
                self.user_origins
                    .push((self.records, location.into_boxed_str()));
            }
            Err(pending) => self.rejected.push((self.records, pending)),
        }
        self.records += 1;
    }

    /// The user, or the record's problems.
    fn validate(&mut self, record: RawRecord) -> Result<(User, String), Pending> {
        let fields = &self.config.fields;
        let status = &self.config.status;
        let mut problems = Vec::new();
        let get = |column: &str| lookup(&record.fields, column);

        // Control characters first: a NUL or DEL hidden in a key makes a "new person"
        // (and the real one "gone"), in an email a second account; in any other column
        // it is no text an HR system meant. Every column of the record is checked.
        for (column, value) in &record.fields {
            if let Some(problem) = self.control_problem(column, value) {
                problems.push(problem);
            }
        }

        let external_id = get(&fields.external_id).map(str::to_string);
        if external_id.is_none() {
            problems.push(format!(
                "missing external_id (column `{}`)",
                fields.external_id
            ));
        }

        // Kept even when invalid (as the record's identity for holding), never as a user.
        let mut email_ok = false;
        let email = match get(&fields.email) {
            None => {
                problems.push(format!("missing email (column `{}`)", fields.email));
                None
            }
            Some(raw) => {
                let email = normalise_email(raw);
                email_ok = is_valid_email(&email);
                if !email_ok {
                    problems.push(format!(
                        "invalid email {} (column `{}`)",
                        quoted(raw),
                        fields.email
                    ));
                }
                Some(email)
            }
        };

        let mut name = |field: &str, column: &str| {
            let value = get(column).map(collapse_whitespace).unwrap_or_default();
            if value.is_empty() {
                problems.push(format!("missing {field} (column `{column}`)"));
            }
            value
        };
        let first_name = name("first_name", &fields.first_name);
        let last_name = name("last_name", &fields.last_name);

        let phone = fields.phone.as_deref().and_then(get).map(str::to_string);

        let status_active = match &status.field {
            None => true,
            Some(column) => match get(column) {
                Some(value) => self.active_values.contains(&value.to_lowercase()),
                None => {
                    problems.push(format!("missing status (column `{column}`)"));
                    false
                }
            },
        };

        let mut date = |what: &str, column: &Option<String>| -> Option<NaiveDate> {
            let column = column.as_deref()?;
            let value = get(column)?;
            match NaiveDate::parse_from_str(value, &status.date_format) {
                Ok(day) => Some(day),
                Err(err) => {
                    problems.push(format!(
                        "unparsable {what} `{value}` (column `{column}`): {err}; expected \
                         the format `{}`",
                        status.date_format
                    ));
                    None
                }
            }
        };
        let start_date = date("start date", &status.start_date_field);
        let termination_date = date("termination date", &status.termination_date_field);

        match (external_id, email) {
            (Some(external_id), Some(email)) if problems.is_empty() && email_ok => {
                let user = User {
                    external_id,
                    email,
                    first_name,
                    last_name,
                    phone,
                    status_active,
                    start_date,
                    termination_date,
                    attributes: self.attributes(record.fields),
                };
                Ok((user, record.location))
            }
            (external_id, email) => Err(Pending {
                location: record.location,
                external_id,
                email,
                problems,
            }),
        }
    }

    /// What is wrong with the control characters in `value` of `column`, if anything.
    ///
    /// - key and email: none at all (C0 including NUL and tab, DEL, C1);
    /// - names: none but tab and line breaks (a quoted line break in a name is
    ///   collapsed to a space, as any run of whitespace);
    /// - phone, status and date columns: none but tab;
    /// - attributes (free text, such as an address over two lines): none but tab,
    ///   line feed and carriage return.
    fn control_problem(&self, column: &str, value: &str) -> Option<String> {
        let fields = &self.config.fields;
        let (what, allowed): (&str, &[char]) = if column == fields.external_id {
            ("external_id", &[])
        } else if column == fields.email {
            ("email", &[])
        } else if column == fields.first_name {
            ("first_name", &['\t', '\n', '\r'])
        } else if column == fields.last_name {
            ("last_name", &['\t', '\n', '\r'])
        } else if self.reserved.contains(&column) {
            ("value", &['\t'])
        } else {
            ("value", &['\t', '\n', '\r'])
        };
        let bad = value
            .chars()
            .find(|c| c.is_control() && !allowed.contains(c))?;
        Some(format!(
            "{what} (column `{column}`) has the control character U+{:04X} in {}",
            u32::from(bad),
            quoted(value)
        ))
    }

    /// Every column not used for a canonical field, status or date, trimmed, with
    /// empty values (and unnamed columns) dropped.
    fn attributes(&mut self, fields: Vec<(String, String)>) -> Attributes {
        let mut pairs = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let value = value.trim();
            if name.is_empty() || self.reserved.contains(&name.as_str()) {
                continue;
            }
            if !self.attribute_columns.contains(name.as_str()) {
                self.attribute_columns.insert(name.clone());
            }
            if value.is_empty() {
                continue;
            }
            pairs.push((self.interner.intern(&name), self.interner.intern(value)));
        }
        Attributes::from_shared(pairs)
    }

    pub(super) fn finish(mut self) -> SourceLoad {
        let mut flagged: Vec<(usize, String)> = Vec::new();
        for (entry, problem) in self.duplicate_problems() {
            match entry {
                Entry::Rejected(j) => self.rejected[j].1.problems.push(problem),
                Entry::User(i) => flagged.push((i, problem)),
            }
        }

        // Users with a duplicate move to the rejected, with their problems in order.
        flagged.sort_by_key(|&(i, _)| i);
        let mut flagged_users: Vec<usize> = Vec::new();
        for group in flagged.chunk_by(|a, b| a.0 == b.0) {
            let i = group[0].0;
            let (seq, location) = &self.user_origins[i];
            let user = &self.users[i];
            let pending = Pending {
                location: location.to_string(),
                external_id: Some(user.external_id.clone()),
                email: Some(user.email.clone()),
                problems: group.iter().map(|(_, p)| p.clone()).collect(),
            };
            self.rejected.push((*seq, pending));
            flagged_users.push(i);
        }
        let mut index = 0;
        self.users.retain(|_| {
            let keep = flagged_users.binary_search(&index).is_err();
            index += 1;
            keep
        });
        self.users
            .sort_unstable_by(|a, b| a.external_id.cmp(&b.external_id));
        self.users.shrink_to_fit();

        self.rejected.sort_by_key(|&(seq, _)| seq);
        let rejected = self
            .rejected
            .into_iter()
            .map(|(_, pending)| SourceRejection {
                location: pending.location,
                external_id: pending.external_id,
                email: pending.email,
                reason: pending.problems.join("; "),
            })
            .collect();
        SourceLoad {
            users: self.users,
            rejected,
            records: self.records,
            attribute_columns: self.attribute_columns,
        }
    }

    /// Every record whose key is shared with another record, or whose email is shared
    /// with a record of another key, with the problem to report.
    fn duplicate_problems(&self) -> Vec<(Entry, String)> {
        let mut out = Vec::new();

        let by_id = self.repeated(|user| Some(&user.external_id), |p| p.external_id.as_ref());
        for group in by_id.chunk_by(|a, b| a.0 == b.0) {
            for &(id, _, entry) in group {
                let also = self.other_locations(group, entry);
                out.push((entry, format!("duplicate external_id {id} (also {also})")));
            }
        }

        // An invalid address is kept on a rejection only to hold its account.
        let by_email = self.repeated(
            |user| Some(&user.email),
            |p| p.email.as_ref().filter(|e| is_valid_email(e)),
        );
        for group in by_email.chunk_by(|a, b| a.0 == b.0) {
            // Records that share both key and email are already duplicates by key.
            let first_id = self.external_id(group[0].2);
            let one_key = first_id.is_some()
                && group
                    .iter()
                    .all(|&(_, _, e)| self.external_id(e) == first_id);
            if one_key {
                continue;
            }
            for &(email, _, entry) in group {
                let also = self.other_locations(group, entry);
                out.push((entry, format!("duplicate email {email} (also {also})")));
            }
        }
        out
    }

    /// `(value, record number, entry)` for every record whose value (key or email)
    /// another record also has, sorted so that each value's records are together and
    /// in input order.
    ///
    /// A hash set first finds the repeated values, so that only those few are sorted:
    /// sorting a million keys (twice) costs more than the whole parse.
    fn repeated<'s>(
        &'s self,
        of_user: impl Fn(&'s User) -> Option<&'s String>,
        of_rejected: impl Fn(&'s Pending) -> Option<&'s String>,
    ) -> Vec<(&'s str, usize, Entry)> {
        let all = || {
            let users = self.users.iter().enumerate().filter_map(|(i, user)| {
                Some((
                    of_user(user)?.as_str(),
                    self.user_origins[i].0,
                    Entry::User(i),
                ))
            });
            let rejected = self
                .rejected
                .iter()
                .enumerate()
                .filter_map(|(j, (seq, p))| {
                    Some((of_rejected(p)?.as_str(), *seq, Entry::Rejected(j)))
                });
            users.chain(rejected)
        };
        let mut seen: HashSet<&str> = HashSet::with_capacity(self.records);
        let mut repeated: HashSet<&str> = HashSet::new();
        for (value, _, _) in all() {
            if !seen.insert(value) {
                repeated.insert(value);
            }
        }
        drop(seen);
        let mut members: Vec<_> = all()
            .filter(|(value, _, _)| repeated.contains(value))
            .collect();
        members.sort_unstable();
        members
    }

    fn external_id(&self, entry: Entry) -> Option<&str> {
        match entry {
            Entry::User(i) => Some(self.users[i].external_id.as_str()),
            Entry::Rejected(j) => self.rejected[j].1.external_id.as_deref(),
        }
    }

    fn location(&self, entry: Entry) -> &str {
        match entry {
            Entry::User(i) => &self.user_origins[i].1,
            Entry::Rejected(j) => &self.rejected[j].1.location,
        }
    }

    /// The locations of a duplicate group's other members, for a message.
    fn other_locations(&self, group: &[(&str, usize, Entry)], this: Entry) -> String {
        let others: Vec<&str> = group
            .iter()
            .filter(|&&(_, _, entry)| entry != this)
            .map(|&(_, _, entry)| self.location(entry))
            .collect();
        let mut text = others
            .iter()
            .take(MAX_LISTED_DUPLICATES)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if others.len() > MAX_LISTED_DUPLICATES {
            text.push_str(&format!(
                " and {} more",
                others.len() - MAX_LISTED_DUPLICATES
            ));
        }
        text
    }
}

/// `value` for a message, in backticks: escaped (a NUL shows as `\0`, never raw), and
/// cut after 64 characters: a rejection reason must not carry a whole hostile field.
pub(super) fn quoted(value: &str) -> String {
    const SHOWN: usize = 64;
    let shown: String = value.chars().take(SHOWN).collect();
    let mut text = shown.escape_debug().to_string();
    if value.chars().nth(SHOWN).is_some() {
        text.push('…');
    }
    format!("`{text}`")
}

/// The trimmed value of `column`, or `None` when it is absent or blank. The last
/// occurrence wins, as with attributes.
fn lookup<'r>(fields: &'r [(String, String)], column: &str) -> Option<&'r str> {
    fields
        .iter()
        .rev()
        .find(|(name, _)| name == column)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}
