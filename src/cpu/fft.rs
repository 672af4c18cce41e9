//! FFT evaluation of zero-fill correlation plans (scipy.signal's `method='fft'`).
//!
//! Two strategies, chosen by a cost model:
//!
//! * **Padded N-D**: pad every axis to a 7-smooth size large enough that the circular
//!   correlation does not alias inside the requested output, real FFT along the last
//!   axis (`realfft`), complex FFTs along the others (`rustfft`), multiply by the
//!   spectrum of the flipped kernel, inverse, and read the output region. The non-last
//!   axes are reached by rotating the axis order with a blocked parallel transpose, so
//!   every FFT runs on contiguous lines. Lines known to be zero (padding) or not needed
//!   by the output are skipped.
//! * **Overlap-save (1-D only)**: for a long signal and a comparatively short kernel,
//!   independent blocks of a moderate FFT size, one rayon task per block. This keeps
//!   the FFTs in cache and uses every core, which a single huge 1-D FFT cannot.
//!
//! Throughout, the "full" correlation along an axis with input length `n1` and kernel
//! length `n2` is `F[f] = sum_j x[f - (n2-1) + j] k[j]`, `f` in `0..n1+n2-1`; a plan's
//! output is `out[o] = F[o + s]` with `s = (n2-1) - offset` (zero where `o + s` falls
//! outside the full range). `F` is the linear convolution of `x` with the reversed
//! kernel, which is what the FFT computes.

use crate::element::Element;
use crate::error::{checked_numel, try_filled, Error, Result};
use crate::ops::correlate::{Boundary, CorrPlan};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// Cost model constants.
//
// The FFT cost is counted in "units": `len * log2(len)` per complex line FFT (half that
// for a real line FFT), plus, per element of every memory pass over the spectrum
// (transposes, spectrum multiply, copies in and out), `MEM_UNITS` when the spectrum fits
// in cache or `STREAM_NS_PER_BYTE` nanoseconds per byte when it does not. Seconds =
// (units * NS_PER_UNIT + streaming ns) * 1e-9 / threads.
//
// Calibrated with `cargo test --release --lib fft::tests::calibrate -- --ignored
// --nocapture` (best of 5, 2 rayon threads) on the 2-core dev machine while other jobs
// shared it (load average 2-6, so figures are noisy, +-50%):
//   cache-resident shapes (512x512*64x64 full, 1-D 2^20*512 and 1e5*64 overlap-save,
//   4096*256): 0.44-0.74 of the old model at 0.9 ns/unit (f32), 0.45-0.5 of it at
//   1.5 ns/unit (f64)  ->  NS_PER_UNIT 0.5 (f32), 0.75 (f64);
//   2048x2048*15x15 same (17 MB f32 / 34 MB f64 spectra): 100-124 ms f32, 157-316 ms
//   f64 (best runs at lower load first); the excess over the cache-resident rate,
//   spread over 11 element-passes (read or write) of the spectrum, is 0.6-1.6 ns/byte
//   per thread  ->  STREAM_NS_PER_BYTE 0.8.
// ---------------------------------------------------------------------------------------

/// Per-element cost of one memory pass over a cache-resident spectrum, in FFT units.
const MEM_UNITS: f64 = 4.0;
/// Spectra larger than this are treated as streaming from main memory.
const CACHE_BYTES: f64 = 4.0 * 1024.0 * 1024.0;
/// Per-thread cost of one memory pass over an out-of-cache spectrum, ns per byte.
const STREAM_NS_PER_BYTE: f64 = 0.8;
/// Measured nanoseconds per unit per thread, f32.
const NS_PER_UNIT_F32: f64 = 0.5;
/// Measured nanoseconds per unit per thread, f64.
const NS_PER_UNIT_F64: f64 = 0.75;
/// Direct kernel throughput per thread, multiply-adds per second: the AVX2 kernel of
/// `cpu::correlate` measured 18-19e9 on 2 threads for 2-D kernels of 9x9 to 31x31 on a
/// 2048x2048 float32 image, and 24-29e9 for 1-D (2026-11-27, AMD EPYC, 2 vCPUs; see
/// BENCHMARKS.md). The 2-D figure is used: it is the conservative one. f64 has half the
/// lanes.
const DIRECT_MACS_PER_S_F32: f64 = 9e9;
const DIRECT_MACS_PER_S_F64: f64 = 4.5e9;
/// Below this many multiply-adds the direct kernel always wins (FFT setup dominates).
const DIRECT_ALWAYS_BELOW: f64 = 1e5;

fn is_f32<T: Element>() -> bool {
    std::mem::size_of::<T>() == 4
}

// ---------------------------------------------------------------------------------------
// Plan caching: rustfft/realfft planners cache their plans by length; keep one pair per
// element type per thread so repeated calls reuse twiddles and recipes. The resulting
// `Arc<dyn Fft>` plans are Send + Sync and are shared with the rayon workers.
// ---------------------------------------------------------------------------------------

struct Planners<T: Element> {
    real: RealFftPlanner<T>,
    complex: FftPlanner<T>,
}

thread_local! {
    static PLANNERS: RefCell<Vec<Box<dyn Any>>> = RefCell::new(Vec::new());
}

fn with_planners<T: Element, R>(f: impl FnOnce(&mut Planners<T>) -> R) -> R {
    PLANNERS.with(|cell| {
        let mut v = cell.borrow_mut();
        let idx = match v.iter().position(|b| b.is::<Planners<T>>()) {
            Some(i) => i,
            None => {
                v.push(Box::new(Planners::<T> { real: RealFftPlanner::new(), complex: FftPlanner::new() }));
                v.len() - 1
            }
        };
        let p = v[idx].downcast_mut::<Planners<T>>().expect("planner type checked above");
        f(p)
    })
}

// ---------------------------------------------------------------------------------------
// Geometry.
// ---------------------------------------------------------------------------------------

/// One axis of the problem.
#[derive(Clone, Copy, Debug)]
struct Axis {
    n1: usize,
    n2: usize,
    out: usize,
    /// Full-correlation index of `out[0]` (may be negative).
    s: i128,
    /// Non-zero part of the output, as full indices `lo..hi` (non-empty, inside
    /// `0..n1+n2-1`).
    lo: usize,
    hi: usize,
}

impl Axis {
    fn full(&self) -> usize {
        self.n1 + self.n2 - 1
    }
    /// Smallest circular length that keeps `lo..hi` free of aliasing and holds both
    /// sequences.
    fn min_len(&self) -> usize {
        (self.full() - self.lo).max(self.hi).max(self.n1).max(self.n2)
    }
}

enum Geometry {
    /// Every output element is zero (requested region lies outside the full range).
    Zero,
    /// Squeezed axes (size-1 axes that play no role removed); at least one axis.
    Axes(Vec<Axis>),
}

fn geometry(plan: &CorrPlan) -> Result<Geometry> {
    let n = plan.in_shape.len();
    if n == 0 || plan.k_shape.len() != n || plan.out_shape.len() != n || plan.offset.len() != n {
        return Err(Error::Value(format!(
            "correlate_fft: inconsistent plan: input shape {:?}, kernel shape {:?}, output shape {:?}, offsets {:?}",
            plan.in_shape, plan.k_shape, plan.out_shape, plan.offset
        )));
    }
    if plan.in_shape.contains(&0) || plan.k_shape.contains(&0) {
        return Err(Error::Value(format!(
            "correlate_fft: inputs must not be empty, got shapes {:?} and {:?}",
            plan.in_shape, plan.k_shape
        )));
    }
    let mut axes = Vec::with_capacity(n);
    let mut zero = plan.out_shape.contains(&0);
    for d in 0..n {
        let (n1, n2, out) = (plan.in_shape[d], plan.k_shape[d], plan.out_shape[d]);
        let full = n1 as i128 + n2 as i128 - 1;
        let s = (n2 as i128 - 1) - plan.offset[d] as i128;
        let lo = s.max(0);
        let hi = (s + out as i128).min(full);
        if lo >= hi {
            zero = true;
            continue;
        }
        axes.push(Axis { n1, n2, out, s, lo: lo as usize, hi: hi as usize });
    }
    if zero {
        return Ok(Geometry::Zero);
    }
    // A size-1 axis of input, kernel and output at full index 0 is a no-op.
    let mut squeezed: Vec<Axis> =
        axes.iter().copied().filter(|a| !(a.n1 == 1 && a.n2 == 1 && a.out == 1 && a.s == 0)).collect();
    if squeezed.is_empty() {
        squeezed.push(axes[0]);
    }
    Ok(Geometry::Axes(squeezed))
}

/// Smallest `2^a 3^b 5^c 7^d >= n` (with `a >= 1` when `even`).
fn fast_len(n: usize, even: bool) -> Option<usize> {
    let n = n.max(1) as u128;
    let mut best: Option<u128> = None;
    let mut p7: u128 = 1;
    while p7 < 2 * n + 2 {
        let mut p5 = p7;
        while p5 < 2 * n + 2 {
            let mut p3 = p5;
            while p3 < 2 * n + 2 {
                let mut m = if even { p3 * 2 } else { p3 };
                while m < n {
                    m *= 2;
                }
                if best.is_none_or(|b| m < b) {
                    best = Some(m);
                }
                p3 *= 3;
            }
            p5 *= 5;
        }
        p7 *= 7;
    }
    best.and_then(|b| usize::try_from(b).ok())
}

/// A zero-filled vector of `n` elements taken from the allocator's zeroed memory
/// (calloc): big requests get fresh, lazily zeroed pages from the OS, so there is no
/// serial memset and the pages are first touched inside the parallel passes. Fallible
/// like `try_filled`. Only for element types whose zero is the all-zero bit pattern; the
/// callers use `T: Element` (f32/f64, +0.0 is all zero bits) and `Complex<T>`
/// (`#[repr(C)]` pair of `T`, no padding).
fn try_zeroed<E: Copy>(n: usize, zero: E, what: &str) -> Result<Vec<E>> {
    let size = std::mem::size_of::<E>();
    if n == 0 || size == 0 {
        return try_filled(n, zero, what);
    }
    let layout = std::alloc::Layout::array::<E>(n).map_err(|_| {
        Error::Memory(format!("cannot allocate {what}: {n} elements of {size} bytes"))
    })?;
    // SAFETY: layout has non-zero size; a null return is handled; the memory is zeroed
    // and all-zero bits are a valid `E` equal to `zero` for the types used here (checked
    // in debug builds); `Vec::from_raw_parts` takes memory from the global allocator
    // with exactly this layout, capacity and length.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut E;
        if ptr.is_null() {
            return Err(Error::Memory(format!(
                "cannot allocate {what}: {n} elements of {size} bytes ({:.1} GiB)",
                (n as f64) * (size as f64) / (1u64 << 30) as f64
            )));
        }
        let v = Vec::from_raw_parts(ptr, n, n);
        debug_assert!({
            let zb = std::slice::from_raw_parts(&zero as *const E as *const u8, size);
            zb.iter().all(|&b| b == 0)
        });
        Ok(v)
    }
}

fn fft_units(len: usize) -> f64 {
    let l = len as f64;
    if len <= 1 {
        return 1.0;
    }
    l * l.log2()
}

/// How the plan will be evaluated.
#[derive(Clone, Debug)]
enum Strategy {
    Padded { lens: Vec<usize> },
    /// 1-D overlap-save with FFT length `block`.
    Blocked { block: usize },
}

/// Cost of the padded strategy: FFT units, element-passes over the spectrum, spectrum
/// length (complex elements), and the per-axis lengths.
fn padded_cost(axes: &[Axis]) -> Option<(f64, f64, f64, Vec<usize>)> {
    let n = axes.len();
    let mut lens = Vec::with_capacity(n);
    for (d, a) in axes.iter().enumerate() {
        lens.push(fast_len(a.min_len(), d == n - 1)?);
    }
    let lh = lens[n - 1] / 2 + 1;
    let spec: f64 = lens[..n - 1].iter().map(|&l| l as f64).product::<f64>() * lh as f64;
    let mut units = 0.0;
    let mut passes = 0.0;
    // Forward of x (zero lines skipped) and of the kernel, then inverse (unneeded lines
    // skipped). Count lines per pass.
    for which in 0..3 {
        let extent = |d: usize| -> f64 {
            match which {
                0 => axes[d].n1 as f64,
                1 => axes[d].n2 as f64,
                _ => (axes[d].hi - axes[d].lo) as f64,
            }
        };
        // Real pass along the last axis.
        let lines: f64 = (0..n - 1).map(extent).product();
        units += lines * 0.5 * fft_units(lens[n - 1]);
        // Complex pass along axis a: axes < a restricted, axes > a full.
        for a in 0..n - 1 {
            let restricted: f64 = (0..a).map(extent).product();
            let full: f64 = (a + 1..n - 1).map(|d| lens[d] as f64).product::<f64>() * lh as f64;
            units += restricted * full * fft_units(lens[a]);
        }
        // Transposes (n-1 per array, each a read and a write) plus one copy in or out.
        passes += spec * (2.0 * (n - 1) as f64 + 1.0);
    }
    passes += 2.0 * spec; // multiply: read two, write one
    Some((units, passes, spec, lens))
}

/// Cost of 1-D overlap-save with FFT length `block`, in units, and the number of blocks.
fn blocked_cost(a: &Axis, block: usize) -> Option<(f64, usize)> {
    if block < a.n2 + 1 {
        return None;
    }
    let step = block - a.n2 + 1;
    let nblocks = (a.hi - a.lo).div_ceil(step);
    let per_block = fft_units(block) + MEM_UNITS * 2.0 * block as f64;
    Some((nblocks as f64 * per_block, nblocks))
}

/// Picks the strategy with the lowest estimated wall time on `threads` threads; returns
/// it with the estimated seconds.
fn choose<T: Element>(axes: &[Axis], threads: usize) -> Option<(Strategy, f64)> {
    let ns = if is_f32::<T>() { NS_PER_UNIT_F32 } else { NS_PER_UNIT_F64 };
    let threads = threads.max(1) as f64;
    let (units, passes, spec, lens) = padded_cost(axes)?;
    let complex_bytes = 2.0 * std::mem::size_of::<T>() as f64;
    let mem_ns = if spec * complex_bytes > CACHE_BYTES {
        passes * complex_bytes * STREAM_NS_PER_BYTE
    } else {
        passes * MEM_UNITS * ns
    };
    // The padded strategy parallelises over lines; a 1-D problem is a single FFT.
    let par = if axes.len() == 1 { 1.0 } else { threads };
    let mut best = (Strategy::Padded { lens }, (units * ns + mem_ns) * 1e-9 / par);
    if axes.len() == 1 {
        let a = &axes[0];
        let mut block = (2 * a.n2).next_power_of_two().max(256);
        while block <= (1 << 18) {
            if let Some((u, nb)) = blocked_cost(a, block) {
                if nb >= 2 {
                    let t = u * ns * 1e-9 / threads.min(nb as f64);
                    if t < best.1 {
                        best = (Strategy::Blocked { block }, t);
                    }
                }
            }
            block *= 2;
        }
    }
    Some(best)
}

// ---------------------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------------------

/// FFT evaluation of a zero-fill correlation plan (`plan.boundary == Boundary::Constant`
/// and `plan.cval == 0.0`; `Error::Value` otherwise). `x` is the input in C order with
/// `plan.in_shape`, `k` the kernel in C order with `plan.k_shape`. Returns the output in
/// C order with `plan.out_shape`: `out[o] = sum_j x[o + j - plan.offset] * k[j]` (zero
/// outside x).
pub fn correlate_fft<T: Element>(x: &[T], k: &[T], plan: &CorrPlan) -> Result<Vec<T>> {
    if plan.boundary != Boundary::Constant || plan.cval != 0.0 {
        return Err(Error::Value(format!(
            "correlate_fft: the FFT method needs zero fill, got boundary {:?} with cval {}",
            plan.boundary, plan.cval
        )));
    }
    let geom = geometry(plan)?;
    let nx = checked_numel(&plan.in_shape)?;
    let nk = checked_numel(&plan.k_shape)?;
    if x.len() != nx || k.len() != nk {
        return Err(Error::Value(format!(
            "correlate_fft: input of {} elements for shape {:?} and kernel of {} elements for shape {:?}",
            x.len(),
            plan.in_shape,
            k.len(),
            plan.k_shape
        )));
    }
    let mut out: Vec<T> = try_zeroed(checked_numel(&plan.out_shape)?, T::zero(), "the correlation output")?;
    let axes = match geom {
        Geometry::Zero => return Ok(out),
        Geometry::Axes(a) => a,
    };
    let threads = rayon::current_num_threads();
    let (strategy, _) = choose::<T>(&axes, threads).ok_or_else(|| {
        Error::Memory(format!("correlate_fft: FFT sizes for shape {:?} overflow", plan.in_shape))
    })?;
    match strategy {
        Strategy::Padded { lens } => padded(x, k, &axes, &lens, &mut out)?,
        Strategy::Blocked { block } => blocked(x, k, &axes[0], block, &mut out)?,
    }
    Ok(out)
}

/// Which method is faster for this plan on this machine: `true` if the FFT should be
/// used. Only zero-fill plans may use FFT; tiny problems always go direct.
pub fn prefer_fft<T: Element>(plan: &CorrPlan) -> bool {
    if plan.boundary != Boundary::Constant || plan.cval != 0.0 {
        return false;
    }
    let direct = plan.direct_cost();
    // Also rejects a NaN cost.
    if direct.is_nan() || direct < DIRECT_ALWAYS_BELOW {
        return false;
    }
    let axes = match geometry(plan) {
        Ok(Geometry::Axes(a)) => a,
        _ => return false,
    };
    let threads = crate::threads::get_num_threads().max(1);
    let rate = if is_f32::<T>() { DIRECT_MACS_PER_S_F32 } else { DIRECT_MACS_PER_S_F64 };
    let direct_s = direct / (rate * threads as f64);
    match choose::<T>(&axes, threads) {
        Some((_, fft_s)) => fft_s < direct_s,
        None => false,
    }
}

// ---------------------------------------------------------------------------------------
// Padded N-D strategy.
// ---------------------------------------------------------------------------------------

/// `dst[c * rows + r] = src[r * cols + c]`, in parallel over blocks of `dst` rows.
fn transpose<T: Element>(src: &[Complex<T>], rows: usize, cols: usize, dst: &mut [Complex<T>]) {
    const TB: usize = 16;
    const TR: usize = 128;
    if rows == 1 || cols == 1 {
        dst.copy_from_slice(src);
        return;
    }
    dst.par_chunks_mut(TB * rows).enumerate().for_each(|(bi, block)| {
        let c0 = bi * TB;
        let nc = block.len() / rows;
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + TR).min(rows);
            for r in r0..r1 {
                let srow = &src[r * cols + c0..r * cols + c0 + nc];
                for (ci, &v) in srow.iter().enumerate() {
                    block[ci * rows + r] = v;
                }
            }
            r0 = r1;
        }
    });
}

/// Multi-index of `idx` over `dims` (C order) checked against per-axis ranges.
#[inline]
fn inner_active(mut idx: usize, dims: &[usize], ranges: &[(usize, usize)]) -> bool {
    for d in (0..dims.len()).rev() {
        let i = idx % dims[d];
        idx /= dims[d];
        if i < ranges[d].0 || i >= ranges[d].1 {
            return false;
        }
    }
    true
}

struct Plans<T: Element> {
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    /// Forward and inverse complex plans for axes 0..n-1.
    fwd: Vec<Arc<dyn Fft<T>>>,
    inv: Vec<Arc<dyn Fft<T>>>,
}

/// Spectrum of `data` (shape `dims`, reversed on every axis when `flip`) zero-padded to
/// `lens`, left in `buf` in the axis order `[1, ..., n-1, 0]` (`[0]` in 1-D). `tmp` is a
/// buffer of the same size.
fn forward<T: Element>(
    data: &[T],
    dims: &[usize],
    flip: bool,
    lens: &[usize],
    plans: &Plans<T>,
    buf: &mut Vec<Complex<T>>,
    tmp: &mut Vec<Complex<T>>,
) {
    let n = lens.len();
    let ll = lens[n - 1];
    let lh = ll / 2 + 1;
    let nl = dims[n - 1];
    let outer_lens = &lens[..n - 1];
    let zero = Complex::new(T::zero(), T::zero());
    let r2c = &plans.r2c;
    // Real FFT of every line along the last axis.
    buf.par_chunks_mut(lh).enumerate().for_each_init(
        || (vec![T::zero(); ll], vec![zero; r2c.get_scratch_len()]),
        |(rbuf, scratch), (line, chunk)| {
            let mut idx = line;
            let mut src = 0usize;
            let mut stride = nl;
            for d in (0..n - 1).rev() {
                let i = idx % outer_lens[d];
                idx /= outer_lens[d];
                if i >= dims[d] {
                    chunk.fill(zero);
                    return;
                }
                let si = if flip { dims[d] - 1 - i } else { i };
                src += si * stride;
                stride *= dims[d];
            }
            let s = &data[src..src + nl];
            if flip {
                for (r, &v) in rbuf[..nl].iter_mut().zip(s.iter().rev()) {
                    *r = v;
                }
            } else {
                rbuf[..nl].copy_from_slice(s);
            }
            rbuf[nl..].fill(T::zero());
            // Lengths match the plan by construction, so this cannot fail.
            let _ = r2c.process_with_scratch(rbuf, chunk, scratch);
        },
    );
    // Complex FFTs along axes n-2, ..., 0, each reached by rotating the last axis to the
    // front.
    let ranges: Vec<(usize, usize)> = dims.iter().map(|&d| (0, d)).collect();
    for a in (0..n - 1).rev() {
        let last = if a + 1 == n - 1 { lh } else { lens[a + 1] };
        let rows = buf.len() / last;
        transpose(buf, rows, last, tmp);
        std::mem::swap(buf, tmp);
        // Layout now [a+1, ..., n-1, 0, ..., a]; axes 0..a are untouched (still padded
        // with zeros beyond dims).
        let la = lens[a];
        let inner_dims = &lens[..a];
        let fft = &plans.fwd[a];
        let p: usize = inner_dims.iter().product();
        buf.par_chunks_mut(la).enumerate().for_each_init(
            || vec![zero; fft.get_inplace_scratch_len()],
            |scratch, (line, chunk)| {
                if inner_active(line % p, inner_dims, &ranges[..a]) {
                    fft.process_with_scratch(chunk, scratch);
                }
            },
        );
    }
}

fn padded<T: Element>(x: &[T], k: &[T], axes: &[Axis], lens: &[usize], out: &mut [T]) -> Result<()> {
    let n = axes.len();
    let ll = lens[n - 1];
    let lh = ll / 2 + 1;
    let spec_len = lens[..n - 1]
        .iter()
        .try_fold(lh, |acc, &l| acc.checked_mul(l))
        .ok_or_else(|| Error::Memory(format!("correlate_fft: padded FFT size {lens:?} is too large")))?;
    let zero = Complex::new(T::zero(), T::zero());
    let mut xs = try_zeroed(spec_len, zero, "the FFT spectrum of the input")?;
    let mut ks = try_zeroed(spec_len, zero, "the FFT spectrum of the kernel")?;
    let mut tmp = if n > 1 { try_zeroed(spec_len, zero, "the FFT transpose buffer")? } else { Vec::new() };
    let plans = with_planners::<T, _>(|p| Plans {
        r2c: p.real.plan_fft_forward(ll),
        c2r: p.real.plan_fft_inverse(ll),
        fwd: lens[..n - 1].iter().map(|&l| p.complex.plan_fft_forward(l)).collect(),
        inv: lens[..n - 1].iter().map(|&l| p.complex.plan_fft_inverse(l)).collect(),
    });
    let n1: Vec<usize> = axes.iter().map(|a| a.n1).collect();
    let n2: Vec<usize> = axes.iter().map(|a| a.n2).collect();
    forward(x, &n1, false, lens, &plans, &mut xs, &mut tmp);
    forward(k, &n2, true, lens, &plans, &mut ks, &mut tmp);
    drop(tmp);

    let scale = T::one() / T::from_f64_lossy(lens.iter().map(|&l| l as f64).product());
    xs.par_chunks_mut(4096).zip(ks.par_chunks(4096)).for_each(|(a, b)| {
        for (u, v) in a.iter_mut().zip(b) {
            *u = *u * *v * scale;
        }
    });
    // The kernel spectrum is spent; its buffer becomes the transpose target.
    let mut tmp = ks;

    // Inverse complex FFTs along axes 0, ..., n-2 (only lines the output needs), rotating
    // the first axis to the back after each.
    let needed: Vec<(usize, usize)> = axes.iter().map(|a| (a.lo, a.hi)).collect();
    for a in 0..n - 1 {
        // Layout [a+1, ..., n-1, 0, ..., a].
        let la = lens[a];
        let inner_dims = &lens[..a];
        let p: usize = inner_dims.iter().product();
        let fft = &plans.inv[a];
        xs.par_chunks_mut(la).enumerate().for_each_init(
            || vec![zero; fft.get_inplace_scratch_len()],
            |scratch, (line, chunk)| {
                if inner_active(line % p, inner_dims, &needed[..a]) {
                    fft.process_with_scratch(chunk, scratch);
                }
            },
        );
        let first = if a + 1 == n - 1 { lh } else { lens[a + 1] };
        let rest = xs.len() / first;
        transpose(&xs, first, rest, &mut tmp);
        std::mem::swap(&mut xs, &mut tmp);
    }
    drop(tmp);

    // Inverse real FFT per output line, reading only the requested region.
    let nout = axes[n - 1].out;
    let last = axes[n - 1];
    let c2r = &plans.c2r;
    let outer_out: Vec<usize> = axes[..n - 1].iter().map(|a| a.out).collect();
    let xs = &xs;
    out.par_chunks_mut(nout).enumerate().for_each_init(
        || (vec![zero; lh], vec![T::zero(); ll], vec![zero; c2r.get_scratch_len()]),
        |(cbuf, rbuf, scratch), (line, chunk)| {
            let mut idx = line;
            let mut src = 0usize;
            let mut stride = lh;
            for d in (0..n - 1).rev() {
                let o = idx % outer_out[d];
                idx /= outer_out[d];
                let f = axes[d].s + o as i128;
                if f < axes[d].lo as i128 || f >= axes[d].hi as i128 {
                    chunk.fill(T::zero());
                    return;
                }
                src += f as usize * stride;
                stride *= lens[d];
            }
            cbuf.copy_from_slice(&xs[src..src + lh]);
            cbuf[0].im = T::zero();
            if ll.is_multiple_of(2) {
                cbuf[lh - 1].im = T::zero();
            }
            let _ = c2r.process_with_scratch(cbuf, rbuf, scratch);
            for (o, v) in chunk.iter_mut().enumerate() {
                let f = last.s + o as i128;
                *v = if f >= last.lo as i128 && f < last.hi as i128 { rbuf[f as usize] } else { T::zero() };
            }
        },
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 1-D overlap-save strategy.
// ---------------------------------------------------------------------------------------

fn blocked<T: Element>(x: &[T], k: &[T], a: &Axis, block: usize, out: &mut [T]) -> Result<()> {
    let (n1, n2) = (a.n1, a.n2);
    let bh = block / 2 + 1;
    let step = block - n2 + 1;
    let zero = Complex::new(T::zero(), T::zero());
    let (r2c, c2r) = with_planners::<T, _>(|p| (p.real.plan_fft_forward(block), p.real.plan_fft_inverse(block)));
    // Spectrum of the reversed kernel, scaled for the unnormalised inverse.
    let mut kr = try_filled(block, T::zero(), "the padded kernel")?;
    for (r, &v) in kr.iter_mut().zip(k.iter().rev()) {
        *r = v;
    }
    let mut ks = try_filled(bh, zero, "the kernel spectrum")?;
    let mut scratch = try_filled(r2c.get_scratch_len().max(c2r.get_scratch_len()), zero, "FFT scratch")?;
    let _ = r2c.process_with_scratch(&mut kr, &mut ks, &mut scratch);
    drop(kr);
    let scale = T::one() / T::from_f64_lossy(block as f64);
    for v in ks.iter_mut() {
        *v *= scale;
    }
    // Output positions with non-zero values: o in o_lo..o_hi.
    let o_lo = (a.lo as i128 - a.s) as usize;
    let o_hi = (a.hi as i128 - a.s) as usize;
    let region = &mut out[o_lo..o_hi];
    let ks = &ks;
    region.par_chunks_mut(step).enumerate().for_each_init(
        || {
            (
                vec![T::zero(); block],
                vec![zero; bh],
                vec![zero; r2c.get_scratch_len().max(c2r.get_scratch_len())],
            )
        },
        |(rbuf, cbuf, scratch), (bi, chunk)| {
            // Full index of chunk[0].
            let f0 = a.lo + bi * step;
            // seg[i] = x[f0 - (n2-1) + i].
            let start = f0 as i128 - (n2 as i128 - 1);
            for (i, r) in rbuf.iter_mut().enumerate() {
                let xi = start + i as i128;
                *r = if xi >= 0 && xi < n1 as i128 { x[xi as usize] } else { T::zero() };
            }
            let _ = r2c.process_with_scratch(rbuf, cbuf, scratch);
            for (u, v) in cbuf.iter_mut().zip(ks) {
                *u *= *v;
            }
            cbuf[0].im = T::zero();
            if block.is_multiple_of(2) {
                cbuf[bh - 1].im = T::zero();
            }
            let _ = c2r.process_with_scratch(cbuf, rbuf, scratch);
            chunk.copy_from_slice(&rbuf[n2 - 1..n2 - 1 + chunk.len()]);
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::correlate::Mode;

    /// Small deterministic generator (xorshift) for test data in [-1, 1).
    fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// Naive reference: out[o] = sum_j x[o + j - offset] k[j], zero outside x. Also
    /// returns the per-output scale sum |x||k|.
    fn naive(x: &[f64], k: &[f64], plan: &CorrPlan) -> (Vec<f64>, f64) {
        let n = plan.ndim();
        let numel = |s: &[usize]| s.iter().product::<usize>();
        let no = numel(&plan.out_shape);
        let nk = numel(&plan.k_shape);
        let mut out = vec![0.0; no];
        let mut scale: f64 = 0.0;
        let unravel = |mut i: usize, shape: &[usize]| {
            let mut idx = vec![0usize; shape.len()];
            for d in (0..shape.len()).rev() {
                idx[d] = i % shape[d];
                i /= shape[d];
            }
            idx
        };
        for (oi, ov) in out.iter_mut().enumerate() {
            let o = unravel(oi, &plan.out_shape);
            let mut acc = 0.0;
            let mut sc = 0.0;
            for ji in 0..nk {
                let j = unravel(ji, &plan.k_shape);
                let mut xi = 0usize;
                let mut inside = true;
                for d in 0..n {
                    let p = o[d] as isize + j[d] as isize - plan.offset[d];
                    if p < 0 || p >= plan.in_shape[d] as isize {
                        inside = false;
                        break;
                    }
                    xi = xi * plan.in_shape[d] + p as usize;
                }
                if inside {
                    acc += x[xi] * k[ji];
                    sc += (x[xi] * k[ji]).abs();
                }
            }
            *ov = acc;
            scale = scale.max(sc);
        }
        (out, scale.max(1e-300))
    }

    fn check(in_shape: &[usize], k_shape: &[usize], mode: Mode, seed: u64) {
        let plan = CorrPlan::signal(in_shape, k_shape, mode).unwrap();
        let x = rand_vec(in_shape.iter().product(), seed);
        let k = rand_vec(k_shape.iter().product(), seed + 1000);
        let (want, scale) = naive(&x, &k, &plan);
        let got = correlate_fft(&x, &k, &plan).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-10 * scale, "f64 {in_shape:?} {k_shape:?} {mode:?} at {i}: {g} vs {w}");
        }
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let k32: Vec<f32> = k.iter().map(|&v| v as f32).collect();
        let got = correlate_fft(&x32, &k32, &plan).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * scale,
                "f32 {in_shape:?} {k_shape:?} {mode:?} at {i}: {g} vs {w}"
            );
        }
    }

    fn all_modes(in_shape: &[usize], k_shape: &[usize], seed: u64) {
        for mode in [Mode::Full, Mode::Same, Mode::Valid] {
            if mode == Mode::Valid {
                let ge = in_shape.iter().zip(k_shape).all(|(a, b)| a >= b);
                let le = in_shape.iter().zip(k_shape).all(|(a, b)| a <= b);
                if !ge && !le {
                    continue;
                }
            }
            check(in_shape, k_shape, mode, seed);
        }
    }

    #[test]
    fn fft_1d_matches_naive() {
        let cases: &[(usize, usize)] = &[
            (1, 1),
            (1, 5),
            (5, 1),
            (7, 3),
            (8, 4),
            (10, 10),
            (3, 11),
            (4, 12),
            (31, 7),
            (64, 17),
            (100, 33),
            (257, 256),
            (13, 40),
        ];
        for (i, &(a, b)) in cases.iter().enumerate() {
            all_modes(&[a], &[b], i as u64);
        }
    }

    #[test]
    fn fft_1d_blocked_matches_naive() {
        // Long signals pick overlap-save; check it against the naive sum.
        for (i, &(a, b)) in [(20000usize, 31usize), (30001, 64), (50000, 7)].iter().enumerate() {
            let axes = match geometry(&CorrPlan::signal(&[a], &[b], Mode::Same).unwrap()).unwrap() {
                Geometry::Axes(v) => v,
                Geometry::Zero => unreachable!(),
            };
            let (s, _) = choose::<f64>(&axes, 2).unwrap();
            assert!(matches!(s, Strategy::Blocked { .. }), "{s:?}");
            all_modes(&[a], &[b], 100 + i as u64);
        }
    }

    #[test]
    fn fft_2d_matches_naive() {
        let cases: &[([usize; 2], [usize; 2])] = &[
            ([1, 1], [1, 1]),
            ([1, 9], [1, 4]),
            ([9, 1], [3, 1]),
            ([8, 8], [3, 3]),
            ([7, 10], [4, 5]),
            ([16, 15], [2, 6]),
            ([5, 6], [7, 9]),
            ([3, 12], [6, 2]),
            ([20, 33], [5, 5]),
            ([6, 6], [6, 6]),
        ];
        for (i, (a, b)) in cases.iter().enumerate() {
            all_modes(a, b, 200 + i as u64);
        }
    }

    #[test]
    fn fft_3d_and_4d_match_naive() {
        let cases: &[(Vec<usize>, Vec<usize>)] = &[
            (vec![4, 5, 6], vec![2, 3, 2]),
            (vec![3, 7, 4], vec![3, 3, 3]),
            (vec![2, 3, 4], vec![3, 5, 6]),
            (vec![5, 1, 6], vec![2, 1, 3]),
            (vec![6, 6, 5], vec![1, 2, 7]),
            (vec![3, 4, 2, 5], vec![2, 2, 2, 3]),
            (vec![1, 1, 8], vec![1, 1, 3]),
        ];
        for (i, (a, b)) in cases.iter().enumerate() {
            all_modes(a, b, 300 + i as u64);
        }
    }

    #[test]
    fn fft_ndimage_plans_match_naive() {
        for (i, origin) in [[0isize, 0], [1, -1], [-2, 1]].iter().enumerate() {
            let plan = CorrPlan::ndimage(&[12, 9], &[5, 4], origin, Boundary::Constant, 0.0).unwrap();
            let x = rand_vec(108, 400 + i as u64);
            let k = rand_vec(20, 500 + i as u64);
            let (want, scale) = naive(&x, &k, &plan);
            let got = correlate_fft(&x, &k, &plan).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-10 * scale);
            }
        }
        let plan = CorrPlan::ndimage(&[12, 9], &[5, 4], &[0, 0], Boundary::Reflect, 0.0).unwrap();
        assert!(matches!(correlate_fft(&[0.0; 108], &[0.0; 20], &plan), Err(Error::Value(_))));
        let plan = CorrPlan::ndimage(&[12, 9], &[5, 4], &[0, 0], Boundary::Constant, 1.0).unwrap();
        assert!(matches!(correlate_fft(&[0.0; 108], &[0.0; 20], &plan), Err(Error::Value(_))));
        assert!(!prefer_fft::<f64>(&plan));
    }

    #[test]
    fn fft_plan_outside_full_range_is_zero() {
        let mut plan = CorrPlan::signal(&[5], &[3], Mode::Full).unwrap();
        plan.offset[0] = 100;
        let got = correlate_fft(&[1.0f64; 5], &[1.0; 3], &plan).unwrap();
        assert_eq!(got, vec![0.0; 7]);
        plan.offset[0] = -3;
        let (want, _) = naive(&[1.0; 5], &[1.0; 3], &plan);
        assert_eq!(correlate_fft(&[1.0f64; 5], &[1.0; 3], &plan).unwrap(), want);
    }

    #[test]
    fn fft_fast_len() {
        assert_eq!(fast_len(1, false), Some(1));
        assert_eq!(fast_len(11, false), Some(12));
        assert_eq!(fast_len(11, true), Some(12));
        assert_eq!(fast_len(13, true), Some(14));
        assert_eq!(fast_len(2055, true), Some(2058));
        assert_eq!(fast_len(1025, true), Some(1050));
        assert_eq!(fast_len(1025, false), Some(1029));
    }

    #[test]
    fn fft_prefer() {
        let tiny = CorrPlan::signal(&[10, 10], &[3, 3], Mode::Same).unwrap();
        assert!(!prefer_fft::<f32>(&tiny));
        let big = CorrPlan::signal(&[512, 512], &[64, 64], Mode::Same).unwrap();
        assert!(prefer_fft::<f32>(&big));
        let small_k = CorrPlan::signal(&[2048, 2048], &[3, 3], Mode::Same).unwrap();
        assert!(!prefer_fft::<f32>(&small_k));
    }

    /// Timing for the cost-model constants. Run with
    /// `cargo test --release --lib fft::tests::calibrate -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn calibrate() {
        fn time<T: Element>(in_shape: &[usize], k_shape: &[usize], mode: Mode) {
            let plan = CorrPlan::signal(in_shape, k_shape, mode).unwrap();
            let x: Vec<T> = rand_vec(in_shape.iter().product(), 1).iter().map(|&v| T::from_f64_lossy(v)).collect();
            let k: Vec<T> = rand_vec(k_shape.iter().product(), 2).iter().map(|&v| T::from_f64_lossy(v)).collect();
            let threads = crate::threads::get_num_threads();
            let run = || crate::threads::install(|| correlate_fft(&x, &k, &plan).unwrap()).unwrap();
            run();
            let reps = 5;
            let mut best = f64::INFINITY;
            for _ in 0..reps {
                let t = std::time::Instant::now();
                std::hint::black_box(run());
                best = best.min(t.elapsed().as_secs_f64());
            }
            let axes = match geometry(&plan).unwrap() {
                Geometry::Axes(a) => a,
                Geometry::Zero => unreachable!(),
            };
            let (strategy, est) = choose::<T>(&axes, threads).unwrap();
            let direct = plan.direct_cost()
                / (if is_f32::<T>() { DIRECT_MACS_PER_S_F32 } else { DIRECT_MACS_PER_S_F64 } * threads as f64);
            println!(
                "{} {in_shape:?} * {k_shape:?} {mode:?}: {:.2} ms on {threads} threads (model {:.2} ms, ratio {:.2}; direct model {:.2} ms) {strategy:?}",
                T::NAME,
                best * 1e3,
                est * 1e3,
                best / est,
                direct * 1e3
            );
        }
        time::<f32>(&[2048, 2048], &[15, 15], Mode::Same);
        time::<f64>(&[2048, 2048], &[15, 15], Mode::Same);
        time::<f32>(&[1 << 20], &[512], Mode::Same);
        time::<f64>(&[1 << 20], &[512], Mode::Same);
        time::<f32>(&[512, 512], &[64, 64], Mode::Full);
        time::<f64>(&[512, 512], &[64, 64], Mode::Full);
        time::<f32>(&[64, 64, 64], &[5, 5, 5], Mode::Same);
        time::<f32>(&[4096], &[256], Mode::Full);
        time::<f32>(&[100_000], &[64], Mode::Valid);
    }
}
