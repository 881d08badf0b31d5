//! `cargo xtask vm`: the scenarios on other kernels and cgroup layouts,
//! each inside a qemu VM booted from a Debian kernel and an initramfs.

pub mod bisect;
pub mod column;
mod cpio;
pub mod initramfs;
pub mod kernel;
pub mod matrix;
mod qemu;

use anyhow::{Context, Result};
use initramfs::CgroupLayout;
use kernel::KernelChoice;
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::process::Command;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct VmArgs {
    /// Kernels: a Debian series (6.1, 6.12), a flavour of one (6.12-rt,
    /// 6.12-cloud, 6.1-rt, 6.1-cloud) or a path to a vmlinuz (repeatable).
    #[arg(long = "kernel", value_name = "6.1|6.12|6.12-rt|6.12-cloud|PATH")]
    kernels: Vec<KernelChoice>,
    /// The set of columns when no --kernel or --cgroup is given: default
    /// (6.1 v1, 6.1 v2, 6.12 v2) or full (the default and the rt and cloud
    /// flavours of 6.1 and 6.12, on v2).
    #[arg(long, value_enum, default_value_t = MatrixSet::Default)]
    matrix: MatrixSet,
    /// Extra kernel command line arguments for every VM, e.g.
    /// "cgroup_disable=pids".
    #[arg(long, value_name = "ARGS")]
    append: Option<String>,
    /// Write each column's result (report, console tail, timing,
    /// acceleration) to DIR instead of the matrix (DIR/KERNEL-CGROUP/
    /// when there are several), for `cargo xtask matrix merge`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// An earlier matrix.json: cells that passed there and do not now are
    /// regressions, shown in every format, and fail the run.
    #[arg(long, value_name = "MATRIX_JSON")]
    baseline: Option<PathBuf>,
    /// A boxwatch binary built earlier (a CI build job's artifact) for the
    /// VMs, instead of building one with cargo.
    #[arg(long, value_name = "PATH")]
    boxwatch: Option<PathBuf>,
    /// Cgroup layouts to boot each kernel with (repeatable).
    #[arg(long = "cgroup", value_enum)]
    cgroups: Vec<CgroupLayout>,
    /// Only scenarios whose id matches this glob.
    #[arg(long)]
    only: Option<String>,
    /// Seconds before a VM is killed and its column reported as hung.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Run this boxwatch command line in the VMs instead of the scenarios
    /// (its stdout is brought back), e.g. --job "run -- /bin/sh -c 'echo hi'".
    #[arg(long, value_name = "ARGS")]
    job: Option<String>,
}

/// The named sets of columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixSet {
    /// 6.1 v1, 6.1 v2, 6.12 v2: fast, the kernels most nodes run.
    Default,
    /// The default, plus Debian's PREEMPT_RT (-rt) and -cloud flavours of
    /// 6.12 and 6.1 on cgroup v2.
    Full,
}

impl MatrixSet {
    pub fn columns(self) -> Vec<Column> {
        let mut cols = vec![
            ("6.1", CgroupLayout::V1),
            ("6.1", CgroupLayout::V2),
            ("6.12", CgroupLayout::V2),
        ];
        if self == MatrixSet::Full {
            cols.extend([
                ("6.12-rt", CgroupLayout::V2),
                ("6.12-cloud", CgroupLayout::V2),
                ("6.1-rt", CgroupLayout::V2),
                ("6.1-cloud", CgroupLayout::V2),
            ]);
        }
        cols.into_iter()
            .map(|(k, c)| Column {
                kernel: k.parse().expect("the named kernels parse"),
                cgroup: c,
            })
            .collect()
    }
}

/// One cell column of the matrix: a kernel booted with a cgroup layout.
#[derive(Debug, Clone)]
pub struct Column {
    pub kernel: KernelChoice,
    pub cgroup: CgroupLayout,
}

impl VmArgs {
    /// The columns asked for; without --kernel and --cgroup, the --matrix
    /// set (6.12 has no v1 memory controller, so no 6.12 v1 column).
    fn columns(&self) -> Vec<Column> {
        if self.kernels.is_empty() && self.cgroups.is_empty() {
            return self.matrix.columns();
        }
        let kernels = if self.kernels.is_empty() {
            vec![KernelChoice::Series("6.12".into())]
        } else {
            self.kernels.clone()
        };
        let cgroups = if self.cgroups.is_empty() {
            vec![CgroupLayout::V2]
        } else {
            self.cgroups.clone()
        };
        kernels
            .iter()
            .flat_map(|k| {
                cgroups.iter().map(move |c| Column {
                    kernel: k.clone(),
                    cgroup: *c,
                })
            })
            .collect()
    }

    fn job(&self) -> Vec<String> {
        match &self.job {
            Some(j) => shell_words(j),
            None => scenarios_job(self.only.as_deref()),
        }
    }
}

/// The job that runs the scenarios (those matching `only`) and prints the
/// JSON report.
pub fn scenarios_job(only: Option<&str>) -> Vec<String> {
    // A throwaway VM is the one place the clock may move: the
    // settimeofday-privileged scenario runs here and only here.
    let mut job = vec![
        "scenarios".to_string(),
        "--format".into(),
        "json".into(),
        "--allow-clock-write".into(),
    ];
    if let Some(only) = only {
        job.extend(["--only".into(), only.to_string()]);
    }
    job
}

/// Splits a job line into words, honouring single and double quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// What one column produced.
#[derive(Debug, Clone)]
pub struct ColumnResult {
    /// The kernel's release, or its image's file name.
    pub kernel: String,
    /// The kernel as asked for (`6.1`, `6.12-rt`, an image's file name).
    pub name: String,
    pub cgroup: CgroupLayout,
    /// Kernel command line arguments added to the VM's own.
    pub append: Option<String>,
    pub accel: Option<String>,
    pub seconds: Option<f64>,
    pub job_exit: Option<i32>,
    /// The job's stdout (for scenarios, the JSON report).
    pub output: String,
    /// Why the column has no result, with the last console lines.
    pub error: Option<String>,
    /// The console's last lines, whatever happened.
    pub console_tail: String,
}

/// Boots columns one after another: the VM's userland, the work
/// directory, and what was learnt about KVM on the way.
pub struct Runner {
    work: PathBuf,
    boxwatch: PathBuf,
    busybox: PathBuf,
    timeout: u64,
    kvm_known_bad: bool,
}

impl Runner {
    /// Builds boxwatch (release) for the VMs' initramfs, unless a binary
    /// is given.
    pub fn new(timeout: u64, prebuilt: Option<&Path>) -> Result<Runner> {
        let root = crate::workspace_root();
        let work = root.join("target/vm");
        std::fs::create_dir_all(&work)?;
        let busybox = find_busybox()?;
        let boxwatch = match prebuilt {
            Some(p) => {
                anyhow::ensure!(p.is_file(), "--boxwatch {}: no such file", p.display());
                p.to_path_buf()
            }
            None => {
                eprintln!("vm: building boxwatch (release)");
                crate::cmd(
                    "cargo",
                    &["build", "--release", "--quiet", "-p", "boxwatch"],
                )?;
                root.join("target/release/boxwatch")
            }
        };
        Ok(Runner {
            work,
            boxwatch,
            busybox,
            timeout,
            kvm_known_bad: false,
        })
    }

    /// Boots one column and runs `job` in it; whatever goes wrong is the
    /// result's `error`.
    pub fn run(&mut self, col: &Column, job: &[String], append: Option<&str>) -> ColumnResult {
        eprintln!(
            "vm: kernel {} with cgroup {}{}",
            col.kernel,
            col.cgroup,
            append.map(|a| format!(" (+ {a})")).unwrap_or_default()
        );
        let result = run_column(
            col,
            &self.work,
            &self.boxwatch,
            &self.busybox,
            job,
            append,
            self.timeout,
            &mut self.kvm_known_bad,
        );
        let result = result.unwrap_or_else(|e| ColumnResult {
            kernel: col.kernel.name(),
            name: col.kernel.name(),
            cgroup: col.cgroup,
            append: append.map(String::from),
            accel: None,
            seconds: None,
            job_exit: None,
            output: String::new(),
            error: Some(format!("{e:#}")),
            console_tail: String::new(),
        });
        match &result.error {
            Some(e) => eprintln!(
                "vm: kernel {} cgroup {}: FAILED: {e}",
                result.kernel, result.cgroup
            ),
            None => eprintln!(
                "vm: kernel {} cgroup {}: job exited {} after {:.1} s ({})",
                result.kernel,
                result.cgroup,
                result.job_exit.unwrap_or(-1),
                result.seconds.unwrap_or(0.0),
                result.accel.as_deref().unwrap_or("?")
            ),
        }
        result
    }
}

pub fn main(args: VmArgs) -> Result<()> {
    let baseline = args.baseline.as_deref().map(matrix::load).transpose()?;
    let mut runner = Runner::new(args.timeout, args.boxwatch.as_deref())?;
    let job = args.job();
    let results: Vec<ColumnResult> = args
        .columns()
        .iter()
        .map(|col| runner.run(col, &job, args.append.as_deref()))
        .collect();
    if args.job.is_some() {
        for r in &results {
            println!("== kernel {} cgroup {}\n{}", r.kernel, r.cgroup, r.output);
        }
        let failed = results
            .iter()
            .any(|r| r.error.is_some() || r.job_exit != Some(0));
        anyhow::ensure!(
            !failed,
            "a VM column failed or its job exited non-zero (see above)"
        );
        return Ok(());
    }
    if let Some(out) = &args.out {
        for r in &results {
            let dir = if results.len() == 1 {
                out.clone()
            } else {
                out.join(format!("{}-{}", r.kernel, r.cgroup))
            };
            column::write(r, &dir)?;
            eprintln!("vm: column written to {}", dir.display());
        }
        // The column's own verdict; the matrix is made by `matrix merge`.
        let m = matrix::Matrix::build(&results);
        let m = match &baseline {
            Some(b) => m.with_baseline(b),
            None => m,
        };
        println!("{}", m.to_markdown());
        return matrix_verdict(&m);
    }
    let out_dir = crate::workspace_root().join("target/boxwatch-report/matrix");
    let m = matrix::write(&results, &out_dir, baseline.as_ref())?;
    eprintln!("vm: matrix written to {}", out_dir.display());
    println!("{}", m.to_markdown());
    matrix_verdict(&m)
}

/// Fails unless every column has a report in which no scenario failed or
/// errored and nothing regressed against the baseline.
pub fn matrix_verdict(m: &matrix::Matrix) -> Result<()> {
    anyhow::ensure!(
        m.all_held(),
        "the matrix does not hold: {} (see above)",
        m.not_held().join("; ")
    );
    Ok(())
}

/// `cargo xtask matrix merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Column directories written by `cargo xtask vm --out`, or
    /// directories holding them; the columns keep this order.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Where to write matrix.json, matrix.md, matrix.html and
    /// matrix-junit.xml.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// An earlier matrix.json: cells that passed there and do not now are
    /// regressions.
    #[arg(long, value_name = "MATRIX_JSON")]
    baseline: Option<PathBuf>,
}

/// Merges column results made anywhere into the matrix a one-machine run
/// writes.
pub fn merge(args: MergeArgs) -> Result<()> {
    let baseline = args.baseline.as_deref().map(matrix::load).transpose()?;
    let results = column::find(&args.dirs)?
        .iter()
        .map(|d| column::read(d))
        .collect::<Result<Vec<_>>>()?;
    let m = matrix::write(&results, &args.out, baseline.as_ref())?;
    eprintln!(
        "matrix: {} column(s) merged into {}",
        results.len(),
        args.out.display()
    );
    println!("{}", m.to_markdown());
    matrix_verdict(&m)
}

#[allow(clippy::too_many_arguments)]
fn run_column(
    col: &Column,
    work: &Path,
    boxwatch: &Path,
    busybox: &Path,
    job: &[String],
    append: Option<&str>,
    timeout: u64,
    kvm_known_bad: &mut bool,
) -> Result<ColumnResult> {
    let kernel = kernel::obtain(&col.kernel, &work.join("kernels"))?;
    let tag = format!("{}-{}", kernel.label, col.cgroup);
    let initrd = work.join(format!("initrd-{tag}.cpio"));
    initramfs::build(
        &initrd,
        boxwatch,
        busybox,
        &initramfs::init_script(col.cgroup, job),
    )?;
    let mut cmdline = String::from("console=ttyS0 panic=-1 quiet loglevel=3 boxwatch.vm=1");
    if col.cgroup == CgroupLayout::V2 {
        cmdline.push_str(" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1");
    }
    if let Some(extra) = append {
        cmdline.push(' ');
        cmdline.push_str(extra);
    }
    let boot = qemu::Boot {
        vmlinuz: &kernel.vmlinuz,
        initrd: &initrd,
        cmdline,
        console: work.join(format!("console-{tag}.log")),
        output: work.join(format!("output-{tag}.txt")),
        timeout: Duration::from_secs(timeout),
        memory_mb: 1024,
        cpus: 2,
    };
    let ending = qemu::boot(&boot, kvm_known_bad)?;
    let tail = || qemu::console_tail(&boot.console, 15);
    let output = std::fs::read_to_string(&boot.output).unwrap_or_default();
    let console = std::fs::read_to_string(&boot.console).unwrap_or_default();
    let mut r = ColumnResult {
        kernel: kernel.label.clone(),
        name: col.kernel.name(),
        cgroup: col.cgroup,
        append: append.map(String::from),
        accel: None,
        seconds: None,
        job_exit: None,
        output,
        error: None,
        console_tail: qemu::console_tail(&boot.console, 60),
    };
    // The init checks the options it needs before anything else, and a
    // kernel that cannot unpack the initramfs panics on its way to a root
    // filesystem: either way, the option is named.
    if let Some(lacks) = initramfs::lacking_options(&console) {
        r.error = Some(format!(
            "kernel {}: {lacks}; the VM needs it (see README, \"Building a test kernel\"); last console lines:\n{}",
            kernel.label,
            tail()
        ));
        return Ok(r);
    }
    match ending {
        qemu::Ending::JobExited {
            code,
            accel,
            seconds,
        } => {
            r.job_exit = Some(code);
            r.accel = Some(format!("{accel:?}").to_lowercase());
            r.seconds = Some(seconds);
        }
        qemu::Ending::Stopped { why } => {
            r.error = Some(format!(
                "kernel {}: {why}; last console lines:\n{}",
                kernel.label,
                tail()
            ));
        }
        qemu::Ending::TimedOut { after } => {
            r.error = Some(format!(
                "kernel {}: the VM did not finish within {} s and was killed; last console lines:\n{}",
                kernel.label,
                after.as_secs(),
                tail()
            ));
        }
    }
    Ok(r)
}

fn find_busybox() -> Result<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("busybox is needed for the VM's userland: apt-get install busybox-static")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// True when VMs can boot here (qemu, busybox, apt); otherwise skips,
    /// or fails under CI=true.
    pub(crate) fn vm_or_skip(test: &str) -> bool {
        let qemu = Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_ok();
        let missing = match (qemu, find_busybox().is_ok()) {
            (false, _) => "qemu-system-x86_64 (apt-get install qemu-system-x86)",
            (_, false) => "busybox (apt-get install busybox-static)",
            _ => return true,
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {missing} is missing and CI=true forbids skipping"
        );
        eprintln!("skipping {test}: no {missing}");
        false
    }

    /// A Debian kernel of `series`, fetched once into target/vm/kernels.
    pub(crate) fn debian_kernel(series: &str) -> PathBuf {
        let cache = crate::workspace_root().join("target/vm/kernels");
        kernel::obtain(&series.parse().unwrap(), &cache)
            .unwrap()
            .vmlinuz
    }

    #[test]
    fn a_kernel_that_does_not_boot_is_named_with_what_qemu_and_the_console_said() {
        if !vm_or_skip("a kernel that does not boot") {
            return;
        }
        let work = tempfile::tempdir().unwrap();
        let kernel = work.path().join("not-a-kernel");
        std::fs::write(&kernel, vec![0x5a; 64 * 1024]).unwrap();
        let col = Column {
            kernel: KernelChoice::File(kernel),
            cgroup: CgroupLayout::V2,
        };
        // Any files do as the initramfs' binaries: the kernel never gets there.
        let stand_in = Path::new("/bin/true");
        let mut kvm_known_bad = false;
        let r = run_column(
            &col,
            work.path(),
            stand_in,
            stand_in,
            &["scenarios".into()],
            None,
            30,
            &mut kvm_known_bad,
        )
        .unwrap();
        let err = r.error.expect("the column failed");
        assert!(err.starts_with("kernel not-a-kernel: qemu exited"), "{err}");
        assert!(err.contains("last console lines:"), "{err}");
        assert!(r.job_exit.is_none());
        assert!(
            !kvm_known_bad,
            "a kernel that boots nowhere says nothing about KVM"
        );
    }

    /// Debian's 6.12 is built without CONFIG_MEMCG_V1: asked for a v1
    /// layout, the VM names the option instead of running a v1 column
    /// without a v1 memory controller. A kernel that does not run the
    /// initramfs (here: told to run an init that is not there) panics
    /// looking for a root filesystem, and that is named too, at once.
    #[test]
    fn a_kernel_lacking_an_option_the_vm_needs_is_named() {
        if !vm_or_skip("a kernel lacking an option") {
            return;
        }
        let kernel = debian_kernel("6.12");
        let work = tempfile::tempdir().unwrap();
        let mut kvm_known_bad = false;
        let boxwatch = Path::new("/bin/true");
        let busybox = find_busybox().unwrap();
        let mut boot = |cgroup, append| {
            let col = Column {
                kernel: KernelChoice::File(kernel.clone()),
                cgroup,
            };
            let job = ["--version".to_string()];
            run_column(
                &col,
                work.path(),
                boxwatch,
                &busybox,
                &job,
                append,
                120,
                &mut kvm_known_bad,
            )
            .unwrap()
        };
        let v1 = boot(CgroupLayout::V1, None);
        let err = v1.error.expect("the v1 column has no result");
        assert!(
            err.contains("this kernel lacks CONFIG_MEMCG_V1 (the memory controller cannot be mounted as cgroup v1"),
            "{err}"
        );
        assert!(!err.contains("did not finish"), "not a hang: {err}");
        let no_init = boot(CgroupLayout::V2, Some("rdinit=/not-there"));
        let err = no_init.error.expect("the column has no result");
        assert!(
            err.contains("this kernel lacks CONFIG_BLK_DEV_INITRD"),
            "{err}"
        );
        assert!(!err.contains("did not finish"), "not a hang: {err}");
    }

    #[test]
    fn job_lines_split_like_a_shell() {
        assert_eq!(
            shell_words("run -- /bin/sh -c 'echo $$; x=\"a b\"'"),
            ["run", "--", "/bin/sh", "-c", "echo $$; x=\"a b\""]
        );
        assert_eq!(shell_words("  a  ''  b "), ["a", "", "b"]);
    }
}
