//! Progress of a long apply, per provider: a bar on a terminal (done / total, rate,
//! time left — rate-limit waits slow the rate, so they count in the estimate), and
//! nothing at all when output is not a terminal. An [`OpObserver`] (the daemon's
//! metrics) is told of each operation as it ends, by kind and outcome, so counters
//! move during a pass instead of jumping at its end.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::executor::apply::ProviderResult;
use crate::plan::OpKind;

/// Where the executor reports operations as they finish.
pub trait Progress: Send + Sync {
    fn inc(&self, n: u64);
    fn finish(&self);
    /// One operation of `provider` ended `outcome` (journaled, its snapshot row
    /// written). A bar counts it as one step; [`Observed`] also tells its observer.
    fn op_done(&self, _provider: &str, _op: OpKind, _outcome: OpOutcome) {
        self.inc(1);
    }
}

/// How one operation ended, as `rosterd_operations_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    /// The vendor confirmed it.
    Applied,
    /// It failed for its user (counted towards quarantine).
    Failed,
    /// Carried out, but a person must finish it.
    Manual,
    /// Left for the next pass: the provider failed as a whole.
    Deferred,
}

impl OpOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Applied => "applied",
            OpOutcome::Failed => "failed",
            OpOutcome::Manual => "manual",
            OpOutcome::Deferred => "deferred",
        }
    }
}

/// The counts of a [`ProviderResult`] before one operation is recorded in it: the
/// count that grew afterwards says how the operation ended. Read from the result the
/// report is made of, so what was counted live is exactly what the report says.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    applied: usize,
    manual: usize,
    deferred: usize,
}

impl Tally {
    pub fn of(result: &ProviderResult) -> Tally {
        Tally {
            applied: result.applied_total(),
            manual: result.manual,
            deferred: result.deferred,
        }
    }

    /// How the one operation recorded in `result` since this tally ended (recording
    /// one operation grows exactly one of applied, manual, deferred or failed).
    pub fn outcome_in(self, result: &ProviderResult) -> OpOutcome {
        if result.applied_total() > self.applied {
            OpOutcome::Applied
        } else if result.manual > self.manual {
            OpOutcome::Manual
        } else if result.deferred > self.deferred {
            OpOutcome::Deferred
        } else {
            OpOutcome::Failed
        }
    }
}

/// Told of every operation as it ends: the daemon's metrics.
pub trait OpObserver: Send + Sync {
    fn op_done(&self, provider: &str, op: OpKind, outcome: OpOutcome);
}

/// A bar (or [`Silent`]) whose operations are also told to an observer, if any.
pub struct Observed<'a> {
    pub bar: &'a dyn Progress,
    pub observer: Option<&'a dyn OpObserver>,
}

impl Progress for Observed<'_> {
    fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish();
    }

    fn op_done(&self, provider: &str, op: OpKind, outcome: OpOutcome) {
        self.bar.op_done(provider, op, outcome);
        if let Some(o) = self.observer {
            o.op_done(provider, op, outcome);
        }
    }
}

/// Reports nowhere (not a terminal, JSON output, tests).
pub struct Silent;

impl Progress for Silent {
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

/// Bars on stderr, one per provider.
pub struct Bars {
    multi: MultiProgress,
}

impl Bars {
    /// Bars when stderr is a terminal; `None` otherwise.
    pub fn on_terminal() -> Option<Bars> {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal().then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        })
    }

    pub fn provider(&self, name: &str, total: u64) -> Box<dyn Progress> {
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} ops  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(total).with_style(style));
        bar.set_prefix(name.to_string());
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_that_grew_names_the_outcome() {
        let mut r = ProviderResult::default();
        type Record = fn(&mut ProviderResult);
        let cases: [(Record, OpOutcome); 4] = [
            (
                |r| *r.applied.entry("create".into()).or_default() += 1,
                OpOutcome::Applied,
            ),
            (|r| r.manual += 1, OpOutcome::Manual),
            (|r| r.deferred += 1, OpOutcome::Deferred),
            (|r| r.failed += 1, OpOutcome::Failed),
        ];
        for (record, want) in cases {
            let before = Tally::of(&r);
            record(&mut r);
            assert_eq!(before.outcome_in(&r), want);
        }
    }
}
