//! Convergence, as a property: random sequences of HR changes — hires, leavers,
//! removals, rehires, renames, email and phone changes, scope moves, duplicate and
//! invalid rows — applied over several passes of the real binary against all four
//! stateful fake vendors at once (hesh, saleschat, vyte, zaia), with random faults on
//! those passes, each vendor its own (5xx before or after the change is applied, slow
//! answers; at hesh also dropped connections before or after; and a tight rate limit
//! everywhere, so busy passes meet 429s). Then the faults stop and one more pass must
//! leave every vendor holding exactly what the source says — or the user listed as
//! manual action or rejected, with a reason — and a further pass sends nothing. After
//! every pass: no vendor holds anyone twice, and no account of someone the source keeps
//! active (or whose row was rejected, so is held) went from active to disabled.
//!
//! Each case also draws config choices: `on_email_change: recreate` at hesh and
//! saleschat (an email they cannot change in place gets a new account, the old one
//! disabled) or manual action, and vyte's batch endpoint on or off.
//!
//! What each vendor can hold differs, and the checks say it in one shape
//! ([`Account`]): hesh and zaia disable, saleschat disables but cannot rename (renames
//! and email changes are manual action), vyte cannot disable (leavers are manual
//! action), only hesh keeps the phone.
//!
//! Cases: 10 by default, from a fixed seed (the same every run); `ROSTERD_LONG_TESTS=1`
//! runs 200 new ones. proptest keeps any failing case it finds, shrunk, in
//! `tests/convergence.proptest-regressions`, and replays it first on every run: commit
//! that file with the fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, RngSeed};
use serde_json::Value;

use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus};
use support::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions};
use support::fake_server::FakeVendor;
use support::fake_vyte::{FakeVyte, FakeVyteOptions};
use support::fake_zaia::{FakeZaia, FakeZaiaOptions};
use support::workspace::{provider, Provider, Workspace};

/// One person in the HR system, as the model knows them.
#[derive(Debug, Clone)]
struct Person {
    id: u32,
    present: bool,
    active: bool,
    in_scope: bool,
    /// Versions of the fields: each change makes a new value.
    name: u32,
    email: u32,
    phone: u32,
    /// A second row with the same key: both rejected, the key held.
    duplicated: bool,
    /// The email is broken: the row is rejected, the key held.
    invalid: bool,
}

impl Person {
    fn new(id: u32) -> Person {
        Person {
            id,
            present: true,
            active: true,
            in_scope: true,
            name: 0,
            email: 0,
            phone: 0,
            duplicated: false,
            invalid: false,
        }
    }
    fn key(&self) -> String {
        format!("E{:04}", self.id)
    }
    fn email(&self) -> String {
        format!("p{}.v{}@corp.example", self.id, self.email)
    }
    fn phone(&self) -> String {
        format!("+1555{:04}{:03}", self.id, self.phone)
    }
    fn first(&self) -> String {
        format!("F{}", self.id)
    }
    fn last(&self) -> String {
        format!("Last{}v{}", self.id, self.name)
    }
    /// The source has a valid row for them (not held).
    fn valid(&self) -> bool {
        self.present && !self.duplicated && !self.invalid
    }
    fn held(&self) -> bool {
        self.present && (self.duplicated || self.invalid)
    }
    /// Every vendor should hold them active.
    fn wanted(&self) -> bool {
        self.valid() && self.active && self.in_scope
    }
    fn rows(&self) -> Vec<String> {
        if !self.present {
            return Vec::new();
        }
        let email = if self.invalid {
            format!("p{}-at-corp.example", self.id)
        } else {
            self.email()
        };
        let status = if self.active { "active" } else { "terminated" };
        let dept = if self.in_scope {
            "Sales"
        } else {
            "Contractors"
        };
        let row = format!(
            "{},{email},{},{},{},{status},{dept}",
            self.key(),
            self.first(),
            self.last(),
            self.phone()
        );
        if self.duplicated {
            let twin = format!(
                "{},twin{}@corp.example,Twin,Row,+1999{:07},active,Sales",
                self.key(),
                self.id,
                self.id
            );
            vec![row, twin]
        } else {
            vec![row]
        }
    }
}

/// One HR change; `usize` picks a person (modulo how many there are).
#[derive(Debug, Clone)]
enum Change {
    Hire,
    Leave(usize),
    Remove(usize),
    Rehire(usize),
    Rename(usize),
    Email(usize),
    Phone(usize),
    Scope(usize),
    Duplicate(usize),
    Invalid(usize),
}

fn change() -> impl Strategy<Value = Change> {
    let who = any::<usize>();
    prop_oneof![
        3 => Just(Change::Hire),
        2 => who.prop_map(Change::Leave),
        1 => who.prop_map(Change::Remove),
        2 => who.prop_map(Change::Rehire),
        2 => who.prop_map(Change::Rename),
        1 => who.prop_map(Change::Email),
        1 => who.prop_map(Change::Phone),
        1 => who.prop_map(Change::Scope),
        1 => who.prop_map(Change::Duplicate),
        1 => who.prop_map(Change::Invalid),
    ]
}

/// Faults on one pass at one vendor (what its fake does to the requests of that pass).
#[derive(Debug, Clone)]
enum Fault {
    None,
    ServerErrors(usize, u16),
    FailAfterApply(usize),
    Slow,
    /// hesh only: its fake can close a connection without answering.
    Drops(usize),
    DropAfterApply(usize),
}

/// The faults every fake can inject.
fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        2 => Just(Fault::None),
        2 => (1usize..4, prop_oneof![Just(500u16), Just(502), Just(503)])
            .prop_map(|(n, s)| Fault::ServerErrors(n, s)),
        2 => (1usize..3).prop_map(Fault::FailAfterApply),
        1 => Just(Fault::Slow),
    ]
}

/// hesh's: the common ones and dropped connections.
fn hesh_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        5 => fault(),
        1 => (1usize..3).prop_map(Fault::Drops),
        2 => (1usize..3).prop_map(Fault::DropAfterApply),
    ]
}

const VENDORS: [&str; 4] = ["hesh", "saleschat", "vyte", "zaia"];

/// The config choices a case draws.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// `on_email_change: recreate` at hesh and saleschat (a new account for an email
    /// they cannot change in place, the old one disabled) instead of manual action.
    recreate: bool,
    /// vyte's `batch: true` (creates through its batch endpoint).
    vyte_batch: bool,
}

impl Options {
    /// Whether `vendor` may hold old, disabled accounts of someone beside their
    /// current one.
    fn recreates_at(self, vendor: &str) -> bool {
        self.recreate && matches!(vendor, "hesh" | "saleschat")
    }
}

fn options() -> impl Strategy<Value = Options> {
    (any::<bool>(), any::<bool>()).prop_map(|(recreate, vyte_batch)| Options {
        recreate,
        vyte_batch,
    })
}

#[derive(Debug, Clone)]
struct Pass {
    changes: Vec<Change>,
    /// One per vendor, in [`VENDORS`] order.
    faults: Vec<Fault>,
}

fn pass() -> impl Strategy<Value = Pass> {
    (
        proptest::collection::vec(change(), 1..6),
        (hesh_fault(), fault(), fault(), fault()),
    )
        .prop_map(|(changes, (h, s, v, z))| Pass {
            changes,
            faults: vec![h, s, v, z],
        })
}

struct World {
    people: Vec<Person>,
}

impl World {
    fn new(n: u32) -> World {
        World {
            people: (0..n).map(Person::new).collect(),
        }
    }

    fn apply(&mut self, change: &Change) {
        let n = self.people.len();
        let pick = |i: usize| i % n;
        match *change {
            Change::Hire => {
                let id = n as u32;
                self.people.push(Person::new(id));
            }
            Change::Leave(i) => self.people[pick(i)].active = false,
            Change::Remove(i) => self.people[pick(i)].present = false,
            Change::Rehire(i) => {
                let p = &mut self.people[pick(i)];
                p.present = true;
                p.active = true;
            }
            Change::Rename(i) => self.people[pick(i)].name += 1,
            Change::Email(i) => self.people[pick(i)].email += 1,
            Change::Phone(i) => self.people[pick(i)].phone += 1,
            Change::Scope(i) => {
                let p = &mut self.people[pick(i)];
                p.in_scope = !p.in_scope;
            }
            Change::Duplicate(i) => {
                let p = &mut self.people[pick(i)];
                p.duplicated = !p.duplicated;
            }
            Change::Invalid(i) => {
                let p = &mut self.people[pick(i)];
                p.invalid = !p.invalid;
            }
        }
    }

    /// People with a valid row: below `safety.min_source_users` (1) the pass is blocked.
    fn valid_users(&self) -> usize {
        self.people.iter().filter(|p| p.valid()).count()
    }

    fn write(&self, ws: &Workspace) {
        let mut csv = String::from("id,email,first,last,phone,status,dept\n");
        for p in &self.people {
            for row in p.rows() {
                csv.push_str(&row);
                csv.push('\n');
            }
        }
        std::fs::write(ws.path().join("users.csv"), csv).unwrap();
    }

    /// The person an account belongs to, by its email (`p{id}.v{n}@…`): every email
    /// rosterd may send is one of someone's.
    fn owner(&self, account: &Account) -> Option<&Person> {
        let id: u32 = account
            .email
            .strip_prefix('p')?
            .split_once(".v")?
            .0
            .parse()
            .ok()?;
        self.people.iter().find(|p| p.id == id)
    }
}

/// One account at a vendor, in the terms all four share.
#[derive(Debug, Clone)]
struct Account {
    /// The vendor's id.
    id: String,
    email: String,
    /// "first last".
    name: String,
    /// Only hesh keeps a phone.
    phone: Option<String>,
    /// Can sign in: hesh Active, saleschat enabled and in the org, zaia not blocked;
    /// vyte cannot disable anyone, so every vyte account is.
    active: bool,
}

/// The four fakes, each with a tight rate limit (12 requests a second).
struct Fakes {
    hesh: FakeHesh,
    saleschat: FakeSaleschat,
    vyte: FakeVyte,
    zaia: FakeZaia,
}

impl Fakes {
    fn start() -> Fakes {
        let (limit, window) = (12, Duration::from_secs(1));
        Fakes {
            hesh: FakeHesh::start_blocking(FakeHeshOptions {
                limit,
                window,
                ..FakeHeshOptions::default()
            }),
            saleschat: FakeSaleschat::start_blocking(FakeSaleschatOptions {
                limit,
                window,
                ..FakeSaleschatOptions::default()
            }),
            vyte: FakeVyte::start_with(FakeVyteOptions {
                limit,
                window,
                ..FakeVyteOptions::default()
            }),
            zaia: FakeZaia::start(FakeZaiaOptions {
                limit,
                window,
                ..FakeZaiaOptions::default()
            }),
        }
    }

    /// A workspace with all four as providers, each scoped to Sales, with two attempts
    /// per operation (faults reach the next pass) and no quarantine (it is for people,
    /// not for a test that fails passes on purpose).
    fn workspace(&self, options: Options) -> Workspace {
        let tail = "    scope: { include: { dept: [Sales] } }\n    rate_limit: { max_attempts: 2, timeout_seconds: 5 }\n";
        let email_change = if options.recreate {
            "    on_email_change: recreate\n"
        } else {
            ""
        };
        let h = &self.hesh;
        let mut ws = Workspace::new(
            Provider::hesh(&h.base_url(), h.tenant_id(), h.api_key()),
            &format!("    batch_size: 3\n{email_change}{tail}"),
        );
        let s = &self.saleschat;
        ws.add(
            Provider::saleschat(&s.base_url(), s.org_id(), s.token()),
            &format!("{email_change}{tail}"),
        );
        let batch = if options.vyte_batch {
            "    batch: true\n"
        } else {
            ""
        };
        ws.add(
            Provider::vyte(&self.vyte.base_url(), self.vyte.api_key()),
            &format!("{batch}{tail}"),
        );
        let z = &self.zaia;
        ws.add(
            Provider::zaia(&z.base_url(), z.channel_id(), z.api_key()),
            tail,
        );
        let config = ws.path().join("rosterd.yaml");
        let yaml = std::fs::read_to_string(&config).unwrap().replacen(
            "safety: { max_disable_percent: 100, min_source_users: 1 }",
            "safety: { max_disable_percent: 100, min_source_users: 1, quarantine_after: 0 }",
            1,
        );
        std::fs::write(&config, yaml).unwrap();
        ws
    }

    fn accounts(&self, vendor: &str) -> Vec<Account> {
        match vendor {
            "hesh" => self
                .hesh
                .users()
                .into_iter()
                .map(|u| Account {
                    id: u.id.to_string(),
                    name: u.full_name(),
                    phone: u.phone.clone(),
                    active: u.status == HeshStatus::Active,
                    email: u.email,
                })
                .collect(),
            "saleschat" => self
                .saleschat
                .users()
                .into_iter()
                .filter(|u| !u.deleted)
                .map(|u| Account {
                    name: format!("{} {}", u.first_name, u.last_name),
                    phone: None,
                    active: u.in_org && !u.disabled,
                    id: u.id,
                    email: u.email,
                })
                .collect(),
            "vyte" => self
                .vyte
                .users()
                .into_iter()
                .map(|u| Account {
                    email: u.email().to_string(),
                    name: format!("{} {}", u.first_name, u.last_name),
                    phone: None,
                    active: true,
                    id: u.id,
                })
                .collect(),
            "zaia" => self
                .zaia
                .users()
                .into_iter()
                .map(|u| Account {
                    id: u.id.to_string(),
                    email: u.identifier.clone().unwrap_or_default(),
                    name: u.name.clone().unwrap_or_default(),
                    phone: None,
                    active: !u.blocked,
                })
                .collect(),
            _ => unreachable!("{vendor}"),
        }
    }

    fn set_fault(&self, vendor: &str, fault: &Fault) {
        match vendor {
            "hesh" => set_fault(&self.hesh, fault),
            "saleschat" => set_fault(&self.saleschat, fault),
            "vyte" => set_fault(&self.vyte, fault),
            "zaia" => set_fault(&self.zaia, fault),
            _ => unreachable!("{vendor}"),
        }
        match *fault {
            Fault::Drops(n) => self.hesh.drop_next(n),
            Fault::DropAfterApply(n) => self.hesh.drop_after_apply_next(n),
            _ => {}
        }
    }

    fn clear(&self) {
        self.hesh.clear_faults();
        self.saleschat.clear_faults();
        self.vyte.clear_faults();
        self.zaia.clear_faults();
        self.hesh.clear_requests();
        self.saleschat.clear_requests();
        self.vyte.clear_requests();
        self.zaia.clear_requests();
    }

    /// Requests received since the last [`Fakes::clear`], per vendor.
    fn request_counts(&self) -> [usize; 4] {
        [
            self.hesh.requests().len(),
            self.saleschat.requests().len(),
            self.vyte.requests().len(),
            self.zaia.requests().len(),
        ]
    }

    /// What the fakes themselves can tell is wrong: two accounts for one email (or
    /// phone, or external id), a hesh create of someone it had already created, a
    /// request body that broke the vendor's schema.
    fn own_checks(&self, options: Options) -> Result<(), TestCaseError> {
        // A recreate leaves the old account with the same external id, disabled.
        let created_twice = if options.recreates_at("hesh") {
            Vec::new()
        } else {
            self.hesh.created_twice()
        };
        let duplicates = [
            ("hesh", self.hesh.duplicates()),
            ("hesh created twice", created_twice),
            ("saleschat", self.saleschat.duplicates()),
            ("vyte", self.vyte.duplicates()),
            ("zaia", self.zaia.duplicates()),
        ];
        for (what, found) in duplicates {
            prop_assert!(found.is_empty(), "{}: {:?}", what, found);
        }
        let violations = [
            self.hesh.schema_violations(),
            self.saleschat.schema_violations(),
            self.vyte.schema_violations(),
            self.zaia.schema_violations(),
        ];
        for found in violations {
            prop_assert!(found.is_empty(), "{:?}", found);
        }
        Ok(())
    }
}

/// The common faults, through [`FakeVendor`] (hesh's drops are set by the caller).
fn set_fault(fake: &impl FakeVendor, fault: &Fault) {
    fake.clear_faults();
    match *fault {
        Fault::ServerErrors(n, status) => fake.fail_next(n, status),
        Fault::FailAfterApply(n) => fake.fail_after_apply_next(n),
        Fault::Slow => fake.delay(Duration::from_millis(30)),
        Fault::None | Fault::Drops(_) | Fault::DropAfterApply(_) => {}
    }
}

type Accounts = BTreeMap<&'static str, Vec<Account>>;

fn all_accounts(fakes: &Fakes) -> Accounts {
    VENDORS.iter().map(|v| (*v, fakes.accounts(v))).collect()
}

/// After a pass: every account is someone's and nobody has two at one vendor (two
/// active ones, where a recreate leaves the old account disabled); and no account
/// that was active before the pass was disabled if its owner is kept active by the
/// source or held (their row rejected).
fn check_pass(
    before: &Accounts,
    after: &Accounts,
    world: &World,
    options: Options,
    pass: usize,
) -> Result<(), TestCaseError> {
    for (vendor, accounts) in after {
        let mut owners = BTreeMap::<u32, usize>::new();
        let counted = accounts
            .iter()
            .filter(|a| a.active || !options.recreates_at(vendor));
        for a in accounts {
            prop_assert!(
                world.owner(a).is_some(),
                "pass {}: {} has an account of nobody: {:?}",
                pass,
                vendor,
                a
            );
        }
        for a in counted {
            *owners
                .entry(world.owner(a).map_or(0, |p| p.id))
                .or_default() += 1;
        }
        let twice: Vec<_> = owners.iter().filter(|(_, n)| **n > 1).collect();
        prop_assert!(
            twice.is_empty(),
            "pass {}: {} holds people twice: {:?}: {:?}",
            pass,
            vendor,
            twice,
            accounts
        );
        let was_active: BTreeSet<&str> = before[vendor]
            .iter()
            .filter(|a| a.active)
            .map(|a| a.id.as_str())
            .collect();
        for a in accounts
            .iter()
            .filter(|a| !a.active && was_active.contains(a.id.as_str()))
        {
            if let Some(p) = world.owner(a) {
                if options.recreates_at(vendor) && a.email != p.email() {
                    continue; // the old account of a recreate: disabling it is the point
                }
                prop_assert!(
                    !(p.wanted() || p.held()),
                    "pass {}: {} disabled {}, whom the source keeps active or holds",
                    pass,
                    vendor,
                    p.key()
                );
            }
        }
    }
    Ok(())
}

/// Keys the last plan lists as manual action or rejected (with their reasons).
fn excused(report: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for list in ["manual", "rejected"] {
        for item in report[list].as_array().into_iter().flatten() {
            out.insert(
                item["external_id"].as_str().unwrap_or_default().to_string(),
                item["reason"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    out
}

/// After the clean pass, at each vendor: everyone the source wants there has exactly
/// one account, active, with their current email, name (and phone at hesh) — and no
/// other, unless recreates leave old ones, disabled; everyone else's accounts are
/// disabled — unless the vendor's plan lists them as manual action or rejected, with
/// a reason. Held keys are left alone.
fn check_converged(
    fakes: &Fakes,
    world: &World,
    options: Options,
    doc: &Value,
) -> Result<(), TestCaseError> {
    for vendor in VENDORS {
        let excused = excused(provider(doc, vendor));
        for (key, reason) in &excused {
            prop_assert!(
                !reason.is_empty(),
                "{}: {} listed without a reason",
                vendor,
                key
            );
        }
        let accounts = fakes.accounts(vendor);
        for p in &world.people {
            let key = p.key();
            if excused.contains_key(&key) || p.held() {
                continue;
            }
            let mine: Vec<&Account> = accounts
                .iter()
                .filter(|a| world.owner(a).is_some_and(|o| o.id == p.id))
                .collect();
            if p.wanted() {
                let active: Vec<&&Account> = mine.iter().filter(|a| a.active).collect();
                prop_assert_eq!(
                    active.len(),
                    1,
                    "{}: {} should have one active account: {:?}",
                    vendor,
                    key,
                    mine
                );
                prop_assert!(
                    mine.len() == 1 || options.recreates_at(vendor),
                    "{}: {} should have one account: {:?}",
                    vendor,
                    key,
                    mine
                );
                let a = active[0];
                prop_assert_eq!(&a.email, &p.email(), "{}: {}", vendor, key);
                prop_assert_eq!(
                    &a.name,
                    &format!("{} {}", p.first(), p.last()),
                    "{}: {}",
                    vendor,
                    key
                );
                if vendor == "hesh" {
                    prop_assert_eq!(a.phone.clone(), Some(p.phone()), "{}: {}", vendor, key);
                }
            } else {
                for a in mine {
                    prop_assert!(
                        !a.active,
                        "{}: {} should be disabled (or listed as manual action): {:?}",
                        vendor,
                        key,
                        a
                    );
                }
            }
        }
    }
    Ok(())
}

/// The default run draws the same cases every time, so CI is deterministic (cases
/// found by earlier runs are replayed from the regressions file first); the long run
/// draws new ones.
fn rng_seed() -> RngSeed {
    if std::env::var_os("ROSTERD_LONG_TESTS").is_some() {
        RngSeed::Random
    } else {
        RngSeed::Fixed(20261201)
    }
}

fn cases() -> u32 {
    if std::env::var_os("ROSTERD_LONG_TESTS").is_some() {
        200
    } else {
        10
    }
}

impl Pass {
    fn of(changes: Vec<Change>, faults: Vec<Fault>) -> Pass {
        Pass { changes, faults }
    }
}

/// A case a long run found, kept by name (default config: manual email changes, vyte
/// without batch).
fn replay(start: u32, passes: &[Pass]) {
    let options = Options {
        recreate: false,
        vyte_batch: false,
    };
    if let Err(e) = run_case(start, options, passes) {
        panic!("{e}");
    }
}

/// One case: a first pass, then `passes` with their changes and faults, then a clean
/// pass that must converge and one more that must send nothing.
fn run_case(start: u32, options: Options, passes: &[Pass]) -> Result<(), TestCaseError> {
    let fakes = Fakes::start();
    let ws = fakes.workspace(options);
    let mut world = World::new(start);
    world.write(&ws);
    let (code, doc) = ws.sync();
    prop_assert_eq!(code, 0, "first pass: {}", doc);
    let mut accounts = all_accounts(&fakes);
    check_pass(
        &BTreeMap::from_iter(VENDORS.map(|v| (v, Vec::new()))),
        &accounts,
        &world,
        options,
        0,
    )?;

    for (i, pass) in passes.iter().enumerate() {
        for c in &pass.changes {
            world.apply(c);
        }
        world.write(&ws);
        fakes.clear();
        for (vendor, fault) in VENDORS.iter().zip(&pass.faults) {
            fakes.set_fault(vendor, fault);
        }
        let (code, doc) = ws.sync();
        if world.valid_users() == 0 {
            // An export with nobody valid in it: the source guard stops the pass.
            prop_assert_eq!(code, 3, "pass {}: {}", i + 1, doc);
        } else {
            prop_assert!(
                code == 0 || code == 2,
                "pass {}: exit {}: {}",
                i + 1,
                code,
                doc
            );
        }
        let now = all_accounts(&fakes);
        check_pass(&accounts, &now, &world, options, i + 1)?;
        accounts = now;
        fakes.own_checks(options)?;
    }

    fakes.clear();
    let (code, doc) = ws.sync();
    let now = all_accounts(&fakes);
    check_pass(&accounts, &now, &world, options, passes.len() + 1)?;
    fakes.own_checks(options)?;
    if world.valid_users() == 0 {
        // Nothing to converge to: the guard holds every account as it is.
        prop_assert_eq!(code, 3, "clean pass: {}", doc);
        return Ok(());
    }
    prop_assert_eq!(code, 0, "clean pass: {}", doc);
    check_converged(&fakes, &world, options, &doc)?;

    // And it stays converged: one more pass sends nothing.
    fakes.clear();
    let (code, doc) = ws.sync();
    prop_assert_eq!(code, 0);
    prop_assert_eq!(
        fakes.request_counts(),
        [0; 4],
        "a converged pass sent requests: {}",
        doc
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        rng_seed: rng_seed(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_pass_is_safe_and_a_clean_pass_converges(
        start in 3u32..8,
        options in options(),
        passes in proptest::collection::vec(pass(), 1..5),
    ) {
        run_case(start, options, &passes)?;
    }
}

/// Found by a long run: a vyte create answered 500 after it was made; the next pass
/// could not list vyte (two 500s); then the person moved out of scope. vyte cannot
/// disable, so the clean pass must list them as manual action.
#[test]
fn vyte_create_of_unknown_outcome_then_out_of_scope_is_manual_action() {
    let passes = [
        Pass::of(
            vec![Change::Hire],
            vec![
                Fault::None,
                Fault::None,
                Fault::FailAfterApply(1),
                Fault::None,
            ],
        ),
        Pass::of(
            vec![Change::Leave(0)],
            vec![
                Fault::None,
                Fault::None,
                Fault::ServerErrors(2, 500),
                Fault::None,
            ],
        ),
        Pass::of(
            vec![Change::Scope(5), Change::Hire],
            vec![
                Fault::DropAfterApply(1),
                Fault::Slow,
                Fault::None,
                Fault::ServerErrors(2, 500),
            ],
        ),
    ];
    replay(5, &passes);
}

/// Found by a long run: hesh applied a batch of two creates and answered 500 (twice);
/// then one of them changed email while hesh answered 503s, so the resend of the
/// first create failed and a create with the new email took its place — which hesh
/// skipped, as the phone was taken (by the account the first create had made), and
/// which could not be adopted by the new email. The resend, with what hesh was sent,
/// must go first until it settles; the email change follows as an update.
#[test]
fn hesh_create_of_unknown_outcome_then_an_email_change_converges() {
    let none = || vec![Fault::None, Fault::None, Fault::None, Fault::None];
    let passes = [
        Pass::of(vec![Change::Hire, Change::Leave(2), Change::Hire], none()),
        Pass::of(
            vec![Change::Hire, Change::Hire],
            vec![
                Fault::FailAfterApply(2),
                Fault::None,
                Fault::None,
                Fault::None,
            ],
        ),
        Pass::of(
            vec![Change::Email(5)],
            vec![
                Fault::ServerErrors(2, 503),
                Fault::Slow,
                Fault::ServerErrors(3, 503),
                Fault::Slow,
            ],
        ),
    ];
    replay(3, &passes);
}

/// Found by a long run: hesh disabled a leaver but both answers were lost (500 after
/// the change); the person was then rehired. The snapshot still said "active", so
/// nothing was planned and the account stayed disabled: a colleague locked out. An
/// operation whose outcome is unknown is now resent before the next plan, which then
/// enables them.
#[test]
fn hesh_disable_of_unknown_outcome_then_a_rehire_enables_again() {
    let passes = [
        Pass::of(
            vec![Change::Leave(0), Change::Duplicate(1)],
            vec![
                Fault::FailAfterApply(2),
                Fault::None,
                Fault::None,
                Fault::None,
            ],
        ),
        Pass::of(
            vec![Change::Rehire(0)],
            vec![
                Fault::FailAfterApply(1),
                Fault::ServerErrors(3, 500),
                Fault::Slow,
                Fault::None,
            ],
        ),
    ];
    replay(4, &passes);
}

/// Found by a long run: saleschat answered a leaver's disable 500 twice (its outcome
/// unknown); the person was rehired. Resending that stale disable would lock them out;
/// the plan enables them instead, whatever the disable did.
#[test]
fn saleschat_disable_of_unknown_outcome_then_a_rehire_never_disables() {
    replay(
        3,
        &[
            Pass::of(
                vec![Change::Leave(1)],
                vec![
                    Fault::None,
                    Fault::ServerErrors(2, 500),
                    Fault::None,
                    Fault::None,
                ],
            ),
            Pass::of(
                vec![Change::Rehire(1)],
                vec![
                    Fault::None,
                    Fault::FailAfterApply(2),
                    Fault::None,
                    Fault::None,
                ],
            ),
        ],
    );
}
