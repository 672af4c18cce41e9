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

#[cfg(test)]
mod tests {
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
