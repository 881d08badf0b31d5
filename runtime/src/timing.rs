//! Where a container's start and end spend their time, step by step, for
//! `cargo xtask bench runtime`. Off unless a tracing subscriber listens to
//! the `boxwatch::timing` target at INFO (`BOXWATCH_LOG=boxwatch::timing=info`):
//! then the parent records its steps, asks the setup stage for its own
//! (sent back as [`crate::message::FromSetup::Timing`] marks, CLOCK_MONOTONIC,
//! which both processes share), and logs one line per container:
//! `start: checks=+12µs cgroup-create=+310µs ... | end: ...`.

use std::time::Instant;

/// The tracing target of the timing lines.
pub const TARGET: &str = "boxwatch::timing";

/// Whether timings are wanted.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Steps of one phase, each with its CLOCK_MONOTONIC time.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    on: bool,
    start: u64,
    marks: Vec<(String, u64)>,
}

impl Steps {
    /// Starts recording now (a no-op recorder when timings are off).
    pub fn start() -> Steps {
        let on = enabled();
        Steps {
            on,
            start: if on { now_ns() } else { 0 },
            marks: Vec::new(),
        }
    }

    pub fn on(&self) -> bool {
        self.on
    }

    pub fn mark(&mut self, step: &str) {
        if self.on {
            self.marks.push((step.to_string(), now_ns()));
        }
    }

    /// Adds the setup stage's timing marks (step, ns), as `init:<step>`.
    pub(crate) fn add_setup_marks(&mut self, marks: Vec<(String, u64)>) {
        if self.on {
            let marks = marks
                .into_iter()
                .map(|(step, ns)| (format!("init:{step}"), ns));
            self.marks.extend(marks);
        }
    }

    /// `a=+Nµs b=+Mµs ...`: each step's time since the one before.
    pub fn line(&self) -> String {
        let mut marks = self.marks.clone();
        marks.sort_by_key(|(_, t)| *t);
        let mut prev = self.start;
        let mut out = Vec::new();
        for (step, t) in marks {
            out.push(format!("{step}=+{}µs", t.saturating_sub(prev) / 1000));
            prev = prev.max(t);
        }
        out.join(" ")
    }

    /// Logs the steps under `phase`, with the total.
    pub fn log(&self, phase: &str, since: Instant) {
        if self.on {
            tracing::info!(
                target: TARGET,
                "{phase}: {} total={}µs",
                self.line(),
                since.elapsed().as_micros()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_marks_are_added_and_steps_are_deltas() {
        let mut s = Steps {
            on: true,
            start: 1_000_000,
            marks: vec![("a".into(), 1_500_000)],
        };
        s.add_setup_marks(vec![("mounts".into(), 3_000_000)]);
        assert_eq!(s.line(), "a=+500µs init:mounts=+1500µs");
    }

    #[test]
    fn off_records_nothing() {
        let mut s = Steps::default();
        s.mark("x");
        s.add_setup_marks(vec![("x".into(), 5)]);
        assert!(s.line().is_empty());
    }
}
