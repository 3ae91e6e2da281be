//! Progress of a long apply, per provider: a bar on a terminal (done / total, rate,
//! time left — rate-limit waits slow the rate, so they count in the estimate), and
//! nothing at all when output is not a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where the executor reports operations as they finish.
pub trait Progress: Send + Sync {
    fn inc(&self, n: u64);
    fn finish(&self);
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
