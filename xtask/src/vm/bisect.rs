//! `cargo xtask bisect`: one scenario (and one of its checks) on one kernel
//! image, with the exit code `git bisect run` reads: 0 good, 1 bad, 125
//! skip (the kernel did not boot, lacks an option the VM needs, or the
//! result was inconclusive), 128 to stop the bisection (a wrong scenario or
//! check id, a broken harness: retrying another commit would not help).
//!
//! Good and bad follow the baseline diff's rule: a check holds when its
//! verdict is the expected one; any other verdict is bad, `unsupported`
//! included (the kernel no longer offers what the check needs), except
//! `error`, which says the check could not be carried out: inconclusive.

use super::initramfs::CgroupLayout;
use super::kernel::KernelChoice;
use super::{matrix, scenarios_job, Column, ColumnResult, Runner};
use reports::{Status, Verdict};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct BisectArgs {
    /// The kernel image to judge, e.g. arch/x86/boot/bzImage of the tree
    /// being bisected.
    #[arg(long, value_name = "PATH")]
    pub kernel: PathBuf,
    /// The scenario's id, e.g. cpu-quota-20.
    #[arg(long)]
    pub scenario: String,
    /// One of its checks, e.g. cpu-share; without it, the scenario's
    /// status decides (pass good, fail or unsupported bad, error skip).
    #[arg(long)]
    pub check: Option<String>,
    /// The cgroup layout to boot with.
    #[arg(long, value_enum, default_value_t = CgroupLayout::V2)]
    pub cgroup: CgroupLayout,
    /// Extra kernel command line arguments.
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
    /// Seconds before the VM is killed (then: skip).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// What `git bisect run` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Good(String),
    Bad(String),
    Skip(String),
    /// Stop the bisection: the question itself is wrong.
    Abort(String),
}

impl Outcome {
    pub fn code(&self) -> i32 {
        match self {
            Outcome::Good(_) => 0,
            Outcome::Bad(_) => 1,
            Outcome::Skip(_) => 125,
            Outcome::Abort(_) => 128,
        }
    }

    fn say(&self) -> String {
        match self {
            Outcome::Good(w) => format!("good (exit 0): {w}"),
            Outcome::Bad(w) => format!("bad (exit 1): {w}"),
            Outcome::Skip(w) => format!("skip (exit 125): {w}"),
            Outcome::Abort(w) => format!("cannot judge (exit 128, stops the bisection): {w}"),
        }
    }
}

/// Boots the image with `runner` and judges the scenario.
pub fn run(runner: &mut Runner, args: &BisectArgs) -> Outcome {
    if !args.kernel.is_file() {
        return Outcome::Skip(format!(
            "no kernel image at {} (the build failed?)",
            args.kernel.display()
        ));
    }
    let col = Column {
        kernel: KernelChoice::File(args.kernel.clone()),
        cgroup: args.cgroup,
    };
    let result = runner.run(
        &col,
        &scenarios_job(Some(&args.scenario)),
        args.append.as_deref(),
    );
    judge(&result, &args.scenario, args.check.as_deref())
}

/// The verdict on one column's result.
pub fn judge(result: &ColumnResult, scenario: &str, check: Option<&str>) -> Outcome {
    let report = match matrix::parse_column(result) {
        Ok(r) => r,
        Err(why) => return Outcome::Skip(why),
    };
    let Some(s) = report.scenario(scenario) else {
        let ids: Vec<&str> = report.scenarios.iter().map(|s| s.id.as_str()).collect();
        return Outcome::Abort(format!(
            "the report has no scenario {scenario:?} (it ran: {})",
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        ));
    };
    let figure = s
        .headline
        .as_ref()
        .and_then(|k| s.measurements.get(k).map(|v| format!("; {k} {v}")))
        .unwrap_or_default();
    match check {
        Some(id) => {
            let Some(c) = s.checks.iter().find(|c| c.id == id) else {
                let ids: Vec<&str> = s.checks.iter().map(|c| c.id.as_str()).collect();
                return Outcome::Abort(format!(
                    "scenario {scenario} has no check {id:?} (its checks: {})",
                    ids.join(", ")
                ));
            };
            let what = format!(
                "{scenario}/{id}: {} (expected {}): {}{figure}",
                c.verdict, c.expected, c.observed
            );
            if c.held() {
                Outcome::Good(what)
            } else if c.verdict == Verdict::Error {
                Outcome::Skip(format!("inconclusive: {what}"))
            } else {
                Outcome::Bad(what)
            }
        }
        None => {
            let what = format!("{scenario}: {}{figure}", s.status);
            match s.status {
                Status::Pass => Outcome::Good(what),
                Status::Fail | Status::Unsupported | Status::NotApplicable => Outcome::Bad(what),
                Status::Error => Outcome::Skip(format!(
                    "inconclusive: {what}: {}",
                    s.error.as_deref().unwrap_or("a required check errored")
                )),
            }
        }
    }
}

/// `cargo xtask bisect`: prints the verdict and returns the exit code.
pub fn main(args: BisectArgs) -> i32 {
    let outcome = match Runner::new(args.timeout, None) {
        Ok(mut runner) => run(&mut runner, &args),
        Err(e) => Outcome::Abort(format!("the harness cannot run: {e:#}")),
    };
    eprintln!("bisect: {}", outcome.say());
    outcome.code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::tests::vm_or_skip;

    fn recorded(report: Option<reports::Report>, error: Option<&str>) -> ColumnResult {
        ColumnResult {
            kernel: "bzImage".into(),
            name: "bzImage".into(),
            cgroup: CgroupLayout::V2,
            append: None,
            accel: Some("tcg".into()),
            seconds: Some(20.0),
            job_exit: Some(0),
            output: report
                .map(|r| serde_json::to_string(&r).unwrap())
                .unwrap_or_default(),
            error: error.map(String::from),
            console_tail: String::new(),
        }
    }

    #[test]
    fn verdicts_follow_the_git_bisect_convention() {
        let now = recorded(Some(reports::fixture::sample_report()), None);
        let code = |scenario, check| judge(&now, scenario, check).code();
        assert_eq!(code("cpu-quota-20", None), 0);
        assert_eq!(code("cpu-quota-150", None), 1);
        assert_eq!(code("cpu-quota-150", Some("cpu-share-within-tolerance")), 1);
        assert_eq!(code("time-namespace", None), 1, "unsupported is bad");
        assert_eq!(code("net-namespace", None), 125, "error is inconclusive");
        assert_eq!(code("no-such-scenario", None), 128);
        assert_eq!(code("cpu-quota-20", Some("no-such-check")), 128);
        let dead = recorded(None, Some("kernel bzImage: qemu exited"));
        assert_eq!(judge(&dead, "cpu-quota-20", None).code(), 125);
    }

    /// A small simulated history: a Debian kernel (good), the same image
    /// booted without the pids controller (bad: the fork bomb's limit is
    /// gone), and an image that does not boot (skip).
    #[test]
    fn bisect_tells_a_good_a_bad_and_an_unbootable_kernel_apart() {
        if !vm_or_skip("bisect on real kernels") {
            return;
        }
        let mut runner = Runner::new(300, None).unwrap();
        let kernel = crate::vm::tests::debian_kernel("6.12");
        let args = |kernel: PathBuf, append: Option<&str>| BisectArgs {
            kernel,
            scenario: "pids-fork-bomb".into(),
            check: Some("forks-refused".into()),
            cgroup: CgroupLayout::V2,
            append: append.map(String::from),
            timeout: 300,
        };
        let good = run(&mut runner, &args(kernel.clone(), None));
        assert_eq!(good.code(), 0, "{good:?}");
        let bad = run(&mut runner, &args(kernel, Some("cgroup_disable=pids")));
        assert_eq!(bad.code(), 1, "{bad:?}");
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("bzImage");
        std::fs::write(&broken, vec![0x5a; 64 * 1024]).unwrap();
        let skip = run(&mut runner, &args(broken, None));
        assert_eq!(skip.code(), 125, "{skip:?}");
    }
}
