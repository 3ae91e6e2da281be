//! Every integration test in one binary: each `tests/<name>.rs` is the module `<name>`
//! here, so the fakes in `tests/support/` are compiled once and one test binary is
//! linked instead of one per file. Focus with `cargo test --test it <name>::`.
//!
//! `Cargo.toml` sets `autotests = false` (the files would otherwise also build as
//! binaries of their own), so a new `tests/<name>.rs` is listed below:
//! [`every_test_file_is_a_module_here`] fails until it is. Nothing in a test may change
//! what the whole process shares (environment, umask, current directory, signal
//! handlers): tests run on parallel threads of this one process, so a child process
//! gets such settings instead (e.g. `tests/private_files.rs` starts rosterd under
//! `sh -c 'umask 000; exec …'`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

#[path = "../apply_hesh.rs"]
mod apply_hesh;
#[path = "../apply_saleschat.rs"]
mod apply_saleschat;
#[path = "../apply_vyte.rs"]
mod apply_vyte;
#[path = "../apply_zaia.rs"]
mod apply_zaia;
#[path = "../audit_log.rs"]
mod audit_log;
#[path = "../convergence.rs"]
mod convergence;
#[path = "../crash_points.rs"]
mod crash_points;
#[path = "../daemon.rs"]
mod daemon;
#[path = "../daemon_hesh.rs"]
mod daemon_hesh;
#[path = "../deploy.rs"]
mod deploy;
#[path = "../detailed_exitcode.rs"]
mod detailed_exitcode;
#[path = "../dry_run.rs"]
mod dry_run;
#[path = "../e2e_four_vendors.rs"]
mod e2e_four_vendors;
#[path = "../fake_hesh.rs"]
mod fake_hesh;
#[path = "../helm_chart.rs"]
mod helm_chart;
#[path = "../history.rs"]
mod history;
#[path = "../hostile_inputs.rs"]
mod hostile_inputs;
#[path = "../hostile_network.rs"]
mod hostile_network;
#[path = "../leavers.rs"]
mod leavers;
#[path = "../mappings.rs"]
mod mappings;
#[path = "../notify.rs"]
mod notify;
#[path = "../orphans.rs"]
mod orphans;
#[path = "../output_contract.rs"]
mod output_contract;
#[path = "../pacing_restart.rs"]
mod pacing_restart;
#[path = "../pass_outcomes.rs"]
mod pass_outcomes;
#[path = "../private_files.rs"]
mod private_files;
#[path = "../prometheus.rs"]
mod prometheus;
#[path = "../request_bodies.rs"]
mod request_bodies;
#[path = "../saved_plans.rs"]
mod saved_plans;
#[path = "../scim.rs"]
mod scim;
#[path = "../scim_django.rs"]
mod scim_django;
#[path = "../scim_groups.rs"]
mod scim_groups;
#[path = "../scim_managers.rs"]
mod scim_managers;
#[path = "../secrets_never_leak.rs"]
mod secrets_never_leak;
#[path = "../soak.rs"]
mod soak;
#[path = "../source_http.rs"]
mod source_http;
#[path = "../state_faults.rs"]
mod state_faults;
#[path = "../state_postgres.rs"]
mod state_postgres;
#[path = "../status.rs"]
mod status;
#[path = "../vendor_answers.rs"]
mod vendor_answers;

/// A `tests/*.rs` file that is not a module here would never be built or run.
#[test]
fn every_test_file_is_a_module_here() {
    let main = include_str!("main.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".rs") {
            if !main.contains(&format!("#[path = \"../{stem}.rs\"]\nmod {stem};\n")) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not modules of tests/it/main.rs (add `#[path = \"../<name>.rs\"] mod <name>;` and \
         replace the file's `mod support;` with `use crate::support;`): {missing:?}"
    );
}
