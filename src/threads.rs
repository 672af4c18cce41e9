//! The rayon pool every kernel runs in. Rayon's global pool can be sized only once, so
//! the crate keeps its own, replaceable by `set_num_threads`.

use crate::error::{Error, Result};
use std::sync::{Arc, RwLock};

static POOL: RwLock<Option<Arc<rayon::ThreadPool>>> = RwLock::new(None);

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

/// The current pool, created on first use.
pub fn pool() -> Result<Arc<rayon::ThreadPool>> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(p.clone());
    }
    let mut guard = POOL.write().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(build(default_threads())?);
    }
    Ok(guard.as_ref().unwrap().clone())
}

/// Replace the pool with one of `n` threads (n >= 1).
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 || n > MAX_THREADS {
        return Err(Error::Value(format!("set_num_threads expects 1 <= n <= {MAX_THREADS}, got {n}")));
    }
    let p = build(n)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    Ok(())
}

pub fn get_num_threads() -> usize {
    pool().map(|p| p.current_num_threads()).unwrap_or(1)
}

/// Run `f` inside the crate's pool so that its rayon calls use it.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool()?.install(f))
}
