//! `cargo xtask vm`: the scenarios on other kernels and cgroup layouts,
//! each inside a qemu VM booted from a Debian kernel and an initramfs.

mod cpio;
pub mod initramfs;
pub mod kernel;
pub mod matrix;
mod qemu;

use anyhow::{Context, Result};
use initramfs::CgroupLayout;
use kernel::KernelChoice;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct VmArgs {
    /// Kernels: a Debian series (6.1, 6.12) or a path to a vmlinuz (repeatable).
    #[arg(long = "kernel", value_name = "6.1|6.12|PATH")]
    kernels: Vec<KernelChoice>,
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

/// One cell column of the matrix: a kernel booted with a cgroup layout.
#[derive(Debug, Clone)]
pub struct Column {
    pub kernel: KernelChoice,
    pub cgroup: CgroupLayout,
}

impl VmArgs {
    /// The columns asked for; the default matrix is 6.1 v1, 6.1 v2, 6.12 v2
    /// (6.12 has no v1 memory controller).
    fn columns(&self) -> Vec<Column> {
        if self.kernels.is_empty() && self.cgroups.is_empty() {
            return [
                ("6.1", CgroupLayout::V1),
                ("6.1", CgroupLayout::V2),
                ("6.12", CgroupLayout::V2),
            ]
            .into_iter()
            .map(|(k, c)| Column {
                kernel: KernelChoice::Series(k.into()),
                cgroup: c,
            })
            .collect();
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
            None => {
                // A throwaway VM is the one place the clock may move: the
                // settimeofday-privileged scenario runs here and only here.
                let mut job = vec![
                    "scenarios".to_string(),
                    "--format".into(),
                    "json".into(),
                    "--allow-clock-write".into(),
                ];
                if let Some(only) = &self.only {
                    job.extend(["--only".into(), only.clone()]);
                }
                job
            }
        }
    }
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
#[derive(Debug)]
pub struct ColumnResult {
    pub kernel: String,
    pub cgroup: CgroupLayout,
    pub accel: Option<String>,
    pub seconds: Option<f64>,
    pub job_exit: Option<i32>,
    /// The job's stdout (for scenarios, the JSON report).
    pub output: String,
    /// Why the column has no result, with the last console lines.
    pub error: Option<String>,
}

pub fn main(args: VmArgs) -> Result<()> {
    let root = crate::workspace_root();
    let work = root.join("target/vm");
    std::fs::create_dir_all(&work)?;
    let busybox = find_busybox()?;
    eprintln!("vm: building boxwatch (release)");
    crate::cmd(
        "cargo",
        &["build", "--release", "--quiet", "-p", "boxwatch"],
    )?;
    let boxwatch = root.join("target/release/boxwatch");
    let job = args.job();
    let mut kvm_known_bad = false;
    let mut results = Vec::new();
    for col in args.columns() {
        eprintln!("vm: kernel {} with cgroup {}", col.kernel, col.cgroup);
        let result = run_column(
            &col,
            &work,
            &boxwatch,
            &busybox,
            &job,
            args.timeout,
            &mut kvm_known_bad,
        );
        let result = result.unwrap_or_else(|e| ColumnResult {
            kernel: col.kernel.to_string(),
            cgroup: col.cgroup,
            accel: None,
            seconds: None,
            job_exit: None,
            output: String::new(),
            error: Some(format!("{e:#}")),
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
        results.push(result);
    }
    let out_dir = root.join("target/boxwatch-report/matrix");
    let failed = if args.job.is_some() {
        for r in &results {
            println!("== kernel {} cgroup {}\n{}", r.kernel, r.cgroup, r.output);
        }
        results
            .iter()
            .any(|r| r.error.is_some() || r.job_exit != Some(0))
    } else {
        let m = matrix::write(&results, &out_dir)?;
        eprintln!("vm: matrix written to {}", out_dir.display());
        println!("{}", m.to_markdown());
        !m.all_held()
    };
    anyhow::ensure!(
        !failed,
        "a VM column failed or a required check did not hold (see above)"
    );
    Ok(())
}

fn run_column(
    col: &Column,
    work: &Path,
    boxwatch: &Path,
    busybox: &Path,
    job: &[String],
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
    let mut r = ColumnResult {
        kernel: kernel.label.clone(),
        cgroup: col.cgroup,
        accel: None,
        seconds: None,
        job_exit: None,
        output,
        error: None,
    };
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
mod tests {
    use super::*;

    #[test]
    fn a_kernel_that_does_not_boot_is_named_with_what_qemu_and_the_console_said() {
        if std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "qemu-system-x86_64 is missing and CI=true forbids skipping"
            );
            eprintln!("skipping: no qemu-system-x86_64 (apt-get install qemu-system-x86)");
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

    #[test]
    fn job_lines_split_like_a_shell() {
        assert_eq!(
            shell_words("run -- /bin/sh -c 'echo $$; x=\"a b\"'"),
            ["run", "--", "/bin/sh", "-c", "echo $$; x=\"a b\""]
        );
        assert_eq!(shell_words("  a  ''  b "), ["a", "", "b"]);
    }
}
