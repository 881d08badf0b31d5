//! boxwatch is the child subreaper of its OCI containers only while it
//! has an OCI backend (or one of its containers), and it reaps what it
//! inherits: a container without its own pid namespace hands its orphans
//! to boxwatch, and none of them may stay a zombie in a long-lived process
//! (a test binary, a library user). One test, so that nothing else in this
//! process changes the subreaper attribute meanwhile. Needs root, runc and
//! crun; under CI=true a missing one fails the test.

use crate::common::*;
use runtime::backend::{self, BackendKind};
use runtime::{ContainerSpec, Exit, Namespace, RuntimeConfig, Stdio};
use std::io::Read;

fn subreaper() -> bool {
    nix::sys::prctl::get_child_subreaper().unwrap()
}

/// Children of this process in session `sid`, zombies included.
fn children_in_session(sid: i32) -> Vec<(i32, char)> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| Some((p, runtime::cleanup::proc_stat(p)?)))
        .filter(|(_, s)| s.ppid == me && s.session == sid)
        .map(|(p, s)| (p, s.state))
        .collect()
}

#[test]
fn oci_backends_reap_what_they_inherit_and_give_the_subreaper_back() {
    let _room = room!();
    const TEST: &str = "oci_backends_reap_what_they_inherit_and_give_the_subreaper_back";
    if !root_or_skip(TEST) {
        return;
    }
    assert!(
        !subreaper(),
        "nothing made this test process a subreaper yet"
    );
    for kind in [BackendKind::Runc, BackendKind::Crun] {
        if !oci_or_skip(TEST, kind) {
            continue;
        }
        let a = backend::open(kind, RuntimeConfig::new(BIN.into()), None).unwrap();
        assert!(
            subreaper(),
            "{kind}: a backend makes this process subreaper"
        );

        // No pid namespace: the orphans below come to this process. One
        // exits on its own while the entry runs, one is killed with the
        // container after the entry exits.
        let mut spec = ContainerSpec::new(
            "orphans",
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "(sleep 0.1 &); (sleep 100 &); sleep 0.5; echo $$".into(),
            ],
        );
        spec.namespaces.remove(Namespace::Pid);
        let (r, w) = nix::unistd::pipe().unwrap();
        let c = a
            .spawn(
                &spec,
                Stdio {
                    stdout: Some(w),
                    ..Stdio::default()
                },
            )
            .unwrap();
        let leader = c.host_pid();
        let outcome = c.wait().unwrap();
        let mut text = String::new();
        std::fs::File::from(r).read_to_string(&mut text).unwrap();
        assert_eq!(outcome.exit, Exit::Code(0), "{kind}");
        assert_eq!(text.trim(), leader.to_string(), "{kind}: the entry's PID");
        let left = children_in_session(leader);
        assert!(
            left.is_empty(),
            "{kind}: processes of the container left to this process: {left:?}"
        );

        // Two backends: the attribute stays until the last one goes.
        let b = backend::open(kind, RuntimeConfig::new(BIN.into()), None).unwrap();
        drop(a);
        assert!(subreaper(), "{kind}: dropped while another backend lives");
        // A container outlives its backend: it keeps the attribute too.
        let c = b
            .spawn(
                &ContainerSpec::new("outlives", vec!["/bin/sleep".into(), "100".into()]),
                Stdio::default(),
            )
            .unwrap();
        drop(b);
        assert!(
            subreaper(),
            "{kind}: a container of a dropped backend lives"
        );
        drop(c);
        assert!(
            !subreaper(),
            "{kind}: the last user gives the attribute back"
        );
    }
}
