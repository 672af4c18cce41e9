//! Runtime CPU feature detection and the instruction-set path the kernels take.
//!
//! Wheels are built for baseline x86-64, so hot loops are compiled again with AVX2+FMA
//! and with AVX-512 enabled, and one of them is picked at run time. The path is the
//! best the CPU has, unless lowered: by the environment variable `CONVCORE_SIMD`
//! (`portable`, `avx2`, `avx512`; read once, at the first kernel call) or by
//! [`set_level`] (the tests' hook, `convcore._core.set_simd_level`). A path the CPU
//! lacks is never taken: asking for it is an error from `set_level`, and the
//! environment variable is clamped to what the CPU has.
//!
//! The `gemm` crate behind the convolutions and dense layers detects the CPU itself;
//! its path is not lowered by this setting.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// An instruction-set path, from the most portable up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Baseline code (SSE2 on x86-64): what any CPU runs.
    Portable = 0,
    /// 256-bit AVX2 with FMA.
    Avx2 = 1,
    /// 512-bit AVX-512 (F, BW, DQ, VL) with FMA.
    Avx512 = 2,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" | "scalar" | "none" | "baseline" => Some(Level::Portable),
            "avx2" | "avx2_fma" | "avx2+fma" => Some(Level::Avx2),
            "avx512" | "avx-512" | "avx512f" => Some(Level::Avx512),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Portable,
            1 => Level::Avx2,
            _ => Level::Avx512,
        }
    }
}

/// The best path this CPU has (detected once).
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") && has!("fma") {
                Level::Avx512
            } else if has!("avx2") && has!("fma") {
                Level::Avx2
            } else {
                Level::Portable
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Level::Portable
        }
    })
}

const UNSET: u8 = u8::MAX;
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);

/// The path the kernels take now.
#[inline]
pub fn level() -> Level {
    let v = ACTIVE.load(Ordering::Relaxed);
    if v != UNSET {
        return Level::from_u8(v);
    }
    let best = detected();
    let want = std::env::var("CONVCORE_SIMD").ok().and_then(|s| Level::parse(&s)).unwrap_or(best);
    let l = want.min(best);
    // A racing set_level wins over the environment's default.
    let _ = ACTIVE.compare_exchange(UNSET, l as u8, Ordering::Relaxed, Ordering::Relaxed);
    Level::from_u8(ACTIVE.load(Ordering::Relaxed))
}

/// Every path this CPU can take, from the most portable up.
pub fn available() -> Vec<Level> {
    [Level::Portable, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| l <= detected())
        .collect()
}

/// Take path `l` from now on; returns the path before. A path the CPU lacks is refused.
pub fn set_level(l: Level) -> Result<Level, String> {
    if l > detected() {
        return Err(format!(
            "the SIMD path {:?} is not available on this CPU (it has: {})",
            l.name(),
            available().iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")
        ));
    }
    let before = level();
    ACTIVE.store(l as u8, Ordering::Relaxed);
    Ok(before)
}

/// The size in bytes of the largest cache of CPU 0 (Linux: sysfs, read once), or 32 MiB
/// where it cannot be read: what a kernel checks before it stores past the caches.
pub fn last_level_cache_bytes() -> usize {
    static BYTES: OnceLock<usize> = OnceLock::new();
    *BYTES.get_or_init(|| largest_cache().unwrap_or(32 << 20))
}

fn largest_cache() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("size")).ok())
        .filter_map(|t| parse_cache_size(t.trim()))
        .max()
}

/// sysfs's cache size: a number of bytes with an optional K / M / G suffix ("32768K").
fn parse_cache_size(t: &str) -> Option<usize> {
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(scale).filter(|&b| b > 0)
}

/// True when the AVX2+FMA path (or better) is taken.
#[inline]
pub fn has_avx2_fma() -> bool {
    level() >= Level::Avx2
}

/// True when the AVX-512 path is taken.
#[inline]
pub fn has_avx512() -> bool {
    level() >= Level::Avx512
}

/// `multiversion!(pub(crate) fn name => body<T: Element>(a: &[T], ...));` defines `name`,
/// which calls `body` (an `#[inline(always)]` function) compiled for the path taken: the
/// body is inlined into one wrapper per instruction set, so its loops are vectorised at
/// 512, 256 or 128 bits. Reliable where a closure is not (the compiler may decline to
/// inline a large closure into the wrapper).
#[macro_export]
macro_rules! multiversion {
    ($vis:vis fn $name:ident => $body:ident <$($g:ident : $bound:path),*> ($($a:ident : $t:ty),* $(,)?)) => {
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($g: $bound),*>($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide<$($g: $bound),*>($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn mid<$($g: $bound),*>($($a: $t),*) {
                    $body($($a),*)
                }
                match $crate::cpu::simd::level() {
                    // SAFETY: level() never exceeds what the CPU has.
                    $crate::cpu::simd::Level::Avx512 => return unsafe { wide($($a),*) },
                    $crate::cpu::simd::Level::Avx2 => return unsafe { mid($($a),*) },
                    $crate::cpu::simd::Level::Portable => {}
                }
            }
            $body($($a),*)
        }
    };
}

/// Runs `f` compiled for the path taken: `f` is inlined into a wrapper built with that
/// path's instruction set (AVX-512, AVX2 + FMA, or none), so the loops in `f` are
/// vectorised at that width. `f` must be a small closure over one chunk of work (called
/// once per chunk; never with rayon inside, whose tasks would run outside the wrapper).
#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: level() never exceeds what the CPU has (detected()).
            Level::Avx512 => return unsafe { with_avx512(f) },
            Level::Avx2 => return unsafe { with_avx2(f) },
            Level::Portable => {}
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn with_avx512<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("0K"), None);
        assert_eq!(parse_cache_size("12Q"), None);
        assert_eq!(parse_cache_size(""), None);
        assert!(last_level_cache_bytes() > 0);
    }

    use super::*;

    #[test]
    fn levels_are_ordered_and_clamped_to_the_cpu() {
        assert!(Level::Portable < Level::Avx2 && Level::Avx2 < Level::Avx512);
        assert_eq!(Level::parse("AVX512"), Some(Level::Avx512));
        assert_eq!(Level::parse("sse9"), None);
        assert!(available().contains(&Level::Portable));
        assert!(level() <= detected());
        if detected() < Level::Avx512 {
            assert!(set_level(Level::Avx512).is_err());
        }
    }
}
