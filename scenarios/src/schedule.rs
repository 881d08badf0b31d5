//! Running scenarios side by side without spoiling measurements: an
//! `exclusive` scenario (everything that measures CPU) runs alone, and
//! scenarios sharing a lock class never overlap. With `--jobs 1` this is
//! simply catalog order.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Condvar, Mutex};

/// What the scheduler needs to know about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job measures CPU and must run with no other job beside it.
    pub exclusive: bool,
    /// The job's lock class: no two jobs of the same class run at once.
    pub lock: Option<String>,
}

/// What is running now.
#[derive(Debug, Default, Clone)]
pub struct Running {
    count: usize,
    exclusive: bool,
    locks: BTreeSet<String>,
}

impl Running {
    fn start(&mut self, job: &Job) {
        self.count += 1;
        self.exclusive |= job.exclusive;
        if let Some(l) = &job.lock {
            self.locks.insert(l.clone());
        }
    }
    fn finish(&mut self, job: &Job) {
        self.count -= 1;
        if job.exclusive {
            self.exclusive = false;
        }
        if let Some(l) = &job.lock {
            self.locks.remove(l);
        }
    }
}

/// Whether `job` may start alongside what is running.
pub fn can_start(job: &Job, running: &Running) -> bool {
    if running.exclusive {
        return false;
    }
    if job.exclusive {
        return running.count == 0;
    }
    job.lock.as_ref().is_none_or(|l| !running.locks.contains(l))
}

/// The position in `pending` of the next job to start, if any may start
/// now. Jobs start in order, skipping blocked ones, except that nothing
/// overtakes an exclusive job at the head of the line (it would starve).
pub fn pick(pending: &VecDeque<usize>, jobs: &[Job], running: &Running) -> Option<usize> {
    let first = *pending.front()?;
    if jobs[first].exclusive {
        return can_start(&jobs[first], running).then_some(0);
    }
    pending.iter().position(|&i| can_start(&jobs[i], running))
}

/// Runs `f` for every job on up to `workers` threads, honouring exclusivity
/// and lock classes; returns the results in job order. `f` gets the job's
/// index.
pub fn run_all<T: Send>(jobs: &[Job], workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let state = Mutex::new((
        Running::default(),
        (0..jobs.len()).collect::<VecDeque<usize>>(),
    ));
    let wake = Condvar::new();
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let next = {
                    let mut g = state.lock().expect("scheduler lock");
                    loop {
                        let (running, pending) = &mut *g;
                        if pending.is_empty() {
                            break None;
                        }
                        if let Some(pos) = pick(pending, jobs, running) {
                            let i = pending.remove(pos).expect("picked from pending");
                            running.start(&jobs[i]);
                            break Some(i);
                        }
                        g = wake.wait(g).expect("scheduler lock");
                    }
                };
                let Some(i) = next else {
                    wake.notify_all();
                    return;
                };
                let r = f(i);
                results.lock().expect("results lock")[i] = Some(r);
                state.lock().expect("scheduler lock").0.finish(&jobs[i]);
                wake.notify_all();
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn job(exclusive: bool, lock: Option<&str>) -> Job {
        Job {
            exclusive,
            lock: lock.map(String::from),
        }
    }

    #[test]
    fn exclusive_jobs_wait_for_an_empty_machine() {
        let jobs = vec![job(false, None), job(true, None), job(false, None)];
        let mut r = Running::default();
        let pending: VecDeque<usize> = [1, 2].into();
        r.start(&jobs[0]);
        assert_eq!(
            pick(&pending, &jobs, &r),
            None,
            "nothing overtakes the exclusive job"
        );
        r.finish(&jobs[0]);
        assert_eq!(pick(&pending, &jobs, &r), Some(0));
        r.start(&jobs[1]);
        let pending: VecDeque<usize> = [2].into();
        assert_eq!(pick(&pending, &jobs, &r), None);
    }

    #[test]
    fn lock_classes_are_skipped_not_blocking() {
        let jobs = vec![
            job(false, Some("mem")),
            job(false, Some("mem")),
            job(false, None),
        ];
        let mut r = Running::default();
        r.start(&jobs[0]);
        let pending: VecDeque<usize> = [1, 2].into();
        assert_eq!(
            pick(&pending, &jobs, &r),
            Some(1),
            "job 2 starts, job 1 waits for the lock"
        );
    }

    proptest! {
        #[test]
        fn no_forbidden_overlap_ever_happens(
            spec in proptest::collection::vec((any::<bool>(), proptest::option::of(0u8..3)), 1..14),
            workers in 1usize..5,
        ) {
            let jobs: Vec<Job> = spec
                .iter()
                .map(|(e, l)| Job { exclusive: *e, lock: l.map(|x| format!("l{x}")) })
                .collect();
            let active = Mutex::new(Vec::<usize>::new());
            let violations = AtomicUsize::new(0);
            let out = run_all(&jobs, workers, |i| {
                {
                    let mut a = active.lock().unwrap();
                    for &j in a.iter() {
                        let clash = jobs[i].exclusive
                            || jobs[j].exclusive
                            || (jobs[i].lock.is_some() && jobs[i].lock == jobs[j].lock);
                        if clash {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    a.push(i);
                }
                std::thread::sleep(Duration::from_micros(300));
                active.lock().unwrap().retain(|&j| j != i);
                i * 10
            });
            prop_assert_eq!(violations.load(Ordering::SeqCst), 0);
            prop_assert_eq!(out, (0..jobs.len()).map(|i| i * 10).collect::<Vec<_>>());
        }
    }
}
