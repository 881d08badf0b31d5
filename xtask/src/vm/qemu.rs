//! Booting one VM under qemu: KVM where it works, else TCG; a timeout that
//! kills the VM by PID; the console and the job's output captured in files.

use super::initramfs::{MARK_EXIT, MARK_STARTED};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// What one boot is.
pub struct Boot<'a> {
    pub vmlinuz: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: String,
    /// Serial console (ttyS0) log and the job's output (ttyS1).
    pub console: PathBuf,
    pub output: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub cpus: u32,
}

/// How a boot ended.
#[derive(Debug)]
pub enum Ending {
    /// The job ran; its exit code.
    JobExited {
        code: i32,
        accel: Accel,
        seconds: f64,
    },
    /// qemu stopped before the job finished (kernel panic, no init...).
    Stopped { why: String },
    /// Killed after the timeout.
    TimedOut { after: Duration },
}

/// How long a KVM boot may take to start the init before it counts as
/// stopped. A kernel that KVM can run starts it within seconds (TCG takes
/// about 4 s here); a paravirtual KVM that cannot run it may hang with an
/// empty console instead of exiting.
const KVM_INIT_DEADLINE: Duration = Duration::from_secs(30);

/// Boots with KVM if `/dev/kvm` can be used, and again with TCG when the
/// KVM boot stops before the job finished: a paravirtual KVM may not run a
/// stock kernel at all (qemu exits, or the guest hangs without starting
/// the init: both seen here), or crash it after init has started. KVM is
/// given up for later boots only when TCG then gets the same kernel
/// further: a kernel that boots nowhere says nothing about KVM.
pub fn boot(b: &Boot, kvm_known_bad: &mut bool) -> Result<Ending> {
    if *kvm_known_bad || !kvm_usable() {
        return boot_with(b, Accel::Tcg);
    }
    let ending = boot_with(b, Accel::Kvm)?;
    let Ending::Stopped { why } = &ending else {
        return Ok(ending);
    };
    eprintln!("vm: KVM boot stopped ({why}); booting again with TCG");
    let ending = boot_with(b, Accel::Tcg)?;
    if matches!(ending, Ending::JobExited { .. }) || init_started(&b.console) {
        eprintln!("vm: KVM cannot run this kernel here but TCG can; using TCG from now on");
        *kvm_known_bad = true;
    }
    Ok(ending)
}

fn init_started(console: &Path) -> bool {
    std::fs::read_to_string(console).is_ok_and(|c| c.contains(MARK_STARTED))
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn boot_with(b: &Boot, accel: Accel) -> Result<Ending> {
    let _ = std::fs::remove_file(&b.console);
    let _ = std::fs::remove_file(&b.output);
    let (accel_arg, cpu) = match accel {
        Accel::Kvm => ("kvm", "host"),
        // One host thread runs both vCPUs in turn. With multi-threaded TCG
        // (qemu 7.2), a guest that patches its own code at run time (static
        // keys flipped by the first cgroup with a quota, text_poke_bp with
        // int3) sometimes executes a stale int3 on the other vCPU: Debian's
        // 6.12 kernel died with "Oops: int3" in 2 boots of 4 here, and never
        // in single-threaded TCG. The guest's clocks follow the host's, so
        // quotas are measured the same way; the scenarios mostly wait, so a
        // column takes as long (~40 s).
        Accel::Tcg => ("tcg,thread=single", "max"),
    };
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", accel_arg, "-cpu", cpu])
        .args(["-m", &b.memory_mb.to_string(), "-smp", &b.cpus.to_string()])
        .arg("-kernel")
        .arg(b.vmlinuz)
        .arg("-initrd")
        .arg(b.initrd)
        .args(["-append", &b.cmdline])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-nodefaults",
        ])
        .arg("-serial")
        .arg(format!("file:{}", b.console.display()))
        .arg("-serial")
        .arg(format!("file:{}", b.output.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let mut init_checked = accel != Accel::Kvm;
    loop {
        if let Some(status) = qemu.try_wait()? {
            let console = std::fs::read_to_string(&b.console).unwrap_or_default();
            if let Some(code) = job_exit(&console) {
                return Ok(Ending::JobExited {
                    code,
                    accel,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            let mut stderr = String::new();
            if let Some(mut e) = qemu.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            return Ok(Ending::Stopped {
                why: format!(
                    "qemu exited ({status}) before the job finished{}",
                    stderr_tail(&stderr)
                ),
            });
        }
        // Under KVM, once at the deadline: has the init started?
        if !init_checked && started.elapsed() > KVM_INIT_DEADLINE {
            init_checked = true;
            if !init_started(&b.console) {
                // Our own qemu child, ended by PID.
                let _ = qemu.kill();
                let _ = qemu.wait();
                return Ok(Ending::Stopped {
                    why: format!(
                        "under KVM the init had not started after {} s",
                        KVM_INIT_DEADLINE.as_secs()
                    ),
                });
            }
        }
        if started.elapsed() > b.timeout {
            // Our own qemu child, ended by PID.
            let _ = qemu.kill();
            let _ = qemu.wait();
            return Ok(Ending::TimedOut { after: b.timeout });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stderr_tail(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(
            ": {}",
            t.lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" / ")
        )
    }
}

/// The job's exit code from the console log, once the init printed it. The
/// marker may follow other output on its line (a kernel message or terminal
/// escapes without a newline).
pub fn job_exit(console: &str) -> Option<i32> {
    console.lines().find_map(|l| {
        let (_, rest) = l.split_once(MARK_EXIT)?;
        rest.trim().parse().ok()
    })
}

/// The last `n` lines of the console, for error messages.
pub fn console_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return "(the console stayed empty: the kernel printed nothing)".into();
    }
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_exit_marker_is_found_among_kernel_lines() {
        let console = format!(
            "[    1.0] x\r\n{MARK_STARTED} kernel=6.12\r\n[   9.1] oom\r\n{MARK_EXIT} 3\r\n"
        );
        assert_eq!(job_exit(&console), Some(3));
        assert_eq!(job_exit("booting...\n"), None);
        // What a progress bar's last redraw leaves before the marker.
        let redrawn = format!("\u{1b}[2K⠤ [00:00:31] 18/19 uts\u{1b}[2K{MARK_EXIT} 0\r\n");
        assert_eq!(job_exit(&redrawn), Some(0));
    }
}
