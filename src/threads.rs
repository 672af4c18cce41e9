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
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("convcore-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Value(format!("cannot start a pool of {n} threads: {e}")))
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
