//! The vector kernels of the box medians and the box minimum / maximum: explicit
//! vectors of rank keys (one register of `L` integer keys, min / max as one
//! instruction), so that the 9 or 25 wires of a
//! window's network live in registers for a whole run of outputs (the compiler's own
//! vectorisation of a network over arrays of lanes keeps the wires in memory). The
//! median kernels read lines of keys (the box median makes each input row into one
//! once) and write values: a float's key is undone in the register it is stored from;
//! the min / max folds read the values where they lie (the input's rows) and write the
//! output in place.
//!
//! A module of `rank` (it uses the median networks `rank_networks.rs` generates).

use super::Rank;
use crate::cpu::simd::Level;
use std::mem::MaybeUninit;

/// A vector of `L` lanes and the two operations a comparator needs. The medians' vectors
/// hold keys (`T` is the key type: they load keys and store the values' bits), the
/// folds' vectors values (`T` is the value type).
pub(crate) trait KeyVec: Copy {
    type T: Copy;
    const L: usize;
    /// `L` lanes read from `p`.
    ///
    /// # Safety
    /// `p` must be valid for reading `L` values (no alignment needed), and the CPU must
    /// have the vector's instruction set.
    unsafe fn load(p: *const Self::T) -> Self;
    /// The `L` lanes stored (a median vector's keys as their values' bits).
    ///
    /// # Safety
    /// `p` must be valid for writing `L` values; the instruction set as for `load`.
    unsafe fn store(self, p: *mut Self::T);
    /// [`store`](KeyVec::store) past the caches (a non-temporal store: no read of the
    /// line it writes; the portable vectors store as `store` does).
    ///
    /// # Safety
    /// As for `store`, and `p` aligned to the vector's size; the stores of a run must be
    /// followed by [`fence`] before the memory is touched again.
    #[inline(always)]
    unsafe fn stream(self, p: *mut Self::T) {
        self.store(p)
    }
    /// # Safety
    /// The instruction set as for `load`.
    unsafe fn lo(self, o: Self) -> Self;
    /// # Safety
    /// The instruction set as for `load`.
    unsafe fn hi(self, o: Self) -> Self;
}

/// One key of a value `T`: the portable path of the medians. It loads keys and stores
/// the value's bits (through a pointer to keys: a key has its value's size).
#[derive(Clone, Copy)]
pub(crate) struct One<T: Rank>(T::Key);

impl<T: Rank> KeyVec for One<T> {
    type T = T::Key;
    const L: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const T::Key) -> Self {
        One(*p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T::Key) {
        *(p as *mut T) = T::from_key(self.0)
    }
    #[inline(always)]
    unsafe fn lo(self, o: Self) -> Self {
        One(self.0.min(o.0))
    }
    #[inline(always)]
    unsafe fn hi(self, o: Self) -> Self {
        One(self.0.max(o.0))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::KeyVec;
    use std::arch::x86_64::*;

    /// `$name`: `$l` keys `$t` in a `$reg`, loaded as they are and stored as the bits
    /// of their values (`$key` undoes a float's key; `same` for integers).
    macro_rules! key_vec {
        ($name:ident, $t:ty, $reg:ty, $l:expr, $ld:ident, $st:ident, $nt:ident, $min:path, $max:path, $key:path) => {
            #[derive(Clone, Copy)]
            pub(crate) struct $name($reg);
            impl KeyVec for $name {
                type T = $t;
                const L: usize = $l;
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    $name($ld(p as *const _))
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    $st(p as *mut _, $key(self.0))
                }
                #[inline(always)]
                unsafe fn stream(self, p: *mut $t) {
                    $nt(p as *mut _, $key(self.0))
                }
                #[inline(always)]
                unsafe fn lo(self, o: Self) -> Self {
                    $name($min(self.0, o.0))
                }
                #[inline(always)]
                unsafe fn hi(self, o: Self) -> Self {
                    $name($max(self.0, o.0))
                }
            }
        };
    }

    #[inline(always)]
    unsafe fn same<R>(v: R) -> R {
        v
    }
    // A float's key (as `Rank::key`): its bits, the magnitude bits flipped when the
    // sign bit is set; the map is an involution (the sign bit it reads is unchanged),
    // so the same map turns a key back into the value's bits.
    #[inline(always)]
    unsafe fn zkey32(v: __m512i) -> __m512i {
        _mm512_xor_si512(v, _mm512_srli_epi32::<1>(_mm512_srai_epi32::<31>(v)))
    }
    #[inline(always)]
    unsafe fn zkey64(v: __m512i) -> __m512i {
        _mm512_xor_si512(v, _mm512_srli_epi64::<1>(_mm512_srai_epi64::<63>(v)))
    }
    #[inline(always)]
    unsafe fn ykey32(v: __m256i) -> __m256i {
        _mm256_xor_si256(v, _mm256_srli_epi32::<1>(_mm256_srai_epi32::<31>(v)))
    }
    #[inline(always)]
    unsafe fn ykey64(v: __m256i) -> __m256i {
        let sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
        _mm256_xor_si256(v, _mm256_srli_epi64::<1>(sign))
    }

    key_vec!(Zu8, u8, __m512i, 64, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epu8, _mm512_max_epu8, same);
    key_vec!(Zi8, i8, __m512i, 64, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi8, _mm512_max_epi8, same);
    key_vec!(Zu16, u16, __m512i, 32, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epu16, _mm512_max_epu16, same);
    key_vec!(Zi16, i16, __m512i, 32, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi16, _mm512_max_epi16, same);
    key_vec!(Zu32, u32, __m512i, 16, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epu32, _mm512_max_epu32, same);
    key_vec!(Zi32, i32, __m512i, 16, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi32, _mm512_max_epi32, same);
    key_vec!(Zu64, u64, __m512i, 8, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epu64, _mm512_max_epu64, same);
    key_vec!(Zi64, i64, __m512i, 8, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi64, _mm512_max_epi64, same);
    key_vec!(Zf32, i32, __m512i, 16, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi32, _mm512_max_epi32, zkey32);
    key_vec!(Zf64, i64, __m512i, 8, _mm512_loadu_si512, _mm512_storeu_si512, _mm512_stream_si512, _mm512_min_epi64, _mm512_max_epi64, zkey64);

    key_vec!(Yu8, u8, __m256i, 32, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epu8, _mm256_max_epu8, same);
    key_vec!(Yi8, i8, __m256i, 32, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epi8, _mm256_max_epi8, same);
    key_vec!(Yu16, u16, __m256i, 16, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epu16, _mm256_max_epu16, same);
    key_vec!(Yi16, i16, __m256i, 16, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epi16, _mm256_max_epi16, same);
    key_vec!(Yu32, u32, __m256i, 8, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epu32, _mm256_max_epu32, same);
    key_vec!(Yi32, i32, __m256i, 8, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epi32, _mm256_max_epi32, same);
    key_vec!(Yu64, u64, __m256i, 4, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, min_epu64, max_epu64, same);
    key_vec!(Yi64, i64, __m256i, 4, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, min_epi64, max_epi64, same);
    key_vec!(Yf32, i32, __m256i, 8, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, _mm256_min_epi32, _mm256_max_epi32, ykey32);
    key_vec!(Yf64, i64, __m256i, 4, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_stream_si256, min_epi64, max_epi64, ykey64);

    // The box minimum / maximum of floats compare values, as the scalar folds do:
    // lo(a, b) = b < a ? b : a, hi(a, b) = b < a ? a : b (a NaN in `a` stays, one in
    // `b` is skipped), which are min_p*(b, a) and max_p*(a, b).
    macro_rules! float_vec {
        ($name:ident, $t:ty, $reg:ty, $l:expr, $ld:ident, $st:ident, $nt:ident, $min:ident, $max:ident) => {
            #[derive(Clone, Copy)]
            pub(crate) struct $name($reg);
            impl KeyVec for $name {
                type T = $t;
                const L: usize = $l;
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    $name($ld(p))
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    $st(p, self.0)
                }
                #[inline(always)]
                unsafe fn stream(self, p: *mut $t) {
                    $nt(p, self.0)
                }
                #[inline(always)]
                unsafe fn lo(self, o: Self) -> Self {
                    $name($min(o.0, self.0))
                }
                #[inline(always)]
                unsafe fn hi(self, o: Self) -> Self {
                    $name($max(self.0, o.0))
                }
            }
        };
    }
    float_vec!(Zf32m, f32, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_stream_ps, _mm512_min_ps, _mm512_max_ps);
    float_vec!(Zf64m, f64, __m512d, 8, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_stream_pd, _mm512_min_pd, _mm512_max_pd);
    float_vec!(Yf32m, f32, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_stream_ps, _mm256_min_ps, _mm256_max_ps);
    float_vec!(Yf64m, f64, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_stream_pd, _mm256_min_pd, _mm256_max_pd);

    // AVX2 has no 64-bit min / max: a comparison and a blend.
    #[inline(always)]
    unsafe fn min_epi64(a: __m256i, b: __m256i) -> __m256i {
        _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b))
    }
    #[inline(always)]
    unsafe fn max_epi64(a: __m256i, b: __m256i) -> __m256i {
        _mm256_blendv_epi8(b, a, _mm256_cmpgt_epi64(a, b))
    }
    #[inline(always)]
    unsafe fn gt_epu64(a: __m256i, b: __m256i) -> __m256i {
        let bias = _mm256_set1_epi64x(i64::MIN);
        _mm256_cmpgt_epi64(_mm256_xor_si256(a, bias), _mm256_xor_si256(b, bias))
    }
    #[inline(always)]
    unsafe fn min_epu64(a: __m256i, b: __m256i) -> __m256i {
        _mm256_blendv_epi8(a, b, gt_epu64(a, b))
    }
    #[inline(always)]
    unsafe fn max_epu64(a: __m256i, b: __m256i) -> __m256i {
        _mm256_blendv_epi8(b, a, gt_epu64(a, b))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn fold_avx512<V: KeyVec, const MIN: bool>(rows: &[*const V::T], n: usize, out: *mut V::T,
                                                                 stream: bool, ahead: *const u8) {
        super::fold::<V, MIN>(rows, n, out, stream, ahead)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fold_avx2<V: KeyVec, const MIN: bool>(rows: &[*const V::T], n: usize, out: *mut V::T,
                                                               stream: bool, ahead: *const u8) {
        super::fold::<V, MIN>(rows, n, out, stream, ahead)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn fold_pair_avx512<V: KeyVec, const MIN: bool>(rows: &[*const V::T], n: usize,
                                                                      out: [*mut V::T; 2]) {
        super::fold_pair::<V, MIN>(rows, n, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fold_pair_avx2<V: KeyVec, const MIN: bool>(rows: &[*const V::T], n: usize,
                                                                    out: [*mut V::T; 2]) {
        super::fold_pair::<V, MIN>(rows, n, out)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn row_avx512<V: KeyVec>(k: usize, lines: &[*const V::T], n: usize, out: *mut V::T,
                                               ahead: *const u8) {
        super::row::<V>(k, lines, n, out, ahead)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn row_pair_avx512<V: KeyVec>(p: [*const V::T; 4], n: usize, out: [*mut V::T; 2],
                                                    ahead: [*const u8; 2]) {
        super::row_pair::<V>(p, n, out, ahead)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row_pair_avx2<V: KeyVec>(p: [*const V::T; 4], n: usize, out: [*mut V::T; 2],
                                                  ahead: [*const u8; 2]) {
        super::row_pair::<V>(p, n, out, ahead)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn rows3_avx512<V: KeyVec>(p: &[*const V::T], n: usize, out: &[*mut V::T]) {
        super::rows3::<V>(p, n, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows3_avx2<V: KeyVec>(p: &[*const V::T], n: usize, out: &[*mut V::T]) {
        super::rows3::<V>(p, n, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row_avx2<V: KeyVec>(k: usize, lines: &[*const V::T], n: usize, out: *mut V::T,
                                             ahead: *const u8) {
        super::row::<V>(k, lines, n, out, ahead)
    }
}

/// The values of `T` one vector holds on the path `level` (every vector type here
/// fills its register: 512 or 256 bits; one value on the portable path): the shortest
/// run [`MedianValue::median_line`] and [`FoldValue::fold`] take.
pub fn lanes<T>(level: Level) -> usize {
    match level.min(crate::cpu::simd::detected()) {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => 64 / std::mem::size_of::<T>(),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => 32 / std::mem::size_of::<T>(),
        _ => 1,
    }
}

/// A value type of the rank filters: its key (see [`Rank`]) and the box medians of one
/// run of outputs.
pub trait MedianValue: Copy + Sized {
    /// An integer with the values' order (see [`Rank`]).
    type Key: Copy + Ord + Send + Sync + 'static;
    /// `out[x]` = the value of the median key of the `k` x `k` window `lines[i][x + d]`
    /// (i, d < k), for `k` 3 or 5, on the vector path `level` (lowered to what the CPU
    /// has); `out` at least [`lanes`] values, each of the `k` lines of keys at least
    /// `out.len() + k - 1`. The memory from `ahead` on is fetched into the cache as the
    /// outputs are computed, one vector's bytes per vector of outputs (any address: a
    /// prefetch never faults).
    fn median_line(level: Level, k: usize, lines: &[&[Self::Key]], out: &mut [MaybeUninit<Self>], ahead: *const u8);
    /// Two rows of 3x3 medians from four lines of keys: `out[0][x]` that of the window of
    /// lines 0-2, `out[1][x]` that of lines 1-3 (as `median_line` with `k` 3, the
    /// shared lines read and ordered once); both outputs of one length, at least
    /// [`lanes`]; `ahead`: two runs fetched as `median_line` fetches one.
    fn median_pair(level: Level, lines: &[&[Self::Key]], out: [&mut [MaybeUninit<Self>]; 2], ahead: [*const u8; 2]);
    /// The 3x3 medians of `lines.len() - 2` output rows (at most [`ROWS3_MAX`]): output
    /// row `i`, `out[i * stride + offset..][..n]`, from the windows of lines `i`, `i + 1`,
    /// `i + 2` (each at least `n + 2` keys; `n` at least [`lanes`], on a vector path).
    fn median3_rows(level: Level, lines: &[&[Self::Key]], n: usize, out: &mut [MaybeUninit<Self>], stride: usize,
                    offset: usize);
}

/// The most output rows one [`MedianValue::median3_rows`] call computes.
pub const ROWS3_MAX: usize = 32;

macro_rules! median_value {
    ($($t:ty, $key:ty, $z:ident, $y:ident);*) => {$(
        // every vector type fills its register, as `lanes` counts
        #[cfg(target_arch = "x86_64")]
        const _: () = assert!(<x86::$z as KeyVec>::L * std::mem::size_of::<$t>() == 64
            && <x86::$y as KeyVec>::L * std::mem::size_of::<$t>() == 32
            && std::mem::size_of::<$t>() == std::mem::size_of::<$key>());
        impl MedianValue for $t {
            type Key = $key;
            fn median_line(level: Level, k: usize, lines: &[&[$key]], out: &mut [MaybeUninit<$t>],
                           ahead: *const u8) {
                // (a path the CPU lacks is never entered, whatever the caller asks)
                let level = level.min(crate::cpu::simd::detected());
                let n = out.len();
                assert!((k == 3 || k == 5) && lines.len() == k && n >= lanes::<$t>(level));
                assert!(lines.iter().all(|l| l.len() >= n + k - 1));
                let mut p = [std::ptr::null::<$key>(); 5];
                for (d, l) in p.iter_mut().zip(lines) {
                    *d = l.as_ptr();
                }
                // the kernels store the values' bits through a pointer to keys (the same
                // size, asserted above)
                let o = out.as_mut_ptr() as *mut $key;
                match level {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the level is at most what the CPU has (clamped above);
                    // the sizes were checked (every output written, MaybeUninit<T> has
                    // T's layout).
                    Level::Avx512 => unsafe { x86::row_avx512::<x86::$z>(k, &p[..k], n, o, ahead) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above.
                    Level::Avx2 => unsafe { x86::row_avx2::<x86::$y>(k, &p[..k], n, o, ahead) },
                    // SAFETY: the sizes were checked.
                    _ => unsafe { row::<One<$t>>(k, &p[..k], n, o, ahead) },
                }
            }

            fn median_pair(level: Level, lines: &[&[$key]], out: [&mut [MaybeUninit<$t>]; 2],
                           ahead: [*const u8; 2]) {
                let level = level.min(crate::cpu::simd::detected());
                let n = out[0].len();
                assert!(lines.len() == 4 && out[1].len() == n && n >= lanes::<$t>(level));
                assert!(lines.iter().all(|l| l.len() >= n + 2));
                let p = [lines[0].as_ptr(), lines[1].as_ptr(), lines[2].as_ptr(), lines[3].as_ptr()];
                let [o0, o1] = out;
                let o = [o0.as_mut_ptr() as *mut $key, o1.as_mut_ptr() as *mut $key];
                match level {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as in median_line (the sizes checked above).
                    Level::Avx512 => unsafe { x86::row_pair_avx512::<x86::$z>(p, n, o, ahead) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above.
                    Level::Avx2 => unsafe { x86::row_pair_avx2::<x86::$y>(p, n, o, ahead) },
                    // SAFETY: the sizes were checked.
                    _ => unsafe { row_pair::<One<$t>>(p, n, o, ahead) },
                }
            }

            fn median3_rows(level: Level, lines: &[&[$key]], n: usize, out: &mut [MaybeUninit<$t>], stride: usize,
                            offset: usize) {
                let level = level.min(crate::cpu::simd::detected());
                assert!(lines.len() >= 3 && lines.len() <= ROWS3_MAX + 2 && n >= lanes::<$t>(level));
                let m = lines.len() - 2;
                assert!(offset + n <= stride && out.len() >= (m - 1) * stride + offset + n);
                assert!(lines.iter().all(|l| l.len() >= n + 2));
                let mut p = [std::ptr::null::<$key>(); ROWS3_MAX + 2];
                for (d, l) in p.iter_mut().zip(lines) {
                    *d = l.as_ptr();
                }
                let mut o = [std::ptr::null_mut::<$key>(); ROWS3_MAX];
                for (i, d) in o[..m].iter_mut().enumerate() {
                    // (in bounds: asserted above)
                    *d = out[i * stride + offset..].as_mut_ptr() as *mut $key;
                }
                let (p, o) = (&p[..m + 2], &o[..m]);
                match level {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as in median_line (the sizes checked above).
                    Level::Avx512 => unsafe { x86::rows3_avx512::<x86::$z>(p, n, o) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above.
                    Level::Avx2 => unsafe { x86::rows3_avx2::<x86::$y>(p, n, o) },
                    // SAFETY: the sizes were checked.
                    _ => unsafe { rows3::<One<$t>>(p, n, o) },
                }
            }
        }
    )*};
}
median_value!(u8, u8, Zu8, Yu8; i8, i8, Zi8, Yi8; u16, u16, Zu16, Yu16; i16, i16, Zi16, Yi16;
              u32, u32, Zu32, Yu32; i32, i32, Zi32, Yi32; u64, u64, Zu64, Yu64; i64, i64, Zi64, Yi64;
              f32, i32, Zf32, Yf32; f64, i64, Zf64, Yf64);

/// A value type of the rank filters: the box minimum / maximum, folded in registers.
pub trait FoldValue: Copy + Sized {
    /// `out[x]` = the minimum (`min`) or maximum of `srcs[i][x + i * step]` over the
    /// sources `i` (rows, `step` 0, or shifts of one line, `step` 1), compared as
    /// `rank`'s scalar folds compare (`b < a`), on the vector path `level` (lowered to
    /// what the CPU has); `out` at least [`lanes`] values, each source at least
    /// `out.len() + i * step`.
    /// `stream`: the output's aligned vectors are stored past the caches
    /// ([`KeyVec::stream`]; for an output larger than the caches, whose lines would only
    /// be read in to be overwritten).
    /// `ahead`: values the caller reads next (the input row the next output row reads
    /// first), fetched into the cache a line per output vector while this fold runs, so
    /// that memory keeps delivering while the fold works from the cache; empty: the
    /// newest source is fetched a little ahead of the fold instead.
    fn fold(level: Level, min: bool, srcs: &[&[Self]], step: usize, out: &mut [MaybeUninit<Self>], stream: bool,
            ahead: &[Self]);

    /// The folds of two windows of rows that share all but their ends (`step` 0):
    /// `outs[0]` = the fold of `rows[..k]`, `outs[1]` = the fold of `rows[1..]` (`k + 1`
    /// rows, `k >= 2`), the `k - 1` shared rows folded once; the same values, bit for
    /// bit, as the two folds in the rows' order (the folds' comparisons keep the earlier
    /// row of a tie for the minimum, the later for the maximum, and a regrouping that
    /// keeps the rows' order keeps that choice). Each output at least [`lanes`] values,
    /// each row at least as long as the outputs.
    fn fold_pair(level: Level, min: bool, rows: &[&[Self]], outs: [&mut [MaybeUninit<Self>]; 2]);
}

macro_rules! fold_value {
    ($($t:ty, $z:ident, $y:ident);*) => {$(
        // every vector type fills its register, as `lanes` counts
        #[cfg(target_arch = "x86_64")]
        const _: () = assert!(<x86::$z as KeyVec>::L * std::mem::size_of::<$t>() == 64
            && <x86::$y as KeyVec>::L * std::mem::size_of::<$t>() == 32);
        impl FoldValue for $t {
            fn fold(level: Level, min: bool, srcs: &[&[$t]], step: usize, out: &mut [MaybeUninit<$t>],
                    stream: bool, ahead: &[$t]) {
                // (a path the CPU lacks is never entered, whatever the caller asks)
                let level = level.min(crate::cpu::simd::detected());
                let n = out.len();
                assert!(!srcs.is_empty() && n >= lanes::<$t>(level));
                assert!(srcs.iter().enumerate().all(|(i, l)| l.len() >= n + i * step));
                let mut few = [std::ptr::null::<$t>(); 16];
                let many: Vec<*const $t>;
                let p: &[*const $t] = if srcs.len() <= few.len() {
                    for (i, (d, l)) in few.iter_mut().zip(srcs).enumerate() {
                        *d = l[i * step..].as_ptr();
                    }
                    &few[..srcs.len()]
                } else {
                    many = srcs.iter().enumerate().map(|(i, l)| l[i * step..].as_ptr()).collect();
                    &many
                };
                let o = out.as_mut_ptr() as *mut $t;
                let a = if ahead.is_empty() { std::ptr::null() } else { ahead.as_ptr() as *const u8 };
                // SAFETY (all arms): the level is at most what the CPU has (clamped
                // above); the sizes were checked (every output written, MaybeUninit<T>
                // has T's layout; a prefetch reads nothing and never faults).
                unsafe {
                    match (level, min) {
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx512, true) => x86::fold_avx512::<x86::$z, true>(p, n, o, stream, a),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx512, false) => x86::fold_avx512::<x86::$z, false>(p, n, o, stream, a),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx2, true) => x86::fold_avx2::<x86::$y, true>(p, n, o, stream, a),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx2, false) => x86::fold_avx2::<x86::$y, false>(p, n, o, stream, a),
                        (_, true) => fold::<Scalar<$t>, true>(p, n, o, stream, a),
                        (_, false) => fold::<Scalar<$t>, false>(p, n, o, stream, a),
                    }
                }
            }

            fn fold_pair(level: Level, min: bool, rows: &[&[$t]], outs: [&mut [MaybeUninit<$t>]; 2]) {
                let level = level.min(crate::cpu::simd::detected());
                let n = outs[0].len();
                assert!(rows.len() >= 3 && outs[1].len() == n && n >= lanes::<$t>(level));
                assert!(rows.iter().all(|l| l.len() >= n));
                let mut few = [std::ptr::null::<$t>(); 17];
                let many: Vec<*const $t>;
                let p: &[*const $t] = if rows.len() <= few.len() {
                    for (d, l) in few.iter_mut().zip(rows) {
                        *d = l.as_ptr();
                    }
                    &few[..rows.len()]
                } else {
                    many = rows.iter().map(|l| l.as_ptr()).collect();
                    &many
                };
                let [o0, o1] = outs;
                let o = [o0.as_mut_ptr() as *mut $t, o1.as_mut_ptr() as *mut $t];
                // SAFETY (all arms): the level is at most what the CPU has (clamped
                // above); the sizes were checked (every output written, MaybeUninit<T>
                // has T's layout; two distinct &mut slices do not overlap).
                unsafe {
                    match (level, min) {
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx512, true) => x86::fold_pair_avx512::<x86::$z, true>(p, n, o),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx512, false) => x86::fold_pair_avx512::<x86::$z, false>(p, n, o),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx2, true) => x86::fold_pair_avx2::<x86::$y, true>(p, n, o),
                        #[cfg(target_arch = "x86_64")]
                        (Level::Avx2, false) => x86::fold_pair_avx2::<x86::$y, false>(p, n, o),
                        (_, true) => fold_pair::<Scalar<$t>, true>(p, n, o),
                        (_, false) => fold_pair::<Scalar<$t>, false>(p, n, o),
                    }
                }
            }
        }
    )*};
}
fold_value!(u8, Zu8, Yu8; i8, Zi8, Yi8; u16, Zu16, Yu16; i16, Zi16, Yi16; u32, Zu32, Yu32; i32, Zi32, Yi32;
            u64, Zu64, Yu64; i64, Zi64, Yi64; f32, Zf32m, Yf32m; f64, Zf64m, Yf64m);

/// One value compared as itself (`b < a`): the portable path of [`fold`].
#[derive(Clone, Copy)]
pub(crate) struct Scalar<T>(T);

impl<T: Copy + PartialOrd> KeyVec for Scalar<T> {
    type T = T;
    const L: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        Scalar(*p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        *p = self.0
    }
    #[inline(always)]
    unsafe fn lo(self, o: Self) -> Self {
        if o.0 < self.0 {
            o
        } else {
            self
        }
    }
    #[inline(always)]
    unsafe fn hi(self, o: Self) -> Self {
        if o.0 < self.0 {
            self
        } else {
            o
        }
    }
}

/// How far ahead (in values) the newest input row of a fold is prefetched: the rows a
/// task walks down are read first by their bottom row, from memory, and the hardware's
/// own prefetch lags there (measured on 2048x2048 box medians when they read the input
/// rows in place, alternating runs: 3x3 5-15 % faster with it).
const PREFETCH: usize = 512;

/// The fold of one run of `n` outputs over the sources `p` (see [`FoldValue::fold`];
/// each pointer already at its first value), a line of `ahead` prefetched per output
/// vector (null: the last source, `PREFETCH` values ahead);
/// `stream`: the output's aligned vectors stored past the caches, its two ends as usual
/// (first, so that no store follows a streamed one before the fence that ends the run).
///
/// # Safety
/// The CPU has `V`'s instruction set; `n >= V::L`, each of `p` valid for reading `n`
/// values, `out` for writing `n`.
#[inline(always)]
unsafe fn fold<V: KeyVec, const MIN: bool>(p: &[*const V::T], n: usize, out: *mut V::T, stream: bool,
                                           ahead: *const u8) {
    let size = std::mem::size_of::<V::T>();
    let fetch = if ahead.is_null() { p[p.len() - 1].wrapping_add(PREFETCH) as *const u8 } else { ahead };
    let at = |s: usize| {
        prefetch::<V>(fetch.wrapping_add(s * size));
        let mut acc = V::load(p[0].add(s));
        for q in &p[1..] {
            let v = V::load(q.add(s));
            acc = if MIN { acc.lo(v) } else { acc.hi(v) };
        }
        acc
    };
    if stream && V::L > 1 && n >= 2 * V::L {
        // the ends the aligned vectors leave stored as usual (the unaligned head, the
        // tail), then every aligned vector past the caches, then the fence the stores need
        let align = V::L * size;
        let head = (align - (out as usize) % align) % align / size;
        if head > 0 {
            at(0).store(out);
        }
        if (n - head) % V::L != 0 {
            at(n - V::L).store(out.add(n - V::L));
        }
        let mut s = head;
        while s + V::L <= n {
            at(s).stream(out.add(s));
            s += V::L;
        }
        fence();
        return;
    }
    let mut x = 0;
    loop {
        let s = x.min(n - V::L);
        at(s).store(out.add(s));
        x += V::L;
        if x >= n {
            break;
        }
    }
}

/// The two folds of [`FoldValue::fold_pair`] over the rows `p` (`k + 1 >= 3`, each
/// pointer at its first value), `n` outputs each, `V::L` a step (the last step moved
/// back to end at the outputs' end); the two newest rows, which no earlier pair read,
/// prefetched ahead.
///
/// # Safety
/// The CPU has `V`'s instruction set; `n >= V::L`, each of `p` valid for reading `n`
/// values, each of `out` for writing `n`, the two not overlapping.
#[inline(always)]
unsafe fn fold_pair<V: KeyVec, const MIN: bool>(p: &[*const V::T], n: usize, out: [*mut V::T; 2]) {
    let k = p.len() - 1;
    let (first, shared, last) = (p[0], &p[1..k], p[k]);
    let op = |a: V, b: V| if MIN { a.lo(b) } else { a.hi(b) };
    let mut x = 0;
    loop {
        let s = x.min(n - V::L);
        prefetch::<V>(last.wrapping_add(s + PREFETCH) as *const u8);
        prefetch::<V>(shared[shared.len() - 1].wrapping_add(s + PREFETCH) as *const u8);
        // the shared rows in their order, then the first row before them and the last
        // after them
        let mut acc = V::load(shared[0].add(s));
        for q in &shared[1..] {
            acc = op(acc, V::load(q.add(s)));
        }
        op(V::load(first.add(s)), acc).store(out[0].add(s));
        op(acc, V::load(last.add(s))).store(out[1].add(s));
        x += V::L;
        if x >= n {
            break;
        }
    }
}

/// Orders the non-temporal stores ([`KeyVec::stream`]) made before it before every
/// later access to memory.
#[inline(always)]
fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence is part of SSE, which every x86_64 CPU has.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}

/// The medians of one run of `n` outputs (see [`MedianValue::median_line`]), `V::L` outputs per step;
/// the last step is moved back to end at the line's end (it recomputes a few outputs).
/// 3x3: the window's three columns sorted, then the median of {the largest of their
/// minima, the median of their medians, the smallest of their maxima} (an identity of
/// the median of nine); 5x5: the 25 shifted loads through the median-of-25
/// network.
///
/// # Safety
/// The CPU has `V`'s instruction set; `n >= V::L`, `lines` are `k` pointers each valid
/// for reading `n + k - 1` values, `out` is valid for writing `n`.
/// `ahead` (see [`MedianValue::median_line`]): the box median passes the input row it
/// will read next, so that it arrives while this row is computed (a prefetch per
/// vector, spread over the row's work: measured faster than fetching the row in one
/// burst, whose prefetches stall on the misses in flight).
#[inline(always)]
unsafe fn row<V: KeyVec>(k: usize, lines: &[*const V::T], n: usize, out: *mut V::T, ahead: *const u8) {
    let o = out;
    let mut x = 0;
    let size = std::mem::size_of::<V::T>();
    if k == 3 {
        let p = [lines[0], lines[1], lines[2]];
        loop {
            let s = x.min(n - V::L);
            prefetch::<V>(ahead.wrapping_add(s * size));
            median9_at::<V>(p, s).store(o.add(s));
            x += V::L;
            if x >= n {
                break;
            }
        }
    } else {
        let p = [lines[0], lines[1], lines[2], lines[3], lines[4]];
        loop {
            let s = x.min(n - V::L);
            prefetch::<V>(ahead.wrapping_add(s * size));
            median25_at::<V>(p, s).store(o.add(s));
            x += V::L;
            if x >= n {
                break;
            }
        }
    }
}

/// Two output rows of the 3x3 median (see [`MedianValue::median_pair`]): the windows of
/// lines 0-2 into `out[0]`, of lines 1-3 into `out[1]`, each column's pair from lines 1
/// and 2 ordered once for both.
#[inline(always)]
unsafe fn row_pair<V: KeyVec>(p: [*const V::T; 4], n: usize, out: [*mut V::T; 2], ahead: [*const u8; 2]) {
    let mut x = 0;
    let size = std::mem::size_of::<V::T>();
    loop {
        let s = x.min(n - V::L);
        prefetch::<V>(ahead[0].wrapping_add(s * size));
        prefetch::<V>(ahead[1].wrapping_add(s * size));
        let (c0, c1, c2) = (pair_at::<V>(p, s), pair_at::<V>(p, s + 1), pair_at::<V>(p, s + 2));
        let column = |(l, h): (V, V), x: V| (x.lo(l), l.hi(x.lo(h)), x.hi(h));
        median_of_columns(column(c0, V::load(p[0].add(s))), column(c1, V::load(p[0].add(s + 1))),
                          column(c2, V::load(p[0].add(s + 2))))
        .store(out[0].add(s));
        median_of_columns(column(c0, V::load(p[3].add(s))), column(c1, V::load(p[3].add(s + 1))),
                          column(c2, V::load(p[3].add(s + 2))))
        .store(out[1].add(s));
        x += V::L;
        if x >= n {
            break;
        }
    }
}

/// The 3x3 medians of output rows `i` (`out[i]`, `n` outputs) from lines `i`, `i + 1`,
/// `i + 2` (`p`, see [`MedianValue::median3_rows`]), a strip of `V::L` columns at a
/// time down [`ROWS3_STRIP`] rows: each line's three shifted loads are sorted once a
/// strip and serve the three output rows that read the line (the median of nine is
/// the median of {the largest of the rows' minima, the median of their medians, the
/// smallest of their maxima}, as for columns), about 20 minima / maxima a vector of
/// outputs where [`row_pair`], sorting each window's columns, costs 27.
///
/// # Safety
/// The CPU has `V`'s instruction set; `n >= V::L`; `p` has `out.len() + 2` pointers,
/// each valid for reading `n + 2` values; each of `out` is valid for writing `n`.
#[inline(always)]
unsafe fn rows3<V: KeyVec>(p: &[*const V::T], n: usize, out: &[*mut V::T]) {
    // strips of ROWS3_STRIP rows: the lines of a taller strip, a row's length apart (a
    // power of two, often), fall into too few sets of the cache (measured on 2048x2048
    // uint8, 2 threads: 32 rows a strip 1.09x the speed of `row_pair`, 8 rows 1.2-1.3x,
    // 4 and 16 a little slower than 8)
    for b in (0..out.len()).step_by(ROWS3_STRIP) {
        let e = (b + ROWS3_STRIP).min(out.len());
        rows3_strip::<V>(&p[b..e + 2], n, &out[b..e]);
    }
}

/// The output rows [`rows3`] computes down one strip of columns at a time.
const ROWS3_STRIP: usize = 8;

/// [`rows3`] for at most [`ROWS3_STRIP`] output rows (the same contract).
#[inline(always)]
unsafe fn rows3_strip<V: KeyVec>(p: &[*const V::T], n: usize, out: &[*mut V::T]) {
    let m = out.len();
    let mut x = 0;
    loop {
        let s = x.min(n - V::L);
        let sorted = |q: *const V::T| sort3(V::load(q.add(s)), V::load(q.add(s + 1)), V::load(q.add(s + 2)));
        let (mut r0, mut r1) = (sorted(p[0]), sorted(p[1]));
        for i in 0..m {
            let r2 = sorted(p[i + 2]);
            median_of_columns(r0, r1, r2).store(out[i].add(s));
            (r0, r1) = (r1, r2);
        }
        x += V::L;
        if x >= n {
            break;
        }
    }
}

/// Lines 1 and 2 at `s..s + L`, ordered: (minima, maxima).
#[inline(always)]
unsafe fn pair_at<V: KeyVec>(p: [*const V::T; 4], s: usize) -> (V, V) {
    let (b, c) = (V::load(p[1].add(s)), V::load(p[2].add(s)));
    (b.lo(c), b.hi(c))
}

/// The median of nine from its three columns, each sorted (minima, medians, maxima):
/// the median of {the largest of the minima, the median of the medians, the smallest
/// of the maxima}.
#[inline(always)]
unsafe fn median_of_columns<V: KeyVec>(c0: (V, V, V), c1: (V, V, V), c2: (V, V, V)) -> V {
    med3(c0.0.hi(c1.0).hi(c2.0), med3(c0.1, c1.1, c2.1), c0.2.lo(c1.2).lo(c2.2))
}

/// A hint to fetch the cache line at `p` (any address: a prefetch never faults).
#[inline(always)]
fn prefetch<V: KeyVec>(p: *const u8) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
    #[cfg(target_arch = "x86_64")]
    if V::L > 1 {
        // SAFETY: prefetching reads nothing the program sees and cannot fault.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8) };
    }
}

/// The medians of the 3x3 windows at `s..s + L`. Sorting each column once into lines
/// and reading them back three times measured slower (1.2-1.4x) than sorting the three
/// shifted columns in registers.
#[inline(always)]
unsafe fn median9_at<V: KeyVec>(p: [*const V::T; 3], s: usize) -> V {
    median_of_columns(column::<V>(p, s), column::<V>(p, s + 1), column::<V>(p, s + 2))
}

/// The column of three at `s..s + L`, sorted: (minima, medians, maxima).
#[inline(always)]
unsafe fn column<V: KeyVec>(p: [*const V::T; 3], s: usize) -> (V, V, V) {
    sort3(V::load(p[0].add(s)), V::load(p[1].add(s)), V::load(p[2].add(s)))
}

/// `(a, b, c)` sorted: (minima, medians, maxima).
///
/// # Safety
/// The CPU has `V`'s instruction set.
#[inline(always)]
unsafe fn sort3<V: KeyVec>(a: V, b: V, c: V) -> (V, V, V) {
    let (a, b) = (a.lo(b), a.hi(b));
    let (b, c) = (b.lo(c), b.hi(c));
    (a.lo(b), a.hi(b), c)
}

#[inline(always)]
unsafe fn med3<V: KeyVec>(p: V, q: V, r: V) -> V {
    p.lo(q).hi(p.hi(q).lo(r))
}

/// The medians of the 5x5 windows at `s..s + L`: the 25 shifted loads through the
/// median-of-25 network.
#[inline(always)]
unsafe fn median25_at<V: KeyVec>(p: [*const V::T; 5], s: usize) -> V {
    macro_rules! ld {
        ($($i:literal),*) => {
            [$(V::load(p[$i / 5].add(s + $i % 5))),*]
        };
    }
    let v = ld!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24);
    nets::median25(v)
}

mod nets {
    use super::KeyVec;

    /// A median network as straight-line code over an array of vector wires indexed by
    /// constants (each wire a register).
    macro_rules! define_vec_median {
        ($name:ident, $n:literal, $rank:literal, [$(($a:literal, $b:literal)),*]) => {
            #[inline(always)]
            #[allow(dead_code)]
            pub(super) unsafe fn $name<V: KeyVec>(mut v: [V; $n]) -> V {
                $(
                    let (s, t) = (v[$a], v[$b]);
                    v[$a] = s.lo(t);
                    v[$b] = s.hi(t);
                )*
                v[$rank]
            }
        };
    }
    with_median_networks!(define_vec_median);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference<T: Rank>(k: usize, lines: &[&[T]], n: usize) -> Vec<T::Key> {
        (0..n)
            .map(|x| {
                let mut w: Vec<T::Key> = lines.iter().flat_map(|l| l[x..x + k].iter().map(|v| v.key())).collect();
                w.sort();
                w[w.len() / 2]
            })
            .collect()
    }

    fn check<T: Rank + std::fmt::Debug>(conv: impl Fn(u64) -> T) {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for level in crate::cpu::simd::available() {
            for k in [3usize, 5] {
                for n in [lanes::<T>(level), lanes::<T>(level) + 1, 64, 65, 100, 257] {
                    let data: Vec<Vec<T>> = (0..k).map(|_| (0..n + k - 1).map(|_| conv(next())).collect()).collect();
                    let lines: Vec<&[T]> = data.iter().map(|l| &l[..]).collect();
                    let keys: Vec<Vec<T::Key>> = data.iter().map(|l| l.iter().map(|v| v.key()).collect()).collect();
                    let key_lines: Vec<&[T::Key]> = keys.iter().map(|l| &l[..]).collect();
                    let mut out = vec![MaybeUninit::<T>::uninit(); n];
                    T::median_line(level, k, &key_lines, &mut out, std::ptr::null());
                    // SAFETY: median_line writes every output.
                    let got: Vec<T::Key> = out.iter().map(|v| unsafe { v.assume_init() }.key()).collect();
                    assert!(got == reference(k, &lines, n), "{level:?} k {k} n {n}");
                    if k == 3 {
                        // a pair of rows: the windows of lines 0-2 and of lines 1-3
                        let fourth: Vec<T> = (0..n + 2).map(|_| conv(next())).collect();
                        let fourth_keys: Vec<T::Key> = fourth.iter().map(|v| v.key()).collect();
                        let mut four = key_lines.clone();
                        four.push(&fourth_keys);
                        let (mut o0, mut o1) = (vec![MaybeUninit::<T>::uninit(); n], vec![MaybeUninit::<T>::uninit(); n]);
                        T::median_pair(level, &four, [&mut o0, &mut o1], [std::ptr::null(); 2]);
                        // SAFETY: median_pair writes every output of both rows.
                        let g0: Vec<T::Key> = o0.iter().map(|v| unsafe { v.assume_init() }.key()).collect();
                        let g1: Vec<T::Key> = o1.iter().map(|v| unsafe { v.assume_init() }.key()).collect();
                        assert!(g0 == reference(k, &lines, n), "pair, top: {level:?} n {n}");
                        let below = [lines[1], lines[2], &fourth[..]];
                        assert!(g1 == reference(k, &below, n), "pair, bottom: {level:?} n {n}");
                    }
                }
            }
        }
    }

    /// The folds on every path, their outputs stored as usual and past the caches, at
    /// every alignment of the output within a vector and lengths around the vector's,
    /// against the scalar rule (`b < a`).
    fn check_folds<T: FoldValue + Rank + std::fmt::Debug>(conv: impl Fn(u64) -> T) {
        let mut seed = 5u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for level in crate::cpu::simd::available() {
            let l = lanes::<T>(level);
            for n in [l, l + 1, 2 * l - 1, 2 * l, 2 * l + 1, 3 * l + 5, 257.max(l)] {
                for (k, step) in [(1usize, 0usize), (3, 0), (2, 1), (5, 1)] {
                    let data: Vec<Vec<T>> = (0..k).map(|_| (0..n + k).map(|_| conv(next())).collect()).collect();
                    let srcs: Vec<&[T]> = data.iter().map(|d| &d[..]).collect();
                    for min in [true, false] {
                        let want: Vec<T> = (0..n)
                            .map(|x| {
                                let mut acc = srcs[0][x];
                                for (i, q) in srcs.iter().enumerate().skip(1) {
                                    let v = q[x + i * step];
                                    acc = if (v < acc) == min { v } else { acc };
                                }
                                acc
                            })
                            .collect();
                        for offset in 0..l {
                            for stream in [false, true] {
                                let mut buf = vec![MaybeUninit::<T>::uninit(); n + l];
                                let out = &mut buf[offset..offset + n];
                                T::fold(level, min, &srcs, step, out, stream, &[]);
                                // SAFETY: fold writes every output.
                                let got: Vec<T> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
                                assert!(got == want, "{level:?} n {n} k {k} step {step} min {min} offset {offset} stream {stream}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The pair folds on every path, bit for bit the two plain folds of their windows
    /// (the rows' order: which of two equal values, +0.0 or -0.0, each keeps), for 3 to
    /// 20 rows and lengths around the vector's.
    fn check_fold_pairs<T: FoldValue + Rank>(conv: impl Fn(u64) -> T)
    where
        T::Key: PartialEq + std::fmt::Debug,
    {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for level in crate::cpu::simd::available() {
            let l = lanes::<T>(level);
            for n in [l, l + 1, 2 * l - 1, 3 * l + 5, 257.max(l)] {
                for rows in [3usize, 4, 6, 17, 20] {
                    let data: Vec<Vec<T>> = (0..rows).map(|_| (0..n).map(|_| conv(next())).collect()).collect();
                    let srcs: Vec<&[T]> = data.iter().map(|d| &d[..]).collect();
                    for min in [true, false] {
                        let run = |f: &dyn Fn(&mut [MaybeUninit<T>], &mut [MaybeUninit<T>])| {
                            let (mut a, mut b) = (vec![MaybeUninit::<T>::uninit(); n], vec![MaybeUninit::<T>::uninit(); n]);
                            f(&mut a, &mut b);
                            // SAFETY: both folds write every output.
                            [a, b].map(|v| v.iter().map(|x| unsafe { x.assume_init() }.key()).collect::<Vec<_>>())
                        };
                        let want = run(&|a, b| {
                            T::fold(level, min, &srcs[..rows - 1], 0, a, false, &[]);
                            T::fold(level, min, &srcs[1..], 0, b, false, &[]);
                        });
                        let got = run(&|a, b| T::fold_pair(level, min, &srcs, [a, b]));
                        assert_eq!(got, want, "{level:?} n {n} rows {rows} min {min}");
                    }
                }
            }
        }
    }

    #[test]
    fn pair_folds_are_the_folds_of_their_windows() {
        check_fold_pairs(|v| (v % 256) as u8);
        check_fold_pairs(|v| (v % 5) as i8 - 2);
        check_fold_pairs(|v| (v % 9) as u16 * 7000);
        check_fold_pairs(|v| (v % 11) as i32 * 200_000_000 - 1_000_000_000);
        check_fold_pairs(|v| ((v % 13) as i64 - 6) * (i64::MAX / 7));
        check_fold_pairs(|v| (v % 13) as u64 * (u64::MAX / 13));
        // ties of +0.0 and -0.0 everywhere (the maximum or minimum of most windows)
        let specials = [0.0, -0.0, 0.0, -0.0, f64::NEG_INFINITY, f64::INFINITY, -2.5, 1e-310];
        check_fold_pairs(|v| specials[(v % 8) as usize] as f32);
        check_fold_pairs(|v| specials[(v % 8) as usize]);
        check_fold_pairs(|v| specials[(v % 4) as usize] as f32);
    }

    #[test]
    fn folds_stored_past_the_caches_are_the_plain_folds() {
        check_folds(|v| (v % 256) as u8);
        check_folds(|v| (v % 9) as i16 * 4000 - 16000);
        check_folds(|v| (v % 11) as u32 * 400_000_000);
        check_folds(|v| ((v % 13) as i64 - 6) * (i64::MAX / 7));
        let specials = [0.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, -2.5, 3.0, 1e300, -7.0];
        check_folds(|v| specials[(v % 8) as usize] as f32);
        check_folds(|v| specials[(v % 8) as usize]);
    }

    /// Every value type on every path the CPU has, against sorting each window's keys
    /// (floats: with both zeros, infinities and NaN of both signs); few distinct values,
    /// so that ties are common.
    #[test]
    fn vector_medians_match_sorting() {
        check(|v| (v % 7) as u8 * 40);
        check(|v| (v % 256) as u8);
        check(|v| (v % 256) as i8);
        check(|v| (v % 9) as u16 * 7000);
        check(|v| (v % 9) as i16 * 4000 - 16000);
        check(|v| (v % 11) as u32 * 400_000_000);
        check(|v| (v % 11) as i32 * 200_000_000 - 1_000_000_000);
        check(|v| (v % 13) as u64 * (u64::MAX / 13));
        check(|v| ((v % 13) as i64 - 6) * (i64::MAX / 7));
        let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN, 1e-310, -2.5, 3.0, 1e300];
        check(|v| specials[(v % 10) as usize] as f32);
        check(|v| specials[(v % 10) as usize]);
        check(|v| (v % 1000) as f32 * 0.37 - 180.0);
    }
}
