//! Crash points: rosterd aborted (no cleanup, like SIGKILL) at exact moments of an
//! apply — operations journaled but not sent, a request answered but not yet seen by
//! the adapter (between zaia's search and its create, between saleschat's create and
//! its membership check), a unit answered but nothing recorded, a batch half recorded
//! — for each of the four vendors, on a first pass of creates and on a pass of mixed
//! changes. After every crash one normal pass must leave the vendor holding exactly
//! the source's users, active or disabled as the source says (where the vendor can
//! disable: vyte cannot, its leavers are manual action), nobody twice.
//!
//! The points are armed through `ROSTERD_CRASH_AT` (see `src/failpoint.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeMap;
use std::process::Command;

use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus};
use support::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions};
use support::fake_server::FakeVendor;
use support::fake_vyte::FakeVyte;
use support::fake_zaia::{FakeZaia, FakeZaiaOptions};
use support::workspace::{Person, Workspace};

/// Where to crash: every point, at its first visit and at a later one.
const POINTS: [(&str, u32); 8] = [
    ("journaled", 1),
    ("journaled", 3),
    ("answered", 1),
    ("answered", 4),
    ("applied", 1),
    ("applied", 3),
    ("recorded", 1),
    ("recorded", 5),
];

/// What a vendor holds, by the user's email: (active, last name), and the emails or
/// keys it holds more than once.
trait Vendor {
    fn holdings(&self) -> BTreeMap<String, (bool, String)>;
    fn twice(&self) -> Vec<String>;
}

impl Vendor for FakeHesh {
    fn holdings(&self) -> BTreeMap<String, (bool, String)> {
        self.users()
            .into_iter()
            .map(|u| (u.email, (u.status == HeshStatus::Active, u.last_name)))
            .collect()
    }
    fn twice(&self) -> Vec<String> {
        let mut out = self.duplicates();
        out.extend(self.created_twice());
        out
    }
}

impl Vendor for FakeZaia {
    fn holdings(&self) -> BTreeMap<String, (bool, String)> {
        self.users()
            .into_iter()
            .map(|u| {
                let name = u.name.unwrap_or_default();
                let last = name
                    .split_once(' ')
                    .map(|(_, l)| l.to_string())
                    .unwrap_or(name);
                (u.identifier.unwrap_or_default(), (!u.blocked, last))
            })
            .collect()
    }
    fn twice(&self) -> Vec<String> {
        self.duplicates()
    }
}

impl Vendor for FakeSaleschat {
    fn holdings(&self) -> BTreeMap<String, (bool, String)> {
        self.users()
            .into_iter()
            .filter(|u| !u.deleted)
            .map(|u| (u.email, (!u.disabled, u.last_name)))
            .collect()
    }
    fn twice(&self) -> Vec<String> {
        self.duplicates()
    }
}

impl Vendor for FakeVyte {
    /// vyte cannot disable anyone: every account it holds is active.
    fn holdings(&self) -> BTreeMap<String, (bool, String)> {
        self.users()
            .into_iter()
            .map(|u| (u.email().to_string(), (true, u.last_name)))
            .collect()
    }
    fn twice(&self) -> Vec<String> {
        self.duplicates()
    }
}

/// What a vendor can change, so what it should hold after a pass of changes.
#[derive(Clone, Copy)]
struct Can {
    rename: bool,
    disable: bool,
}

impl Can {
    const EVERYTHING: Can = Can {
        rename: true,
        disable: true,
    };
}

/// Runs `sync` with `crash` armed (or none); returns the exit code.
fn sync(ws: &Workspace, crash: Option<(&str, u32)>) -> i32 {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
    c.arg("-c")
        .arg(ws.path().join("rosterd.yaml"))
        .args(["sync", "--format", "json"])
        .env(ws.key_env, &ws.secret)
        .env("RUST_LOG", "warn");
    if let Some((point, n)) = crash {
        c.env(rosterd::failpoint::ENV, format!("{point}:{n}"));
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&ws.secret), "the secret leaked");
    assert!(!stderr.contains("panicked"), "{stderr}");
    out.status.code().unwrap_or(-1)
}

/// The vendor holds these people once each, with their last names, active as the
/// source says; `gone` (left, or removed from the source) are held inactive — where
/// the vendor can disable; where it cannot, everyone it holds stays active.
fn assert_converged(
    vendor: &dyn Vendor,
    people: &[Person],
    gone: &[Person],
    can_disable: bool,
    what: &str,
) {
    assert!(
        vendor.twice().is_empty(),
        "{what}: twice: {:?}",
        vendor.twice()
    );
    let held = vendor.holdings();
    for p in people {
        let active = p.status == "active" || !can_disable;
        assert_eq!(
            held.get(&p.email),
            Some(&(active, p.last.clone())),
            "{what}: {} ({})",
            p.email,
            p.status
        );
    }
    for p in gone.iter().filter(|_| can_disable) {
        if let Some((active, _)) = held.get(&p.email) {
            assert!(!active, "{what}: {} should be disabled", p.email);
        }
    }
}

/// The second source: two renamed, two leavers (status), one removed, three hires
/// (so that even vyte, whose leavers are manual action, records five operations).
/// Also what the vendor should then hold: the renames only where it can rename.
fn changed(first: &[Person], can_rename: bool) -> (Vec<Person>, Vec<Person>, Vec<Person>) {
    let mut people: Vec<Person> = first.to_vec();
    people[0].last = "Renamed".into();
    people[1].last = "Renamed".into();
    let mut expected = people.clone();
    if !can_rename {
        expected[0].last = first[0].last.clone();
        expected[1].last = first[1].last.clone();
    }
    for list in [&mut people, &mut expected] {
        list[2].status = "terminated".into();
        list[3].status = "terminated".into();
        for i in 100..103 {
            list.push(Person::new(i));
        }
    }
    let removed = people.remove(4);
    expected.remove(4);
    (people, expected, vec![removed])
}

/// For each crash point: a first pass crashes there and a normal pass converges; then
/// a pass of changes crashes there and a normal pass converges again.
fn exercise(vendor: &str, can: Can, setup: impl Fn() -> (Box<dyn Vendor>, Workspace)) {
    for (point, n) in POINTS {
        let what = format!("{vendor} crashed at {point} #{n}");
        let (fake, ws) = setup();
        let first: Vec<Person> = (0..8).map(Person::new).collect();
        ws.write_people(&first);
        let code = sync(&ws, Some((point, n)));
        assert_ne!(code, 0, "{what}: the crash point was never reached");
        assert_eq!(sync(&ws, None), 0, "{what}: the pass after the crash");
        assert_converged(fake.as_ref(), &first, &[], can.disable, &what);

        let (second, expected, gone) = changed(&first, can.rename);
        ws.write_people(&second);
        let code = sync(&ws, Some((point, n)));
        assert_ne!(
            code, 0,
            "{what} (changes): the crash point was never reached"
        );
        assert_eq!(
            sync(&ws, None),
            0,
            "{what} (changes): the pass after the crash"
        );
        assert_converged(
            fake.as_ref(),
            &expected,
            &gone,
            can.disable,
            &format!("{what} (changes)"),
        );
    }
}

#[test]
fn hesh_converges_after_a_crash_at_every_point() {
    exercise("hesh", Can::EVERYTHING, || {
        let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
        let ws = Workspace::hesh(
            &fake.base_url(),
            fake.tenant_id(),
            fake.api_key(),
            "    batch_size: 2\n    rate_limit: { max_concurrency: 1 }\n",
        );
        (Box::new(fake) as Box<dyn Vendor>, ws)
    });
}

#[test]
fn zaia_converges_after_a_crash_at_every_point() {
    exercise("zaia", Can::EVERYTHING, || {
        let fake = FakeZaia::start(FakeZaiaOptions::default());
        let ws = Workspace::zaia(
            &fake.base_url(),
            fake.channel_id(),
            fake.api_key(),
            "    rate_limit: { max_concurrency: 1 }\n",
        );
        (Box::new(fake) as Box<dyn Vendor>, ws)
    });
}

#[test]
fn saleschat_converges_after_a_crash_at_every_point() {
    exercise(
        "saleschat",
        Can {
            rename: false,
            ..Can::EVERYTHING
        },
        || {
            let fake = FakeSaleschat::start_blocking(FakeSaleschatOptions::default());
            let ws = Workspace::saleschat(
                &fake.base_url(),
                fake.org_id(),
                fake.token(),
                "    rate_limit: { max_concurrency: 1 }\n",
            );
            (Box::new(fake) as Box<dyn Vendor>, ws)
        },
    );
}

#[test]
fn vyte_converges_after_a_crash_at_every_point() {
    exercise(
        "vyte",
        Can {
            disable: false,
            ..Can::EVERYTHING
        },
        || {
            let fake = FakeVyte::start_blocking(support::fake_vyte::DEFAULT_API_KEY);
            let ws = Workspace::vyte(
                &fake.base_url(),
                fake.api_key(),
                "    rate_limit: { max_concurrency: 1 }\n",
            );
            (Box::new(fake) as Box<dyn Vendor>, ws)
        },
    );
}
