//! The GPU op drivers: validate against the same specs as the CPU (`crate::ops`), split
//! the work so each binding fits the device's window, and dispatch the WGSL kernels.

use super::{gpu, Gpu, GpuTensor, Kernel, Win, ALIGN, PARAMS};
use crate::error::{Error, Result};
use crate::ops::conv::ConvPlan;
use crate::ops::depthwise::DepthwisePlan;
use crate::ops::norm::NormPlan;
use crate::ops::nn::{Activation, Loss};
use crate::ops::optim::OptimStep;
use crate::ops::correlate::{Boundary, CorrPlan};
use crate::ops::pool::{PoolKind, PoolPlan};
use crate::ops::resize::{Interpolation, UpsamplePlan};

const ELEM: &str = include_str!("shaders/elementwise.wgsl");
// The GEMM kernel in four tile shapes (TM x TN): the host picks the one that wastes
// least for the product's M and N.
const GEMM: &str = concat!("const TM: u32 = 64u;\nconst TN: u32 = 64u;\n", include_str!("shaders/gemm.wgsl"));
const GEMM_TALL: &str = concat!("const TM: u32 = 128u;\nconst TN: u32 = 32u;\n", include_str!("shaders/gemm.wgsl"));
const GEMM_WIDE: &str = concat!("const TM: u32 = 32u;\nconst TN: u32 = 128u;\n", include_str!("shaders/gemm.wgsl"));
const GEMM_SMALL: &str = concat!("const TM: u32 = 32u;\nconst TN: u32 = 32u;\n", include_str!("shaders/gemm.wgsl"));
const NN: &str = include_str!("shaders/nn.wgsl");
const CONV: &str = include_str!("shaders/conv.wgsl");
const POOL: &str = include_str!("shaders/pool.wgsl");
const CORR: &str = include_str!("shaders/correlate.wgsl");
const RESIZE: &str = include_str!("shaders/resize.wgsl");
const DEPTHWISE: &str = include_str!("shaders/depthwise.wgsl");
const NORM: &str = include_str!("shaders/norm.wgsl");
const ARRAY: &str = include_str!("shaders/array.wgsl");
const OPTIM: &str = include_str!("shaders/optim.wgsl");

/// Largest rank of the strided array kernels.
pub const MAX_RANK: usize = 6;

crate::gpu_params! {
    /// Parameters of the generic array kernels (`shaders/array.wgsl`).
    pub struct ArrayParams {
        count: u32,
        op: u32,
        rank: u32,
        a_base: u32,
        b_base: u32,
        /// The output shape (reductions: outer, n, inner).
        shape: [u32; 6],
        /// Element strides of each operand per output axis (0: broadcast; negative: flipped).
        a_strides: [i32; 6],
        b_strides: [i32; 6],
        /// The third operand (`where`'s condition); pad: the input's sizes.
        c_base: u32,
        c_strides: [i32; 6],
        /// clip's bounds; pad: `lo` holds the fill value's bits.
        lo: f32,
        hi: f32,
        /// Bit 0: operand a (unary: x; where: the condition) holds uint32 values, bit 1:
        /// operand b does, bit 2: operand c does.
        flags: u32,
    }
}

crate::gpu_params! {
    /// fill / axpby / axpby_inplace / mul (`shaders/elementwise.wgsl`): `a` is the fill
    /// value or alpha, `b` beta.
    pub struct ElemParams as elem { count: u32, a: f32, b: f32 }
}

crate::gpu_params! {
    /// act_fwd / act_bwd: `act` is `Activation::code()`.
    pub struct ActParams as act { count: u32, act: u32 }
}

crate::gpu_params! {
    /// dropout: the counter-based stream's key and 53-bit threshold (lo, hi words), the
    /// keep scale, this chunk's first global index, and the drop-everything flag.
    pub struct DropoutParams as drop { count: u32, key: [u32; 2], threshold: [u32; 2], scale: f32, index_base: u32,
                                       drop_all: u32 }
}

crate::gpu_params! {
    /// flag_nonfinite: the element counts of the up to five inputs (0: unbound).
    pub struct FlagParams as flag { count: u32, n1: u32, n2: u32, n3: u32, n4: u32, n5: u32 }
}

crate::gpu_params! {
    /// sgd: velocity and nesterov are flags.
    pub struct SgdParams as sgd { count: u32, lr: f32, momentum: f32, use_velocity: u32, nesterov: u32 }
}

crate::gpu_params! {
    /// adam: alpha is the bias-corrected step size.
    pub struct AdamParams as adam { count: u32, alpha: f32, one_minus_beta1: f32, one_minus_beta2: f32, eps: f32 }
}

crate::gpu_params! {
    /// optim_update (`shaders/optim.wgsl`): `rule` is `Rule::code()`, `flags` the
    /// `crate::ops::optim` bits, `c` the rule's coefficients, `wd` the weight-decay step.
    pub struct OptimParams as opt { count: u32, rule: u32, flags: u32, wd: f32, clip: f32, c: [f32; 8] }
}

crate::gpu_params! {
    /// copy_cols: a (rows, width) block between row-strided buffers.
    pub struct CopyColsParams as cols { count: u32, src_stride: u32, src_col: u32, dst_stride: u32, dst_col: u32,
                                        width: u32 }
}

crate::gpu_params! {
    /// col_stats (`shaders/nn.wgsl`): per-column reductions of a (rows, cols) block;
    /// mode 0 scaled sums, 3 batch-norm variance part, 2 batch-norm backward sums; `add`
    /// accumulates into the outputs (row chunks); `scale` (modes 0, 3) or eps (mode 2).
    pub struct ColStatsParams as cs { rows: u32, cols: u32, mode: u32, add: u32, scale: f32 }
}

crate::gpu_params! {
    /// bn_apply / bn_backward: `rows` (all rows of the batch) and `training` serve the
    /// backward only, `has_beta` the forward only.
    pub struct BnParams as bn { count: u32, channels: u32, eps: f32, has_gamma: u32, has_beta: u32, rows: u32,
                                training: u32 }
}

crate::gpu_params! {
    /// softmax / softmax_bwd: one thread per row.
    pub struct SoftmaxParams as sm { rows: u32, cols: u32 }
}

crate::gpu_params! {
    /// global_pool / global_pool_bwd over (batch, positions, channels); kind 0 max, 1 avg.
    pub struct GlobalPoolParams as gp { count: u32, positions: u32, channels: u32, kind: u32 }
}

crate::gpu_params! {
    /// loss_rows / loss_elems: `kind` is `Loss::code()`; `inv_n` the mean's 1 / count.
    pub struct LossParams as loss { count: u32, classes: u32, kind: u32, from_logits: u32, inv_n: f32 }
}

crate::gpu_params! {
    /// loss_reduce: sum the [loss, hit] pairs, scaled, into the batch's pair.
    pub struct LossReduceParams as lred { pairs: u32, loss_scale: f32, hit_scale: f32, add: u32 }
}

crate::gpu_params! {
    /// correlate (`shaders/correlate.wgsl`): up to 4 axes, leading ones padded with 1;
    /// boundary 0 constant, 1 reflect, 2 mirror, 3 nearest, 4 wrap, 5 overlap only (outside
    /// positions add nothing: `CorrPlan::overlap_only`); `flags` bit 0: axis 0 of the input
    /// is a slice whose rows are already resolved (chunked correlation), bit 1: zero
    /// weights are left out (`CorrPlan::skip_zero`).
    pub struct CorrParams { count: u32, boundary: u32, cval: f32, flags: u32, in_size: [i32; 4],
                            k_size: [u32; 4], out_size: [u32; 4], offset: [i32; 4] }
}

/// The accessors of every parameter struct of `shaders/nn.wgsl` (one module).
fn nn_params() -> String {
    [ColStatsParams::wgsl(), BnParams::wgsl(), SoftmaxParams::wgsl(), GlobalPoolParams::wgsl(), LossParams::wgsl(),
     LossReduceParams::wgsl()].concat()
}

/// The accessors of every parameter struct of `shaders/elementwise.wgsl` (one module).
fn elementwise_params() -> String {
    [ElemParams::wgsl(), ActParams::wgsl(), DropoutParams::wgsl(), SgdParams::wgsl(), AdamParams::wgsl(),
     CopyColsParams::wgsl(), FlagParams::wgsl()].concat()
}

crate::gpu_params! {
    /// Parameters of the local pooling kernels (`shaders/pool.wgsl`); spatial sizes are
    /// padded to three axes with trailing ones (the layout is unchanged, and axis 0 is
    /// the first real spatial axis). A dispatch may cover rows `row0 .. row0 + in_rows`
    /// of axis 0 of the input and `orow0 .. orow0 + out_rows` of the output (one sample
    /// larger than a binding); argmax indices are always whole-sample ones.
    pub struct PoolParams {
        /// Threads: outputs (forward) or inputs (backward) in this dispatch.
        count: u32,
        /// 0 max, 1 average.
        kind: u32,
        channels: u32,
        in_size: [u32; 3],
        out_size: [u32; 3],
        pool: [u32; 3],
        strides: [u32; 3],
        pad_before: [u32; 3],
        row0: u32,
        in_rows: u32,
        orow0: u32,
        out_rows: u32,
    }
}

crate::gpu_params! {
    /// Parameters of the upsampling kernels (`shaders/resize.wgsl`).
    pub struct UpsampleParams {
        /// Threads: outputs (forward) or inputs (backward) in this dispatch.
        count: u32,
        channels: u32,
        in_h: u32,
        in_w: u32,
        size_h: u32,
        size_w: u32,
        /// 0 nearest, 1 bilinear.
        bilinear: u32,
    }
}

crate::gpu_params! {
    /// Parameters of the depthwise convolution kernels (`shaders/depthwise.wgsl`);
    /// geometry padded to three spatial axes.
    pub struct DepthwiseParams {
        /// Threads: outputs (forward), inputs (dx) or kernel elements (dk).
        count: u32,
        channels: u32,
        mult: u32,
        in_size: [u32; 3],
        out_size: [u32; 3],
        kernel: [u32; 3],
        strides: [u32; 3],
        dilation: [u32; 3],
        pad_before: [u32; 3],
        /// Samples in this dispatch (dk).
        nb: u32,
        /// dk: add to the kernel gradient already there (a later batch chunk).
        accumulate: u32,
    }
}

crate::gpu_params! {
    /// Parameters of the fused group / layer normalization kernels (`shaders/norm.wgsl`).
    pub struct NormParams {
        /// Workgroups that work: rows * groups.
        count: u32,
        rows: u32,
        pixels: u32,
        groups: u32,
        cg: u32,
        epsilon: f32,
        has_gamma: u32,
        has_beta: u32,
    }
}

macro_rules! kernels {
    ($($id:ident = $file:ident :: $entry:literal $(with $params:ident)?),* $(,)?) => {
        $(const $id: Kernel = Kernel {
            name: stringify!($file), src: $file, entry: $entry, params: kernels!(@params $($params)?),
        };)*
        /// Every kernel, for the build-all test.
        pub const ALL_KERNELS: &[Kernel] = &[$($id),*];
    };
    (@params) => { None };
    (@params elementwise_params) => { Some(elementwise_params as fn() -> String) };
    (@params nn_params) => { Some(nn_params as fn() -> String) };
    (@params $p:ident) => { Some($p::wgsl as fn() -> String) };
}

kernels! {
    K_FILL = ELEM::"fill" with elementwise_params,
    K_AXPBY = ELEM::"axpby" with elementwise_params,
    K_AXPBY_IN = ELEM::"axpby_inplace" with elementwise_params,
    K_FLAG_NONFINITE = ELEM::"flag_nonfinite" with elementwise_params,
    K_MUL = ELEM::"mul" with elementwise_params,
    K_ACT = ELEM::"act_fwd" with elementwise_params,
    K_ACT_BWD = ELEM::"act_bwd" with elementwise_params,
    K_DROPOUT = ELEM::"dropout" with elementwise_params,
    K_SGD = ELEM::"sgd" with elementwise_params,
    K_ADAM = ELEM::"adam" with elementwise_params,
    K_OPTIM = OPTIM::"optim_update" with OptimParams,
    K_COPY_COLS = ELEM::"copy_cols" with elementwise_params,
    K_GEMM = GEMM::"gemm",
    K_GEMM_TALL = GEMM_TALL::"gemm",
    K_GEMM_WIDE = GEMM_WIDE::"gemm",
    K_GEMM_SMALL = GEMM_SMALL::"gemm",
    K_SPLIT_REDUCE = GEMM::"split_reduce",
    K_CONV_DX = CONV::"conv_dx_direct",
    K_COL = NN::"col_stats" with nn_params,
    K_BN = NN::"bn_apply" with nn_params,
    K_BN_BWD = NN::"bn_backward" with nn_params,
    K_SOFTMAX = NN::"softmax" with nn_params,
    K_SOFTMAX_BWD = NN::"softmax_bwd" with nn_params,
    K_GPOOL = NN::"global_pool" with nn_params,
    K_GPOOL_BWD = NN::"global_pool_bwd" with nn_params,
    K_GPOOL_BWD_TIES = NN::"global_pool_bwd_ties" with nn_params,
    K_LOSS_ROWS = NN::"loss_rows" with nn_params,
    K_LOSS_ELEMS = NN::"loss_elems" with nn_params,
    K_LOSS_REDUCE = NN::"loss_reduce" with nn_params,
    K_POOL = POOL::"pool_fwd" with PoolParams,
    K_POOL_BWD = POOL::"pool_bwd" with PoolParams,
    K_CORR = CORR::"correlate" with CorrParams,
    K_UPSAMPLE = RESIZE::"upsample_fwd" with UpsampleParams,
    K_UNARY = ARRAY::"unary_op" with ArrayParams,
    K_BINARY = ARRAY::"binary_op" with ArrayParams,
    K_GATHER = ARRAY::"gather" with ArrayParams,
    K_REDUCE_AXIS = ARRAY::"reduce_axis" with ArrayParams,
    K_WHERE = ARRAY::"where_op" with ArrayParams,
    K_PAD = ARRAY::"pad_op" with ArrayParams,
    K_SCATTER = ARRAY::"scatter_op" with ArrayParams,
    K_TAKE = ARRAY::"take_op" with ArrayParams,
    K_INDEX_ADD = ARRAY::"index_add_op" with ArrayParams,
    K_UPSAMPLE_BWD = RESIZE::"upsample_bwd" with UpsampleParams,
    K_DW_FWD = DEPTHWISE::"dw_fwd" with DepthwiseParams,
    K_DW_DX = DEPTHWISE::"dw_dx" with DepthwiseParams,
    K_DW_DK = DEPTHWISE::"dw_dk" with DepthwiseParams,
    K_NORM_FWD = NORM::"norm_fwd" with NormParams,
    K_NORM_DX = NORM::"norm_dx" with NormParams,
    K_NORM_DGB = NORM::"norm_dgb" with NormParams,
}

fn p() -> [u32; PARAMS] {
    [0; PARAMS]
}

fn u(x: usize, what: &str) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::Value(format!("{what} = {x} is too large for the GPU kernels (max 2^32 - 1)")))
}

fn groups(n: usize) -> u64 {
    (n as u64).div_ceil(256)
}

/// Words one binding may cover, less one alignment block for the window start.
fn window_words(g: &Gpu) -> usize {
    ((g.binding_limit() - ALIGN) / 4) as usize
}

/// Element ranges of at most the window size (multiples of 64 words, so every chunk
/// starts on an aligned offset).
fn elem_chunks(g: &Gpu, n: usize) -> Vec<(usize, usize)> {
    let step = (window_words(g) / 64 * 64).max(64);
    (0..n).step_by(step).map(|s| (s, step.min(n - s))).collect()
}

/// Batch ranges such that every per-sample size times the range fits a window.
fn batch_chunks(g: &Gpu, batch: usize, per_sample: &[usize], what: &str) -> Result<Vec<(usize, usize)>> {
    let big = per_sample.iter().copied().max().unwrap_or(1).max(1);
    let room = window_words(g);
    if big > room {
        return Err(Error::Memory(format!(
            "{what}: one sample needs {} in one GPU binding, more than the device allows ({})",
            super::human_bytes(big as u64 * 4),
            super::human_bytes(g.binding_limit())
        )));
    }
    let per = (room / big).max(1);
    Ok((0..batch).step_by(per).map(|s| (s, per.min(batch - s))).collect())
}

fn too_big(g: &Gpu, what: &str, words: usize) -> Error {
    Error::Memory(format!(
        "{what}: one sample needs {} in one GPU binding, more than the device allows ({}), and one row of it \
         does not fit either",
        super::human_bytes(words as u64 * 4),
        super::human_bytes(g.binding_limit())
    ))
}

fn whole(g: &Gpu, t: &GpuTensor, what: &str) -> Result<()> {
    if (t.numel() as u64) * 4 + ALIGN > g.binding_limit() {
        return Err(Error::Memory(format!(
            "{what} of shape {:?} does not fit one GPU binding ({} max)",
            t.shape,
            super::human_bytes(g.binding_limit())
        )));
    }
    Ok(())
}

/// Columns `k0 .. k0 + kn` of the (nr, k) window `xw`: the window itself for one block,
/// else copied into `blk` (contiguous, nr * kn).
fn x_block<'a>(g: &Gpu, xw: &Win<'a>, blk: Option<&'a GpuTensor>, k: usize, k0: usize, nr: usize, kn: usize) -> Result<Win<'a>> {
    match blk {
        Some(t) => {
            copy_cols_win(g, Win { ..*xw }, k, k0, Win::part(t, 0, nr * kn), kn, 0, nr, kn)?;
            Ok(Win::part(t, 0, nr * kn))
        }
        None => Ok(Win { ..*xw }),
    }
}

/// `None` when a (k, m) kernel fits one binding; else how many of its rows one binding
/// takes (a row of m values must fit).
fn kernel_rows_per_binding(g: &Gpu, w: &GpuTensor, k: usize, m: usize, what: &str) -> Result<Option<usize>> {
    if (w.numel() as u64) * 4 + ALIGN <= g.binding_limit() {
        return Ok(None);
    }
    let rows = window_words(g) / m.max(1);
    if rows == 0 {
        return Err(Error::Memory(format!(
            "{what} of shape ({k}, {m}): one row of {m} values does not fit one GPU binding ({} max)",
            super::human_bytes(g.binding_limit())
        )));
    }
    Ok(Some(rows.min(k.max(1))))
}

fn same_len(a: &GpuTensor, b: &GpuTensor, what: &str) -> Result<()> {
    if a.numel() != b.numel() {
        return Err(Error::Value(format!("{what}: shapes {:?} and {:?} differ", a.shape, b.shape)));
    }
    Ok(())
}

/// A fresh copy of `t` (used where one buffer would be bound twice).
pub fn copy(t: &GpuTensor) -> Result<GpuTensor> {
    let g = gpu()?;
    let mut o = g.empty(&t.shape, "a copy")?;
    o.int = t.int;
    if t.numel() > 0 {
        g.record(|enc| enc.copy_buffer_to_buffer(t.buf.raw(), 0, o.buf.raw(), 0, (t.numel() as u64) * 4))?;
    }
    Ok(o)
}

/// A copy of `t` when it shares its buffer with `other` (one buffer may not be bound to
/// two read-write slots of a dispatch), else `None`.
fn unshared(t: &GpuTensor, other: &GpuTensor) -> Result<Option<GpuTensor>> {
    if t.buf.same(&other.buf) {
        copy(t).map(Some)
    } else {
        Ok(None)
    }
}

/// Copy `words` 32-bit words between buffers (offsets in words).
fn copy_words(g: &Gpu, src: &GpuTensor, so: usize, dst: &GpuTensor, d_o: usize, words: usize) -> Result<()> {
    if words == 0 {
        return Ok(());
    }
    g.record(|enc| enc.copy_buffer_to_buffer(src.buf.raw(), so as u64 * 4, dst.buf.raw(), d_o as u64 * 4, words as u64 * 4))
}

pub fn fill(t: &GpuTensor, v: f64) -> Result<()> {
    let g = gpu()?;
    for (s, n) in elem_chunks(&g, t.numel()) {
        let q = ElemParams { count: u(n, "size")?, a: v as f32, b: 0.0 };
        g.dispatch(&K_FILL, &[Win::part(t, s, n)], q.words(), groups(n))?;
    }
    Ok(())
}

/// `alpha * a + beta * b` as a new tensor.
pub fn axpby(a: &GpuTensor, b: &GpuTensor, alpha: f64, beta: f64) -> Result<GpuTensor> {
    same_len(a, b, "elementwise operation")?;
    let g = gpu()?;
    let b2 = unshared(b, a)?;
    let b = b2.as_ref().unwrap_or(b);
    let out = g.empty(&a.shape, "an elementwise result")?;
    for (s, n) in elem_chunks(&g, a.numel()) {
        let q = ElemParams { count: u(n, "size")?, a: alpha as f32, b: beta as f32 };
        g.dispatch(&K_AXPBY, &[Win::part(a, s, n), Win::part(b, s, n), Win::part(&out, s, n)], q.words(), groups(n))?;
    }
    Ok(out)
}

/// The slot of a training step's guard in the in-place update kernels.
const GUARD_SLOT: usize = 5;

fn check_guard(guard: Option<&GpuTensor>) -> Result<()> {
    match guard {
        Some(t) if t.numel() == 0 => Err(Error::Value("a step guard needs an element".into())),
        _ => Ok(()),
    }
}

/// `p = alpha * p + beta * v` in place; nothing is written once `guard` is set.
pub fn axpby_inplace(pt: &GpuTensor, v: &GpuTensor, alpha: f64, beta: f64, guard: Option<&GpuTensor>) -> Result<()> {
    same_len(pt, v, "in-place update")?;
    check_guard(guard)?;
    let g = gpu()?;
    for (s, n) in elem_chunks(&g, pt.numel()) {
        let q = ElemParams { count: u(n, "size")?, a: alpha as f32, b: beta as f32 };
        let mut wins = vec![(0, Win::part(pt, s, n)), (1, Win::part(v, s, n))];
        wins.extend(guard.map(|t| (GUARD_SLOT, Win::all(t))));
        g.dispatch_at(&K_AXPBY_IN, &wins, q.words(), groups(n))?;
    }
    Ok(())
}

/// Set `flag[0]` to NaN if any of `xs` holds an inf or NaN; leave it otherwise (a
/// training step's guard accumulates over its loss and gradients). Up to five tensors
/// go in one dispatch.
pub fn flag_nonfinite(xs: &[&GpuTensor], flag: &GpuTensor) -> Result<()> {
    check_guard(Some(flag))?;
    if xs.iter().any(|x| std::ptr::eq(x.buf.as_ref(), flag.buf.as_ref())) {
        return Err(Error::Value("flag_nonfinite: the flag cannot be its own input".into()));
    }
    let g = gpu()?;
    // Element ranges of each tensor (one binding each), packed five windows a dispatch.
    let mut parts: Vec<(&GpuTensor, usize, usize)> = Vec::new();
    for x in xs {
        for (s, n) in elem_chunks(&g, x.numel()) {
            parts.push((x, s, n));
        }
    }
    for five in parts.chunks(5) {
        let n = |i: usize| five.get(i).map(|p| p.2).unwrap_or(0);
        let count = (0..5).map(n).max().unwrap_or(0);
        let q = FlagParams {
            count: u(count, "size")?,
            n1: u(n(0), "size")?,
            n2: u(n(1), "size")?,
            n3: u(n(2), "size")?,
            n4: u(n(3), "size")?,
            n5: u(n(4), "size")?,
        };
        let mut wins: Vec<(usize, Win<'_>)> = five.iter().enumerate().map(|(i, p)| (i, Win::part(p.0, p.1, p.2))).collect();
        wins.push((GUARD_SLOT, Win::all(flag)));
        g.dispatch_at(&K_FLAG_NONFINITE, &wins, q.words(), groups(count))?;
    }
    Ok(())
}

pub fn mul(a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
    same_len(a, b, "multiply")?;
    let g = gpu()?;
    let b2 = unshared(b, a)?;
    let b = b2.as_ref().unwrap_or(b);
    let out = g.empty(&a.shape, "a product")?;
    for (s, n) in elem_chunks(&g, a.numel()) {
        let q = ElemParams { count: u(n, "size")?, a: 0.0, b: 0.0 };
        g.dispatch(&K_MUL, &[Win::part(a, s, n), Win::part(b, s, n), Win::part(&out, s, n)], q.words(), groups(n))?;
    }
    Ok(out)
}

/// Activation kinds of the shaders (softmax is row-wise, handled apart).
fn rows(t: &GpuTensor) -> (usize, usize) {
    let last = *t.shape.last().unwrap_or(&1);
    let r = if last == 0 { 0 } else { t.numel() / last };
    (r, last)
}

pub fn activation_forward(act: Activation, x: &GpuTensor) -> Result<GpuTensor> {
    let code = act.code();
    let g = gpu()?;
    let out = g.empty(&x.shape, "the activation output")?;
    if code == 4 {
        let (r, k) = rows(x);
        for (b0, nb) in batch_chunks(&g, r, &[k], "softmax")? {
            let q = SoftmaxParams { rows: u(nb, "rows")?, cols: u(k, "classes")? };
            g.dispatch(&K_SOFTMAX, &[Win::part(x, b0 * k, nb * k), Win::part(&out, b0 * k, nb * k)], q.words(),
                       groups(nb))?;
        }
        return Ok(out);
    }
    for (s, n) in elem_chunks(&g, x.numel()) {
        let q = ActParams { count: u(n, "size")?, act: code };
        g.dispatch(&K_ACT, &[Win::part(x, s, n), Win::part(&out, s, n)], q.words(), groups(n))?;
    }
    Ok(out)
}

pub fn activation_backward(act: Activation, x: &GpuTensor, y: &GpuTensor, dy: &GpuTensor) -> Result<GpuTensor> {
    let code = act.code();
    same_len(x, dy, "activation backward")?;
    same_len(y, dy, "activation backward")?;
    let g = gpu()?;
    let out = g.empty(&dy.shape, "the activation gradient")?;
    if code == 4 {
        let (r, k) = rows(y);
        for (b0, nb) in batch_chunks(&g, r, &[k], "softmax backward")? {
            let q = SoftmaxParams { rows: u(nb, "rows")?, cols: u(k, "classes")? };
            let w = |t| Win::part(t, b0 * k, nb * k);
            g.dispatch(&K_SOFTMAX_BWD, &[w(y), w(dy), w(&out)], q.words(), groups(nb))?;
        }
        return Ok(out);
    }
    // x, y and dy may share a buffer (linear activations): bind copies then.
    let y2 = unshared(y, dy)?;
    let y = y2.as_ref().unwrap_or(y);
    let x2 = match unshared(x, dy)? {
        Some(c) => Some(c),
        None => unshared(x, y)?,
    };
    let x = x2.as_ref().unwrap_or(x);
    for (s, n) in elem_chunks(&g, dy.numel()) {
        let q = ActParams { count: u(n, "size")?, act: code };
        let w = |t| Win::part(t, s, n);
        g.dispatch(&K_ACT_BWD, &[w(x), w(y), w(dy), w(&out)], q.words(), groups(n))?;
    }
    Ok(out)
}

/// Inverted dropout with the CPU's counter-based stream (the same mask for the same seed).
pub fn dropout_forward(x: &GpuTensor, rate: f64, seed: u64) -> Result<(GpuTensor, GpuTensor)> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(Error::Value(format!("dropout rate must be in [0, 1], got {rate}")));
    }
    let g = gpu()?;
    let y = g.empty(&x.shape, "the dropout output")?;
    let mask = g.empty(&x.shape, "the dropout mask")?;
    let key = crate::cpu::nn::splitmix64(seed ^ 0x5851_F42D_4C95_7F2D);
    let th = (rate * (1u64 << 53) as f64).ceil() as u64;
    let keep = if rate < 1.0 { 1.0 / (1.0 - rate) } else { 0.0 };
    for (s, n) in elem_chunks(&g, x.numel()) {
        let q = DropoutParams {
            count: u(n, "size")?,
            key: [key as u32, (key >> 32) as u32],
            threshold: [th as u32, (th >> 32) as u32],
            scale: keep as f32,
            index_base: u(s, "dropout index")?,
            drop_all: (rate >= 1.0) as u32,
        };
        let w = |t| Win::part(t, s, n);
        g.dispatch(&K_DROPOUT, &[w(x), w(&y), w(&mask)], q.words(), groups(n))?;
    }
    Ok((y, mask))
}

pub fn sgd_update(pt: &GpuTensor, gr: &GpuTensor, v: Option<&GpuTensor>, lr: f64, momentum: f64, nesterov: bool, guard: Option<&GpuTensor>) -> Result<()> {
    same_len(pt, gr, "sgd: grad")?;
    check_guard(guard)?;
    if let Some(v) = v {
        same_len(pt, v, "sgd: velocity")?;
    } else if momentum != 0.0 {
        return Err(Error::Value(format!("sgd: momentum={momentum} needs a velocity buffer")));
    }
    let g = gpu()?;
    for (s, n) in elem_chunks(&g, pt.numel()) {
        let q = SgdParams {
            count: u(n, "size")?,
            lr: lr as f32,
            momentum: momentum as f32,
            use_velocity: v.is_some() as u32,
            nesterov: nesterov as u32,
        };
        let mut wins = vec![(0, Win::part(pt, s, n)), (1, Win::part(gr, s, n))];
        wins.extend(v.map(|v| (2, Win::part(v, s, n))));
        wins.extend(guard.map(|t| (GUARD_SLOT, Win::all(t))));
        g.dispatch_at(&K_SGD, &wins, q.words(), groups(n))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    pt: &GpuTensor,
    gr: &GpuTensor,
    m: &GpuTensor,
    v: &GpuTensor,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: u64,
    guard: Option<&GpuTensor>,
) -> Result<()> {
    same_len(pt, gr, "adam: grad")?;
    check_guard(guard)?;
    same_len(pt, m, "adam: m")?;
    same_len(pt, v, "adam: v")?;
    if t == 0 {
        return Err(Error::Value("adam: the step t counts from 1, got 0".into()));
    }
    let tf = t as f64;
    let alpha = lr * (1.0 - beta2.powf(tf)).sqrt() / (1.0 - beta1.powf(tf));
    let g = gpu()?;
    for (s, n) in elem_chunks(&g, pt.numel()) {
        let q = AdamParams {
            count: u(n, "size")?,
            alpha: alpha as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            eps: eps as f32,
        };
        let w = |t| Win::part(t, s, n);
        let mut wins = vec![(0, w(pt)), (1, w(gr)), (2, w(m)), (3, w(v))];
        wins.extend(guard.map(|t| (GUARD_SLOT, Win::all(t))));
        g.dispatch_at(&K_ADAM, &wins, q.words(), groups(n))?;
    }
    Ok(())
}

/// One optimizer step (any rule) in place on `pt` and its state `slots`, skipped when
/// the step guard is set; the spec was checked by `OptimStep::new`.
pub fn optim_update(s: &OptimStep, pt: &GpuTensor, gr: &GpuTensor, slots: [Option<&GpuTensor>; 3], guard: Option<&GpuTensor>) -> Result<()> {
    same_len(pt, gr, "optimizer_update: gradient")?;
    check_guard(guard)?;
    for (k, sl) in slots.iter().enumerate() {
        if let Some(sl) = sl {
            same_len(pt, sl, &format!("optimizer_update: state slot {k} ({})", s.rule.slot_names()[k]))?;
        }
    }
    let g = gpu()?;
    let c = s.coefficients::<f32>();
    for (st, n) in elem_chunks(&g, pt.numel()) {
        let q = OptimParams {
            count: u(n, "size")?,
            rule: s.rule.code(),
            flags: s.flags,
            wd: s.wd_lr as f32,
            clip: s.clip as f32,
            c,
        };
        let mut wins = vec![(0, Win::part(pt, st, n)), (1, Win::part(gr, st, n))];
        for (k, sl) in slots.iter().enumerate() {
            if let Some(sl) = sl {
                wins.push((2 + k, Win::part(sl, st, n)));
            }
        }
        wins.extend(guard.map(|t| (GUARD_SLOT, Win::all(t))));
        g.dispatch_at(&K_OPTIM, &wins, q.words(), groups(n))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ GEMM family

struct Gemm<'a> {
    a: Win<'a>,
    b: Win<'a>,
    c: Win<'a>,
    bias: Option<Win<'a>>,
    m: usize,
    n: usize,
    k: usize,
    amode: u32,
    bmode: u32,
    accumulate: bool,
    geom: [u32; PARAMS],
}

fn run_gemm(g: &Gpu, s: Gemm<'_>) -> Result<()> {
    if s.m == 0 || s.n == 0 {
        return Ok(());
    }
    let mut q = s.geom;
    q[8] = u(s.m, "rows")?;
    q[9] = u(s.n, "columns")?;
    q[10] = u(s.k, "inner size")?;
    q[11] = s.amode;
    q[12] = s.bmode;
    q[13] = s.accumulate as u32 | if s.bias.is_some() { 2 } else { 0 };
    let (kernel, tile_m, tile_n) = match (s.m <= 32, s.n <= 32) {
        (true, true) => (&K_GEMM_SMALL, 32, 32),
        (false, true) => (&K_GEMM_TALL, 128, 32),
        (true, false) => (&K_GEMM_WIDE, 32, 128),
        (false, false) => (&K_GEMM, 64, 64),
    };
    let tm = s.m.div_ceil(tile_m);
    q[14] = u(tm, "tiles")?;
    let tiles = (tm as u64) * (s.n.div_ceil(tile_n) as u64);
    // Few output tiles and a long K (weight gradients): split K over workgroups so the
    // whole device works, then reduce the partial products.
    let want = (TARGET_GROUPS / tiles.max(1)).min((s.k / 64) as u64);
    let room = (window_words(g) / (s.m * s.n).max(1)) as u64;
    let splits = want.min(room).min(256);
    if splits >= 2 {
        let kps = s.k.div_ceil(splits as usize).div_ceil(16) * 16;
        let splits = s.k.div_ceil(kps);
        let part = g.empty(&[splits * s.m * s.n], "split-K partial sums")?;
        q[13] = 4;
        q[15] = u(kps, "split size")?;
        g.dispatch(kernel, &[s.a, s.b, Win::all(&part)], q, tiles * splits as u64)?;
        let mut r = p();
        r[8] = u(s.m * s.n, "size")?;
        r[9] = u(splits, "splits")?;
        r[10] = u(s.n, "columns")?;
        r[13] = s.accumulate as u32 | if s.bias.is_some() { 2 } else { 0 };
        let mut wins = vec![Win::all(&part), s.c];
        if let Some(b) = s.bias {
            wins.push(b);
        }
        return g.dispatch(&K_SPLIT_REDUCE, &wins, r, groups(s.m * s.n));
    }
    let mut wins = vec![s.a, s.b, s.c];
    if let Some(b) = s.bias {
        wins.push(b);
    }
    g.dispatch(kernel, &wins, q, tiles)
}

/// Workgroups a GEMM should spread over before K is split (a few per compute unit on
/// large GPUs).
const TARGET_GROUPS: u64 = 512;

/// Write spatial vectors (1 to 3 axes) into 3-word groups of the parameter block, with
/// leading axes filled by `fill` (1 for sizes, 0 for padding): `(values, fill, word)`.
fn put_spatial(q: &mut [u32; PARAMS], sets: &[(&[usize], usize, usize)], what: &str) -> Result<()> {
    for &(v, fill, at) in sets {
        q[at..at + 3].copy_from_slice(&spatial3(v, fill, what)?);
    }
    Ok(())
}

/// Convolution geometry words (3 spatial axes, leading ones).
fn conv_geom(plan: &ConvPlan) -> Result<[u32; PARAMS]> {
    let mut q = p();
    put_spatial(
        &mut q,
        &[
            (&plan.spatial, 1, 16),
            (&plan.out_spatial, 1, 19),
            (&plan.kernel, 1, 22),
            (&plan.strides, 1, 25),
            (&plan.dilation, 1, 28),
            (&plan.pad_before, 0, 32),
        ],
        "a convolution size",
    )?;
    q[35] = u(plan.c_in, "input channels")?;
    q[36] = u(plan.c_out, "filters")?;
    Ok(q)
}

fn check_len(t: &GpuTensor, want: usize, what: &str) -> Result<()> {
    if t.numel() != want {
        return Err(Error::Value(format!("{what}: expected {want} elements, got shape {:?}", t.shape)));
    }
    Ok(())
}

/// `x (rows, k) @ w (k, m) + b`.
pub fn dense_forward(x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>, k: usize, m: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    check_len(w, k * m, "dense: kernel")?;
    if x.numel() % k.max(1) != 0 {
        return Err(Error::Value(format!("dense: input of shape {:?} does not have {k} features", x.shape)));
    }
    let r = if k == 0 { 0 } else { x.numel() / k };
    if let Some(b) = b {
        check_len(b, m, "dense: bias")?;
    }
    let out = g.empty(&[r, m], "the dense output")?;
    // A kernel larger than one binding goes in row blocks W[k0..k1]: y = sum over blocks
    // of x[:, k0..k1] @ W[k0..k1], each block of x copied contiguous first. One block
    // (the usual case) reads x in place.
    let kc = kernel_rows_per_binding(&g, w, k, m, "a dense kernel")?.unwrap_or(k.max(1));
    for (r0, nr) in batch_chunks(&g, r, &[k, m], "dense")? {
        let xw = Win::part(x, r0 * k, nr * k);
        let blk = if kc < k { Some(g.empty(&[nr * kc], "a dense input block")?) } else { None };
        for k0 in (0..k.max(1)).step_by(kc) {
            let kn = kc.min(k - k0.min(k));
            let a = x_block(&g, &xw, blk.as_ref(), k, k0, nr, kn)?;
            run_gemm(&g, Gemm {
                a,
                b: Win::part(w, k0 * m, kn * m),
                c: Win::part(&out, r0 * m, nr * m),
                bias: if k0 == 0 { b.map(Win::all) } else { None },
                m: nr,
                n: m,
                k: kn,
                amode: 0,
                bmode: 0,
                accumulate: k0 > 0,
                geom: p(),
            })?;
        }
    }
    Ok(out)
}

/// Column sums of `t` viewed as (rows, cols), accumulated over row chunks.
pub fn col_sums(t: &GpuTensor, cols: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    let r = if cols == 0 { 0 } else { t.numel() / cols };
    let out = g.zeros(&[cols], "column sums")?;
    for (i, (r0, nr)) in batch_chunks(&g, r, &[cols], "column sums")?.into_iter().enumerate() {
        let q = ColStatsParams { rows: u(nr, "rows")?, cols: u(cols, "columns")?, mode: 0, add: (i > 0) as u32, scale: 1.0 };
        g.dispatch(&K_COL, &[Win::part(t, r0 * cols, nr * cols), Win::all(&out)], q.words(), cols as u64)?;
    }
    Ok(out)
}

/// `(dx, dw, db)` of a dense layer.
pub fn dense_backward(
    x: &GpuTensor,
    w: &GpuTensor,
    dz: &GpuTensor,
    k: usize,
    m: usize,
    need_dx: bool,
) -> Result<(Option<GpuTensor>, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    check_len(w, k * m, "dense backward: kernel")?;
    let r = if m == 0 { 0 } else { dz.numel() / m };
    check_len(x, r * k, "dense backward: x")?;
    let dw = g.zeros(&[k, m], "the dense kernel gradient")?;
    let dx = if need_dx { Some(g.empty(&[r, k], "the dense input gradient")?) } else { None };
    // Row blocks of the kernel as in dense_forward: dW[k0..k1] += x[:, k0..k1]^T dz and
    // dx[:, k0..k1] = dz W[k0..k1]^T, through a contiguous block of x / dx when there
    // is more than one block.
    let kc = kernel_rows_per_binding(&g, w, k, m, "a dense kernel")?.unwrap_or(k.max(1));
    for (i, (r0, nr)) in batch_chunks(&g, r, &[k, m], "dense backward")?.into_iter().enumerate() {
        let xw = Win::part(x, r0 * k, nr * k);
        let blk = if kc < k { Some(g.empty(&[nr * kc], "a dense block")?) } else { None };
        for k0 in (0..k.max(1)).step_by(kc) {
            let kn = kc.min(k - k0.min(k));
            let a = x_block(&g, &xw, blk.as_ref(), k, k0, nr, kn)?;
            // dW (kn, m) += x^T (kn, nr) @ dz (nr, m)
            run_gemm(&g, Gemm {
                a,
                b: Win::part(dz, r0 * m, nr * m),
                c: Win::part(&dw, k0 * m, kn * m),
                bias: None,
                m: kn,
                n: m,
                k: nr,
                amode: 1,
                bmode: 0,
                accumulate: i > 0,
                geom: p(),
            })?;
            if let Some(dx) = &dx {
                // dx (nr, kn) = dz (nr, m) @ W^T
                let c = match &blk {
                    Some(t) => Win::part(t, 0, nr * kn),
                    None => Win::part(dx, r0 * k, nr * k),
                };
                run_gemm(&g, Gemm {
                    a: Win::part(dz, r0 * m, nr * m),
                    b: Win::part(w, k0 * m, kn * m),
                    c,
                    bias: None,
                    m: nr,
                    n: kn,
                    k: m,
                    amode: 0,
                    bmode: 1,
                    accumulate: false,
                    geom: p(),
                })?;
                if let Some(t) = &blk {
                    copy_cols_win(&g, Win::part(t, 0, nr * kn), kn, 0, Win::part(dx, r0 * k, nr * k), k, k0, nr, kn)?;
                }
            }
        }
    }
    let db = col_sums(dz, m)?;
    Ok((dx, dw, db))
}

pub fn conv_forward(x: &GpuTensor, w: &GpuTensor, b: Option<&GpuTensor>, plan: &ConvPlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let in_img: usize = plan.spatial.iter().product::<usize>() * plan.c_in;
    let pos: usize = plan.out_spatial.iter().product();
    let kq: usize = plan.kernel.iter().product();
    check_len(x, plan.batch * in_img, "convolution: x")?;
    check_len(w, kq * plan.c_in * plan.c_out, "convolution: kernel")?;
    if let Some(b) = b {
        check_len(b, plan.c_out, "convolution: bias")?;
    }
    whole(&g, w, "a convolution kernel")?;
    let out = g.empty(&plan.out_shape(), "the convolution output")?;
    let geom = conv_geom(plan)?;
    let out_img = pos * plan.c_out;
    for (b0, nb) in batch_chunks(&g, plan.batch, &[in_img, out_img], "convolution")? {
        run_gemm(&g, Gemm {
            a: Win::part(x, b0 * in_img, nb * in_img),
            b: Win::all(w),
            c: Win::part(&out, b0 * out_img, nb * out_img),
            bias: b.map(Win::all),
            m: nb * pos,
            n: plan.c_out,
            k: kq * plan.c_in,
            amode: 2,
            bmode: 0,
            accumulate: false,
            geom,
        })?;
    }
    Ok(out)
}

/// Up to this many input channels the input gradient is computed directly (one thread
/// per element) rather than as an implicit GEMM with N = C_in.
const DIRECT_DX_MAX_CIN: usize = 4;

/// `(dx, dw, db)` of a convolution.
pub fn conv_backward(
    x: &GpuTensor,
    w: &GpuTensor,
    dz: &GpuTensor,
    plan: &ConvPlan,
    need_dx: bool,
) -> Result<(Option<GpuTensor>, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    let in_img: usize = plan.spatial.iter().product::<usize>() * plan.c_in;
    let in_pos: usize = plan.spatial.iter().product();
    let pos: usize = plan.out_spatial.iter().product();
    let kq: usize = plan.kernel.iter().product();
    check_len(x, plan.batch * in_img, "convolution backward: x")?;
    check_len(w, kq * plan.c_in * plan.c_out, "convolution backward: kernel")?;
    check_len(dz, plan.batch * pos * plan.c_out, "convolution backward: dz")?;
    let dw = g.zeros(&plan.weight_shape(), "the convolution kernel gradient")?;
    whole(&g, &dw, "a convolution kernel gradient")?;
    let dx = if need_dx { Some(g.empty(&plan.in_shape(), "the convolution input gradient")?) } else { None };
    let geom = conv_geom(plan)?;
    let out_img = pos * plan.c_out;
    for (i, (b0, nb)) in batch_chunks(&g, plan.batch, &[in_img, out_img], "convolution backward")?.into_iter().enumerate() {
        run_gemm(&g, Gemm {
            a: Win::part(x, b0 * in_img, nb * in_img),
            b: Win::part(dz, b0 * out_img, nb * out_img),
            c: Win::all(&dw),
            bias: None,
            m: kq * plan.c_in,
            n: plan.c_out,
            k: nb * pos,
            amode: 3,
            bmode: 0,
            accumulate: i > 0,
            geom,
        })?;
        if let Some(dx) = &dx {
            if plan.c_in <= DIRECT_DX_MAX_CIN {
                let mut q = geom;
                q[8] = u(nb * in_img, "input-gradient elements")?;
                g.dispatch(
                    &K_CONV_DX,
                    &[Win::part(dz, b0 * out_img, nb * out_img), Win::all(w), Win::part(dx, b0 * in_img, nb * in_img)],
                    q,
                    groups(nb * in_img),
                )?;
                continue;
            }
            run_gemm(&g, Gemm {
                a: Win::part(dz, b0 * out_img, nb * out_img),
                b: Win::all(w),
                c: Win::part(dx, b0 * in_img, nb * in_img),
                bias: None,
                m: nb * in_pos,
                n: plan.c_in,
                k: kq * plan.c_out,
                amode: 4,
                bmode: 2,
                accumulate: false,
                geom,
            })?;
        }
    }
    let db = col_sums(dz, plan.c_out)?;
    Ok((dx, dw, db))
}

// ------------------------------------------------------------------ pooling

/// Three spatial sizes, leading axes filled with `fill`.
fn spatial3(v: &[usize], fill: usize, what: &str) -> Result<[u32; 3]> {
    let lead = 3 - v.len();
    let mut out = [0u32; 3];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u(if i < lead { fill } else { v[i - lead] }, what)?;
    }
    Ok(out)
}

/// `v` padded to three entries with trailing `fill`s.
fn trailing3(v: &[usize], fill: usize, what: &str) -> Result<[u32; 3]> {
    let mut out = [0u32; 3];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u(v.get(i).copied().unwrap_or(fill), what)?;
    }
    Ok(out)
}

fn pool_params(plan: &PoolPlan) -> Result<PoolParams> {
    const W: &str = "a pooling size";
    let in_size = trailing3(&plan.spatial, 1, W)?;
    let out_size = trailing3(&plan.out_spatial, 1, W)?;
    Ok(PoolParams {
        count: 0,
        kind: match plan.kind {
            PoolKind::Max => 0,
            PoolKind::Avg => 1,
        },
        channels: u(plan.channels, "channels")?,
        in_size,
        out_size,
        pool: trailing3(&plan.pool, 1, W)?,
        strides: trailing3(&plan.strides, 1, W)?,
        pad_before: trailing3(&plan.pad_before, 0, W)?,
        row0: 0,
        in_rows: in_size[0],
        orow0: 0,
        out_rows: out_size[0],
    })
}

/// The dispatches of a pooling pass (`forward`: threads over outputs, else over
/// inputs): each with its parameters and its `(offset, len)` windows of input and
/// output. Whole sub-batches when a sample fits a binding, else slices of rows of each
/// sample.
#[allow(clippy::type_complexity)]
fn pool_parts(g: &Gpu, plan: &PoolPlan, forward: bool, what: &str) -> Result<Vec<(PoolParams, (usize, usize), (usize, usize))>> {
    let img: usize = plan.spatial.iter().product::<usize>() * plan.channels;
    let oimg: usize = plan.out_spatial.iter().product::<usize>() * plan.channels;
    let base = pool_params(plan)?;
    let mut parts = Vec::new();
    if img.max(oimg) > window_words(g) {
        let slices = pool_row_slices(g, plan, forward).ok_or_else(|| too_big(g, what, img.max(oimg)))?;
        let in_row = img / plan.spatial[0].max(1);
        let out_row = oimg / plan.out_spatial[0].max(1);
        for n in 0..plan.batch {
            for &((o0, no), (r0, nr)) in &slices {
                let mut q = base;
                q.count = u(if forward { no * out_row } else { nr * in_row }, "threads")?;
                (q.row0, q.in_rows, q.orow0, q.out_rows) = (u(r0, "a row")?, u(nr, "rows")?, u(o0, "a row")?, u(no, "rows")?);
                parts.push((q, (n * img + r0 * in_row, nr * in_row), (n * oimg + o0 * out_row, no * out_row)));
            }
        }
    } else {
        for (b0, nb) in batch_chunks(g, plan.batch, &[img, oimg], what)? {
            let mut q = base;
            q.count = u(if forward { nb * oimg } else { nb * img }, "threads")?;
            parts.push((q, (b0 * img, nb * img), (b0 * oimg, nb * oimg)));
        }
    }
    Ok(parts)
}

/// Row slices of one pooling sample for when it exceeds a binding: output rows
/// `(o0, no)` with the input rows `(r0, nr)` their windows read, each slice of input and
/// output within one window. None when even one output row's windows do not fit.
fn pool_row_slices(g: &Gpu, plan: &PoolPlan, forward: bool) -> Option<Vec<((usize, usize), (usize, usize))>> {
    let room = window_words(g);
    let h = plan.spatial[0];
    let oh = plan.out_spatial[0];
    let (k, s, pad) = (plan.pool[0], plan.strides[0], plan.pad_before[0]);
    let in_row: usize = plan.spatial[1..].iter().product::<usize>() * plan.channels;
    let out_row: usize = plan.out_spatial[1..].iter().product::<usize>() * plan.channels;
    // Input rows read by output rows o0 .. o0 + no (clipped to the image).
    let reads = |o0: usize, no: usize| {
        let lo = (o0 * s).saturating_sub(pad).min(h);
        let hi = ((o0 + no - 1) * s + k).saturating_sub(pad).min(h);
        (lo, hi.max(lo))
    };
    // Input rows r0 .. r0 + nr and the output rows whose windows cover them.
    let covers = |r0: usize, nr: usize| {
        let first = (r0 + pad + 1).saturating_sub(k).div_ceil(s).min(oh);
        let last = ((r0 + nr - 1 + pad) / s + 1).min(oh);
        (first, last.max(first))
    };
    if forward {
        grow_slices(oh, out_row, in_row, room, reads)
    } else {
        grow_slices(h, in_row, out_row, room, covers).map(|v| v.into_iter().map(|(a, b)| (b, a)).collect())
    }
}

/// Consecutive runs `(start, len)` of `n` rows (`own` values each) paired with the run
/// of the other side they need (`need(start, len)` gives `(lo, hi)`, `other` values a
/// row), each as long as both fit `room`; None when a single row does not.
#[allow(clippy::type_complexity)]
fn grow_slices(
    n: usize,
    own: usize,
    other: usize,
    room: usize,
    need: impl Fn(usize, usize) -> (usize, usize),
) -> Option<Vec<((usize, usize), (usize, usize))>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let mut len = 0;
        while start + len < n {
            let (lo, hi) = need(start, len + 1);
            if (len + 1) * own > room || (hi - lo) * other > room {
                break;
            }
            len += 1;
        }
        if len == 0 {
            return None;
        }
        let (lo, hi) = need(start, len);
        out.push(((start, len), (lo, hi - lo)));
        start += len;
    }
    Some(out)
}

/// `(y, argmax)`; argmax (max pooling only) holds flat indices inside each image.
pub fn pool_forward(x: &GpuTensor, plan: &PoolPlan) -> Result<(GpuTensor, Option<GpuTensor>)> {
    let g = gpu()?;
    let img: usize = plan.spatial.iter().product::<usize>() * plan.channels;
    check_len(x, plan.batch * img, "pooling: x")?;
    u(img, "the image size")?;
    let y = g.empty(&plan.out_shape(), "the pooling output")?;
    let mut am = g.empty(&plan.out_shape(), "the pooling argmax")?;
    am.int = true;
    for (q, (xo, xn), (yo, yn)) in pool_parts(&g, plan, true, "pooling")? {
        g.dispatch(
            &K_POOL,
            &[Win::part(x, xo, xn), Win::part(&y, yo, yn), Win::part(&am, yo, yn)],
            q.words(),
            groups(q.count as usize),
        )?;
    }
    Ok((y, if plan.kind == PoolKind::Max { Some(am) } else { None }))
}

pub fn pool_backward(dy: &GpuTensor, argmax: Option<&GpuTensor>, plan: &PoolPlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let oimg: usize = plan.out_spatial.iter().product::<usize>() * plan.channels;
    check_len(dy, plan.batch * oimg, "pooling backward: dy")?;
    let dummy;
    let am = match (plan.kind, argmax) {
        (PoolKind::Max, Some(a)) => {
            check_len(a, plan.batch * oimg, "pooling backward: argmax")?;
            a
        }
        (PoolKind::Max, None) => return Err(Error::Value("max pooling backward needs the argmax indices".into())),
        _ => {
            dummy = g.empty(&[1], "a placeholder")?;
            &dummy
        }
    };
    let dx = g.empty(&plan.in_shape(), "the pooling gradient")?;
    for (q, (xo, xn), (yo, yn)) in pool_parts(&g, plan, false, "pooling backward")? {
        // A slice of rows no window covers still binds one value of dy.
        let (yo, yn) = (yo.min(dy.numel().saturating_sub(1)), yn.max(1));
        let aw = if plan.kind == PoolKind::Max { Win::part(am, yo, yn) } else { Win::all(am) };
        g.dispatch(&K_POOL_BWD, &[Win::part(dy, yo, yn), aw, Win::part(&dx, xo, xn)], q.words(), groups(q.count as usize))?;
    }
    Ok(dx)
}

/// Global pooling over `positions` cells: `(y (batch, c), argmax for max)`.
pub fn global_pool_forward(kind: PoolKind, x: &GpuTensor, batch: usize, positions: usize, c: usize) -> Result<(GpuTensor, GpuTensor)> {
    let g = gpu()?;
    check_len(x, batch * positions * c, "global pooling: x")?;
    if positions == 0 {
        return Err(Error::Value("global pooling needs at least one spatial position".into()));
    }
    let y = g.empty(&[batch, c], "the global pooling output")?;
    let mut am = g.empty(&[batch, c], "the global pooling argmax")?;
    am.int = true;
    let img = positions * c;
    for (b0, nb) in batch_chunks(&g, batch, &[img], "global pooling")? {
        let q = GlobalPoolParams {
            count: u(nb * c, "outputs")?,
            positions: u(positions, "positions")?,
            channels: u(c, "channels")?,
            kind: (kind == PoolKind::Avg) as u32,
        };
        g.dispatch(
            &K_GPOOL,
            &[Win::part(x, b0 * img, nb * img), Win::part(&y, b0 * c, nb * c), Win::part(&am, b0 * c, nb * c)],
            q.words(),
            groups(nb * c),
        )?;
    }
    Ok((y, am))
}

/// Global max pooling backward from `x` itself, with the CPU's tie rule: `dy` shared
/// evenly among the positions equal to the maximum.
pub fn global_max_pool_backward(dy: &GpuTensor, x: &GpuTensor, batch: usize, positions: usize, c: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    check_len(dy, batch * c, "global pooling backward: dy")?;
    check_len(x, batch * positions * c, "global pooling backward: x")?;
    let dx = g.zeros(&[batch, positions, c], "the global pooling gradient")?;
    let img = positions * c;
    if img == 0 {
        return Ok(dx);
    }
    for (b0, nb) in batch_chunks(&g, batch, &[img], "global pooling backward")? {
        let q = GlobalPoolParams {
            count: u(nb * c, "outputs")?,
            positions: u(positions, "positions")?,
            channels: u(c, "channels")?,
            kind: 0,
        };
        g.dispatch(
            &K_GPOOL_BWD_TIES,
            &[Win::part(dy, b0 * c, nb * c), Win::part(x, b0 * img, nb * img), Win::part(&dx, b0 * img, nb * img)],
            q.words(),
            groups(nb * c),
        )?;
    }
    Ok(dx)
}

pub fn global_pool_backward(kind: PoolKind, dy: &GpuTensor, argmax: &GpuTensor, batch: usize, positions: usize, c: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    check_len(dy, batch * c, "global pooling backward: dy")?;
    let dx = g.empty(&[batch, positions, c], "the global pooling gradient")?;
    let img = positions * c;
    for (b0, nb) in batch_chunks(&g, batch, &[img], "global pooling backward")? {
        let q = GlobalPoolParams {
            count: u(nb * img, "inputs")?,
            positions: u(positions, "positions")?,
            channels: u(c, "channels")?,
            kind: (kind == PoolKind::Avg) as u32,
        };
        g.dispatch(
            &K_GPOOL_BWD,
            &[Win::part(dy, b0 * c, nb * c), Win::part(argmax, b0 * c, nb * c), Win::part(&dx, b0 * img, nb * img)],
            q.words(),
            groups(nb * img),
        )?;
    }
    Ok(dx)
}

// ------------------------------------------------------------------ batch normalization

fn bn_rows(x: &GpuTensor, c: usize, what: &str) -> Result<usize> {
    if c == 0 || x.numel() % c != 0 {
        return Err(Error::Value(format!("{what}: x of shape {:?} does not have {c} channels", x.shape)));
    }
    Ok(x.numel() / c)
}

/// The parameters shared by the element-wise batch-norm kernels (bn_apply, bn_backward).
fn bn_params(n: usize, c: usize, eps: f64, has_gamma: bool) -> Result<BnParams> {
    Ok(BnParams { count: u(n, "size")?, channels: u(c, "channels")?, eps: eps as f32, has_gamma: has_gamma as u32,
                  ..Default::default() })
}

fn concat2(a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
    let g = gpu()?;
    let out = g.empty(&[a.numel() + b.numel()], "statistics")?;
    copy_words(&g, a, 0, &out, 0, a.numel())?;
    copy_words(&g, b, 0, &out, a.numel(), b.numel())?;
    Ok(out)
}

/// Slice `[start, start+len)` of a flat tensor as a new tensor.
fn slice(t: &GpuTensor, start: usize, len: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    let out = g.empty(&[len], "a slice")?;
    copy_words(&g, t, start, &out, 0, len)?;
    Ok(out)
}

/// Batch normalization forward: training uses the batch statistics (returned as
/// `(mean, var)`), inference the moving ones.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward(
    x: &GpuTensor,
    gamma: Option<&GpuTensor>,
    beta: Option<&GpuTensor>,
    eps: f64,
    training: bool,
    moving_mean: &GpuTensor,
    moving_var: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    let c = *x.shape.last().unwrap_or(&0);
    let r = bn_rows(x, c, "batch normalization")?;
    // Row chunks so x and y fit the binding windows (per-channel tensors are whole).
    let chunks = batch_chunks(&g, r, &[c], "batch normalization")?;
    let (mean, var) = if training {
        if r == 0 {
            return Err(Error::Value("batch normalization in training mode needs a non-empty batch".into()));
        }
        // Two passes over the rows: the mean, then the mean squared deviation from it.
        let mean = g.empty(&[c], "the batch mean")?;
        let var = g.empty(&[c], "the batch variance")?;
        for (pass, out) in [(0u32, &mean), (3, &var)] {
            for (i, &(r0, nr)) in chunks.iter().enumerate() {
                let q = ColStatsParams {
                    rows: u(nr, "rows")?,
                    cols: u(c, "channels")?,
                    mode: pass,
                    add: (i > 0) as u32,
                    scale: (1.0 / r as f64) as f32,
                };
                let mut wins = vec![Win::part(x, r0 * c, nr * c), Win::all(out)];
                if pass == 3 {
                    wins.push(Win::all(&mean));
                }
                g.dispatch(&K_COL, &wins, q.words(), c as u64)?;
            }
        }
        (mean, var)
    } else {
        (copy(moving_mean)?, copy(moving_var)?)
    };
    let stats = concat2(&mean, &var)?;
    let y = g.empty(&x.shape, "the batch normalization output")?;
    let one = g.empty(&[1], "a placeholder")?;
    for (r0, nr) in chunks {
        let mut q = bn_params(nr * c, c, eps, gamma.is_some())?;
        q.has_beta = beta.is_some() as u32;
        g.dispatch(
            &K_BN,
            &[
                Win::part(x, r0 * c, nr * c),
                Win::part(&y, r0 * c, nr * c),
                Win::all(&stats),
                Win::all(gamma.unwrap_or(&one)),
                Win::all(beta.unwrap_or(&one)),
            ],
            q.words(),
            groups(nr * c),
        )?;
    }
    Ok((y, mean, var))
}

/// `(dx, dgamma, dbeta)`; with `training = false` the statistics are the moving ones
/// and the map is affine per channel.
pub fn batchnorm_backward(
    x: &GpuTensor,
    gamma: Option<&GpuTensor>,
    mean: &GpuTensor,
    var: &GpuTensor,
    eps: f64,
    dy: &GpuTensor,
    training: bool,
) -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    let c = *x.shape.last().unwrap_or(&0);
    let r = bn_rows(x, c, "batch normalization backward")?;
    same_len(x, dy, "batch normalization backward")?;
    let chunks = batch_chunks(&g, r, &[c], "batch normalization backward")?;
    let stats = concat2(mean, var)?;
    let sums = g.empty(&[2 * c], "batch-norm gradient sums")?;
    for (i, &(r0, nr)) in chunks.iter().enumerate() {
        let q = ColStatsParams { rows: u(nr, "rows")?, cols: u(c, "channels")?, mode: 2, add: (i > 0) as u32,
                                 scale: eps as f32 };
        g.dispatch(
            &K_COL,
            &[Win::part(x, r0 * c, nr * c), Win::part(dy, r0 * c, nr * c), Win::all(&stats), Win::all(&sums)],
            q.words(),
            c as u64,
        )?;
    }
    let dx = g.empty(&x.shape, "the batch normalization input gradient")?;
    let one = g.empty(&[1], "a placeholder")?;
    for (r0, nr) in chunks {
        let mut q = bn_params(nr * c, c, eps, gamma.is_some())?;
        q.rows = u(r, "rows")?;
        q.training = training as u32;
        g.dispatch(
            &K_BN_BWD,
            &[
                Win::part(x, r0 * c, nr * c),
                Win::part(dy, r0 * c, nr * c),
                Win::all(&stats),
                Win::all(gamma.unwrap_or(&one)),
                Win::all(&sums),
                Win::part(&dx, r0 * c, nr * c),
            ],
            q.words(),
            groups(nr * c),
        )?;
    }
    Ok((dx, slice(&sums, c, c)?, slice(&sums, 0, c)?))
}

// ------------------------------------------------------------------ losses

/// `(stats, grad)`: `stats` holds `[mean loss, accuracy]` (two floats, read back at
/// once), `grad` is dLoss/dpred. Sparse labels come as uint32 tensors (validated by the
/// caller).
pub fn loss(kind: Loss, target: &GpuTensor, pred: &GpuTensor, from_logits: bool) -> Result<(GpuTensor, GpuTensor)> {
    let code = kind.code();
    let g = gpu()?;
    let (r, k) = rows(pred);
    let grad = g.empty(&pred.shape, "the loss gradient")?;
    let stats = g.zeros(&[2], "the loss value")?;
    let (count, per_item) = if code <= 1 { (r, k) } else { (pred.numel(), 1) };
    if code == 0 {
        check_len(target, r, "sparse_categorical_crossentropy: labels")?;
    } else {
        same_len(target, pred, "loss: y_true and y_pred")?;
    }
    if count == 0 {
        fill(&stats, f64::NAN)?;
        return Ok((stats, grad));
    }
    let inv = 1.0 / count as f64;
    let tgt_per = if code == 0 { 1 } else { per_item };
    for (i, (b0, nb)) in batch_chunks(&g, count, &[per_item, 2], "loss")?.into_iter().enumerate() {
        let pairs = g.empty(&[nb, 2], "per-sample losses")?;
        let q = LossParams {
            count: u(nb, "rows")?,
            classes: u(k, "classes")?,
            kind: code,
            from_logits: from_logits as u32,
            inv_n: inv as f32,
        };
        let wins = [
            Win::part(pred, b0 * per_item, nb * per_item),
            Win::part(target, b0 * tgt_per, nb * tgt_per),
            Win::part(&grad, b0 * per_item, nb * per_item),
            Win::all(&pairs),
        ];
        g.dispatch(if code <= 1 { &K_LOSS_ROWS } else { &K_LOSS_ELEMS }, &wins, q.words(), groups(nb))?;
        let q = LossReduceParams { pairs: u(nb, "rows")?, loss_scale: inv as f32, hit_scale: inv as f32, add: (i > 0) as u32 };
        g.dispatch(&K_LOSS_REDUCE, &[Win::all(&pairs), Win::all(&stats)], q.words(), 1)?;
    }
    Ok((stats, grad))
}

// ------------------------------------------------------------------ concatenation

/// Copy a (rows, width) block between tensors with row strides and column offsets
/// (concatenate / split on the last axis).
#[allow(clippy::too_many_arguments)]
pub fn copy_cols(src: &GpuTensor, src_stride: usize, src_col: usize, dst: &GpuTensor, dst_stride: usize, dst_col: usize, rows: usize, width: usize) -> Result<()> {
    let g = gpu()?;
    whole(&g, src, "a concatenation input")?;
    whole(&g, dst, "a concatenation output")?;
    copy_cols_win(&g, Win::all(src), src_stride, src_col, Win::all(dst), dst_stride, dst_col, rows, width)
}

/// [`copy_cols`] between windows (each within one binding).
#[allow(clippy::too_many_arguments)]
fn copy_cols_win(g: &Gpu, src: Win<'_>, src_stride: usize, src_col: usize, dst: Win<'_>, dst_stride: usize, dst_col: usize, rows: usize, width: usize) -> Result<()> {
    let q = CopyColsParams {
        count: u(rows * width, "size")?,
        src_stride: u(src_stride, "stride")?,
        src_col: u(src_col, "offset")?,
        dst_stride: u(dst_stride, "stride")?,
        dst_col: u(dst_col, "offset")?,
        width: u(width.max(1), "width")?,
    };
    g.dispatch(&K_COPY_COLS, &[src, dst], q.words(), groups(rows * width))
}

// ------------------------------------------------------------------ correlation

fn boundary_code(b: Boundary) -> u32 {
    match b {
        Boundary::Constant => 0,
        Boundary::Reflect => 1,
        Boundary::Mirror => 2,
        Boundary::Nearest => 3,
        Boundary::Wrap => 4,
    }
}

/// The correlation of `plan` (up to 4 axes). Outputs are split along axis 0 when the
/// input or output exceeds one binding; each chunk's input rows (with the boundary rule
/// of axis 0 already applied) are gathered into a slice first.
pub fn correlate(x: &GpuTensor, k: &GpuTensor, plan: &CorrPlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let nd = plan.ndim();
    if nd > 4 {
        return Err(Error::Value(format!(
            "the GPU correlation supports up to 4 dimensions, got {nd} (shape {:?}); use device='cpu'",
            plan.in_shape
        )));
    }
    check_len(x, plan.in_shape.iter().product(), "correlate: input")?;
    check_len(k, plan.k_shape.iter().product(), "correlate: kernel")?;
    whole(&g, k, "a correlation kernel")?;
    // Trailing unit axes (the layout is unchanged), so axis 0 is the real first axis.
    let pad4 = |v: &[usize]| -> [usize; 4] {
        let mut o = [1usize; 4];
        o[..nd].copy_from_slice(v);
        o
    };
    let ins = pad4(&plan.in_shape);
    let ks = pad4(&plan.k_shape);
    let outs = pad4(&plan.out_shape);
    let mut off = [0isize; 4];
    off[..nd].copy_from_slice(&plan.offset);
    let out = g.empty(&plan.out_shape, "the correlation output")?;
    let n_out: usize = outs.iter().product();
    if n_out == 0 {
        return Ok(out);
    }
    let in_row: usize = ins[1..].iter().product();
    let out_row: usize = outs[1..].iter().product();
    let i32_of = |v: usize, what: &str| i32::try_from(v).map_err(|_| Error::Value(format!("{what} = {v} is too large")));
    // Overlap-only plans leave out-of-range products out (it matters for inf/NaN kernels).
    // A chunked one fills the out-of-range rows of axis 0 with zeros instead, which is
    // the same for finite kernels.
    let code = if plan.overlap_only { 5 } else { boundary_code(plan.boundary) };
    let mut q = CorrParams { boundary: code, cval: plan.cval as f32, ..Default::default() };
    let skip = if plan.skip_zero { 2 } else { 0 };
    for i in 0..4 {
        q.in_size[i] = i32_of(ins[i], "an input size")?;
        q.k_size[i] = u(ks[i], "a kernel size")?;
        q.out_size[i] = u(outs[i], "an output size")?;
        q.offset[i] = i32::try_from(off[i]).map_err(|_| Error::Value("a correlation offset is too large".into()))?;
    }
    let fits = (x.numel() as u64) * 4 + ALIGN <= g.binding_limit() && (n_out as u64) * 4 + ALIGN <= g.binding_limit();
    if fits {
        q.count = u(n_out, "outputs")?;
        q.flags = skip;
        g.dispatch(&K_CORR, &[Win::all(x), Win::all(k), Win::all(&out)], q.words(), groups(n_out))?;
        return Ok(out);
    }
    // Chunked: output rows [r0, r0 + nr) need input rows r0 - off0 .. r0 + nr + k0 - 1 - off0.
    let room = window_words(&g);
    let per = room.saturating_div(in_row.max(out_row).max(1));
    if per <= ks[0] {
        return Err(Error::Memory(format!(
            "correlate: one row of shape {:?} is too large for a GPU binding; use device='cpu'",
            &plan.in_shape[1..]
        )));
    }
    let nr_max = per - ks[0] + 1;
    let mut r0 = 0;
    while r0 < outs[0] {
        let nr = nr_max.min(outs[0] - r0);
        let rows_in = nr + ks[0] - 1;
        let slab = g.empty(&[rows_in * in_row], "a correlation slice")?;
        let first = r0 as isize - off[0];
        // Contiguous run of in-range rows, then each out-of-range row by the rule.
        let lo = first.max(0);
        let hi = (first + rows_in as isize).min(ins[0] as isize);
        if hi > lo {
            copy_words(&g, x, lo as usize * in_row, &slab, (lo - first) as usize * in_row, (hi - lo) as usize * in_row)?;
        }
        for j in 0..rows_in {
            let src = first + j as isize;
            if src >= 0 && src < ins[0] as isize {
                continue;
            }
            match plan.boundary.map(src, ins[0]) {
                Some(s) => copy_words(&g, x, s * in_row, &slab, j * in_row, in_row)?,
                None => {
                    let q2 = ElemParams { count: u(in_row, "size")?, a: plan.cval as f32, b: 0.0 };
                    g.dispatch(&K_FILL, &[Win::part(&slab, j * in_row, in_row)], q2.words(), groups(in_row))?;
                }
            }
        }
        let mut qc = q;
        qc.count = u(nr * out_row, "outputs")?;
        qc.flags = skip | 1;
        qc.in_size[0] = i32_of(rows_in, "rows")?;
        qc.out_size[0] = u(nr, "rows")?;
        g.dispatch(&K_CORR, &[Win::all(&slab), Win::all(k), Win::part(&out, r0 * out_row, nr * out_row)], qc.words(),
                   groups(nr * out_row))?;
        r0 += nr;
    }
    Ok(out)
}

// ------------------------------------------------------------------ upsampling

fn upsample_params(plan: &UpsamplePlan) -> Result<UpsampleParams> {
    Ok(UpsampleParams {
        count: 0,
        channels: u(plan.channels, "channels")?,
        in_h: u(plan.in_h, "height")?,
        in_w: u(plan.in_w, "width")?,
        size_h: u(plan.size_h, "the height factor")?,
        size_w: u(plan.size_w, "the width factor")?,
        bilinear: (plan.interpolation == Interpolation::Bilinear) as u32,
    })
}

/// Upsample `x` (batch, h, w, c) by the plan's factors.
pub fn upsample_forward(x: &GpuTensor, plan: &UpsamplePlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let img = plan.in_h * plan.in_w * plan.channels;
    let oimg = plan.out_h() * plan.out_w() * plan.channels;
    check_len(x, plan.batch * img, "upsampling: x")?;
    u(oimg, "the output image size")?;
    let y = g.empty(&plan.out_shape(), "the upsampling output")?;
    let mut q = upsample_params(plan)?;
    for (b0, nb) in batch_chunks(&g, plan.batch, &[img, oimg], "upsampling")? {
        q.count = u(nb * oimg, "outputs")?;
        g.dispatch(&K_UPSAMPLE, &[Win::part(x, b0 * img, nb * img), Win::part(&y, b0 * oimg, nb * oimg)], q.words(),
                   groups(nb * oimg))?;
    }
    Ok(y)
}

/// dL/dx of the upsampling from dL/dy (a gather over the outputs that read each input).
pub fn upsample_backward(dy: &GpuTensor, plan: &UpsamplePlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let img = plan.in_h * plan.in_w * plan.channels;
    let oimg = plan.out_h() * plan.out_w() * plan.channels;
    check_len(dy, plan.batch * oimg, "upsampling backward: dy")?;
    let dx = g.empty(&plan.in_shape(), "the upsampling gradient")?;
    let mut q = upsample_params(plan)?;
    for (b0, nb) in batch_chunks(&g, plan.batch, &[img, oimg], "upsampling backward")? {
        q.count = u(nb * img, "inputs")?;
        g.dispatch(&K_UPSAMPLE_BWD, &[Win::part(dy, b0 * oimg, nb * oimg), Win::part(&dx, b0 * img, nb * img)],
                   q.words(), groups(nb * img))?;
    }
    Ok(dx)
}

// ------------------------------------------------------------------ depthwise convolution

fn depthwise_params(p: &DepthwisePlan) -> Result<DepthwiseParams> {
    let a3 = |v: &[usize], what: &str| -> Result<[u32; 3]> { Ok([u(v[0], what)?, u(v[1], what)?, u(v[2], what)?]) };
    Ok(DepthwiseParams {
        count: 0,
        channels: u(p.channels, "channels")?,
        mult: u(p.mult, "the depth multiplier")?,
        in_size: a3(&p.spatial, "the input size")?,
        out_size: a3(&p.out_spatial, "the output size")?,
        kernel: a3(&p.kernel, "the kernel size")?,
        strides: a3(&p.strides, "strides")?,
        dilation: a3(&p.dilation, "dilation")?,
        pad_before: a3(&p.pad_before, "padding")?,
        nb: 0,
        accumulate: 0,
    })
}

/// Elements per sample of the input and of the output.
fn depthwise_sizes(p: &DepthwisePlan) -> Result<(usize, usize)> {
    let img = p.in_pixels() * p.channels;
    let oimg = p.out_pixels() * p.c_out();
    u(img, "the input image size")?;
    u(oimg, "the output image size")?;
    Ok((img, oimg))
}

/// y = depthwise_conv(x, k).
pub fn depthwise_forward(x: &GpuTensor, k: &GpuTensor, p: &DepthwisePlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let (img, oimg) = depthwise_sizes(p)?;
    check_len(x, p.batch * img, "depthwise_conv: x")?;
    check_len(k, p.taps() * p.c_out(), "depthwise_conv: kernel")?;
    whole(&g, k, "depthwise_conv: the kernel")?;
    let y = g.empty(&p.out_shape(), "the depthwise convolution's output")?;
    let mut q = depthwise_params(p)?;
    for (b0, nb) in batch_chunks(&g, p.batch, &[img, oimg], "depthwise_conv")? {
        q.count = u(nb * oimg, "outputs")?;
        g.dispatch(&K_DW_FWD, &[Win::part(x, b0 * img, nb * img), Win::all(k), Win::part(&y, b0 * oimg, nb * oimg)],
                   q.words(), groups(nb * oimg))?;
    }
    Ok(y)
}

/// dL/dx of the depthwise convolution from dL/dy.
pub fn depthwise_backward_input(dy: &GpuTensor, k: &GpuTensor, p: &DepthwisePlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let (img, oimg) = depthwise_sizes(p)?;
    check_len(dy, p.batch * oimg, "depthwise_conv backward: dy")?;
    check_len(k, p.taps() * p.c_out(), "depthwise_conv backward: kernel")?;
    whole(&g, k, "depthwise_conv: the kernel")?;
    let dx = g.empty(&p.in_shape(), "the depthwise convolution's dx")?;
    let mut q = depthwise_params(p)?;
    for (b0, nb) in batch_chunks(&g, p.batch, &[img, oimg], "depthwise_conv backward")? {
        q.count = u(nb * img, "inputs")?;
        g.dispatch(&K_DW_DX, &[Win::part(dy, b0 * oimg, nb * oimg), Win::all(k), Win::part(&dx, b0 * img, nb * img)],
                   q.words(), groups(nb * img))?;
    }
    Ok(dx)
}

/// dL/dk of the depthwise convolution from x and dL/dy (batch chunks summed in order).
pub fn depthwise_backward_kernel(x: &GpuTensor, dy: &GpuTensor, p: &DepthwisePlan) -> Result<GpuTensor> {
    let g = gpu()?;
    let (img, oimg) = depthwise_sizes(p)?;
    check_len(x, p.batch * img, "depthwise_conv backward: x")?;
    check_len(dy, p.batch * oimg, "depthwise_conv backward: dy")?;
    let kn = p.taps() * p.c_out();
    let dk = g.empty(&p.kernel_shape(), "the depthwise kernel gradient")?;
    whole(&g, &dk, "depthwise_conv: the kernel gradient")?;
    let mut q = depthwise_params(p)?;
    q.count = u(kn, "kernel elements")?;
    for (i, (b0, nb)) in batch_chunks(&g, p.batch, &[img, oimg], "depthwise_conv backward")?.into_iter().enumerate() {
        q.nb = u(nb, "samples")?;
        q.accumulate = (i > 0) as u32;
        g.dispatch(&K_DW_DK, &[Win::part(x, b0 * img, nb * img), Win::part(dy, b0 * oimg, nb * oimg), Win::all(&dk)],
                   q.words(), groups(kn))?;
    }
    Ok(dk)
}

// ------------------------------------------------------------------ group / layer normalization

fn norm_params(p: &NormPlan, gamma: bool, beta: bool) -> Result<NormParams> {
    Ok(NormParams {
        count: u(p.rows * p.groups, "rows * groups")?,
        rows: u(p.rows, "rows")?,
        pixels: u(p.pixels, "pixels")?,
        groups: u(p.groups, "groups")?,
        cg: u(p.cg, "channels per group")?,
        epsilon: p.epsilon as f32,
        has_gamma: gamma as u32,
        has_beta: beta as u32,
    })
}

/// `(y, mean, rstd)` of the fused normalization (statistics of shape (rows, groups)).
pub fn norm_forward(x: &GpuTensor, gamma: Option<&GpuTensor>, beta: Option<&GpuTensor>, p: &NormPlan)
                    -> Result<(GpuTensor, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    check_len(x, p.rows * p.row_len(), "group_norm: x")?;
    whole(&g, x, "group_norm: x")?;
    for t in [gamma, beta].into_iter().flatten() {
        check_len(t, p.channels(), "group_norm: gamma / beta")?;
    }
    let y = g.empty(&x.shape, "the normalization's output")?;
    let mean = g.empty(&[p.rows, p.groups], "the normalization's means")?;
    let rstd = g.empty(&[p.rows, p.groups], "the normalization's scales")?;
    let q = norm_params(p, gamma.is_some(), beta.is_some())?;
    let mut wins = vec![(0, Win::all(x)), (3, Win::all(&y)), (4, Win::all(&mean)), (5, Win::all(&rstd))];
    if let Some(t) = gamma {
        wins.push((1, Win::all(t)));
    }
    if let Some(t) = beta {
        wins.push((2, Win::all(t)));
    }
    g.dispatch_at(&K_NORM_FWD, &wins, q.words(), (p.rows * p.groups) as u64)?;
    Ok((y, mean, rstd))
}

/// `(dx, dgamma, dbeta)` of the fused normalization (dx None unless `need_dx`).
#[allow(clippy::type_complexity)]
pub fn norm_backward(x: &GpuTensor, gamma: Option<&GpuTensor>, dy: &GpuTensor, mean: &GpuTensor, rstd: &GpuTensor,
                     p: &NormPlan, need_dx: bool) -> Result<(Option<GpuTensor>, GpuTensor, GpuTensor)> {
    let g = gpu()?;
    check_len(x, p.rows * p.row_len(), "group_norm backward: x")?;
    check_len(dy, p.rows * p.row_len(), "group_norm backward: dy")?;
    check_len(mean, p.rows * p.groups, "group_norm backward: mean")?;
    check_len(rstd, p.rows * p.groups, "group_norm backward: rstd")?;
    whole(&g, x, "group_norm backward: x")?;
    let q = norm_params(p, gamma.is_some(), false)?;
    let dx = if need_dx {
        let dx = g.empty(&x.shape, "the normalization's dx")?;
        let mut wins = vec![(0, Win::all(x)), (2, Win::all(dy)), (3, Win::all(mean)), (4, Win::all(rstd)),
                            (5, Win::all(&dx))];
        if let Some(t) = gamma {
            check_len(t, p.channels(), "group_norm backward: gamma")?;
            wins.push((1, Win::all(t)));
        }
        g.dispatch_at(&K_NORM_DX, &wins, q.words(), (p.rows * p.groups) as u64)?;
        Some(dx)
    } else {
        None
    };
    let c = p.channels();
    let both = g.empty(&[2 * c], "the normalization's weight gradients")?;
    g.dispatch(&K_NORM_DGB, &[Win::all(x), Win::all(dy), Win::all(mean), Win::all(rstd), Win::all(&both)], q.words(),
               groups(c))?;
    let dg = g.empty(&[c], "dgamma")?;
    let db = g.empty(&[c], "dbeta")?;
    copy_words(&g, &both, 0, &dg, 0, c)?;
    copy_words(&g, &both, c, &db, 0, c)?;
    Ok((dx, dg, db))
}

// ------------------------------------------------------------------ generic array algebra

/// A view of a tensor for the strided kernels: element strides per output axis and the
/// first element (validated by the caller against the tensor's size).
#[derive(Clone, Debug)]
pub struct Strided {
    pub base: usize,
    pub strides: Vec<isize>,
}

fn strided_params(op: u32, shape: &[usize], a: &Strided, b: Option<&Strided>) -> Result<ArrayParams> {
    if shape.len() > MAX_RANK {
        return Err(Error::Value(format!("GPU array kernels take at most {MAX_RANK} axes, got {}", shape.len())));
    }
    let mut q = ArrayParams { op, rank: shape.len() as u32, a_base: u(a.base, "offset")?, ..Default::default() };
    q.count = u(shape.iter().product(), "elements")?;
    for (d, &n) in shape.iter().enumerate() {
        q.shape[d] = u(n, "an axis")?;
        q.a_strides[d] = i32::try_from(a.strides[d]).map_err(|_| Error::Value("stride too large for the GPU".into()))?;
        if let Some(b) = b {
            q.b_strides[d] = i32::try_from(b.strides[d]).map_err(|_| Error::Value("stride too large for the GPU".into()))?;
        }
    }
    if let Some(b) = b {
        q.b_base = u(b.base, "offset")?;
    }
    Ok(q)
}

/// Codes of `shaders/array.wgsl` whose results are truth values (stored as uint32 0 / 1).
pub fn unary_gives_bool(op: u32) -> bool {
    (UNARY_ISNAN..=UNARY_TO_BOOL).contains(&op)
}
pub fn binary_gives_bool(op: u32) -> bool {
    (BINARY_EQUAL..=BINARY_LOGICAL_OR).contains(&op)
}
pub const UNARY_ISNAN: u32 = 17;
pub const UNARY_TO_BOOL: u32 = 20;
pub const UNARY_TO_FLOAT: u32 = 21;
pub const BINARY_EQUAL: u32 = 7;
pub const BINARY_LOGICAL_OR: u32 = 14;

/// `op(x)` elementwise (codes of `shaders/array.wgsl`), chunked over windows; `lo` /
/// `hi` are clip's bounds. A uint32 `x` is read as its values; truth-valued codes give a
/// uint32 result, the others float32.
pub fn unary(op: u32, x: &GpuTensor, lo: f32, hi: f32) -> Result<GpuTensor> {
    if op > UNARY_TO_FLOAT {
        return Err(Error::Value(format!("unknown GPU unary code {op}")));
    }
    let g = gpu()?;
    let mut out = g.empty(&x.shape, "the elementwise result")?;
    out.int = unary_gives_bool(op);
    for (s, n) in elem_chunks(&g, x.numel()) {
        let q = ArrayParams { count: u(n, "size")?, op, lo, hi, flags: x.int as u32, ..Default::default() };
        g.dispatch(&K_UNARY, &[Win::part(x, s, n), Win::part(&out, s, n)], q.words(), groups(n))?;
    }
    Ok(out)
}

/// `op(a, b)` with broadcasting: `shape` is the output's, `sa` / `sb` the operands'
/// strides. Every tensor must fit one binding.
pub fn binary(op: u32, a: &GpuTensor, sa: &Strided, b: &GpuTensor, sb: &Strided, shape: &[usize]) -> Result<GpuTensor> {
    let g = gpu()?;
    let b2 = unshared(b, a)?;
    let b = b2.as_ref().unwrap_or(b);
    if op > BINARY_LOGICAL_OR {
        return Err(Error::Value(format!("unknown GPU binary code {op}")));
    }
    let mut out = g.empty(shape, "the elementwise result")?;
    out.int = binary_gives_bool(op);
    for t in [a, b, &out] {
        whole(&g, t, "an operand of an elementwise op")?;
    }
    let mut q = strided_params(op, shape, sa, Some(sb))?;
    q.flags = a.int as u32 | (b.int as u32) << 1;
    g.dispatch(&K_BINARY, &[Win::all(a), Win::all(b), Win::all(&out)], q.words(), groups(out.numel()))?;
    Ok(out)
}

/// The elements of `a` at a strided view (transpose, broadcast, slicing, flips).
pub fn gather(a: &GpuTensor, sa: &Strided, shape: &[usize]) -> Result<GpuTensor> {
    let g = gpu()?;
    let mut out = g.empty(shape, "the gathered result")?;
    out.int = a.int;
    whole(&g, a, "the source of a gather")?;
    whole(&g, &out, "the result of a gather")?;
    let q = strided_params(0, shape, sa, None)?;
    g.dispatch(&K_GATHER, &[Win::all(a), Win::all(&out)], q.words(), groups(out.numel()))?;
    Ok(out)
}

/// Reduce the middle axis of `x` seen as (outer, n, inner): op 0 sum, 1 max, 2 min.
pub fn reduce_axis(op: u32, x: &GpuTensor, outer: usize, n: usize, inner: usize) -> Result<GpuTensor> {
    let g = gpu()?;
    check_len(x, outer * n * inner, "reduction: x")?;
    if n == 0 {
        return Err(Error::Value("a reduction over an empty axis".into()));
    }
    let out = g.empty(&[outer * inner], "the reduction")?;
    whole(&g, x, "the input of a reduction")?;
    let mut q = ArrayParams { op, count: u(outer * inner, "outputs")?, ..Default::default() };
    q.shape[0] = u(outer, "outer")?;
    q.shape[1] = u(n, "axis")?;
    q.shape[2] = u(inner, "inner")?;
    g.dispatch(&K_REDUCE_AXIS, &[Win::all(x), Win::all(&out)], q.words(), groups(outer * inner))?;
    Ok(out)
}

fn strides_i32(v: &[isize], what: &str) -> Result<[i32; 6]> {
    let mut o = [0i32; 6];
    for (d, &x) in v.iter().enumerate() {
        o[d] = i32::try_from(x).map_err(|_| Error::Value(format!("{what}: stride {x} too large for the GPU")))?;
    }
    Ok(o)
}

/// `where(c, a, b)` with broadcasting: `c` is read as truth values (float: nonzero,
/// NaN included; uint32: nonzero), `a` and `b` are copied bit for bit (both float32 or
/// both uint32, which the result then is).
pub fn select(c: &GpuTensor, sc: &Strided, a: &GpuTensor, sa: &Strided, b: &GpuTensor, sb: &Strided, shape: &[usize])
              -> Result<GpuTensor> {
    if a.int != b.int {
        return Err(Error::Value("where: x1 and x2 must both be float32 or both uint32 on the GPU".into()));
    }
    let g = gpu()?;
    let a2 = unshared(a, c)?;
    let a = a2.as_ref().unwrap_or(a);
    let b2 = match unshared(b, c)? {
        Some(t) => Some(t),
        None => unshared(b, a)?,
    };
    let b = b2.as_ref().unwrap_or(b);
    let mut out = g.empty(shape, "the result of where")?;
    out.int = a.int;
    for t in [c, a, b, &out] {
        whole(&g, t, "an operand of where")?;
    }
    let mut q = strided_params(0, shape, sa, Some(sb))?;
    q.c_base = u(sc.base, "offset")?;
    q.c_strides = strides_i32(&sc.strides, "where")?;
    q.flags = c.int as u32;
    g.dispatch(&K_WHERE, &[Win::all(c), Win::all(a), Win::all(b), Win::all(&out)], q.words(), groups(out.numel()))?;
    Ok(out)
}

/// `x` padded with `before[d]` leading and `after[d]` trailing entries per axis, all
/// holding the value whose 32-bit pattern is `fill_bits` (a float32, or a uint32 for a
/// uint32 tensor).
pub fn pad(x: &GpuTensor, before: &[usize], after: &[usize], fill_bits: u32) -> Result<GpuTensor> {
    let nd = x.shape.len();
    if before.len() != nd || after.len() != nd {
        return Err(Error::Value(format!("pad: {} / {} widths for {nd} axes", before.len(), after.len())));
    }
    let g = gpu()?;
    let shape: Vec<usize> = (0..nd).map(|d| x.shape[d] + before[d] + after[d]).collect();
    let mut out = g.empty(&shape, "the padded result")?;
    out.int = x.int;
    if out.numel() == 0 {
        return Ok(out);
    }
    whole(&g, x, "the input of pad")?;
    whole(&g, &out, "the result of pad")?;
    let mut cs = vec![0isize; nd];
    let mut acc = 1isize;
    for d in (0..nd).rev() {
        cs[d] = acc;
        acc *= x.shape[d] as isize;
    }
    let mut q = strided_params(0, &shape, &Strided { base: 0, strides: cs }, None)?;
    for d in 0..nd {
        q.b_strides[d] = i32::try_from(before[d]).map_err(|_| Error::Value("pad: width too large for the GPU".into()))?;
        q.c_strides[d] = i32::try_from(x.shape[d]).map_err(|_| Error::Value("pad: axis too large for the GPU".into()))?;
    }
    q.lo = f32::from_bits(fill_bits);
    if x.numel() == 0 {
        // nothing to read: bind the output twice would alias; fill through a dummy
        let dummy = g.zeros(&[1], "a placeholder")?;
        for d in 0..nd {
            q.c_strides[d] = 0;
        }
        g.dispatch(&K_PAD, &[Win::all(&dummy), Win::all(&out)], q.words(), groups(out.numel()))?;
        return Ok(out);
    }
    g.dispatch(&K_PAD, &[Win::all(x), Win::all(&out)], q.words(), groups(out.numel()))?;
    Ok(out)
}

/// Write `src` (contiguous) into the strided view `sd` of `dst`, in place. The view must
/// not repeat an element (no zero strides on axes longer than one).
pub fn scatter(dst: &GpuTensor, sd: &Strided, src: &GpuTensor) -> Result<()> {
    if src.numel() == 0 {
        return Ok(());
    }
    if dst.buf.same(&src.buf) {
        return Err(Error::Value("scatter: the source and the destination share a buffer".into()));
    }
    let g = gpu()?;
    whole(&g, dst, "the destination of a scatter")?;
    whole(&g, src, "the source of a scatter")?;
    let q = strided_params(0, &src.shape, sd, None)?;
    g.dispatch(&K_SCATTER, &[Win::all(src), Win::all(dst)], q.words(), groups(src.numel()))
}

/// `x` seen as (outer, n, inner) taken at `idx` (uint32, each < n) along the middle
/// axis: (outer, m, inner), m = the number of indices; `shape` is the result's.
pub fn take(x: &GpuTensor, idx: &GpuTensor, outer: usize, n: usize, inner: usize, shape: &[usize]) -> Result<GpuTensor> {
    check_len(x, outer * n * inner, "take: x")?;
    let m = idx.numel();
    if shape.iter().product::<usize>() != outer * m * inner {
        return Err(Error::Value(format!("take: shape {shape:?} does not hold {outer} x {m} x {inner} elements")));
    }
    let g = gpu()?;
    let mut out = g.empty(shape, "the result of take")?;
    out.int = x.int;
    if out.numel() == 0 {
        return Ok(out);
    }
    for t in [x, idx, &out] {
        whole(&g, t, "an operand of take")?;
    }
    let mut q = ArrayParams { count: u(out.numel(), "elements")?, ..Default::default() };
    q.shape[0] = u(outer, "outer")?;
    q.shape[1] = u(n, "axis")?;
    q.shape[2] = u(inner, "inner")?;
    q.shape[3] = u(m, "indices")?;
    g.dispatch(&K_TAKE, &[Win::all(x), Win::all(idx), Win::all(&out)], q.words(), groups(out.numel()))?;
    Ok(out)
}

/// The adjoint of `take`: `g` (outer, m, inner) summed into (outer, n, inner) at the
/// indices, given as `order` (the index positions sorted by index, stable) and `starts`
/// (n + 1 offsets into `order`), so each output sums its entries in index order.
pub fn index_add(gr: &GpuTensor, order: &GpuTensor, starts: &GpuTensor, outer: usize, n: usize, inner: usize)
                 -> Result<GpuTensor> {
    let m = order.numel();
    check_len(gr, outer * m * inner, "index_add: g")?;
    check_len(starts, n + 1, "index_add: starts")?;
    let g = gpu()?;
    let out = g.empty(&[outer, n, inner], "the result of index_add")?;
    if out.numel() == 0 {
        return Ok(out);
    }
    if m == 0 {
        return g.zeros(&[outer, n, inner], "the result of index_add");
    }
    for t in [gr, order, starts, &out] {
        whole(&g, t, "an operand of index_add")?;
    }
    let mut q = ArrayParams { count: u(out.numel(), "elements")?, ..Default::default() };
    q.shape[0] = u(outer, "outer")?;
    q.shape[1] = u(n, "axis")?;
    q.shape[2] = u(inner, "inner")?;
    q.shape[3] = u(m, "indices")?;
    g.dispatch(&K_INDEX_ADD, &[Win::all(gr), Win::all(order), Win::all(starts), Win::all(&out)], q.words(),
               groups(out.numel()))?;
    Ok(out)
}

/// Batched matrix products: output matrix `i` (of `a_index.len()`) is
/// `a[a_index[i]] (n, k) @ b[b_index[i]] (k, m)`, `a` and `b` contiguous stacks of
/// matrices. The result is (batch, n, m).
pub fn matmul(a: &GpuTensor, b: &GpuTensor, n: usize, k: usize, m: usize, a_index: &[usize], b_index: &[usize])
              -> Result<GpuTensor> {
    if a_index.len() != b_index.len() {
        return Err(Error::Value("matmul: the batch index lists differ in length".into()));
    }
    let na = if n * k == 0 { 0 } else { a.numel() / (n * k) };
    let nb = if k * m == 0 { 0 } else { b.numel() / (k * m) };
    if a.numel() != na * n * k || b.numel() != nb * k * m {
        return Err(Error::Value(format!("matmul: operands of shapes {:?} and {:?} are not stacks of ({n}, {k}) and \
                                         ({k}, {m}) matrices", a.shape, b.shape)));
    }
    if a_index.iter().any(|&i| i >= na.max(1)) || b_index.iter().any(|&i| i >= nb.max(1)) {
        return Err(Error::Value("matmul: a batch index is out of range".into()));
    }
    let g = gpu()?;
    let batch = a_index.len();
    if k == 0 {
        return g.zeros(&[batch, n, m], "the matrix product");
    }
    let out = g.empty(&[batch, n, m], "the matrix product")?;
    for t in [a, b, &out] {
        whole(&g, t, "an operand of matmul")?;
    }
    let b2 = unshared(b, a)?;
    let b = b2.as_ref().unwrap_or(b);
    for (i, (&ai, &bi)) in a_index.iter().zip(b_index).enumerate() {
        run_gemm(&g, Gemm {
            a: Win::part(a, ai * n * k, n * k),
            b: Win::part(b, bi * k * m, k * m),
            c: Win::part(&out, i * n * m, n * m),
            bias: None,
            m: n,
            n: m,
            k,
            amode: 0,
            bmode: 0,
            accumulate: false,
            geom: p(),
        })?;
    }
    Ok(out)
}
