//! The only terminal UI: an indicatif bar on a terminal, plain lines otherwise. Ticks come
//! in seed order (from the campaign's sink), so the plain lines name the contiguous range of
//! seeds done: what a killed campaign had completed.

use std::cell::Cell;
use std::io::IsTerminal;
use std::ops::Range;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    /// None when stderr is not a terminal: plain lines every tenth of the range.
    bar: Option<ProgressBar>,
    range: Range<u64>,
    /// (seeds done, failing seeds so far)
    done: Cell<(u64, u64)>,
}

impl Progress {
    pub fn new(range: Range<u64>) -> Progress {
        let total = range.end - range.start;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  eta {eta}",
                )
                .expect("valid template"),
            );
            bar.set_message("0 failing");
            bar
        });
        Progress {
            bar,
            range,
            done: Cell::new((0, 0)),
        }
    }

    /// One seed finished (seeds arrive in order).
    pub fn tick(&self, seed: u64, failed: bool) {
        let (n, failing) = self.done.get();
        let (n, failing) = (n + 1, failing + failed as u64);
        self.done.set((n, failing));
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("{failing} failing"));
            return;
        }
        let total = self.range.end - self.range.start;
        let step = (total / 10).max(1);
        if n % step == 0 || n == total {
            eprintln!(
                "fuzz: {n}/{total} seeds, {failing} failing (seeds {}..{} done)",
                self.range.start,
                seed + 1
            );
        }
    }

    /// Prints around the bar without tearing it.
    pub fn suspend(&self, print: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
