//! The rayon pool every kernel runs in. Rayon's global pool can be sized only once, so
//! the crate keeps its own, replaceable by `set_num_threads`.

use crate::error::{Error, Result};
use std::sync::{Arc, RwLock};

/// The pool and the process it was started in: a forked child has none of the parent's
/// threads, so it starts its own pool (a pool inherited through `fork` would wait forever
/// for workers that do not exist).
static POOL: RwLock<Option<(u32, Arc<rayon::ThreadPool>)>> = RwLock::new(None);

/// More threads than this is a mistake (and starting them could take minutes).
pub const MAX_THREADS: usize = 1024;

fn default_threads() -> usize {
    std::env::var("CONVCORE_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0 && n <= MAX_THREADS)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn build(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    let mut b = rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("convcore-{i}"));
    if let Some(cpus) = pinned_cpus(n) {
        b = b.start_handler(move |i| affinity::pin(cpus[i]));
    }
    b.build()
        .map(Arc::new)
        .map_err(|e| Error::Value(format!("cannot start a pool of {n} threads: {e}")))
}

/// The CPU each of `n` workers is pinned to, or None (no pinning): a pool of one worker
/// per CPU the process may run on (the default size) pins worker `i` to the `i`-th of
/// them, unless `CONVCORE_PIN_THREADS=0`. Left to itself, Linux often wakes a worker on
/// the CPU of the thread that woke it, and two workers then share one CPU while another
/// idles. Measured on this project's 2-core machine in benches/compare.py, alternating
/// with cv2.medianBlur: a 2048x2048 uint8 3x3 median took 0.75-0.97 ms with worker 1
/// running 0.06-0.07 ms of each call, 0.49-0.65 ms with the workers pinned (both busy
/// about as long). A pool of another size (set_num_threads, CONVCORE_NUM_THREADS) is
/// not pinned: several such pools would pile onto the same first CPUs.
fn pinned_cpus(n: usize) -> Option<Vec<usize>> {
    if n < 2 || std::env::var("CONVCORE_PIN_THREADS").is_ok_and(|v| v.trim() == "0") {
        return None;
    }
    let cpus = affinity::allowed()?;
    (cpus.len() == n).then_some(cpus)
}

#[cfg(target_os = "linux")]
mod affinity {
    /// Bytes of a `cpu_set_t` (1024 CPUs; a machine with more gets no pinning).
    const SET_BYTES: usize = 128;

    extern "C" {
        fn sched_getaffinity(pid: i32, size: usize, mask: *mut u8) -> i32;
        fn sched_setaffinity(pid: i32, size: usize, mask: *const u8) -> i32;
    }

    /// The CPUs the calling thread may run on, in increasing order.
    pub fn allowed() -> Option<Vec<usize>> {
        let mut m = [0u8; SET_BYTES];
        // SAFETY: `m` is a cpu_set_t-sized buffer, which the call fills; pid 0 is the
        // calling thread.
        if unsafe { sched_getaffinity(0, SET_BYTES, m.as_mut_ptr()) } != 0 {
            return None;
        }
        Some((0..SET_BYTES * 8).filter(|&c| (m[c / 8] >> (c % 8)) & 1 == 1).collect())
    }

    /// Pin the calling thread to `cpu` (a failure leaves it unpinned).
    pub fn pin(cpu: usize) {
        let mut m = [0u8; SET_BYTES];
        m[cpu / 8] |= 1 << (cpu % 8);
        // SAFETY: `m` is a valid cpu_set_t-sized mask; pid 0 is the calling thread.
        let _ = unsafe { sched_setaffinity(0, SET_BYTES, m.as_ptr()) };
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub fn allowed() -> Option<Vec<usize>> {
        None
    }

    pub fn pin(_cpu: usize) {}
}

/// The current pool, created on first use (and anew in a forked child).
pub fn pool() -> Result<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    if let Some((owner, p)) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if *owner == pid {
            return Ok(p.clone());
        }
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    let n = match guard.as_ref() {
        Some((owner, p)) if *owner == pid => return Ok(p.clone()),
        Some((_, p)) => p.current_num_threads(), // the parent's size
        None => default_threads(),
    };
    if let Some(inherited) = guard.take() {
        // A forked copy of the parent's pool: its threads do not exist here, so it must
        // not be dropped (that would signal them); it is left as it is.
        std::mem::forget(inherited);
    }
    let p = build(n)?;
    *guard = Some((pid, p.clone()));
    Ok(p)
}

/// Replace the pool with one of `n` threads (n >= 1).
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 || n > MAX_THREADS {
        return Err(Error::Value(format!("set_num_threads expects 1 <= n <= {MAX_THREADS}, got {n}")));
    }
    let p = build(n)?;
    let pid = std::process::id();
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, old)) = guard.take() {
        if owner != pid {
            std::mem::forget(old); // inherited through fork (see `pool`)
        }
    }
    *guard = Some((pid, p));
    Ok(())
}

pub fn get_num_threads() -> usize {
    pool().map(|p| p.current_num_threads()).unwrap_or(1)
}

/// Run `f` inside the crate's pool so that its rayon calls use it.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool()?.install(f))
}

#[cfg(test)]
mod tests {
    /// A pool of one worker per allowed CPU pins each to its own CPU; any other size
    /// pins none (on a machine of one CPU, nothing is pinned).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_pool_pins_one_worker_per_cpu() {
        let cpus = super::affinity::allowed().expect("sched_getaffinity");
        let n = cpus.len();
        let pool = super::build(n).unwrap();
        let mut seen: Vec<Vec<usize>> = pool.broadcast(|_| super::affinity::allowed().unwrap());
        if n >= 2 && std::env::var("CONVCORE_PIN_THREADS").map_or(true, |v| v.trim() != "0") {
            seen.sort();
            assert_eq!(seen, cpus.iter().map(|&c| vec![c]).collect::<Vec<_>>());
        } else {
            assert!(seen.iter().all(|s| *s == cpus));
        }
        if n >= 2 {
            let small = super::build(n - 1).unwrap();
            assert!(small.broadcast(|_| super::affinity::allowed().unwrap()).iter().all(|s| *s == cpus));
        }
    }
}
