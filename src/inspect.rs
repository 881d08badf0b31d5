//! `boxwatch inspect`: look into a running container boxwatch did not
//! start. The work is `probes::inspect`'s; this only parses arguments.

use anyhow::{Context, Result};
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "cgroup"])))]
pub struct InspectArgs {
    /// The host PID of a process in the container (docker inspect -f '{{.State.Pid}}').
    #[arg(long, value_name = "PID")]
    pid: Option<i32>,
    /// The container's cgroup, as in /proc/<pid>/cgroup (/docker/<id>,
    /// /kubepods/...): its oldest process is entered.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
    /// human or json.
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    format: String,
}

pub fn main(args: InspectArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the boxwatch binary")?;
    let found = match (&args.pid, &args.cgroup) {
        (Some(pid), _) => probes::inspect::inspect_pid(&exe, *pid)?,
        (None, Some(cg)) => probes::inspect::inspect_cgroup(&exe, cg)?,
        (None, None) => unreachable!("clap requires --pid or --cgroup"),
    };
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{found}");
    }
    Ok(ExitCode::SUCCESS)
}
