//! Runtime CPU feature detection. Wheels are built for baseline x86-64, so hot loops
//! are compiled a second time with AVX2+FMA enabled and picked at run time.

use std::sync::OnceLock;

/// True when this CPU has AVX2 and FMA (x86-64 only).
pub fn has_avx2_fma() -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}
