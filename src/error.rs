//! The one error type of the crate. Each variant maps to one Python exception in the
//! bindings (ValueError, TypeError, MemoryError); messages name what was expected and
//! what came, so they can be shown to the user unchanged.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad shapes, modes or values: Python `ValueError`.
    Value(String),
    /// Unsupported element type: Python `TypeError`.
    Type(String),
    /// An allocation the machine cannot satisfy: Python `MemoryError`.
    Memory(String),
    /// A device (GPU) that is missing, lost or failed: Python `RuntimeError`.
    Device(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Value(m) | Error::Type(m) | Error::Memory(m) | Error::Device(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// `Err(Error::Value(format!(...)))` in one line.
#[macro_export]
macro_rules! value_err {
    ($($arg:tt)*) => { Err($crate::error::Error::Value(format!($($arg)*))) };
}

/// Number of elements of `shape`, or a MemoryError when the product overflows.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        Error::Memory(format!("an array of shape {shape:?} has more elements than this machine can address"))
    })
}

/// The MemoryError for a failed request of `n` elements of `T`.
fn alloc_error<T>(n: usize, what: &str) -> Error {
    Error::Memory(format!(
        "cannot allocate {what}: {n} elements of {} bytes ({:.1} GiB)",
        std::mem::size_of::<T>(),
        (n as f64) * (std::mem::size_of::<T>() as f64) / (1u64 << 30) as f64
    ))
}

/// Buffers from this size up ask for transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Ask the kernel to back a fresh, not yet touched buffer with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`, as numpy does for its arrays of 4 MiB and more). Large
/// outputs come from fresh mmap'd memory: with 4 KiB pages their first touch costs one
/// page fault per 4 KiB, which made a ReLU over 100 MB 2-3x slower than numpy's (measured:
/// 53 ms on two threads against numpy's 26 ms on one). A hint only: where the kernel
/// declines (THP off), nothing changes.
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if bytes < HUGE_PAGE_MIN_BYTES
            || !*ENABLED.get_or_init(|| std::env::var("CONVCORE_HUGE_PAGES").map_or(true, |v| v != "0"))
        {
            return;
        }
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
        }
        const MADV_HUGEPAGE: std::ffi::c_int = 14;
        const PAGE: usize = 4096;
        let start = (ptr as usize).div_ceil(PAGE) * PAGE;
        let end = (ptr as usize + bytes) / PAGE * PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside the allocation just made (rounded inward to
            // pages); MADV_HUGEPAGE changes no contents and no mapping, only how the
            // kernel backs it. The return value is ignored: it is a hint.
            unsafe {
                madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes, HUGE_PAGE_MIN_BYTES);
}

/// A vector of `n` copies of `fill`, allocated fallibly: a request the machine cannot
/// satisfy becomes `Error::Memory` instead of an abort.
pub fn try_filled<T: Clone>(n: usize, fill: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| alloc_error::<T>(n, what))?;
    advise_huge_pages(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>());
    v.resize(n, fill);
    Ok(v)
}

/// A zero-filled vector for `shape`, allocated fallibly.
pub fn try_zeros<T: crate::Element>(shape: &[usize], what: &str) -> Result<Vec<T>> {
    let n = checked_numel(shape)?;
    try_zeroed(n, what)
}

/// `n` zeros of a float type, allocated fallibly with `alloc_zeroed` so that large
/// buffers come as fresh zero pages from the OS (no single-threaded memset; the pages
/// are first touched by the worker threads that fill them).
pub fn try_zeroed<T: crate::Element>(n: usize, what: &str) -> Result<Vec<T>> {
    use std::alloc::{alloc_zeroed, Layout};
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let fail = || alloc_error::<T>(n, what);
    let layout = Layout::array::<T>(n).map_err(|_| fail())?;
    // SAFETY: layout has non-zero size; T is f32 or f64 (the only Element types), for
    // which the all-zero bit pattern is 0.0, so the memory is a valid [T; n]. The Vec
    // takes ownership with the same layout it will free with.
    unsafe {
        let p = alloc_zeroed(layout) as *mut T;
        if p.is_null() {
            return Err(fail());
        }
        advise_huge_pages(p as *mut u8, layout.size());
        Ok(Vec::from_raw_parts(p, n, n))
    }
}

/// `n` uninitialised slots, allocated fallibly. The caller writes every slot and then
/// calls [`assume_init_vec`].
pub fn try_uninit<T>(n: usize, what: &str) -> Result<Vec<std::mem::MaybeUninit<T>>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| alloc_error::<T>(n, what))?;
    advise_huge_pages(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>());
    // SAFETY: capacity >= n, and MaybeUninit needs no initialisation.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Turn a fully written `Vec<MaybeUninit<T>>` into `Vec<T>` without copying.
///
/// # Safety
/// Every element must have been initialised.
pub unsafe fn assume_init_vec<T>(v: Vec<std::mem::MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity())
}
