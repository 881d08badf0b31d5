//! What every bench shares: the interrupt flag and its signal watcher, the
//! release binary they measure, and one definition of a percentile.

use anyhow::{bail, Result};
use scenarios::signals::OnSignal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Set by SIGINT/SIGTERM/SIGHUP; every loop checks it and unwinds, so the
/// Drop guards remove what was created.
static INTERRUPTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

/// Whether a termination signal arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err("interrupted")` once a termination signal arrived.
pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Turns SIGINT, SIGTERM and SIGHUP into [`interrupted`], with
/// `scenarios::signals` (call it before any other thread exists). Later
/// signals are ignored: the bench always removes what it made. Child
/// processes inherit the blocked mask (std's `Command` keeps it): the
/// exporter unblocks SIGINT and SIGTERM itself at start, and a child that
/// SIGTERM does not end within 1 s gets SIGKILL.
pub fn watch_signals() -> Result<()> {
    let on = OnSignal {
        message: "bench: interrupted: stopping and removing what the bench made",
        exit_on_second: None,
    };
    Ok(scenarios::signals::watch_signals(INTERRUPTED.clone(), on)?)
}

/// Builds the release binary and returns its path.
pub fn build_boxwatch() -> Result<PathBuf> {
    crate::cmd(
        "cargo",
        &["build", "--release", "--quiet", "--bin", "boxwatch"],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    Ok(target.join("release/boxwatch"))
}

/// The `p` quantile (0 < `p` <= 1) of `sorted` (ascending) by nearest
/// rank: the smallest value with at least `p` of the values at or below
/// it, always one of the values, never an interpolation. p99 of 200 is the
/// 198th, p50 of 10 the 5th (the lower middle: no average of two), p50 of
/// 11 the 6th. `T::default()` (zero) when `sorted` is empty.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[nearest_rank(sorted.len(), p) - 1]
}

/// The 1-based nearest rank of quantile `p` among `n` values: ⌈p·n⌉,
/// at least 1 and at most `n`.
pub fn nearest_rank(n: usize, p: f64) -> usize {
    ((p * n as f64).ceil() as usize).clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nearest_rank_p99() {
        assert_eq!(nearest_rank(200, 0.99), 198);
        assert_eq!(nearest_rank(100, 0.99), 99);
        assert_eq!(nearest_rank(50, 0.99), 50);
        assert_eq!(nearest_rank(1, 0.99), 1);
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.99), 198.0);
        assert_eq!(percentile(&v, 0.5), 100.0);
    }

    #[test]
    fn percentile_is_a_value_by_nearest_rank() {
        let t: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&t, 0.5), Duration::from_millis(5));
        assert_eq!(percentile(&t, 0.9), Duration::from_millis(9));
        assert_eq!(percentile(&t, 0.91), Duration::from_millis(10));
        assert_eq!(percentile(&t, 1.0), Duration::from_millis(10));
        assert_eq!(percentile(&t, 0.01), Duration::from_millis(1));
        let odd: Vec<u64> = (1..=11).collect();
        assert_eq!(percentile(&odd, 0.5), 6);
        assert_eq!(percentile(&[7u64], 0.5), 7);
        assert_eq!(percentile::<Duration>(&[], 0.5), Duration::ZERO);
        assert_eq!(percentile::<u64>(&[], 0.99), 0);
    }

    #[test]
    fn at_least_p_of_the_values_are_at_or_below_it() {
        for n in 1..=64usize {
            let v: Vec<u64> = (0..n as u64).collect();
            for p in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
                let x = percentile(&v, p);
                let at_or_below = v.iter().filter(|&&y| y <= x).count();
                assert!(at_or_below as f64 >= p * n as f64, "n {n} p {p}");
                // ...and it is the smallest such value.
                if x > 0 {
                    assert!(((at_or_below - 1) as f64) < p * n as f64, "n {n} p {p}");
                }
            }
        }
    }
}
