//! CPU and memory pressure: spin loops, bursts, the memory hog.

use super::{process_cpu_time, thread_cpu_time, Emitter};
use crate::error::Result;
use serde_json::json;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Burns CPU until `deadline`. With `noisy`, each thread also streams
/// through a private 4 MiB buffer to evict its neighbours' cache lines.
fn burn_until(deadline: Instant, noisy: bool) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = if noisy {
        vec![0u8; 4 << 20]
    } else {
        Vec::new()
    };
    let mut i = 0usize;
    while Instant::now() < deadline {
        for _ in 0..20_000 {
            x = black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
        if noisy {
            for chunk in buf.chunks_mut(64).skip(i % 64).step_by(64) {
                chunk[0] = chunk[0].wrapping_add(x as u8);
            }
            i += 1;
        }
    }
    black_box(x);
    black_box(&buf);
}

/// `threads` spin loops for `duration`; reports the CPU time it got.
pub fn spin(out: &Emitter, threads: u32, duration: Duration, noisy: bool) -> Result<()> {
    out.emit("start", json!({ "threads": threads }));
    let t0 = Instant::now();
    let cpu0 = process_cpu_time();
    let deadline = t0 + duration;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || burn_until(deadline, noisy));
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (process_cpu_time() - cpu0).as_secs_f64();
    out.emit(
        "result",
        json!({ "threads": threads, "wall_secs": wall, "cpu_secs": cpu, "cpu_share": cpu / wall }),
    );
    Ok(())
}

/// Every `interval`, each of `threads` threads does `burst` of CPU work
/// (measured in its own CPU time) and sleeps again. A burst whose wall time
/// is far beyond its CPU time was throttled: counted as slow.
pub fn burst(
    out: &Emitter,
    threads: u32,
    duration: Duration,
    burst: Duration,
    interval: Duration,
) -> Result<()> {
    out.emit("start", json!({ "threads": threads }));
    let t0 = Instant::now();
    let cpu0 = process_cpu_time();
    let deadline = t0 + duration;
    let bursts = AtomicU64::new(0);
    let slow = AtomicU64::new(0);
    let max_us = AtomicU64::new(0);
    // Slow: took more than twice its CPU time plus 5 ms of scheduling slack.
    let slow_after = burst * 2 + Duration::from_millis(5);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut k = 0u32;
                loop {
                    let start = t0 + interval * k;
                    k += 1;
                    if start + burst > deadline {
                        break;
                    }
                    let now = Instant::now();
                    if now > start + interval / 2 {
                        continue; // overran: skip to the next slot
                    }
                    if start > now {
                        std::thread::sleep(start - now);
                    }
                    let began = Instant::now();
                    let cpu_start = thread_cpu_time();
                    let mut x = 1u64;
                    while thread_cpu_time() - cpu_start < burst {
                        for _ in 0..5_000 {
                            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                    let took = began.elapsed();
                    bursts.fetch_add(1, Ordering::Relaxed);
                    if took > slow_after {
                        slow.fetch_add(1, Ordering::Relaxed);
                    }
                    max_us.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (process_cpu_time() - cpu0).as_secs_f64();
    let n = bursts.load(Ordering::Relaxed);
    let slow = slow.load(Ordering::Relaxed);
    out.emit(
        "result",
        json!({
            "threads": threads,
            "wall_secs": wall,
            "cpu_secs": cpu,
            "cpu_share": cpu / wall,
            "bursts": n,
            "slow_bursts": slow,
            "slow_burst_ratio": if n == 0 { 0.0 } else { slow as f64 / n as f64 },
            "max_burst_ms": max_us.load(Ordering::Relaxed) as f64 / 1000.0,
        }),
    );
    Ok(())
}

/// Allocates and touches `bytes` in steps of `step`, reporting progress
/// after each step. Under a lower memory limit it is OOM-killed on the way.
/// Only called behind the guard check.
pub fn hog(out: &Emitter, bytes: u64, step: u64) -> Result<()> {
    out.emit("start", json!({ "target_bytes": bytes }));
    let step = step.max(4096) as usize;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut allocated = 0u64;
    let mut pause_at = std::env::var(super::MEMORY_LIMIT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|limit| limit / 8 * 7);
    while allocated < bytes {
        // A non-zero fill writes every page: the memory is really used.
        held.push(vec![0x5a; step]);
        allocated += step as u64;
        out.emit("progress", json!({ "allocated_bytes": allocated }));
        if pause_at.is_some_and(|at| allocated >= at) {
            pause_at = None;
            black_box(&held);
            out.emit_and_wait(
                "near-limit",
                json!({ "allocated_bytes": allocated }),
                Duration::from_secs(5),
            );
        }
    }
    black_box(&held);
    out.emit(
        "result",
        json!({ "allocated_bytes": allocated, "completed": true }),
    );
    Ok(())
}
