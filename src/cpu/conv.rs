//! Convolution and dense kernels, forward and backward, for a validated `ConvPlan`
//! (channels-last, 1 to 3 spatial axes). Callers run them inside the crate's pool.
//!
//! Convolution is im2col + GEMM. With channels last, the im2col row of one output
//! position is the `(*kernel, c_in)` block of input cells its window covers, which is
//! exactly the row order of Keras' `(*kernel, c_in, c_out)` weights, so
//!
//! ```text
//! Y (rows x c_out)   = Col (rows x K) * W (K x c_out) + bias      rows = batch * positions
//! dW (K x c_out)    += Col^T * dY                                  (summed over all rows)
//! dCol (rows x K)    = dY * W^T,  then col2im scatter-adds dCol into dX
//! ```
//!
//! The column buffer is never built for the whole batch: the batch is split into one
//! contiguous range of images per pool thread, and each range is processed in pieces
//! of rows whose column buffers together stay under a fixed byte budget. Per-thread
//! ranges, each with a single-threaded GEMM, beat one multi-threaded GEMM over the whole
//! batch on the 2-core test machine (see the `conv_throughput` test), and give
//! race-free col2im since no two threads share an image. A 1x1 kernel with stride 1
//! needs no im2col: the input rows are the column matrix.

use crate::cpu::gemm::{matmul, MatMut, MatRef};
use crate::element::Element;
use crate::error::{assume_init_vec, try_uninit, try_zeroed, Error, Result};
use std::mem::MaybeUninit;
use crate::ops::conv::ConvPlan;
use crate::ops::nn::Activation;
use rayon::prelude::*;

/// Ceiling on the bytes of im2col buffers alive at once, all threads together,
/// whatever the batch size.
pub const COL_BUDGET_BYTES: usize = 32 << 20;
/// Bytes of one thread's column buffer: small enough to stay in cache between im2col
/// and the GEMM that reads it (measured: 1-4 MiB beat 16 MiB by 1.3-1.5x, see
/// `conv_throughput`).
pub const COL_PIECE_BYTES: usize = 2 << 20;
/// Rows of a piece when the kernel matrix is larger than a piece (see `schedule`).
const MIN_ROWS_LARGE_KERNEL: usize = 512;
/// Rows of a task (a range of images) at least, when the kernel is larger than a piece.
const MIN_ROWS_LARGE_KERNEL_TASK: usize = 392;
/// Ceiling on one such piece's buffers.
const MAX_PIECE_BYTES: usize = 16 << 20;

/// How the work is split; tests and the timing test vary it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    pub budget_bytes: usize,
    pub piece_bytes: usize,
    /// Process the batch as one range and let the GEMM use every thread instead.
    pub gemm_threads_only: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            budget_bytes: COL_BUDGET_BYTES,
            piece_bytes: COL_PIECE_BYTES,
            gemm_threads_only: false,
        }
    }
}

/// The plan's geometry padded to three spatial axes (missing leading axes of size 1).
struct Geo {
    batch: usize,
    n: [usize; 3],
    o: [usize; 3],
    k: [usize; 3],
    s: [isize; 3],
    d: [isize; 3],
    p: [isize; 3],
    c_in: usize,
    c_out: usize,
    /// Output positions per image.
    positions: usize,
    /// im2col row length, prod(kernel) * c_in.
    kw: usize,
    /// 1x1 kernel, stride 1: Col is x itself.
    direct: bool,
}

impl Geo {
    fn new(plan: &ConvPlan) -> Geo {
        let nd = plan.ndim();
        let lead = 3 - nd;
        let (mut n, mut o, mut k) = ([1; 3], [1; 3], [1; 3]);
        let (mut s, mut d, mut p) = ([1isize; 3], [1isize; 3], [0isize; 3]);
        for a in 0..nd {
            n[lead + a] = plan.spatial[a];
            o[lead + a] = plan.out_spatial[a];
            k[lead + a] = plan.kernel[a];
            // The plan keeps every size within isize (checked in ConvPlan::new); strides
            // and dilations larger than that only ever multiply index 0.
            s[lead + a] = plan.strides[a].min(isize::MAX as usize) as isize;
            d[lead + a] = plan.dilation[a].min(isize::MAX as usize) as isize;
            p[lead + a] = plan.pad_before[a] as isize;
        }
        let direct = k == [1; 3] && s == [1; 3] && p == [0; 3];
        Geo {
            batch: plan.batch,
            n,
            o,
            k,
            s,
            d,
            p,
            c_in: plan.c_in,
            c_out: plan.c_out,
            positions: plan.out_positions(),
            kw: plan.col_width(),
            direct,
        }
    }

    fn in_len(&self) -> usize {
        self.batch * self.n[0] * self.n[1] * self.n[2] * self.c_in
    }

    fn image_len(&self) -> usize {
        self.n[0] * self.n[1] * self.n[2] * self.c_in
    }

    fn out_len(&self) -> usize {
        self.batch * self.positions * self.c_out
    }

    /// Input index on axis `a` of output index `o` and kernel index `j`, if inside.
    #[inline(always)]
    fn src(&self, a: usize, o: usize, j: usize) -> Option<usize> {
        let i = o as isize * self.s[a] + j as isize * self.d[a] - self.p[a];
        (i >= 0 && (i as usize) < self.n[a]).then_some(i as usize)
    }

    /// Calls `f(col_offset, x_offset, len)` for every run of real input cells of the
    /// window of output row `r` (a global row `b * positions + pos`), with `x_offset`
    /// relative to image `b - b0`, and `z(col_offset, len)` for every padded run.
    #[inline(always)]
    fn walk_row(&self, r: usize, b0: usize, mut f: impl FnMut(usize, usize, usize), mut z: impl FnMut(usize, usize)) {
        let c = self.c_in;
        let ow = r % self.o[2];
        let oh = (r / self.o[2]) % self.o[1];
        let od = (r / (self.o[2] * self.o[1])) % self.o[0];
        let b = r / self.positions - b0;
        let run = self.k[2] * c;
        let plane = self.k[1] * run;
        let iw0 = ow as isize * self.s[2] - self.p[2];
        let w_inside = self.d[2] == 1 && iw0 >= 0 && iw0 as usize + self.k[2] <= self.n[2];
        for kd in 0..self.k[0] {
            let off_d = kd * plane;
            let Some(id) = self.src(0, od, kd) else {
                z(off_d, plane);
                continue;
            };
            for kh in 0..self.k[1] {
                let off = off_d + kh * run;
                let Some(ih) = self.src(1, oh, kh) else {
                    z(off, run);
                    continue;
                };
                let pix = ((b * self.n[0] + id) * self.n[1] + ih) * self.n[2];
                if w_inside {
                    f(off, (pix + iw0 as usize) * c, run);
                } else {
                    for kw in 0..self.k[2] {
                        match self.src(2, ow, kw) {
                            Some(iw) => f(off + kw * c, (pix + iw) * c, c),
                            None => z(off + kw * c, c),
                        }
                    }
                }
            }
        }
    }

    /// Fill `col` with the im2col rows `r0 ..` (as many as fit), reading images from
    /// `x`, which starts at image `b0`.
    fn im2col<T: Element>(&self, x: &[T], b0: usize, r0: usize, col: &mut [T]) {
        for (i, row) in col.chunks_exact_mut(self.kw).enumerate() {
            // Both closures need `row`; a raw pointer keeps one borrow.
            let rp = row.as_mut_ptr();
            self.walk_row(
                r0 + i,
                b0,
                // SAFETY: walk_row's runs lie inside one row of length kw and inside the
                // image range of x (the plan's geometry guarantees both).
                |co, xo, len| unsafe { std::ptr::copy_nonoverlapping(x[xo..xo + len].as_ptr(), rp.add(co), len) },
                |co, len| unsafe { std::ptr::write_bytes(rp.add(co), 0, len) },
            );
        }
    }

    /// Scatter-add the rows of `dcol` (rows `r0 ..`) into `dx`, which starts at image `b0`.
    fn col2im<T: Element>(&self, dcol: &[T], b0: usize, r0: usize, dx: &mut [T]) {
        for (i, row) in dcol.chunks_exact(self.kw).enumerate() {
            self.walk_row(
                r0 + i,
                b0,
                |co, xo, len| {
                    for (d, &v) in dx[xo..xo + len].iter_mut().zip(&row[co..co + len]) {
                        *d += v;
                    }
                },
                |_, _| {},
            );
        }
    }
}

fn check_len(what: &str, got: usize, want: usize, shape: &[usize], plan: &ConvPlan) -> Result<()> {
    if got != want {
        return Err(Error::Value(format!(
            "{what} has {got} elements but the convolution plan (input shape {:?}, kernel {:?}) expects \
             shape {shape:?} ({want} elements)",
            plan.in_shape(),
            plan.weight_shape()
        )));
    }
    Ok(())
}

/// One contiguous range of images handled by one thread.
struct Task {
    b0: usize,
    b1: usize,
}

/// Split the batch into ranges, and say how many rows a piece holds and how many
/// threads each GEMM gets.
///
/// The split depends on the shape only, never on the thread count: the weight
/// gradient is summed task by task, so the same split gives the same bits on any
/// number of threads (rayon spreads the tasks over whatever threads there are).
fn schedule(g: &Geo, t: Tuning, buffers: usize, elem: usize) -> (Vec<Task>, usize, usize) {
    const TASKS: usize = 32;
    let nt = rayon::current_num_threads().max(1);
    let mut ntasks = if t.gemm_threads_only { 1 } else { TASKS.min(g.batch) };
    // Against a kernel larger than a piece, a task of one small image (49 rows at 7x7)
    // makes GEMMs that spend their time packing the kernel, and keeps a kernel-sized dW
    // partial per task (32 x 9.4 MB at 3x3x512 -> 512): tasks of at least
    // MIN_ROWS_LARGE_KERNEL_TASK rows instead (measured by tools/gemm_choice: ResNet-18's
    // 7x7x512 backward at batch 32 went from 288-307 to 104-122 ms with x86-v4 GEMMs).
    // Still a function of the shape only.
    if g.kw * g.c_out * elem > t.piece_bytes {
        ntasks = ntasks.min((g.batch * g.positions / MIN_ROWS_LARGE_KERNEL_TASK).max(1));
    }
    let gemm_threads = if ntasks < nt { nt } else { 1 };
    let tasks = (0..ntasks)
        .map(|i| Task {
            b0: i * g.batch / ntasks,
            b1: (i + 1) * g.batch / ntasks,
        })
        .collect();
    let per_row = (buffers * g.kw * elem).max(1);
    let mut piece_rows = ((t.budget_bytes / ntasks).min(t.piece_bytes) / per_row).max(1);
    // Each GEMM packs the whole kernel matrix (kw x c_out) again: against a kernel larger
    // than a piece, pieces of a few dozen rows spend their time packing it (measured:
    // 3x3x512 -> 512 at 14x14, 56-113-row pieces ran at 70-94 GFLOP/s, one 196-row GEMM
    // at 146). There a piece gets at least MIN_ROWS_LARGE_KERNEL rows, within
    // MAX_PIECE_BYTES (the split still depends on the shape only).
    if g.kw * g.c_out * elem > t.piece_bytes {
        let floor = MIN_ROWS_LARGE_KERNEL.min((MAX_PIECE_BYTES / per_row).max(1));
        piece_rows = piece_rows.max(floor);
    }
    (tasks, piece_rows, gemm_threads)
}

/// Split `buf` into one slice per task, `per_image` elements per image.
fn split_by_tasks<'a, T>(mut buf: &'a mut [T], tasks: &[Task], per_image: usize) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut((t.b1 - t.b0) * per_image);
        out.push(head);
        buf = tail;
    }
    out
}

/// Convolution forward: `y` of shape `(batch, *out_spatial, c_out)`.
pub fn conv_forward<T: Element>(x: &[T], w: &[T], bias: Option<&[T]>, plan: &ConvPlan) -> Result<Vec<T>> {
    conv_forward_tuned(x, w, bias, Activation::Linear, plan, Tuning::default())
}

/// `act(conv(x, w) + bias)` in one pass: the activation is applied to each piece of the
/// output right after its GEMM, while the piece is in cache (an elementwise activation:
/// linear, relu, sigmoid, tanh).
pub fn conv_forward_act<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Activation,
    plan: &ConvPlan,
) -> Result<Vec<T>> {
    conv_forward_tuned(x, w, bias, act, plan, Tuning::default())
}

/// `y (+)= a @ w` for a short inner dimension (K <= 32, e.g. the 3x3x1 first layer) and
/// C_out a multiple of the vector width (at most 8 vectors): each output row stays in
/// registers over all K, where a general GEMM spends its time packing. The accumulators
/// start from `bias` (else zero), so `y` is written once and never read. Returns false
/// (nothing done) when the shape or the CPU does not fit this path.
fn small_k_product<T: Element>(y: &mut [MaybeUninit<T>], a: &[T], w: &[T], k: usize, c_out: usize, bias: Option<&[T]>) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{has_avx2_fma, has_avx512};
        let wide = has_avx512();
        let l = if wide { T::WLANES } else { T::LANES };
        if k <= 32 && c_out % l == 0 && c_out / l <= 8 && has_avx2_fma() {
            let rows = y.len() / c_out;
            if a.len() < rows * k || w.len() < k * c_out || bias.is_some_and(|b| b.len() < c_out) {
                return false;
            }
            // SAFETY: the path's instruction set was checked above; lengths checked above
            // bound every access.
            unsafe {
                match (wide, c_out / l) {
                    (false, 1) => small_k_avx2::<T, 1>(y, a, w, k, bias),
                    (false, 2) => small_k_avx2::<T, 2>(y, a, w, k, bias),
                    (false, 4) => small_k_avx2::<T, 4>(y, a, w, k, bias),
                    (false, 8) => small_k_avx2::<T, 8>(y, a, w, k, bias),
                    (true, 1) => small_k_avx512::<T, 1>(y, a, w, k, bias),
                    (true, 2) => small_k_avx512::<T, 2>(y, a, w, k, bias),
                    (true, 4) => small_k_avx512::<T, 4>(y, a, w, k, bias),
                    (true, 8) => small_k_avx512::<T, 8>(y, a, w, k, bias),
                    _ => return false,
                }
            }
            return true;
        }
    }
    let _ = (y, a, w, k, c_out, bias);
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn small_k_avx2<T: Element, const NV: usize>(y: &mut [MaybeUninit<T>], a: &[T], w: &[T], k: usize, bias: Option<&[T]>) {
    small_k_body::<T, crate::cpu::vector::Avx2, NV>(y, a, w, k, bias)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn small_k_avx512<T: Element, const NV: usize>(y: &mut [MaybeUninit<T>], a: &[T], w: &[T], k: usize, bias: Option<&[T]>) {
    small_k_body::<T, crate::cpu::vector::Avx512, NV>(y, a, w, k, bias)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn small_k_body<T: Element, S: crate::cpu::vector::Simd<T>, const NV: usize>(
    y: &mut [MaybeUninit<T>],
    a: &[T],
    w: &[T],
    k: usize,
    bias: Option<&[T]>,
) {
    let l = S::LANES;
    let c_out = NV * l;
    let wp = w.as_ptr();
    let mut init = [S::zero(); NV];
    if let Some(b) = bias {
        for (v, init_v) in init.iter_mut().enumerate() {
            *init_v = S::load(b.as_ptr().add(v * l));
        }
    }
    for (r, yr) in y.chunks_exact_mut(c_out).enumerate() {
        // Written through a raw pointer: the slots may be uninitialised.
        let yp = yr.as_mut_ptr() as *mut T;
        let mut acc = init;
        let ar = &a[r * k..(r + 1) * k];
        for (j, &aj) in ar.iter().enumerate() {
            let s = S::splat(aj);
            let wr = wp.add(j * c_out);
            for (v, acc_v) in acc.iter_mut().enumerate() {
                *acc_v = S::fmadd(s, S::load(wr.add(v * l)), *acc_v);
            }
        }
        for (v, acc_v) in acc.iter().enumerate() {
            S::store(yp.add(v * l), *acc_v);
        }
    }
}

pub(crate) fn conv_forward_tuned<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Activation,
    plan: &ConvPlan,
    tuning: Tuning,
) -> Result<Vec<T>> {
    if !crate::cpu::nn::grad_from_output(act) {
        return Err(Error::Value("conv_forward: a fused activation must be elementwise (softmax is its own op)".into()));
    }
    let g = Geo::new(plan);
    check_len("x", x.len(), g.in_len(), &plan.in_shape(), plan)?;
    check_len("the kernel", w.len(), g.kw * g.c_out, &plan.weight_shape(), plan)?;
    if let Some(b) = bias {
        check_len("the bias", b.len(), g.c_out, &[g.c_out], plan)?;
    }
    // Uninitialised: every slot is written once below (never a zero pass first).
    let mut y = try_uninit::<T>(g.out_len(), "the convolution output")?;
    let (mut tasks, piece_rows, mut gemm_threads) = schedule(&g, tuning, 1, std::mem::size_of::<T>());
    if g.kw * g.c_out * std::mem::size_of::<T>() > tuning.piece_bytes && !tuning.gemm_threads_only {
        // A large kernel: one image range per thread, so each thread packs the kernel
        // once per piece of many rows rather than once per image of few rows (3x3x512
        // -> 512 at 14x14: 196 rows an image against a 9 MiB kernel). The forward sums
        // nothing across tasks, so this split may follow the thread count.
        let nt = rayon::current_num_threads().max(1);
        let ranges = nt.min(g.batch);
        tasks = (0..ranges)
            .map(|i| Task { b0: i * g.batch / ranges, b1: (i + 1) * g.batch / ranges })
            .collect();
        gemm_threads = if ranges < nt { nt } else { 1 };
    }
    let ys = split_by_tasks(&mut y, &tasks, g.positions * g.c_out);
    let wm = MatRef::row_major(w, g.kw, g.c_out);
    tasks.par_iter().zip(ys).try_for_each(|(t, yt)| -> Result<()> {
        let (r_begin, r_end) = (t.b0 * g.positions, t.b1 * g.positions);
        let mut col = if g.direct {
            Vec::new()
        } else {
            try_zeroed::<T>(piece_rows.min(r_end - r_begin) * g.kw, "the im2col buffer")?
        };
        let xt = &x[t.b0 * g.image_len()..t.b1 * g.image_len()];
        let mut r0 = r_begin;
        while r0 < r_end {
            let rows = piece_rows.min(r_end - r0);
            let a = if g.direct {
                &xt[(r0 - r_begin) * g.kw..][..rows * g.kw]
            } else {
                g.im2col(xt, t.b0, r0, &mut col[..rows * g.kw]);
                &col[..rows * g.kw]
            };
            let yp = &mut yt[(r0 - r_begin) * g.c_out..][..rows * g.c_out];
            if !small_k_product(yp, a, w, g.kw, g.c_out, bias) {
                // The GEMM adds to its output: start it from the bias (or zero).
                for row in yp.chunks_exact_mut(g.c_out) {
                    for (j, slot) in row.iter_mut().enumerate() {
                        slot.write(bias.map_or(T::zero(), |b| b[j]));
                    }
                }
                // SAFETY: every slot of yp was written just above.
                let yp = unsafe { std::slice::from_raw_parts_mut(yp.as_mut_ptr() as *mut T, yp.len()) };
                let beta = if bias.is_some() { T::one() } else { T::zero() };
                matmul(
                    MatMut::row_major(yp, rows, g.c_out),
                    T::one(),
                    MatRef::row_major(a, rows, g.kw),
                    wm,
                    beta,
                    gemm_threads,
                )?;
            }
            if act != Activation::Linear {
                // SAFETY: every slot of yp is written (small_k_product or the GEMM).
                let yp = unsafe { std::slice::from_raw_parts_mut(yp.as_mut_ptr() as *mut T, yp.len()) };
                crate::cpu::nn::activate_inplace(act, yp)?;
            }
            r0 += rows;
        }
        Ok(())
    })?;
    // SAFETY: the tasks cover every image and the pieces every output row; each piece
    // was written whole by small_k_product (which writes all its rows when it returns
    // true) or by the bias/zero fill before the GEMM.
    Ok(unsafe { assume_init_vec(y) })
}

/// Gradients of a convolution: `dx` (input shape, when asked for), `dw` (Keras kernel
/// layout) and `db` (c_out).
#[derive(Debug)]
pub struct ConvGrads<T> {
    pub dx: Option<Vec<T>>,
    pub dw: Vec<T>,
    pub db: Vec<T>,
}

/// Convolution backward from `dy` (output shape). `need_dx = false` skips the input
/// gradient (a first layer does not need it), saving about half the work.
pub fn conv_backward<T: Element>(x: &[T], w: &[T], dy: &[T], plan: &ConvPlan, need_dx: bool) -> Result<ConvGrads<T>> {
    conv_backward_tuned(x, w, dy, plan, need_dx, Tuning::default())
}

/// The backward of [`conv_forward_act`] from its output `y` and `dy`: each piece of
/// `dz = dy * act'(y)` is made in cache and fed to the GEMMs, never stored whole.
pub fn conv_backward_act<T: Element>(
    x: &[T],
    w: &[T],
    y: &[T],
    dy: &[T],
    act: Activation,
    plan: &ConvPlan,
    need_dx: bool,
) -> Result<ConvGrads<T>> {
    check_len("y", y.len(), plan.batch * plan.out_positions() * plan.c_out, &plan.out_shape(), plan)?;
    if !crate::cpu::nn::grad_from_output(act) {
        return Err(Error::Value("conv_backward: a fused activation must be elementwise (softmax is its own op)".into()));
    }
    let fused = if act == Activation::Linear { None } else { Some((act, y)) };
    conv_backward_impl(Some(x), w, dy, fused, plan, need_dx, Tuning::default())
}

/// The input gradient alone (`dw` and `db` left empty): the transposed convolution of
/// `dy` with `w`, which is how `conv_transpose` computes; no `x` is read.
pub fn conv_input_grad<T: Element>(w: &[T], dy: &[T], plan: &ConvPlan) -> Result<Vec<T>> {
    let g = conv_backward_impl(None, w, dy, None, plan, true, Tuning::default())?;
    Ok(g.dx.unwrap_or_default())
}

pub(crate) fn conv_backward_tuned<T: Element>(
    x: &[T],
    w: &[T],
    dy: &[T],
    plan: &ConvPlan,
    need_dx: bool,
    tuning: Tuning,
) -> Result<ConvGrads<T>> {
    conv_backward_impl(Some(x), w, dy, None, plan, need_dx, tuning)
}

/// The backward; `x = None` computes dx only (no weight or bias gradient).
fn conv_backward_impl<T: Element>(
    x: Option<&[T]>,
    w: &[T],
    dy: &[T],
    fused: Option<(Activation, &[T])>,
    plan: &ConvPlan,
    need_dx: bool,
    tuning: Tuning,
) -> Result<ConvGrads<T>> {
    let g = Geo::new(plan);
    let need_dw = x.is_some();
    if let Some(x) = x {
        check_len("x", x.len(), g.in_len(), &plan.in_shape(), plan)?;
    }
    check_len("the kernel", w.len(), g.kw * g.c_out, &plan.weight_shape(), plan)?;
    check_len("dy", dy.len(), g.out_len(), &plan.out_shape(), plan)?;
    let mut dx = if need_dx {
        Some(try_zeroed::<T>(g.in_len(), "the input gradient")?)
    } else {
        None
    };
    let buffers = if need_dx { 2 } else { 1 };
    let (tasks, piece_rows, gemm_threads) = schedule(&g, tuning, buffers, std::mem::size_of::<T>());
    let dxs: Vec<Option<&mut [T]>> = match dx.as_mut() {
        Some(d) => split_by_tasks(d, &tasks, g.image_len()).into_iter().map(Some).collect(),
        None => tasks.iter().map(|_| None).collect(),
    };
    let wt = MatRef::row_major(w, g.kw, g.c_out).t();
    let partials: Vec<(Vec<T>, Vec<T>)> = tasks
        .par_iter()
        .zip(dxs)
        .map(|(t, mut dxt)| -> Result<(Vec<T>, Vec<T>)> {
            let (r_begin, r_end) = (t.b0 * g.positions, t.b1 * g.positions);
            let mut dw = try_zeroed::<T>(if need_dw { g.kw * g.c_out } else { 0 }, "the kernel gradient")?;
            let mut db = vec![T::zero(); if need_dw { g.c_out } else { 0 }];
            let cap = piece_rows.min(r_end - r_begin) * g.kw;
            let mut col = if g.direct || !need_dw {
                Vec::new()
            } else {
                try_zeroed::<T>(cap, "the im2col buffer")?
            };
            let mut dcol = if g.direct || !need_dx {
                Vec::new()
            } else {
                try_zeroed::<T>(cap, "the im2col gradient buffer")?
            };
            let xt = x.map(|x| &x[t.b0 * g.image_len()..t.b1 * g.image_len()]);
            let mut dz = match fused {
                Some(_) => try_uninit::<T>(piece_rows.min(r_end - r_begin) * g.c_out, "the activation gradient piece")?,
                None => Vec::new(),
            };
            let mut r0 = r_begin;
            while r0 < r_end {
                let rows = piece_rows.min(r_end - r0);
                let mut dyp = &dy[r0 * g.c_out..][..rows * g.c_out];
                if let Some((act, y)) = fused {
                    let d = &mut dz[..rows * g.c_out];
                    crate::cpu::nn::activation_grad_piece(act, &y[r0 * g.c_out..][..rows * g.c_out], dyp, d)?;
                    // SAFETY: activation_grad_piece wrote every slot of d.
                    dyp = unsafe { std::slice::from_raw_parts(d.as_ptr() as *const T, d.len()) };
                }
                let dym = MatRef::row_major(dyp, rows, g.c_out);
                if let Some(xt) = xt {
                    for row in dyp.chunks_exact(g.c_out) {
                        for (s, &v) in db.iter_mut().zip(row) {
                            *s += v;
                        }
                    }
                    let a = if g.direct {
                        &xt[(r0 - r_begin) * g.kw..][..rows * g.kw]
                    } else {
                        g.im2col(xt, t.b0, r0, &mut col[..rows * g.kw]);
                        &col[..rows * g.kw]
                    };
                    let dwm = MatMut::row_major(&mut dw[..], g.kw, g.c_out);
                    matmul(
                        dwm,
                        T::one(),
                        MatRef::row_major(a, rows, g.kw).t(),
                        dym,
                        T::one(),
                        gemm_threads,
                    )?;
                }
                if let Some(dxt) = dxt.as_deref_mut() {
                    if g.direct {
                        let dxp = &mut dxt[(r0 - r_begin) * g.kw..][..rows * g.kw];
                        matmul(
                            MatMut::row_major(dxp, rows, g.kw),
                            T::one(),
                            dym,
                            wt,
                            T::zero(),
                            gemm_threads,
                        )?;
                    } else {
                        let dc = &mut dcol[..rows * g.kw];
                        matmul(
                            MatMut::row_major(&mut dc[..], rows, g.kw),
                            T::one(),
                            dym,
                            wt,
                            T::zero(),
                            gemm_threads,
                        )?;
                        g.col2im(dc, t.b0, r0, dxt);
                    }
                }
                r0 += rows;
            }
            Ok((dw, db))
        })
        .collect::<Result<_>>()?;
    let mut it = partials.into_iter();
    let (mut dw, mut db) = it.next().unwrap_or_default();
    for (pw, pb) in it {
        for (a, b) in dw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    Ok(ConvGrads { dx, dw, db })
}

fn dense_check(what: &str, got: usize, shape: [usize; 2]) -> Result<usize> {
    let want = crate::error::checked_numel(&shape)?;
    if got != want {
        return Err(Error::Value(format!(
            "dense: {what} has {got} elements but shape {shape:?} ({want} elements) was expected"
        )));
    }
    Ok(want)
}

/// Dense layer forward: `y (n, d_out) = x (n, d_in) * w (d_in, d_out) + bias`.
pub fn dense_forward<T: Element>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    n: usize,
    d_in: usize,
    d_out: usize,
) -> Result<Vec<T>> {
    dense_check("x", x.len(), [n, d_in])?;
    dense_check("the kernel", w.len(), [d_in, d_out])?;
    let len = dense_check("y", n.saturating_mul(d_out), [n, d_out])?;
    let mut y = try_zeroed::<T>(len, "the dense output")?;
    let beta = match bias {
        Some(b) => {
            dense_check("the bias", b.len(), [1, d_out])?;
            if d_out > 0 {
                for row in y.chunks_exact_mut(d_out) {
                    row.copy_from_slice(b);
                }
            }
            T::one()
        }
        None => T::zero(),
    };
    let nt = rayon::current_num_threads();
    matmul(
        MatMut::row_major(&mut y, n, d_out),
        T::one(),
        MatRef::row_major(x, n, d_in),
        MatRef::row_major(w, d_in, d_out),
        beta,
        nt,
    )?;
    Ok(y)
}

/// Dense layer backward from `dy (n, d_out)`: returns `(dx, dw, db)`, `dx` only when
/// `need_dx`.
#[allow(clippy::type_complexity)]
pub fn dense_backward<T: Element>(
    x: &[T],
    w: &[T],
    dy: &[T],
    n: usize,
    d_in: usize,
    d_out: usize,
    need_dx: bool,
) -> Result<(Option<Vec<T>>, Vec<T>, Vec<T>)> {
    dense_check("x", x.len(), [n, d_in])?;
    let wl = dense_check("the kernel", w.len(), [d_in, d_out])?;
    dense_check("dy", dy.len(), [n, d_out])?;
    let nt = rayon::current_num_threads();
    let dym = MatRef::row_major(dy, n, d_out);
    let dx = if need_dx {
        let mut dx = try_zeroed::<T>(x.len(), "the dense input gradient")?;
        matmul(
            MatMut::row_major(&mut dx, n, d_in),
            T::one(),
            dym,
            MatRef::row_major(w, d_in, d_out).t(),
            T::zero(),
            nt,
        )?;
        Some(dx)
    } else {
        None
    };
    let mut dw = try_zeroed::<T>(wl, "the dense kernel gradient")?;
    matmul(
        MatMut::row_major(&mut dw, d_in, d_out),
        T::one(),
        MatRef::row_major(x, n, d_in).t(),
        dym,
        T::zero(),
        nt,
    )?;
    let mut db = vec![T::zero(); d_out];
    if d_out > 0 {
        for row in dy.chunks_exact(d_out) {
            for (s, &v) in db.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    Ok((dx, dw, db))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::pool::Padding;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn rand_vec(n: usize, seed: &mut u64) -> Vec<f64> {
        (0..n).map(|_| lcg(seed)).collect()
    }

    /// Direct loop over the definition, independent of Geo.
    fn naive(x: &[f64], w: &[f64], bias: Option<&[f64]>, p: &ConvPlan) -> Vec<f64> {
        let nd = p.ndim();
        let mut y = vec![0.0; p.out_shape().iter().product()];
        let out_n = p.out_positions();
        let kn: usize = p.kernel.iter().product();
        let mut yi = 0;
        for b in 0..p.batch {
            for pos in 0..out_n {
                // unravel pos over out_spatial
                let mut o = vec![0; nd];
                let mut rem = pos;
                for a in (0..nd).rev() {
                    o[a] = rem % p.out_spatial[a];
                    rem /= p.out_spatial[a];
                }
                for co in 0..p.c_out {
                    let mut s = bias.map_or(0.0, |b| b[co]);
                    for kj in 0..kn {
                        let mut j = vec![0; nd];
                        let mut rem = kj;
                        for a in (0..nd).rev() {
                            j[a] = rem % p.kernel[a];
                            rem /= p.kernel[a];
                        }
                        let mut flat = b;
                        let mut inside = true;
                        for a in 0..nd {
                            let i = (o[a] * p.strides[a] + j[a] * p.dilation[a]) as isize - p.pad_before[a] as isize;
                            if i < 0 || i as usize >= p.spatial[a] {
                                inside = false;
                            }
                            flat = flat * p.spatial[a] + i.max(0) as usize;
                        }
                        if !inside {
                            continue;
                        }
                        for ci in 0..p.c_in {
                            s += x[flat * p.c_in + ci] * w[(kj * p.c_in + ci) * p.c_out + co];
                        }
                    }
                    y[yi] = s;
                    yi += 1;
                }
            }
        }
        y
    }

    fn max_rel(got: &[f64], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        got.iter().zip(want).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
    }

    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(
        usize,
        Vec<usize>,
        usize,
        usize,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Padding,
    )> {
        use Padding::*;
        vec![
            (2, vec![9], 3, 4, vec![3], vec![1], vec![1], Valid),
            // Short K and C_out a multiple of the vector width: the small-K path.
            (2, vec![9, 8], 1, 32, vec![3, 3], vec![1, 1], vec![1, 1], Valid),
            (2, vec![6, 7], 2, 16, vec![2, 2], vec![1, 1], vec![1, 1], Same),
            (1, vec![8], 1, 8, vec![5], vec![1], vec![1], Valid),
            (3, vec![10], 2, 3, vec![3], vec![2], vec![2], Same),
            (1, vec![7], 1, 2, vec![4], vec![1], vec![1], Same),
            (2, vec![7, 6], 3, 5, vec![3, 3], vec![1, 1], vec![1, 1], Valid),
            (2, vec![7, 8], 2, 3, vec![3, 2], vec![2, 2], vec![1, 1], Same),
            (2, vec![9, 7], 3, 4, vec![3, 3], vec![1, 2], vec![2, 1], Same),
            (3, vec![11, 9], 1, 4, vec![3, 3], vec![2, 1], vec![2, 2], Valid),
            (2, vec![5, 5], 4, 3, vec![1, 1], vec![1, 1], vec![1, 1], Valid),
            (2, vec![5, 6], 3, 2, vec![1, 1], vec![2, 2], vec![1, 1], Same),
            (2, vec![3, 4], 2, 3, vec![5, 6], vec![1, 1], vec![1, 1], Same),
            (
                2,
                vec![5, 6, 4],
                2,
                3,
                vec![3, 2, 2],
                vec![1, 2, 1],
                vec![1, 1, 2],
                Same,
            ),
            (
                1,
                vec![6, 5, 7],
                3,
                2,
                vec![2, 3, 3],
                vec![2, 1, 2],
                vec![2, 1, 1],
                Valid,
            ),
        ]
    }

    #[test]
    fn conv_forward_matches_naive() {
        let mut seed = 7;
        for (batch, sp, ci, co, k, s, d, pad) in cases() {
            let p = ConvPlan::new(batch, &sp, ci, co, &k, &s, &d, pad).unwrap();
            let x = rand_vec(p.in_shape().iter().product(), &mut seed);
            let w = rand_vec(p.weight_shape().iter().product(), &mut seed);
            let b = rand_vec(co, &mut seed);
            let want = naive(&x, &w, Some(&b), &p);
            for tuning in [
                Tuning::default(),
                Tuning {
                    budget_bytes: 64,
                    ..Tuning::default()
                },
                Tuning {
                    budget_bytes: 1 << 20,
                    gemm_threads_only: true,
                    ..Tuning::default()
                },
            ] {
                let got = crate::threads::install(|| conv_forward_tuned(&x, &w, Some(&b), Activation::Linear, &p, tuning))
                    .unwrap()
                    .unwrap();
                assert!(
                    max_rel(&got, &want) < 1e-13,
                    "{p:?} {tuning:?}: {}",
                    max_rel(&got, &want)
                );
            }
            let got = conv_forward(&x, &w, None, &p).unwrap();
            assert!(max_rel(&got, &naive(&x, &w, None, &p)) < 1e-13, "{p:?}");
            // float32
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let got: Vec<f64> = conv_forward(&xf, &wf, Some(&bf), &p)
                .unwrap()
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert!(max_rel(&got, &want) < 1e-5, "{p:?}");
        }
    }

    /// A kernel matrix larger than a piece takes the large-kernel split (pieces of at
    /// least MIN_ROWS_LARGE_KERNEL rows; one image range per thread in the forward).
    #[test]
    fn conv_large_kernel_matches_naive() {
        let mut seed = 11;
        // f64 3x3x128 -> 256: 2.25 MiB of kernel; batch 5 splits unevenly.
        for (batch, sp, pad) in [
            (5, vec![5, 4], Padding::Same),
            (1, vec![6, 6], Padding::Valid),
        ] {
            let p = ConvPlan::new(batch, &sp, 128, 256, &[3, 3], &[1, 1], &[1, 1], pad).unwrap();
            assert!(p.weight_shape().iter().product::<usize>() * 8 > COL_PIECE_BYTES);
            let x = rand_vec(p.in_shape().iter().product(), &mut seed);
            let w = rand_vec(p.weight_shape().iter().product(), &mut seed);
            let b = rand_vec(256, &mut seed);
            let want = naive(&x, &w, Some(&b), &p);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| conv_forward(&x, &w, Some(&b), &p)).unwrap();
                assert!(
                    max_rel(&got, &want) < 1e-13,
                    "{p:?} {threads}: {}",
                    max_rel(&got, &want)
                );
            }
            let dy = rand_vec(p.out_shape().iter().product(), &mut seed);
            let one = Tuning {
                budget_bytes: usize::MAX / 2,
                piece_bytes: usize::MAX,
                ..Tuning::default()
            };
            let g1 = conv_backward(&x, &w, &dy, &p, true).unwrap();
            let g2 = conv_backward_tuned(&x, &w, &dy, &p, true, one).unwrap();
            assert!(max_rel(g1.dx.as_ref().unwrap(), g2.dx.as_ref().unwrap()) < 1e-12);
            assert!(max_rel(&g1.dw, &g2.dw) < 1e-12);
            assert!(max_rel(&g1.db, &g2.db) < 1e-12);
        }
    }

    /// Central differences of L = sum(y * r) with respect to every entry of `v`.
    fn numeric(v: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let h = 1e-4;
        let mut v = v.to_vec();
        (0..v.len())
            .map(|i| {
                let keep = v[i];
                v[i] = keep + h;
                let up = f(&v);
                v[i] = keep - h;
                let down = f(&v);
                v[i] = keep;
                (up - down) / (2.0 * h)
            })
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn conv_backward_matches_finite_differences() {
        let mut seed = 11;
        for (batch, sp, ci, co, k, s, d, pad) in cases() {
            let p = ConvPlan::new(batch, &sp, ci, co, &k, &s, &d, pad).unwrap();
            let x = rand_vec(p.in_shape().iter().product(), &mut seed);
            let w = rand_vec(p.weight_shape().iter().product(), &mut seed);
            let b = rand_vec(co, &mut seed);
            let r = rand_vec(p.out_shape().iter().product(), &mut seed);
            let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&conv_forward(x, w, Some(b), &p).unwrap(), &r);
            let ndx = numeric(&x, |v| loss(v, &w, &b));
            let ndw = numeric(&w, |v| loss(&x, v, &b));
            let ndb = numeric(&b, |v| loss(&x, &w, v));
            for tuning in [
                Tuning::default(),
                Tuning {
                    budget_bytes: 64,
                    ..Tuning::default()
                },
                Tuning {
                    budget_bytes: 1 << 20,
                    gemm_threads_only: true,
                    ..Tuning::default()
                },
            ] {
                let gr = crate::threads::install(|| conv_backward_tuned(&x, &w, &r, &p, true, tuning))
                    .unwrap()
                    .unwrap();
                let (e_dx, e_dw, e_db) = (
                    max_rel(gr.dx.as_ref().unwrap(), &ndx),
                    max_rel(&gr.dw, &ndw),
                    max_rel(&gr.db, &ndb),
                );
                assert!(
                    e_dx <= 1e-6 && e_dw <= 1e-6 && e_db <= 1e-6,
                    "{p:?} {tuning:?}: {e_dx} {e_dw} {e_db}"
                );
            }
            let gr = conv_backward(&x, &w, &r, &p, false).unwrap();
            assert!(gr.dx.is_none());
            assert!(max_rel(&gr.dw, &ndw) <= 1e-6);
        }
    }

    #[test]
    fn conv_chunked_batch_equals_one_chunk() {
        let p = ConvPlan::new(37, &[12, 11], 3, 5, &[3, 3], &[1, 1], &[1, 1], Padding::Same).unwrap();
        let mut seed = 3;
        let x = rand_vec(p.in_shape().iter().product(), &mut seed);
        let w = rand_vec(p.weight_shape().iter().product(), &mut seed);
        let b = rand_vec(5, &mut seed);
        let dy = rand_vec(p.out_shape().iter().product(), &mut seed);
        let one = Tuning {
            budget_bytes: usize::MAX / 2,
            piece_bytes: usize::MAX,
            ..Tuning::default()
        };
        // 4 KiB: a piece is a few rows, so each image takes several pieces.
        let small = Tuning {
            budget_bytes: 4096,
            ..Tuning::default()
        };
        let y1 = conv_forward_tuned(&x, &w, Some(&b), Activation::Linear, &p, one).unwrap();
        let y2 = conv_forward_tuned(&x, &w, Some(&b), Activation::Linear, &p, small).unwrap();
        assert!(max_rel(&y2, &y1) < 1e-14);
        let g1 = conv_backward_tuned(&x, &w, &dy, &p, true, one).unwrap();
        let g2 = conv_backward_tuned(&x, &w, &dy, &p, true, small).unwrap();
        assert!(max_rel(g2.dx.as_ref().unwrap(), g1.dx.as_ref().unwrap()) < 1e-14);
        assert!(max_rel(&g2.dw, &g1.dw) < 1e-13);
        assert!(max_rel(&g2.db, &g1.db) < 1e-13);
        // and both against the reference
        assert!(max_rel(&y2, &naive(&x, &w, Some(&b), &p)) < 1e-13);
    }

    #[test]
    fn conv_bad_lengths_are_errors() {
        let p = ConvPlan::new(2, &[5, 5], 3, 4, &[3, 3], &[1, 1], &[1, 1], Padding::Valid).unwrap();
        let x = vec![0f32; 2 * 25 * 3];
        let w = vec![0f32; 9 * 12];
        let e = conv_forward(&x[1..], &w, None, &p).unwrap_err();
        assert!(
            e.to_string().contains("[2, 5, 5, 3]") && e.to_string().contains("149"),
            "{e}"
        );
        let e = conv_forward(&x, &w[1..], None, &p).unwrap_err();
        assert!(e.to_string().contains("[3, 3, 3, 4]"), "{e}");
        assert!(conv_forward(&x, &w, Some(&[0.0; 3]), &p).is_err());
        let e = conv_backward(&x, &w, &[0.0; 5], &p, true).unwrap_err();
        assert!(e.to_string().contains("[2, 3, 3, 4]"), "{e}");
        assert!(dense_forward(&x, &w, None, 2, 74, 4).is_err());
        assert!(dense_backward(&x, &w, &[0.0; 3], 2, 75, 4, true).is_err());
    }

    #[test]
    fn conv_dense_matches_finite_differences() {
        let mut seed = 5;
        for &(n, di, dout) in &[(1, 1, 1), (5, 7, 3), (17, 33, 9)] {
            let x = rand_vec(n * di, &mut seed);
            let w = rand_vec(di * dout, &mut seed);
            let b = rand_vec(dout, &mut seed);
            let r = rand_vec(n * dout, &mut seed);
            let y = dense_forward(&x, &w, Some(&b), n, di, dout).unwrap();
            for i in 0..n {
                for o in 0..dout {
                    let want = b[o] + (0..di).map(|j| x[i * di + j] * w[j * dout + o]).sum::<f64>();
                    assert!((y[i * dout + o] - want).abs() < 1e-12);
                }
            }
            let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&dense_forward(x, w, Some(b), n, di, dout).unwrap(), &r);
            let (dx, dw, db) = dense_backward(&x, &w, &r, n, di, dout, true).unwrap();
            assert!(max_rel(&dx.unwrap(), &numeric(&x, |v| loss(v, &w, &b))) <= 1e-6);
            assert!(max_rel(&dw, &numeric(&w, |v| loss(&x, v, &b))) <= 1e-6);
            assert!(max_rel(&db, &numeric(&b, |v| loss(&x, &w, v))) <= 1e-6);
            let (dx, _, _) = dense_backward(&x, &w, &r, n, di, dout, false).unwrap();
            assert!(dx.is_none());
        }
        // zero-sized: y is just the bias / empty, no panic
        assert_eq!(
            dense_forward::<f64>(&[], &[], Some(&[1.0, 2.0]), 1, 0, 2).unwrap(),
            vec![1.0, 2.0]
        );
        assert!(dense_forward::<f64>(&[], &[], None, 0, 3, 0).unwrap().is_empty());
    }

    /// cargo test --release --lib conv_throughput -- --ignored --nocapture
    /// (CONV_REPS sets the repetitions; variants are interleaved and the best time of
    /// each kept, so a burst of load from other processes hits all variants alike).
    #[test]
    #[ignore]
    fn conv_throughput() {
        let shapes = [
            (128, 28, 1, 32, 3),
            (128, 13, 32, 64, 3),
            (64, 32, 64, 64, 3),
            (64, 32, 32, 64, 5),
        ];
        let d = Tuning::default();
        let variants: [(&str, Tuning); 4] = [
            ("default", d),
            (
                "piece 512KB",
                Tuning {
                    piece_bytes: 512 << 10,
                    ..d
                },
            ),
            (
                "piece 8MB",
                Tuning {
                    piece_bytes: 8 << 20,
                    ..d
                },
            ),
            (
                "gemm threads",
                Tuning {
                    gemm_threads_only: true,
                    ..d
                },
            ),
        ];
        println!("threads: {}", crate::threads::get_num_threads());
        let reps = std::env::var("CONV_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7usize);
        for (n, hw, ci, co, k) in shapes {
            let p = ConvPlan::new(n, &[hw, hw], ci, co, &[k, k], &[1, 1], &[1, 1], Padding::Valid).unwrap();
            let mut seed = 1;
            let x: Vec<f32> = rand_vec(p.in_shape().iter().product(), &mut seed)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let w: Vec<f32> = rand_vec(p.weight_shape().iter().product(), &mut seed)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let b: Vec<f32> = vec![0.1; co];
            let dy: Vec<f32> = rand_vec(p.out_shape().iter().product(), &mut seed)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let fl = p.flops();
            let time = |f: &dyn Fn()| {
                let t0 = std::time::Instant::now();
                f();
                t0.elapsed().as_secs_f64()
            };
            // best[variant] = (fwd, bwd with dx, bwd dw only)
            let mut best = [[f64::INFINITY; 3]; 4];
            for rep in 0..=reps {
                for (vi, &(_, t)) in variants.iter().enumerate() {
                    let ts = [
                        time(&|| {
                            crate::threads::install(|| conv_forward_tuned(&x, &w, Some(&b), Activation::Linear, &p, t).unwrap()).unwrap();
                        }),
                        time(&|| {
                            crate::threads::install(|| conv_backward_tuned(&x, &w, &dy, &p, true, t).unwrap()).unwrap();
                        }),
                        time(&|| {
                            crate::threads::install(|| conv_backward_tuned(&x, &w, &dy, &p, false, t).unwrap())
                                .unwrap();
                        }),
                    ];
                    if rep > 0 {
                        for j in 0..3 {
                            best[vi][j] = best[vi][j].min(ts[j]);
                        }
                    }
                }
            }
            for (vi, (name, _)) in variants.iter().enumerate() {
                let [tf, tb, tbw] = best[vi];
                println!(
                    "({n},{hw},{hw},{ci}->{co},k{k}) {name:12} fwd {:7.2} ms {:6.1} GF/s | bwd(dx,dw) {:7.2} ms {:6.1} GF/s | \
                     bwd(dw only) {:7.2} ms | fwd+bwd {:7.2} ms {:6.1} GF/s",
                    tf * 1e3,
                    fl / tf / 1e9,
                    tb * 1e3,
                    2.0 * fl / tb / 1e9,
                    tbw * 1e3,
                    (tf + tb) * 1e3,
                    3.0 * fl / (tf + tb) / 1e9
                );
            }
        }
    }
}
