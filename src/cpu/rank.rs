//! Rank filters on the CPU: minimum, maximum and any order statistic over a footprint
//! (`crate::ops::rank`), for every integer and float type.
//!
//! Two box cases read the input without a padded copy and write the output once
//! ([`box_min_max`], [`box_median`]): the minimum / maximum of a full box (the covered
//! rows folded into one scratch line, then along the last axis) and the median of a 3x3
//! or 5x5 box (each input row a task reads turned once into a line of keys with its
//! edges resolved, each output row computed from those lines in vector registers by
//! `rank_simd`; the 3x3 two output rows at a time; the 3x3 of one-byte values from the
//! input rows in place, down strips of rows, [`box_median3_in_place`]). Every other
//! footprint, and inputs
//! of too few rows to spread, go through a padded copy:
//!
//! The input is first padded by the boundary rule (one copy, in parallel), so that the
//! `count` values of output `o` are `padded[base(o) + off_j]` for fixed offsets `off_j`:
//! along the last axis each offset is a contiguous run, and a run of outputs is computed
//! lane by lane, vectorised:
//! - the minimum and the maximum fold the `count` shifted runs (`count` vector min/max
//!   per lane);
//! - the medians of 9 and 25 one- and two-byte values (3x3 and 5x5 footprints that are
//!   not boxes, or boxes of too few rows for the box path) run straight-line networks
//!   over arrays of lanes ([`median9`], [`median25`]; the compiler keeps these wires
//!   in memory, not registers, which is why the box medians use `rank_simd`'s explicit
//!   vectors instead; measured slower than the general network for wider types);
//! - other ranks of up to [`NET_MAX`] values go through a selection network: Batcher's
//!   odd-even merge sort for the next power of two, restricted to `count` wires (the
//!   missing wires act as +inf) and pruned to the comparators the wanted output wire
//!   depends on (OpenCV's median filters use sorting networks the same way); each
//!   comparator is a vector min and max over a run of outputs (256 bytes);
//! - larger footprints gather each output's values and select (`select_nth_unstable`).
//!
//! The networks and the select path order integer keys (see [`Rank`]); the min/max
//! folds compare the values themselves with `<`. With NaN in a window the result is
//! unspecified (scipy's depends on where the NaN sits, too).

use crate::error::{checked_numel, try_filled, Error, Result};
use crate::ops::correlate::Boundary;
use crate::ops::rank::RankPlan;
use rayon::prelude::*;

/// A value a rank filter orders. The networks and the select path order its `Key`, an
/// integer with the same order (floats: the IEEE bits with the magnitude bits of
/// negative values flipped), so that their min/max vectorise as integer instructions;
/// in that order NaN lies above +inf (below -inf with the sign bit set) and -0.0 below
/// +0.0.
pub trait Rank: Copy + PartialOrd + Send + Sync + 'static + rank_simd::MedianValue + rank_simd::FoldValue {
    /// `key` is the identity and `Key` is `Self` (the integers): a row of values is a
    /// line of keys as it lies in memory.
    const KEY_IS_VALUE: bool;
    fn key(self) -> Self::Key;
    fn from_key(k: Self::Key) -> Self;
}

macro_rules! rank_int {
    ($($t:ty),*) => {$(
        impl Rank for $t {
            const KEY_IS_VALUE: bool = true;
            #[inline(always)]
            fn key(self) -> $t { self }
            #[inline(always)]
            fn from_key(k: $t) -> $t { k }
        }
    )*};
}
rank_int!(u8, i8, u16, i16, u32, i32, u64, i64);

macro_rules! rank_float {
    ($($t:ty, $k:ty, $u:ty, $bits:literal);*) => {$(
        impl Rank for $t {
            const KEY_IS_VALUE: bool = false;
            #[inline(always)]
            fn key(self) -> $k {
                let b = self.to_bits() as $k;
                b ^ ((((b >> ($bits - 1)) as $u) >> 1) as $k)
            }
            #[inline(always)]
            fn from_key(k: $k) -> $t {
                // (the map is an involution: the sign bit it reads is unchanged)
                <$t>::from_bits((k ^ ((((k >> ($bits - 1)) as $u) >> 1) as $k)) as $u)
            }
        }
    )*};
}
rank_float!(f32, i32, u32, 32; f64, i64, u64, 64);

/// Largest footprint that goes through a selection network.
pub const NET_MAX: usize = 100;
/// Outputs of one row handled by one task.
const SEGMENT: usize = 4096;
/// Output rows a task of the box paths takes at least (a row of a 3x3 box is well
/// under a microsecond of work: fewer, longer tasks).
const ROWS_PER_TASK: usize = 16;

#[inline(always)]
fn lo<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if b < a {
        b
    } else {
        a
    }
}

#[inline(always)]
fn hi<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if b < a {
        a
    } else {
        b
    }
}

/// The comparators `(i, j)`, `i < j`, of a network whose wire `rank` receives the
/// `rank`-th smallest of `n` inputs.
pub fn selection_network(n: usize, rank: usize) -> Vec<(usize, usize)> {
    let size = n.next_power_of_two();
    let mut net = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                for i in 0..k.min(size - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && b < n {
                        net.push((a, b));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    // keep only the comparators the output wire depends on
    let mut needed = vec![false; n];
    needed[rank] = true;
    let mut kept = Vec::new();
    for &(a, b) in net.iter().rev() {
        if needed[a] || needed[b] {
            needed[a] = true;
            needed[b] = true;
            kept.push((a, b));
        }
    }
    kept.reverse();
    kept
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// `x` (C order, `shape`) padded to `pshape`, `before[a]` cells before it on each axis,
/// the cells outside resolved by `b` (`cval` for the constant boundary).
fn pad<T: Rank>(x: &[T], shape: &[usize], pshape: &[usize], before: &[usize], b: Boundary, cval: T) -> Result<Vec<T>> {
    let nd = shape.len();
    let (last, plast, bl) = (shape[nd - 1], pshape[nd - 1], before[nd - 1]);
    let mut p = try_filled(checked_numel(pshape)?, cval, "the rank filter's padded input")?;
    let xs = strides(shape);
    let cols: Vec<Option<usize>> = (0..plast).map(|j| b.map(j as isize - bl as isize, last)).collect();
    p.par_chunks_mut(plast).enumerate().for_each(|(r, prow)| {
        let mut rem = r;
        let mut src = 0usize;
        for a in (0..nd - 1).rev() {
            let i = rem % pshape[a];
            rem /= pshape[a];
            match b.map(i as isize - before[a] as isize, shape[a]) {
                Some(m) => src += m * xs[a],
                None => return, // a constant row: already cval
            }
        }
        let xrow = &x[src..src + last];
        prow[bl..bl + last].copy_from_slice(xrow);
        for j in (0..bl).chain(bl + last..plast) {
            if let Some(m) = cols[j] {
                prow[j] = xrow[m];
            }
        }
    });
    Ok(p)
}

enum Method {
    Min,
    Max,
    /// The median of 9 or 25 one- or two-byte values: straight-line networks.
    Median9,
    Median25,
    Network(Vec<(usize, usize)>),
    Select,
}

/// The rank filter of `plan` over `x` (C order, `plan.shape`), `cval` beyond the edges
/// for the constant boundary. Runs on the current rayon pool.
pub fn rank_filter<T: Rank>(x: &[T], plan: &RankPlan, cval: T) -> Result<Vec<T>> {
    let nd = plan.shape.len();
    let n = checked_numel(&plan.shape)?;
    if x.len() != n {
        return Err(Error::Value(format!(
            "rank filter: input of {} values does not fill shape {:?}",
            x.len(),
            plan.shape
        )));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut pshape = Vec::with_capacity(nd);
    for a in 0..nd {
        pshape.push(plan.shape[a].checked_add(plan.fshape[a] - 1).ok_or_else(|| {
            Error::Memory(format!("rank filter: the padded input of shape {:?} cannot be addressed", plan.shape))
        })?);
    }
    let threads = rayon::current_num_threads();
    if (plan.rank == 0 || plan.rank == plan.count - 1)
        && plan.count == plan.footprint.len()
        && n / plan.shape[nd - 1] >= 2 * threads
    {
        return box_min_max(x, plan, cval, plan.rank == 0);
    }
    let kw = plan.fshape[nd - 1];
    if (kw == 3 || kw == 5)
        && plan.count == kw * kw
        && plan.footprint.len() == plan.count
        && plan.rank == plan.count / 2
        && n / plan.shape[nd - 1] >= 2 * threads
    {
        return box_median(x, plan, cval, kw);
    }
    rank_padded(x, plan, cval, &pshape)
}

/// The rank filter through a padded copy of the input (`pshape`: its shape), for any
/// footprint, rank and number of rows.
fn rank_padded<T: Rank>(x: &[T], plan: &RankPlan, cval: T, pshape: &[usize]) -> Result<Vec<T>> {
    let nd = plan.shape.len();
    let n = x.len();
    let padded = pad(x, &plan.shape, pshape, &plan.before, plan.boundary, cval)?;
    let ps = strides(pshape);
    let fs = strides(&plan.fshape);
    let offsets: Vec<usize> = (0..plan.footprint.len())
        .filter(|&i| plan.footprint[i])
        .map(|i| (0..nd).map(|a| (i / fs[a]) % plan.fshape[a] * ps[a]).sum())
        .collect();
    let method = if plan.rank == 0 {
        Method::Min
    } else if plan.rank == plan.count - 1 {
        Method::Max
    } else if plan.count == 9 && plan.rank == 4 && std::mem::size_of::<T>() <= 2 {
        Method::Median9
    } else if plan.count == 25 && plan.rank == 12 && std::mem::size_of::<T>() <= 2 {
        Method::Median25
    } else if plan.count <= NET_MAX {
        Method::Network(selection_network(plan.count, plan.rank))
    } else {
        Method::Select
    };
    let last = plan.shape[nd - 1];
    let mut out = try_filled(n, cval, "the rank filter's output")?;
    let (pad_ref, off_ref, method_ref) = (&padded, &offsets, &method);
    let rank = plan.rank;
    let level = crate::cpu::simd::level();
    out.par_chunks_mut(last).enumerate().for_each(|(r, orow)| {
        let mut rem = r;
        let mut base = 0usize;
        for a in (0..nd - 1).rev() {
            base += (rem % plan.shape[a]) * ps[a];
            rem /= plan.shape[a];
        }
        orow.par_chunks_mut(SEGMENT).enumerate().for_each_init(Vec::new, |scratch, (s, seg)| {
            let start = base + s * SEGMENT;
            run(level, pad_ref, start, off_ref, method_ref, rank, seg, scratch);
        });
    });
    Ok(out)
}

/// The minimum (`min`) or maximum over a full box, separably and without a padded copy:
/// for each output row, the input rows the box covers (resolved by the boundary rule,
/// `cval` rows for the constant one) are folded column by column into one scratch line,
/// its edges resolved along the last axis, and the line is folded along the last axis
/// into the output. `box rows - 1 + box columns - 1` vector min/max per output, each
/// input row read from cache, the output written once (OpenCV's erode / dilate do the
/// same separable passes). Both folds keep their accumulator in a register across all
/// the rows / shifts (`rank_simd::FoldValue`: one store per vector instead of one per
/// row or shift); rows shorter than a vector take the scalar folds of [`box_row`].
fn box_min_max<T: Rank>(x: &[T], plan: &RankPlan, cval: T, min: bool) -> Result<Vec<T>> {
    let nd = plan.shape.len();
    let (last, kw, bl) = (plan.shape[nd - 1], plan.fshape[nd - 1], plan.before[nd - 1]);
    let width = last + kw - 1;
    let BoxSetup { cols, xs, mut out } = BoxSetup::new(plan)?;
    // a row of `cval`: what the rows beyond a constant boundary read
    let cv_row = try_filled(last, cval, "the rank filter's constant row")?;
    let (cols, cv_row) = (&cols, &cv_row[..]);
    let level = crate::cpu::simd::level();
    let vector = last >= rank_simd::lanes::<T>(level);
    // an input and output that do not fit in the last-level cache together: the output
    // is stored past it (no read of each output line before it is overwritten, and the
    // input keeps the cache). 2048x2048 float32 (32 MiB in all) maximum 3x3 / minimum
    // 3x3 / 5x5, 2 threads, in rounds alternating with cv2.dilate / erode: 3-7 % faster
    // in each of 10 pairs (max 3x3 1.39 -> 1.35 ms, min 5x5 2.64 -> 2.48); a 2048x2048
    // uint8 output (8 MiB in all, which the cache holds) streamed was 1.4-2.7x slower.
    let stream = (x.len() + out.len()) * std::mem::size_of::<T>() >= crate::cpu::simd::last_level_cache_bytes();
    // two output rows at a time when the box has two or more rows (their windows share
    // all rows but their ends: T::fold_pair)
    let lead_k: usize = plan.fshape[..nd - 1].iter().product();
    let step = if vector && lead_k >= 2 { 2 } else { 1 };
    // the edge-extended line's edges resolved from its middle, the line folded along the
    // last axis into `orow`
    let along = |line: &mut [T], orow: &mut [std::mem::MaybeUninit<T>], ahead: &[T]| {
        for j in (0..bl).chain(bl + last..width) {
            line[j] = cols[j].map_or(cval, |m| line[bl + m]);
        }
        let line = &line[..];
        with_slices(width + 1 - last, |_| line, |srcs| T::fold(level, min, srcs, 1, orow, stream, ahead));
    };
    // SAFETY (both): a slice of initialised values viewed as MaybeUninit (same layout);
    // the folds write only values into it.
    let mid = |line: &mut [T]| unsafe { &mut *(&mut line[bl..bl + last] as *mut [T] as *mut [std::mem::MaybeUninit<T>]) };
    let src = |row: Option<usize>| row.map_or(cv_row, |s| &x[s..s + last]);
    // the input row `i` rows after the one at `s` (none past the input's end): what a
    // later output row reads first, fetched while the folds along the last axis work
    // from the cache (which leaves memory idle otherwise). 2048x2048, 2 threads, both
    // ways alternating in one process: float32 minimum / maximum 3x3 / 5x5 / 7x7 7-46 %
    // faster, uint8 0-31 % (the least when the machine is quiet); the AVX2 path 23-52 %
    let next = |s: Option<usize>, i: usize| s.and_then(|s| row_after(x, s, i, last)).unwrap_or(&[]);
    out.par_chunks_mut(step * last).enumerate().with_min_len(ROWS_PER_TASK / step).for_each_init(
        || (Vec::<Option<usize>>::new(), Vec::<Option<usize>>::new(), Vec::<T>::new(), Vec::<T>::new(),
            vec![0usize; nd]),
        |(ra, rb, line, line2, oidx), (c, chunk)| {
            let r = c * step;
            line.resize(width, cval);
            box_rows(plan, &xs, r, oidx, ra);
            if chunk.len() == 2 * last {
                box_rows(plan, &xs, r + 1, oidx, rb);
                if ra[1..] == rb[..lead_k - 1] {
                    line2.resize(width, cval);
                    let (o0, o1) = chunk.split_at_mut(last);
                    let k = lead_k;
                    with_slices(k + 1, |i| src(if i < k { ra[i] } else { rb[k - 1] }), |srcs| {
                        T::fold_pair(level, min, srcs, [mid(line), mid(line2)])
                    });
                    along(line, o0, next(rb[k - 1], 1));
                    along(line2, o1, next(rb[k - 1], 2));
                    return;
                }
            }
            // one output row at a time (boxes of one row, the last row, rows whose
            // windows are not consecutive rows, rows shorter than a vector)
            for (i, orow) in chunk.chunks_mut(last).enumerate() {
                if i > 0 {
                    box_rows(plan, &xs, r + i, oidx, ra);
                }
                if !vector {
                    box_row_simd(x, ra, cols, cval, min, bl, line, orow);
                    continue;
                }
                // rows folded in registers into the line's middle, then along it
                with_slices(ra.len(), |i| src(ra[i]), |srcs| T::fold(level, min, srcs, 0, mid(line), false, &[]));
                along(line, orow, next(ra[ra.len() - 1], 1));
            }
        },
    );
    // SAFETY: every row was written whole by `box_row`.
    Ok(unsafe { crate::error::assume_init_vec(out) })
}

/// The input row of `last` values `i` rows after the one starting at `s` (None past the
/// input's end): what a later output row reads, for the box paths to fetch ahead.
fn row_after<T>(x: &[T], s: usize, i: usize, last: usize) -> Option<&[T]> {
    let a = s + i * last;
    x.get(a..a + last)
}

/// What both box paths start from.
struct BoxSetup<T> {
    /// The input column of each position of an edge-extended row (`before` + `last` +
    /// after; None: `cval` beyond a constant boundary).
    cols: Vec<Option<usize>>,
    /// The input's C-order strides.
    xs: Vec<usize>,
    /// The output, written row by row.
    out: Vec<std::mem::MaybeUninit<T>>,
}

impl<T: Rank> BoxSetup<T> {
    fn new(plan: &RankPlan) -> Result<Self> {
        let nd = plan.shape.len();
        let (last, kw, bl) = (plan.shape[nd - 1], plan.fshape[nd - 1], plan.before[nd - 1]);
        Ok(BoxSetup {
            cols: (0..last + kw - 1).map(|j| plan.boundary.map(j as isize - bl as isize, last)).collect(),
            xs: strides(&plan.shape),
            out: crate::error::try_uninit::<T>(checked_numel(&plan.shape)?, "the rank filter's output")?,
        })
    }
}

/// `g` of the slices `f(0..n)`, gathered on the stack when there are few.
fn with_slices<'a, T: 'a, R>(n: usize, f: impl Fn(usize) -> &'a [T], g: impl FnOnce(&[&'a [T]]) -> R) -> R {
    let mut few: [&[T]; 16] = [&[]; 16];
    if n <= few.len() {
        for (i, d) in few[..n].iter_mut().enumerate() {
            *d = f(i);
        }
        g(&few[..n])
    } else {
        g(&(0..n).map(f).collect::<Vec<_>>())
    }
}

/// The input rows (starts of C-order rows of `plan.shape`; None: a row of `cval` beyond
/// a constant boundary) that the box positions over the leading axes read for output
/// row `r`, pushed onto `rows` in the footprint's order.
fn box_rows(plan: &RankPlan, xs: &[usize], r: usize, oidx: &mut [usize], rows: &mut Vec<Option<usize>>) {
    let nd = plan.shape.len();
    if nd == 2 {
        // (the general walk below, without its divisions: 6 % of a uint8 3x3 median)
        oidx[0] = r;
        rows.clear();
        for t in 0..plan.fshape[0] {
            let i = r as isize + t as isize - plan.before[0] as isize;
            rows.push(plan.boundary.map(i, plan.shape[0]).map(|m| m * xs[0]));
        }
        return;
    }
    let mut rem = r;
    for a in (0..nd - 1).rev() {
        oidx[a] = rem % plan.shape[a];
        rem /= plan.shape[a];
    }
    rows.clear();
    let lead_k: usize = plan.fshape[..nd - 1].iter().product();
    for q in 0..lead_k {
        let mut qr = q;
        let mut src = Some(0usize);
        for a in (0..nd - 1).rev() {
            let t = qr % plan.fshape[a];
            qr /= plan.fshape[a];
            let i = oidx[a] as isize + t as isize - plan.before[a] as isize;
            src = match (src, plan.boundary.map(i, plan.shape[a])) {
                (Some(s), Some(m)) => Some(s + m * xs[a]),
                _ => None,
            };
        }
        rows.push(src);
    }
}

/// The median of a 3x3 or 5x5 box (`k`: the box's last axis and its number of rows over
/// the leading axes) without a padded copy of the input or a network over memory. Each
/// input row a task reads is turned once into a line of keys with its edges resolved
/// by the boundary rule ([`KeyLines`]: the `k + 1` most recent lines, so each input row
/// is converted once per task, not once per window that reads it); each output row is
/// then one run of `rank_simd`'s vector kernel over the `k` lines (the 3x3 median
/// through sorted columns, two output rows a run over four lines; the 5x5 through the
/// median-of-25 network), which writes the values into the output row; meanwhile it
/// fetches the input rows the next output rows will read into the cache. The 3x3 of
/// one-byte values in rows of three vectors or more goes to [`box_median3_in_place`].
fn box_median<T: Rank>(x: &[T], plan: &RankPlan, cval: T, k: usize) -> Result<Vec<T>> {
    let nd = plan.shape.len();
    let (last, bl) = (plan.shape[nd - 1], plan.before[nd - 1]);
    let level = crate::cpu::simd::level();
    // outputs computed per row: at least one vector's worth (a short row's rest is
    // computed from `cval` keys and dropped)
    let lanes = rank_simd::lanes::<T>(level);
    // (one-byte values only: measured alternating with cv2.medianBlur as
    // benches/compare.py does, 2048x2048 uint16 took 0.9-1.4 ms this way against
    // 0.6-1.1 ms through the lines of keys, though faster in a loop of its own calls;
    // uint8 0.33-0.43 ms against 0.36-0.50)
    if k == 3 && T::KEY_IS_VALUE && std::mem::size_of::<T>() == 1 && lanes > 1 && last >= 3 * lanes {
        return box_median3_in_place(x, plan, cval, level);
    }
    let BoxSetup { cols, xs, mut out } = BoxSetup::new(plan)?;
    let cols = &cols;
    let m = lanes.max(last);
    let width = m + k - 1;
    // the line a row beyond a constant boundary reads
    let cv_line = try_filled(width, cval.key(), "the rank filter's constant row")?;
    let cv_line = &cv_line[..];
    // the 3x3 median computes two output rows at a time (their windows share two rows)
    let step = if k == 3 { 2 } else { 1 };
    out.par_chunks_mut(step * last).enumerate().with_min_len(ROWS_PER_TASK / step).for_each_init(
        || {
            (Vec::<Option<usize>>::new(), Vec::<Option<usize>>::new(), KeyLines::<T>::new(k + 1, width, cval),
             vec![0usize; nd], vec![std::mem::MaybeUninit::<T>::uninit(); if last < lanes { 2 * m } else { 0 }])
        },
        |(ra, rb, lines, oidx, tmp), (c, chunk)| {
            let r = c * step;
            // the input rows after the newest one read: what the next output rows read
            // first, fetched while these are computed
            let ahead = std::cell::Cell::new([cv_line.as_ptr() as *const u8; 2]);
            let mut make = |s: usize, line: &mut [T::Key]| {
                key_line_simd(&x[s..s + last], cols, cval, bl, line);
                let mut a = ahead.get();
                for (i, a) in a.iter_mut().enumerate() {
                    if let Some(row) = row_after(x, s, i + 1, last) {
                        *a = row.as_ptr() as *const u8;
                    }
                }
                ahead.set(a);
            };
            box_rows(plan, &xs, r, oidx, ra);
            if chunk.len() == 2 * last {
                box_rows(plan, &xs, r + 1, oidx, rb);
                if ra[1..] == rb[..2] {
                    let src = lines.get(&[ra[0], ra[1], ra[2], rb[2]], &mut make, cv_line);
                    let (o0, o1) = chunk.split_at_mut(last);
                    if last >= lanes {
                        T::median_pair(level, &src[..4], [o0, o1], ahead.get());
                    } else {
                        let (t0, t1) = tmp.split_at_mut(m);
                        T::median_pair(level, &src[..4], [t0, t1], ahead.get());
                        o0.copy_from_slice(&t0[..last]);
                        o1.copy_from_slice(&t1[..last]);
                    }
                    return;
                }
            }
            // one output row at a time (5x5, the last row, rows whose windows are not
            // consecutive rows)
            for (i, orow) in chunk.chunks_mut(last).enumerate() {
                if i > 0 {
                    box_rows(plan, &xs, r + i, oidx, ra);
                }
                let src = lines.get(ra, &mut make, cv_line);
                let src = &src[..k];
                if last >= lanes {
                    T::median_line(level, k, src, orow, ahead.get()[0]);
                } else {
                    // a short row: `lanes` outputs computed, the row's copied out
                    T::median_line(level, k, src, &mut tmp[..m], ahead.get()[0]);
                    orow.copy_from_slice(&tmp[..last]);
                }
            }
        },
    );
    // SAFETY: every output of every row was written above (the rows in place, or the
    // short rows' copies of outputs the kernels wrote).
    Ok(unsafe { crate::error::assume_init_vec(out) })
}

/// The 3x3 box median of a type whose values are their keys ([`Rank::KEY_IS_VALUE`]),
/// read from the input rows where they lie (no lines of keys copied: 13 % of the uint8
/// median's time, their bookkeeping 8 %): each task's output rows, in runs whose
/// windows are consecutive rows, through `rank_simd`'s strip kernel
/// ([`MedianValue::median3_rows`](rank_simd::MedianValue::median3_rows)), the outputs
/// whose windows lie within the rows from the rows themselves, the first and the last
/// vector of outputs of each row from short lines of the rows' ends, their edges
/// resolved by the boundary rule. Rows of at least three vectors.
fn box_median3_in_place<T: Rank>(x: &[T], plan: &RankPlan, cval: T, level: crate::cpu::simd::Level) -> Result<Vec<T>> {
    let nd = plan.shape.len();
    let last = plan.shape[nd - 1];
    let lanes = rank_simd::lanes::<T>(level);
    assert!(lanes > 1 && last >= 3 * lanes);
    let BoxSetup { cols, xs, mut out } = BoxSetup::new(plan)?;
    let (cols, xs) = (&cols[..], &xs[..]);
    // the line a row beyond a constant boundary reads
    let cv_line = try_filled(last + 2, cval.key(), "the rank filter's constant row")?;
    let ends = Ends { x, cols, cval, bl: plan.before[nd - 1], lanes, cv_line: &cv_line };
    // tasks of up to ROWS3_MAX rows, at least two a thread
    let rows = out.len() / last;
    let block = rank_simd::ROWS3_MAX.min(rows / (2 * rayon::current_num_threads())).max(1);
    out.par_chunks_mut(block * last).enumerate().for_each_init(
        || {
            (Vec::<Option<usize>>::new(), Vec::<Option<usize>>::with_capacity(block + 2), vec![0usize; nd],
             vec![cval.key(); 2 * (block + 2) * (lanes + 2)])
        },
        |(ra, run, oidx, scratch), (b, chunk)| {
            let rows = chunk.len() / last;
            let mut start = 0;
            run.clear();
            for i in 0..rows {
                box_rows(plan, xs, b * block + i, oidx, ra);
                if run.len() >= 3 && run[run.len() - 2..] == ra[..2] {
                    run.push(ra[2]);
                    continue;
                }
                if !run.is_empty() {
                    ends.median3_run(run, level, scratch, &mut chunk[start * last..i * last]);
                }
                run.clear();
                run.extend_from_slice(ra);
                start = i;
            }
            ends.median3_run(run, level, scratch, &mut chunk[start * last..]);
        },
    );
    // SAFETY: every output of every row was written by `median3_run`.
    Ok(unsafe { crate::error::assume_init_vec(out) })
}

/// What [`box_median3_in_place`]'s runs share.
struct Ends<'a, T: Rank> {
    x: &'a [T],
    /// The input column of each position of an edge-extended row (see [`BoxSetup`]).
    cols: &'a [Option<usize>],
    cval: T,
    /// The window's columns before its centre.
    bl: usize,
    lanes: usize,
    /// A row of `cval` keys, `last + 2` long.
    cv_line: &'a [T::Key],
}

impl<T: Rank> Ends<'_, T> {
    /// The output rows `out` of the 3x3 windows over consecutive input rows `run`
    /// (None: a row of `cval`; output row `i` reads `run[i..i + 3]`); `scratch` holds
    /// the short lines of the rows' ends.
    fn median3_run(&self, run: &[Option<usize>], level: crate::cpu::simd::Level, scratch: &mut [T::Key],
                   out: &mut [std::mem::MaybeUninit<T>]) {
        assert!(T::KEY_IS_VALUE && std::mem::size_of::<T>() == std::mem::size_of::<T::Key>());
        let (x, cols, bl, l) = (self.x, self.cols, self.bl, self.lanes);
        let last = cols.len() - 2;
        let m = run.len() - 2;
        let w = l + 2;
        assert!(out.len() == m * last && m <= rank_simd::ROWS3_MAX && bl <= 2 && last >= 3 * l);
        let (left, right) = scratch[..2 * (m + 2) * w].split_at_mut((m + 2) * w);
        for ((&r, le), ri) in run.iter().zip(left.chunks_mut(w)).zip(right.chunks_mut(w)) {
            // line position j is input column j - bl (left), last - l + j - bl (right)
            let Some(s) = r else {
                le.fill(self.cval.key());
                ri.fill(self.cval.key());
                continue;
            };
            let row = &x[s..s + last];
            for (d, &v) in le[bl..].iter_mut().zip(&row[..w - bl]) {
                *d = v.key();
            }
            for (d, &v) in ri[..l + bl].iter_mut().zip(&row[last - l - bl..]) {
                *d = v.key();
            }
            for j in 0..bl {
                le[j] = cols[j].map_or(self.cval, |c| row[c]).key();
            }
            for j in l + bl..w {
                ri[j] = cols[last - l + j].map_or(self.cval, |c| row[c]).key();
            }
        }
        let mut lines: [&[T::Key]; rank_simd::ROWS3_MAX + 2] = [&[]; rank_simd::ROWS3_MAX + 2];
        let lines = &mut lines[..m + 2];
        for (d, e) in lines.iter_mut().zip(left.chunks(w)) {
            *d = e;
        }
        T::median3_rows(level, lines, l, out, last, 0);
        for (d, e) in lines.iter_mut().zip(right.chunks(w)) {
            *d = e;
        }
        T::median3_rows(level, lines, l, out, last, last - l);
        // outputs l.. read input columns l - bl..
        for (d, &r) in lines.iter_mut().zip(run) {
            *d = match r {
                // SAFETY: `Key` is `T` itself (KEY_IS_VALUE, asserted above).
                Some(s) => unsafe {
                    std::slice::from_raw_parts(x[s + l - bl..s + last].as_ptr() as *const T::Key, last + bl - l)
                },
                None => self.cv_line,
            };
        }
        T::median3_rows(level, lines, last - 2 * l, out, last, l);
    }
}

/// The key lines of the input rows a box median task has read most recently, one more
/// than the box has rows (every row a window or a pair of windows reads is among
/// them): an output row of a `k`-row box shares `k - 1` input rows with the one above
/// it, so walking down a task converts each input row once.
struct KeyLines<T: Rank> {
    /// The input row (its start in the input) each line holds; `usize::MAX`: none yet.
    held: Vec<usize>,
    /// Lines of `width` keys: the row's keys at `bl..bl + last`, its edges resolved on
    /// either side, `cval`'s key after (the positions a short row computes and drops).
    lines: Vec<Vec<T::Key>>,
}

impl<T: Rank> KeyLines<T> {
    fn new(slots: usize, width: usize, cval: T) -> Self {
        KeyLines { held: vec![usize::MAX; slots], lines: vec![vec![cval.key(); width]; slots] }
    }

    /// The lines of `rows` (None: `cv_line`, a row beyond a constant boundary), in
    /// order, at most 5 and at most as many as the slots; a row not held is made into
    /// the line of a row not needed by `make`.
    fn get<'a>(
        &'a mut self,
        rows: &[Option<usize>],
        make: &mut impl FnMut(usize, &mut [T::Key]),
        cv_line: &'a [T::Key],
    ) -> [&'a [T::Key]; 5] {
        let slots = self.held.len();
        assert!(rows.len() <= slots.min(5));
        // the line of each row (usize::MAX: not held yet); lines a row here needs are kept
        let mut slot = [usize::MAX; 5];
        let mut needed = [false; 6];
        for (d, s) in slot.iter_mut().zip(rows) {
            if let Some(j) = s.and_then(|s| self.held.iter().position(|&h| h == s)) {
                needed[j] = true;
                *d = j;
            }
        }
        for (i, s) in rows.iter().enumerate() {
            let Some(s) = *s else { continue };
            if slot[i] != usize::MAX {
                continue;
            }
            // (a row given twice may have been made just now)
            slot[i] = match self.held.iter().position(|&h| h == s) {
                Some(j) => j,
                None => {
                    // at most `slots` distinct rows are needed: one line is free
                    let j = (0..slots).find(|&j| !needed[j]).expect("a free key line");
                    make(s, &mut self.lines[j]);
                    self.held[j] = s;
                    needed[j] = true;
                    j
                }
            };
        }
        let mut src: [&[T::Key]; 5] = [&[]; 5];
        for ((d, row), &j) in src.iter_mut().zip(rows).zip(&slot) {
            *d = if row.is_some() { &self.lines[j][..] } else { cv_line };
        }
        src
    }
}

crate::multiversion!(fn key_line_simd => key_line<T: Rank>(row: &[T], cols: &[Option<usize>], cval: T, bl: usize,
    line: &mut [T::Key]));

/// The key line of input row `row` (see [`KeyLines`]): its keys at `bl..bl + last`, the
/// positions `cols` maps on either side.
#[inline(always)]
fn key_line<T: Rank>(row: &[T], cols: &[Option<usize>], cval: T, bl: usize, line: &mut [T::Key]) {
    let last = row.len();
    for (d, &v) in line[bl..bl + last].iter_mut().zip(row) {
        *d = v.key();
    }
    for j in (0..bl).chain(bl + last..cols.len()) {
        line[j] = cols[j].map_or(cval, |c| row[c]).key();
    }
}

crate::multiversion!(fn box_row_simd => box_row<T: Rank>(x: &[T], rows: &[Option<usize>], cols: &[Option<usize>],
    cval: T, min: bool, bl: usize, line: &mut [T], orow: &mut [std::mem::MaybeUninit<T>]));

/// One output row of [`box_min_max`]: `rows` are the input rows' starts (None: a row of
/// `cval`), `cols[j]` the input column of line position `j` (None: `cval`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn box_row<T: Rank>(
    x: &[T],
    rows: &[Option<usize>],
    cols: &[Option<usize>],
    cval: T,
    min: bool,
    bl: usize,
    line: &mut [T],
    orow: &mut [std::mem::MaybeUninit<T>],
) {
    let last = orow.len();
    let width = line.len();
    let kw = width + 1 - last;
    {
        let mid = &mut line[bl..bl + last];
        match rows[0] {
            Some(s) => mid.copy_from_slice(&x[s..s + last]),
            None => mid.fill(cval),
        }
        for &src in &rows[1..] {
            match (src, min) {
                (Some(s), true) => mid.iter_mut().zip(&x[s..s + last]).for_each(|(d, &v)| *d = lo(*d, v)),
                (Some(s), false) => mid.iter_mut().zip(&x[s..s + last]).for_each(|(d, &v)| *d = hi(*d, v)),
                (None, true) => mid.iter_mut().for_each(|d| *d = lo(*d, cval)),
                (None, false) => mid.iter_mut().for_each(|d| *d = hi(*d, cval)),
            }
        }
    }
    for j in (0..bl).chain(bl + last..width) {
        line[j] = match cols[j] {
            Some(m) => line[bl + m],
            None => {
                // A column beyond the edge of the constant boundary: every row is cval
                // there, and so is their fold.
                cval
            }
        };
    }
    for (d, &v) in orow.iter_mut().zip(&line[..last]) {
        *d = std::mem::MaybeUninit::new(v);
    }
    // SAFETY: every element was written just above, and MaybeUninit<T> has T's layout.
    let out = unsafe { std::slice::from_raw_parts_mut(orow.as_mut_ptr() as *mut T, last) };
    for t in 1..kw {
        let src = &line[t..t + last];
        if min {
            out.iter_mut().zip(src).for_each(|(d, &v)| *d = lo(*d, v));
        } else {
            out.iter_mut().zip(src).for_each(|(d, &v)| *d = hi(*d, v));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: Rank>(
    level: crate::cpu::simd::Level,
    p: &[T],
    start: usize,
    offs: &[usize],
    m: &Method,
    rank: usize,
    out: &mut [T],
    scratch: &mut Vec<T::Key>,
) {
    use crate::cpu::simd::Level;
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is only ever one the CPU has (crate::cpu::simd).
        Level::Avx512 => unsafe { body_avx512(p, start, offs, m, rank, out, scratch) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { body_avx2(p, start, offs, m, rank, out, scratch) },
        _ => body(p, start, offs, m, rank, out, scratch),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn body_avx512<T: Rank>(
    p: &[T],
    start: usize,
    offs: &[usize],
    m: &Method,
    rank: usize,
    out: &mut [T],
    scratch: &mut Vec<T::Key>,
) {
    body(p, start, offs, m, rank, out, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_avx2<T: Rank>(
    p: &[T],
    start: usize,
    offs: &[usize],
    m: &Method,
    rank: usize,
    out: &mut [T],
    scratch: &mut Vec<T::Key>,
) {
    body(p, start, offs, m, rank, out, scratch)
}

/// Outputs `out[x]`, x in 0..out.len(), from the values `p[start + off + x]`.
#[inline(always)]
fn body<T: Rank>(
    p: &[T],
    start: usize,
    offs: &[usize],
    m: &Method,
    rank: usize,
    out: &mut [T],
    scratch: &mut Vec<T::Key>,
) {
    let len = out.len();
    match m {
        Method::Min | Method::Max => {
            out.copy_from_slice(&p[start + offs[0]..start + offs[0] + len]);
            let min = matches!(m, Method::Min);
            for &o in &offs[1..] {
                let src = &p[start + o..start + o + len];
                if min {
                    for (d, &v) in out.iter_mut().zip(src) {
                        *d = lo(*d, v);
                    }
                } else {
                    for (d, &v) in out.iter_mut().zip(src) {
                        *d = hi(*d, v);
                    }
                }
            }
        }
        Method::Median9 => match std::mem::size_of::<T>() {
            1 => median9::<T, 64>(p, start, offs, out),
            _ => median9::<T, 32>(p, start, offs, out),
        },
        Method::Median25 => match std::mem::size_of::<T>() {
            1 => median25::<T, 64>(p, start, offs, out),
            _ => median25::<T, 32>(p, start, offs, out),
        },
        Method::Network(net) => match std::mem::size_of::<T>() {
            1 => network::<T, 256>(p, start, offs, net, rank, out, scratch),
            2 => network::<T, 128>(p, start, offs, net, rank, out, scratch),
            4 => network::<T, 64>(p, start, offs, net, rank, out, scratch),
            _ => network::<T, 32>(p, start, offs, net, rank, out, scratch),
        },
        Method::Select => {
            for (x, d) in out.iter_mut().enumerate() {
                scratch.clear();
                scratch.extend(offs.iter().map(|&o| p[start + o + x].key()));
                let (_, v, _) = scratch.select_nth_unstable(rank);
                *d = T::from_key(*v);
            }
        }
    }
}

include!("rank_networks.rs");

#[path = "rank_simd.rs"]
pub(crate) mod rank_simd;

/// A median network as straight-line code over a local array of wires, `L` values of
/// a type making one 512-bit vector each: every index is a constant, so the wires can
/// live in vector registers (25 of the 32 for 5x5) instead of going through memory.
macro_rules! define_median {
    ($name:ident, $n:literal, $rank:literal, [$(($a:literal, $b:literal)),*]) => {
        #[inline(always)]
        fn $name<T: Rank, const L: usize>(p: &[T], start: usize, offs: &[usize], out: &mut [T]) {
            debug_assert_eq!(offs.len(), $n);
            let len = out.len();
            let mut v: [[T::Key; L]; $n] = [[p[start + offs[0]].key(); L]; $n];
            let mut x0 = 0;
            while x0 < len {
                let w = L.min(len - x0);
                for j in 0..$n {
                    let src = &p[start + offs[j] + x0..start + offs[j] + x0 + w];
                    for (d, &s) in v[j].iter_mut().zip(src) {
                        *d = s.key();
                    }
                }
                $(
                    let (head, tail) = v.split_at_mut($b);
                    exchange(&mut head[$a], &mut tail[0]);
                )*
                for (d, &k) in out[x0..x0 + w].iter_mut().zip(&v[$rank]) {
                    *d = T::from_key(k);
                }
                x0 += w;
            }
        }
    };
}
with_median_networks!(define_median);

/// One comparator over `L` lanes (distinct wires: the references do not alias).
#[inline(always)]
fn exchange<K: Copy + Ord, const L: usize>(va: &mut [K; L], vb: &mut [K; L]) {
    for l in 0..L {
        let (s, t) = (va[l], vb[l]);
        va[l] = lo(s, t);
        vb[l] = hi(s, t);
    }
}

/// The selection network over runs of `L` outputs: `L` values of a type make 256 bytes,
/// four 512-bit vectors per comparator, independent of each other, so that the
/// latency of one min/max (and of the store feeding the next comparator's load) is
/// hidden behind the others.
#[inline(always)]
fn network<T: Rank, const L: usize>(
    p: &[T],
    start: usize,
    offs: &[usize],
    net: &[(usize, usize)],
    rank: usize,
    out: &mut [T],
    scratch: &mut Vec<T::Key>,
) {
    let (n, len) = (offs.len(), out.len());
    if scratch.len() < n * L {
        scratch.clear();
        scratch.resize(n * L, p[start].key());
    }
    let wires = scratch.as_mut_ptr() as *mut [T::Key; L];
    let mut x0 = 0;
    while x0 < len {
        let w = L.min(len - x0);
        for (j, &o) in offs.iter().enumerate() {
            let src = &p[start + o + x0..start + o + x0 + w];
            // SAFETY: j < n and the scratch holds n wires of L values.
            let wire = unsafe { &mut *wires.add(j) };
            for (d, &s) in wire.iter_mut().zip(src) {
                *d = s.key();
            }
        }
        for &(a, b) in net {
            // SAFETY: a < b < n (the network's comparators): two distinct wires of the n
            // in the scratch.
            unsafe { exchange(&mut *wires.add(a), &mut *wires.add(b)) };
        }
        // SAFETY: rank < n.
        let wire = unsafe { &*wires.add(rank) };
        for (d, &k) in out[x0..x0 + w].iter_mut().zip(wire) {
            *d = T::from_key(k);
        }
        x0 += w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// The separable box minimum / maximum and the 3x3 / 5x5 box medians against the
    /// padded path, for every boundary, origins at both ends, constant rows and columns,
    /// leading axes of size 1 and 3-D inputs (the 3x3 median's pairs of rows across
    /// planes and over a leading axis), in four element types and floats with every
    /// special value.
    #[test]
    fn box_paths_match_the_padded_path() {
        // `nan`: the values hold NaN, whose place in a minimum / maximum is unspecified
        // (the folds compare values, the padded path keys): medians only
        fn case<T: Rank + std::fmt::Debug>(conv: impl Fn(u64) -> T, seed: u64, nan: bool) {
            let mut s = seed;
            let shapes: &[(&[usize], &[usize])] = &[
                (&[9, 13], &[3, 3]),
                (&[8, 300], &[3, 3]),
                (&[5, 4, 70], &[1, 3, 3]),
                (&[6, 5, 7], &[2, 3, 5]),
                (&[12, 2], &[5, 1]),
                (&[7, 3], &[3, 4]),
                (&[40], &[3]),
                (&[9, 70], &[5, 5]),
                (&[8, 200], &[5, 5]),
                (&[6, 3], &[5, 5]),
                (&[5, 4, 68], &[1, 5, 5]),
                (&[4, 3, 66], &[5, 1, 5]),
                // 3x3 pairs of rows: planes of an odd number of rows (a pair across two
                // planes), windows over a non-last leading axis (rows not consecutive)
                (&[7, 3, 130], &[1, 3, 3]),
                (&[4, 5, 40], &[3, 1, 3]),
                (&[11, 2, 17], &[3, 1, 3]),
            ];
            for &(shape, fshape) in shapes {
                let n: usize = shape.iter().product();
                let x: Vec<T> = (0..n).map(|_| conv(lcg(&mut s))).collect();
                let cval = conv(lcg(&mut s));
                let count: usize = fshape.iter().product();
                for b in [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap] {
                    for shift in [-1isize, 0, 1] {
                        let origin: Vec<isize> =
                            fshape.iter().map(|&f| (shift * (f as isize / 2)).clamp(-(f as isize / 2), (f as isize - 1) / 2)).collect();
                        let ranks = if nan { vec![count / 2] } else { vec![0, count / 2, count - 1] };
                        for rank in ranks {
                            let Ok(plan) = RankPlan::new(shape, fshape, vec![true; count], &origin, b, rank) else {
                                continue;
                            };
                            let pshape: Vec<usize> = shape.iter().zip(fshape).map(|(&a, &f)| a + f - 1).collect();
                            let want = rank_padded(&x, &plan, cval, &pshape).unwrap();
                            let got = rank_filter(&x, &plan, cval).unwrap();
                            assert_eq!(got.len(), want.len());
                            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert!(g.key() == w.key(), "{shape:?} {fshape:?} {b:?} {origin:?} rank {rank} at {i}: {g:?} vs {w:?}");
                            }
                        }
                    }
                }
            }
        }
        // Two workers, so that every input of four rows or more takes the box paths.
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(|| {
            case(|v| (v % 251) as u8, 1, false);
            case(|v| (v % 60000) as i16 - 30000, 2, false);
            case(|v| ((v % 2001) as f32 - 1000.0) * 0.37, 3, false);
            case(|v| ((v % 199) as f64 - 99.0) * -1.5, 4, false);
            // both zeros, infinities and NaN of both signs among ordinary values
            let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN, 1e-310, -2.5, 3.0, 7.0];
            case(|v| specials[(v % 10) as usize] as f32, 5, true);
            case(|v| specials[(v % 10) as usize], 6, true);
        });
    }

    #[test]
    fn float_keys_keep_the_order() {
        let v = [f32::NEG_INFINITY, -3.5, -1e-40, -0.0, 0.0, 1e-40, 2.0, f32::MAX, f32::INFINITY, f32::NAN];
        for w in v.windows(2) {
            assert!(w[0].key() < w[1].key(), "{} {}", w[0], w[1]);
        }
        for &x in &v {
            assert_eq!(f32::from_key(x.key()).to_bits(), x.to_bits());
            assert_eq!(f64::from_key((x as f64).key()).to_bits(), (x as f64).to_bits());
        }
        assert!((-2.0f64).key() < (-1.0f64).key() && (-1.0f64).key() < 0.5f64.key());
    }

    #[test]
    fn networks_select_every_rank() {
        let mut seed = 7u64;
        for n in 1..=NET_MAX {
            for rank in 0..n {
                let net = selection_network(n, rank);
                for _ in 0..4 {
                    let mut v: Vec<i64> = (0..n).map(|_| (lcg(&mut seed) % 17) as i64).collect();
                    let mut s = v.clone();
                    s.sort();
                    for &(a, b) in &net {
                        let (x, y) = (v[a], v[b]);
                        v[a] = lo(x, y);
                        v[b] = hi(x, y);
                    }
                    assert_eq!(v[rank], s[rank], "n={n} rank={rank}");
                }
            }
        }
    }

    /// Every 0/1 input of up to 12 wires (the 0-1 principle: a comparator network that
    /// selects correctly on all of them selects correctly on any input).
    #[test]
    fn networks_pass_the_zero_one_principle() {
        for n in 1..=12usize {
            for rank in 0..n {
                let net = selection_network(n, rank);
                for bits in 0u32..(1 << n) {
                    let mut v: Vec<u8> = (0..n).map(|i| ((bits >> i) & 1) as u8).collect();
                    let ones = bits.count_ones() as usize;
                    for &(a, b) in &net {
                        let (x, y) = (v[a], v[b]);
                        v[a] = lo(x, y);
                        v[b] = hi(x, y);
                    }
                    assert_eq!(v[rank], u8::from(rank >= n - ones), "n={n} rank={rank} bits={bits:b}");
                }
            }
        }
    }

    #[test]
    fn straight_line_medians_are_the_generated_networks() {
        macro_rules! check {
            ($name:ident, $n:literal, $rank:literal, [$(($a:literal, $b:literal)),*]) => {
                assert_eq!(vec![$(($a, $b)),*], selection_network($n, $rank), stringify!($name));
            };
        }
        with_median_networks!(check);
    }

    fn reference(x: &[i32], plan: &RankPlan, cval: i32) -> Vec<i32> {
        let nd = plan.shape.len();
        let n: usize = plan.shape.iter().product();
        let xs = strides(&plan.shape);
        let fs = strides(&plan.fshape);
        (0..n)
            .map(|o| {
                let mut vals = Vec::new();
                for f in 0..plan.footprint.len() {
                    if !plan.footprint[f] {
                        continue;
                    }
                    let mut src = Some(0usize);
                    for a in 0..nd {
                        let i = (o / xs[a]) % plan.shape[a] + (f / fs[a]) % plan.fshape[a];
                        let m = plan.boundary.map(i as isize - plan.before[a] as isize, plan.shape[a]);
                        src = match (src, m) {
                            (Some(s), Some(m)) => Some(s + m * xs[a]),
                            _ => None,
                        };
                    }
                    vals.push(src.map_or(cval, |s| x[s]));
                }
                vals.sort();
                vals[plan.rank]
            })
            .collect()
    }

    #[test]
    fn matches_a_direct_reference() {
        let mut seed = 11u64;
        let boundaries = [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap];
        for case in 0..120 {
            let nd = 1 + case % 3;
            let shape: Vec<usize> = (0..nd).map(|_| 1 + (lcg(&mut seed) % 9) as usize).collect();
            let fshape: Vec<usize> = (0..nd).map(|_| 1 + (lcg(&mut seed) % 5) as usize).collect();
            let fn_: usize = fshape.iter().product();
            let mut footprint: Vec<bool> = (0..fn_).map(|_| lcg(&mut seed) % 3 != 0).collect();
            footprint[0] = true;
            let count = footprint.iter().filter(|&&t| t).count();
            let origin: Vec<isize> =
                fshape.iter().map(|&f| (lcg(&mut seed) % f as u64) as isize - (f as isize / 2)).collect();
            let rank = (lcg(&mut seed) % count as u64) as usize;
            let b = boundaries[case % 5];
            let plan = RankPlan::new(&shape, &fshape, footprint, &origin, b, rank).unwrap();
            let n: usize = shape.iter().product();
            let x: Vec<i32> = (0..n).map(|_| (lcg(&mut seed) % 50) as i32 - 25).collect();
            assert_eq!(rank_filter(&x, &plan, -3).unwrap(), reference(&x, &plan, -3), "case {case} {plan:?}");
            let xf: Vec<f64> = x.iter().map(|&v| v as f64 * 0.25).collect();
            let want: Vec<f64> = reference(&x, &plan, -3).iter().map(|&v| v as f64 * 0.25).collect();
            assert_eq!(rank_filter(&xf, &plan, -0.75).unwrap(), want, "case {case} (f64)");
        }
    }

    #[test]
    fn box_medians_match_the_reference() {
        let mut seed = 5u64;
        for (shape, f) in [([70usize, 150usize], 3usize), ([40, 133], 5), ([3, 2], 5), ([9, 64], 3)] {
            let plan = RankPlan::new(&shape, &[f, f], vec![true; f * f], &[0, 0], Boundary::Mirror, f * f / 2).unwrap();
            let x: Vec<i32> = (0..shape[0] * shape[1]).map(|_| (lcg(&mut seed) % 300) as i32 - 150).collect();
            let want = reference(&x, &plan, 0);
            assert_eq!(rank_filter(&x, &plan, 0).unwrap(), want, "{shape:?} {f}");
            let xf: Vec<f32> = x.iter().map(|&v| v as f32 * 0.5).collect();
            let wantf: Vec<f32> = want.iter().map(|&v| v as f32 * 0.5).collect();
            assert_eq!(rank_filter(&xf, &plan, 0.0).unwrap(), wantf);
            let xb: Vec<u8> = x.iter().map(|&v| ((v + 150) / 2) as u8).collect();
            let wantb: Vec<u8> = want.iter().map(|&v| ((v + 150) / 2) as u8).collect();
            assert_eq!(rank_filter(&xb, &plan, 0).unwrap(), wantb);
            let xs: Vec<i16> = x.iter().map(|&v| v as i16).collect();
            let wants: Vec<i16> = want.iter().map(|&v| v as i16).collect();
            assert_eq!(rank_filter(&xs, &plan, 0).unwrap(), wants);
        }
    }

    /// The 3x3 median of the integer types (the one-byte ones read from the rows in
    /// place: rows of three vectors and more, in runs of up to ROWS3_MAX output rows,
    /// broken where the windows leave a plane), on every boundary, with the window off
    /// centre.
    #[test]
    fn in_place_3x3_medians_match_the_reference() {
        // (two threads, so that every case takes the box path whatever the machine:
        // it needs two rows a thread)
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(in_place_3x3_cases);
    }

    fn in_place_3x3_cases() {
        let mut seed = 11u64;
        let cases: [(&[usize], &[usize]); 5] =
            [(&[70, 200], &[3, 3]), (&[33, 192], &[3, 3]), (&[2, 9, 200], &[1, 3, 3]), (&[5, 64], &[3, 3]), (&[40, 24], &[3, 3])];
        for (shape, fshape) in cases {
            let n: usize = shape.iter().product();
            let x: Vec<i32> = (0..n).map(|_| (lcg(&mut seed) % 40) as i32 - 20).collect();
            for boundary in [Boundary::Reflect, Boundary::Constant, Boundary::Nearest, Boundary::Mirror, Boundary::Wrap] {
                for o in [-1isize, 0, 1] {
                    let mut origin = vec![0isize; shape.len()];
                    origin[shape.len() - 1] = o;
                    origin[shape.len() - 2] = -o;
                    let plan = RankPlan::new(shape, fshape, vec![true; 9], &origin, boundary, 4).unwrap();
                    let want = reference(&x, &plan, 7);
                    let what = format!("{shape:?} {boundary:?} origin {origin:?}");
                    let b = |v: i32| ((v + 20) * 6) as u8;
                    let got = rank_filter(&x.iter().map(|&v| b(v)).collect::<Vec<_>>(), &plan, b(7)).unwrap();
                    assert_eq!(got, want.iter().map(|&v| b(v)).collect::<Vec<_>>(), "u8 {what}");
                    let got = rank_filter(&x.iter().map(|&v| v as i8 * 6).collect::<Vec<_>>(), &plan, 42).unwrap();
                    assert_eq!(got, want.iter().map(|&v| v as i8 * 6).collect::<Vec<_>>(), "i8 {what}");
                    let got = rank_filter(&x.iter().map(|&v| v as i16 * 1000).collect::<Vec<_>>(), &plan, 7000).unwrap();
                    assert_eq!(got, want.iter().map(|&v| v as i16 * 1000).collect::<Vec<_>>(), "i16 {what}");
                    let u = |v: i32| (v + 20) as u32 * 100_000_000;
                    let got = rank_filter(&x.iter().map(|&v| u(v)).collect::<Vec<_>>(), &plan, u(7)).unwrap();
                    assert_eq!(got, want.iter().map(|&v| u(v)).collect::<Vec<_>>(), "u32 {what}");
                    let got = rank_filter(&x.iter().map(|&v| v as i64 * (1 << 58)).collect::<Vec<_>>(), &plan, 7 << 58).unwrap();
                    assert_eq!(got, want.iter().map(|&v| v as i64 * (1 << 58)).collect::<Vec<_>>(), "i64 {what}");
                }
            }
        }
    }

    #[test]
    fn long_rows_and_large_footprints() {
        let mut seed = 3u64;
        for (len, f, rank) in [(10_000usize, 5usize, 2usize), (9_000, 121, 60), (5_000, 7, 0), (5_000, 7, 6)] {
            let plan = RankPlan::new(&[len], &[f], vec![true; f], &[0], Boundary::Reflect, rank).unwrap();
            let x: Vec<i32> = (0..len).map(|_| (lcg(&mut seed) % 1000) as i32).collect();
            assert_eq!(rank_filter(&x, &plan, 0).unwrap(), reference(&x, &plan, 0));
            let xf: Vec<f32> = x.iter().map(|&v| v as f32 - 500.0).collect();
            let wantf: Vec<f32> = reference(&x, &plan, 0).iter().map(|&v| v as f32 - 500.0).collect();
            assert_eq!(rank_filter(&xf, &plan, -500.0).unwrap(), wantf);
        }
    }
}

