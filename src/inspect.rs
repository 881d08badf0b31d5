//! `boxwatch inspect`: look into a running container boxwatch did not
//! start. The work is `probes::inspect`'s; this only parses arguments.

use anyhow::{Context, Result};
use clap::Args;
use std::process::ExitCode;

/// Exit status when the host-side findings were made but entering the
/// target's namespaces failed (documented in `--help`).
pub const INSIDE_NOT_COLLECTED: u8 = 3;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "pid", "cgroup"])))]
#[command(after_help = "\
A container named through its engine (docker:NAME, podman:NAME, or a bare name or id, \
asked of docker, then of podman) is found with `docker inspect`/`podman inspect` (its host \
PID, cgroup and OCI runtime); the judge then reads the kernel itself, as for --pid. A \
container the engine runs with gVisor (runsc) is sandboxed: its inside view is read with \
`cat` through `<engine> exec`, on gVisor's kernel (the image needs a `cat`).

Namespaces are judged against those of PID 1, the host's init (boxwatch's own when \
/proc/1/ns cannot be read; the output says which).

Exit status:
  0    everything was collected
  3    the host-side findings were printed, but entering the target's namespaces failed: \
the inside view and the /proc findings are missing (the reason is on stderr and in \
inside_error)
  125  nothing could be inspected (no such process, not in a container, no such cgroup...)")]
pub struct InspectArgs {
    /// A container: docker:NAME, podman:NAME, or a bare name or id
    /// (docker's, else podman's; one both know is refused as ambiguous).
    #[arg(value_name = "CONTAINER")]
    target: Option<String>,
    /// The host PID of a process in the container (docker inspect -f '{{.State.Pid}}').
    #[arg(long, value_name = "PID", allow_negative_numbers = true, value_parser = parse_pid)]
    pid: Option<i32>,
    /// The container's cgroup, as in `/proc/<pid>/cgroup` (`/docker/<id>`,
    /// /kubepods/...): its oldest process is entered.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
    /// human or json.
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    format: String,
}

/// `--pid`: a host PID, 1 or more.
fn parse_pid(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i64>() {
        Ok(p) if (1..=i32::MAX as i64).contains(&p) => Ok(p as i32),
        Ok(_) => Err(format!("expected a process ID from 1 to {}", i32::MAX)),
        Err(_) => Err("expected a process ID, a whole number such as 4242 (docker inspect -f '{{.State.Pid}}' gives it)".into()),
    }
}

pub fn main(args: InspectArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the boxwatch binary")?;
    let found = match (&args.target, &args.pid, &args.cgroup) {
        (Some(target), _, _) => probes::inspect::inspect_container(&exe, target)?,
        (None, Some(pid), _) => probes::inspect::inspect_pid(&exe, *pid)?,
        (None, None, Some(cg)) => probes::inspect::inspect_cgroup(&exe, cg)?,
        (None, None, None) => unreachable!("clap requires a container, --pid or --cgroup"),
    };
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{found}");
    }
    Ok(match &found.inside_error {
        None => ExitCode::SUCCESS,
        Some(why) => {
            eprintln!(
                "boxwatch: inspect: the inside view of PID {} was not collected: {why}",
                found.pid
            );
            ExitCode::from(INSIDE_NOT_COLLECTED)
        }
    })
}
