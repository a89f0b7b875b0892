//! The only terminal UI: an indicatif bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

pub enum Progress {
    Bar(ProgressBar),
    Lines { total: u64, done: Mutex<(u64, u64)> },
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  eta {eta}",
                )
                .expect("valid template"),
            );
            bar.set_message("0 violations");
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                total,
                done: Mutex::new((0, 0)),
            }
        }
    }

    /// One seed finished.
    pub fn tick(&self, failed: bool, violations_so_far: u64) {
        match self {
            Progress::Bar(bar) => {
                bar.inc(1);
                bar.set_message(format!("{violations_so_far} violations"));
            }
            Progress::Lines { total, done } => {
                let mut d = done.lock().expect("no poisoned lock");
                d.0 += 1;
                d.1 += failed as u64;
                let step = (*total / 10).max(1);
                if d.0 % step == 0 || d.0 == *total {
                    eprintln!("fuzz: {}/{} seeds, {} failing", d.0, total, d.1);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish();
        }
    }
}
