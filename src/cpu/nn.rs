//! Neural-network kernels other than convolution, dense and windowed pooling:
//! activations, losses and accuracy, batch normalization, dropout, global pooling and
//! optimizer steps, each with its backward pass. Channels-last C-order buffers, generic
//! over the element type, rayon-parallel, fallible allocation, no panics on bad input
//! (lengths are checked and reported as `Error::Value`).
//!
//! The formulas are Keras 3's (each function says which). Reductions that produce a
//! single number or per-channel statistics accumulate in f64 over a chunking that
//! depends only on the input size, so results do not change with the thread count.

use crate::element::Element;
pub use crate::ops::nn::{Activation, Loss};
use crate::error::{assume_init_vec, try_filled, try_uninit, try_zeroed, Error, Result};
use crate::ops::pool::PoolKind;
use rayon::prelude::*;

/// Elements per rayon task below which splitting costs more than it saves.
const MIN_LEN: usize = 1 << 12;

/// Keras' `backend.epsilon()`, the clip bound of the probability losses.
pub const KERAS_EPSILON: f64 = 1e-7;

#[inline(always)]
fn to_t<T: Element>(v: f64) -> T {
    T::from_f64_lossy(v)
}

#[inline(always)]
fn to_f<T: Element>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// Rows per rayon task for rows of `row` elements.
fn rows_min_len(row: usize) -> usize {
    (MIN_LEN / row.max(1)).max(1)
}

fn check_same(what: &str, got: usize, other: &str, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::Value(format!(
            "{what} has {got} elements but {other} has {want}; they must have the same shape"
        )));
    }
    Ok(())
}

/// `len / last` rows, or an error when `len` is not a whole number of rows.
fn rows_of(what: &str, len: usize, last: usize) -> Result<usize> {
    if last == 0 {
        return Err(Error::Value(format!("{what}: the last axis must not be empty")));
    }
    if !len.is_multiple_of(last) {
        return Err(Error::Value(format!(
            "{what}: {len} elements do not make whole rows of {last} (the last axis)"
        )));
    }
    Ok(len / last)
}

use crate::cpu::elementwise::{map1, map2};

/// Sum of `f(chunk_index, chunk)` over fixed chunks of `n` items: deterministic
/// whatever the thread count.
fn chunked_sum(n: usize, chunk: usize, f: impl Fn(std::ops::Range<usize>) -> f64 + Sync + Send) -> Result<f64> {
    let chunk = chunk.max(1);
    let count = n.div_ceil(chunk);
    let mut parts = try_filled(count, 0.0f64, "partial sums")?;
    parts.par_iter_mut().enumerate().for_each(|(i, s)| *s = f(i * chunk..((i + 1) * chunk).min(n)));
    Ok(parts.iter().sum())
}

// ---------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------

/// Logistic sigmoid without overflow for large |x|.
#[inline(always)]
fn sigmoid<T: Element>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// Stable softmax of one row: `exp(x - max) / sum`.
fn softmax_row<T: Element>(x: &[T], y: &mut [T]) {
    let m = x.iter().fold(T::neg_infinity(), |m, &v| if v > m || v.is_nan() { v } else { m });
    let mut s = T::zero();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m).exp();
        s += *o;
    }
    let inv = T::one() / s;
    for o in y.iter_mut() {
        *o *= inv;
    }
}

#[inline(always)]
fn relu<T: Element>(v: T) -> T {
    if v > T::zero() || v.is_nan() {
        v
    } else {
        T::zero()
    }
}

/// `y = act(y)` in place on one piece (single-threaded; the convolution calls it on
/// each piece of its output while the piece is in cache). Softmax is not an
/// elementwise activation and is refused.
pub fn activate_inplace<T: Element>(act: Activation, y: &mut [T]) -> Result<()> {
    use crate::cpu::elementwise::apply_inplace;
    match act {
        Activation::Linear => {}
        Activation::Relu => apply_inplace(y, &relu::<T>),
        Activation::Sigmoid => apply_inplace(y, &sigmoid::<T>),
        Activation::Tanh => apply_inplace(y, &|v: T| v.tanh()),
        Activation::Softmax => {
            return Err(Error::Value("a fused activation must be elementwise: softmax is its own op".into()))
        }
    }
    Ok(())
}

/// Whether `act`'s derivative is a function of its output alone (so a fused kernel
/// need not keep its input).
pub fn grad_from_output(act: Activation) -> bool {
    !matches!(act, Activation::Softmax)
}

/// `dz = dy * act'(z)` from the output `y = act(z)`, for one piece (single-threaded):
/// relu `y > 0`, sigmoid `y (1 - y)`, tanh `1 - y^2`, linear 1 — the same expressions as
/// `activation_backward`, so the fused and unfused gradients are the same bits.
pub fn activation_grad_piece<T: Element>(act: Activation, y: &[T], dy: &[T], dz: &mut [std::mem::MaybeUninit<T>]) -> Result<()> {
    use crate::cpu::elementwise::apply2;
    match act {
        Activation::Linear => apply2(dz, y, dy, &|_y: T, g: T| g),
        Activation::Relu => apply2(dz, y, dy, &|v: T, g: T| if v > T::zero() { g } else { T::zero() }),
        Activation::Sigmoid => apply2(dz, y, dy, &|y: T, g: T| g * y * (T::one() - y)),
        Activation::Tanh => apply2(dz, y, dy, &|y: T, g: T| g * (T::one() - y * y)),
        Activation::Softmax => {
            return Err(Error::Value("a fused activation must be elementwise: softmax is its own op".into()))
        }
    }
    Ok(())
}

/// `y = act(x)`; `last` is the size of the last axis (only softmax uses it).
pub fn activation_forward<T: Element>(act: Activation, x: &[T], last: usize) -> Result<Vec<T>> {
    match act {
        Activation::Linear => map1(x, "the activation output", |v| v),
        Activation::Relu => map1(x, "the activation output", relu),
        Activation::Sigmoid => map1(x, "the activation output", sigmoid),
        Activation::Tanh => map1(x, "the activation output", |v| v.tanh()),
        Activation::Softmax => {
            if x.is_empty() {
                return Ok(Vec::new());
            }
            rows_of("softmax", x.len(), last)?;
            let mut y = try_zeroed::<T>(x.len(), "the softmax output")?;
            y.par_chunks_mut(last)
                .zip(x.par_chunks(last))
                .with_min_len(rows_min_len(last))
                .for_each(|(yr, xr)| softmax_row(xr, yr));
            Ok(y)
        }
    }
}

/// `dx` from `dy` for `y = act(x)`. relu needs `x` or `y` (`x > 0`, the same as `y > 0`);
/// sigmoid, tanh and softmax need `y` (recomputed from `x` when only `x` is given);
/// linear needs neither. Softmax: `dx = y * (dy - sum(dy * y))` per row of `last`.
pub fn activation_backward<T: Element>(
    act: Activation,
    x: Option<&[T]>,
    y: Option<&[T]>,
    dy: &[T],
    last: usize,
) -> Result<Vec<T>> {
    for (name, a) in [("x", x), ("y", y)] {
        if let Some(a) = a {
            check_same(name, a.len(), "dy", dy.len())?;
        }
    }
    let recomputed;
    let y = match (act, y, x) {
        (Activation::Linear | Activation::Relu, _, _) => y,
        (_, Some(y), _) => Some(y),
        (_, None, Some(x)) => {
            recomputed = activation_forward(act, x, last)?;
            Some(&recomputed[..])
        }
        (_, None, None) => None,
    };
    match act {
        Activation::Linear => map1(dy, "the activation gradient", |g| g),
        Activation::Relu => {
            let Some(a) = x.or(y) else {
                return Err(Error::Value("relu backward needs x or y".into()));
            };
            map2(a, dy, "the activation gradient", |v, g| if v > T::zero() { g } else { T::zero() })
        }
        Activation::Sigmoid | Activation::Tanh | Activation::Softmax => {
            let Some(y) = y else {
                return Err(Error::Value(format!("{act:?} backward needs y (or x)").to_lowercase()));
            };
            match act {
                Activation::Sigmoid => map2(y, dy, "the activation gradient", |y, g| g * y * (T::one() - y)),
                Activation::Tanh => map2(y, dy, "the activation gradient", |y, g| g * (T::one() - y * y)),
                _ => {
                    if dy.is_empty() {
                        return Ok(Vec::new());
                    }
                    rows_of("softmax backward", dy.len(), last)?;
                    let mut dx = try_zeroed::<T>(dy.len(), "the softmax gradient")?;
                    dx.par_chunks_mut(last)
                        .zip(y.par_chunks(last).zip(dy.par_chunks(last)))
                        .with_min_len(rows_min_len(last))
                        .for_each(|(dxr, (yr, gr))| {
                            let dot = yr.iter().zip(gr).fold(T::zero(), |s, (&a, &b)| s + a * b);
                            for ((o, &a), &b) in dxr.iter_mut().zip(yr).zip(gr) {
                                *o = a * (b - dot);
                            }
                        });
                    Ok(dx)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Losses and accuracy
// ---------------------------------------------------------------------------------

/// Integer class labels from a float array (Keras accepts float labels for the sparse
/// losses): each must be a finite whole number.
pub fn labels_from_floats<T: Element>(y: &[T]) -> Result<Vec<i64>> {
    let mut out = try_filled(y.len(), 0i64, "the labels")?;
    for (i, (o, &v)) in out.iter_mut().zip(y).enumerate() {
        let f = to_f(v);
        if !f.is_finite() || f.fract() != 0.0 || f.abs() > 9.0e15 {
            return Err(Error::Value(format!(
                "sparse labels must be whole numbers (class indices), got {f} at flat index {i}"
            )));
        }
        *o = f as i64;
    }
    Ok(out)
}

fn check_labels(labels: &[i64], classes: usize) -> Result<()> {
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l < 0 || l as u64 >= classes as u64) {
        return Err(Error::Value(format!(
            "label {l} (at flat index {i}) is out of range for {classes} classes: labels must be in [0, {}]",
            classes as i64 - 1
        )));
    }
    Ok(())
}

/// Mean over rows of `per_row(row, pred_row, grad_row, 1/rows)`, which returns the row's
/// loss and writes its gradient (already divided by the number of rows).
fn row_loss<T: Element>(
    pred: &[T],
    k: usize,
    what: &str,
    per_row: impl Fn(usize, &[T], &mut [T], f64) -> f64 + Sync + Send,
) -> Result<(f64, Vec<T>)> {
    let rows = rows_of(what, pred.len(), k)?;
    let mut grad = try_zeroed::<T>(pred.len(), "the loss gradient")?;
    let mut losses = try_filled(rows, 0.0f64, "the per-sample losses")?;
    let inv_n = 1.0 / rows as f64;
    grad.par_chunks_mut(k)
        .zip(pred.par_chunks(k))
        .zip(losses.par_iter_mut())
        .enumerate()
        .with_min_len(rows_min_len(k))
        .for_each(|(r, ((g, p), l))| *l = per_row(r, p, g, inv_n));
    let total: f64 = losses.iter().sum();
    Ok((total * inv_n, grad))
}

/// `(max, log(sum(exp(z - max))))` of a row, in f64.
fn log_sum_exp<T: Element>(z: &[T]) -> (f64, f64) {
    let m = z.iter().map(|&v| to_f(v)).fold(f64::NEG_INFINITY, |m, v| if v > m || v.is_nan() { v } else { m });
    let s: f64 = z.iter().map(|&v| (to_f(v) - m).exp()).sum();
    (m, s.ln())
}

/// Keras `sparse_categorical_crossentropy` averaged over the samples (every position of
/// every axis but the last): returns `(loss, dloss/dpred)`. `labels` holds one class
/// index per row of `classes` values.
///
/// `from_logits = true` (the fused softmax path): `loss = logsumexp(z) - z[label]`,
/// `grad = (softmax(z) - onehot) / rows`. On probabilities, Keras 3's form: each row is
/// divided by its sum, clipped to `[eps, 1 - eps]` (eps = 1e-7), and `loss = -log q[label]`;
/// the gradient is that expression's exact derivative (zero where clipped).
pub fn sparse_categorical_crossentropy<T: Element>(
    labels: &[i64],
    pred: &[T],
    classes: usize,
    from_logits: bool,
) -> Result<(f64, Vec<T>)> {
    let rows = rows_of("sparse_categorical_crossentropy: y_pred", pred.len(), classes)?;
    if labels.len() != rows {
        return Err(Error::Value(format!(
            "sparse_categorical_crossentropy: {} labels for {rows} samples (y_pred has {} elements in rows of \
             {classes} classes); y_true must have y_pred's shape without the last axis",
            labels.len(),
            pred.len()
        )));
    }
    check_labels(labels, classes)?;
    row_loss(pred, classes, "sparse_categorical_crossentropy", |r, p, g, inv_n| {
        let l = labels[r] as usize;
        if from_logits {
            let (m, lse) = log_sum_exp(p);
            for (o, &z) in g.iter_mut().zip(p) {
                *o = to_t(((to_f(z) - m - lse).exp()) * inv_n);
            }
            g[l] -= to_t(inv_n);
            m + lse - to_f(p[l])
        } else {
            let s: f64 = p.iter().map(|&v| to_f(v)).sum();
            let q = to_f(p[l]) / s;
            let c = q.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON);
            // d(-log q_l)/dp_i = (1 - [i == l] / q_l) / s, zero when q_l is clipped.
            if q > KERAS_EPSILON && q < 1.0 - KERAS_EPSILON {
                let d = inv_n / s;
                for o in g.iter_mut() {
                    *o = to_t(d);
                }
                g[l] = to_t((1.0 - 1.0 / q) * d);
            }
            -c.ln()
        }
    })
}

/// Keras `categorical_crossentropy` (one-hot or soft targets of the same shape as
/// `pred`), averaged over the rows. Logits: `loss = sum_j t_j (logsumexp(z) - z_j)`,
/// `grad = (softmax(z) * sum(t) - t) / rows`. Probabilities: each row divided by its sum,
/// clipped to `[eps, 1 - eps]`, `loss = -sum t log q`, exact derivative.
pub fn categorical_crossentropy<T: Element>(
    target: &[T],
    pred: &[T],
    classes: usize,
    from_logits: bool,
) -> Result<(f64, Vec<T>)> {
    check_same("categorical_crossentropy: y_true", target.len(), "y_pred", pred.len())?;
    row_loss(pred, classes, "categorical_crossentropy", |r, p, g, inv_n| {
        let t = &target[r * classes..][..classes];
        if from_logits {
            let (m, lse) = log_sum_exp(p);
            let tsum: f64 = t.iter().map(|&v| to_f(v)).sum();
            let mut loss = 0.0;
            for ((o, &z), &tj) in g.iter_mut().zip(p).zip(t) {
                let (z, tj) = (to_f(z), to_f(tj));
                loss += tj * (m + lse - z);
                *o = to_t(((z - m - lse).exp() * tsum - tj) * inv_n);
            }
            loss
        } else {
            let s: f64 = p.iter().map(|&v| to_f(v)).sum();
            let mut loss = 0.0;
            // gq_j = d loss / d q_j; then d/dp_i = (gq_i - sum_j gq_j q_j) / s.
            let mut dot = 0.0;
            for ((o, &pj), &tj) in g.iter_mut().zip(p).zip(t) {
                let (q, tj) = (to_f(pj) / s, to_f(tj));
                let c = q.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON);
                loss -= tj * c.ln();
                let gq = if q > KERAS_EPSILON && q < 1.0 - KERAS_EPSILON { -tj / q } else { 0.0 };
                dot += gq * q;
                *o = to_t(gq);
            }
            for o in g.iter_mut() {
                *o = to_t((to_f(*o) - dot) / s * inv_n);
            }
            loss
        }
    })
}

/// Mean over all elements of `per(y, p) -> (loss, dloss/dp)`.
fn elementwise_loss<T: Element>(
    target: &[T],
    pred: &[T],
    what: &str,
    per: impl Fn(f64, f64) -> (f64, f64) + Sync + Send,
) -> Result<(f64, Vec<T>)> {
    check_same(&format!("{what}: y_true"), target.len(), "y_pred", pred.len())?;
    let n = pred.len();
    let mut grad = try_zeroed::<T>(n, "the loss gradient")?;
    let inv_n = 1.0 / n as f64;
    let count = n.div_ceil(MIN_LEN);
    let mut parts = try_filled(count, 0.0f64, "partial sums")?;
    grad.par_chunks_mut(MIN_LEN)
        .zip(parts.par_iter_mut())
        .enumerate()
        .for_each(|(i, (g, s))| {
            let base = i * MIN_LEN;
            let mut acc = 0.0;
            for (j, o) in g.iter_mut().enumerate() {
                let (l, d) = per(to_f(target[base + j]), to_f(pred[base + j]));
                acc += l;
                *o = to_t(d * inv_n);
            }
            *s = acc;
        });
    Ok((parts.iter().sum::<f64>() * inv_n, grad))
}

/// Keras `binary_crossentropy` averaged over all elements. Probabilities are clipped to
/// `[eps, 1 - eps]`: `loss = -(y log p + (1 - y) log(1 - p))` (gradient zero where
/// clipped). Logits (the fused sigmoid path): `loss = max(z, 0) - z y + log(1 + exp(-|z|))`,
/// `grad = (sigmoid(z) - y) / n`.
pub fn binary_crossentropy<T: Element>(target: &[T], pred: &[T], from_logits: bool) -> Result<(f64, Vec<T>)> {
    if from_logits {
        elementwise_loss(target, pred, "binary_crossentropy", |y, z| {
            let l = z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
            (l, sigmoid(z) - y)
        })
    } else {
        elementwise_loss(target, pred, "binary_crossentropy", |y, p| {
            let c = p.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON);
            let l = -(y * c.ln() + (1.0 - y) * (1.0 - c).ln());
            let d = if p > KERAS_EPSILON && p < 1.0 - KERAS_EPSILON { -(y / p) + (1.0 - y) / (1.0 - p) } else { 0.0 };
            (l, d)
        })
    }
}

/// Keras `mean_squared_error` averaged over all elements: `grad = 2 (p - y) / n`.
pub fn mean_squared_error<T: Element>(target: &[T], pred: &[T]) -> Result<(f64, Vec<T>)> {
    elementwise_loss(target, pred, "mean_squared_error", |y, p| ((p - y) * (p - y), 2.0 * (p - y)))
}

/// Index of the largest value, the first one on ties, the first NaN if any (numpy's rule).
fn argmax<T: Element>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        let b = row[best];
        if b.is_nan() {
            break;
        }
        if v > b || v.is_nan() {
            best = i;
        }
    }
    best
}

fn fraction(hits: f64, total: usize) -> f64 {
    if total == 0 {
        f64::NAN
    } else {
        hits / total as f64
    }
}

/// Keras `sparse_categorical_accuracy`: fraction of rows whose argmax is the label.
pub fn sparse_categorical_accuracy<T: Element>(labels: &[i64], pred: &[T], classes: usize) -> Result<f64> {
    let rows = rows_of("sparse_categorical_accuracy: y_pred", pred.len(), classes)?;
    if labels.len() != rows {
        return Err(Error::Value(format!(
            "sparse_categorical_accuracy: {} labels for {rows} samples of {classes} classes",
            labels.len()
        )));
    }
    let hits = chunked_sum(rows, rows_min_len(classes), |r| {
        r.filter(|&i| argmax(&pred[i * classes..][..classes]) as i64 == labels[i]).count() as f64
    })?;
    Ok(fraction(hits, rows))
}

/// Keras `categorical_accuracy`: fraction of rows where argmax(y_true) == argmax(y_pred).
pub fn categorical_accuracy<T: Element>(target: &[T], pred: &[T], classes: usize) -> Result<f64> {
    check_same("categorical_accuracy: y_true", target.len(), "y_pred", pred.len())?;
    let rows = rows_of("categorical_accuracy: y_pred", pred.len(), classes)?;
    let hits = chunked_sum(rows, rows_min_len(classes), |r| {
        r.filter(|&i| argmax(&pred[i * classes..][..classes]) == argmax(&target[i * classes..][..classes]))
            .count() as f64
    })?;
    Ok(fraction(hits, rows))
}

/// Keras `binary_accuracy`: fraction of elements where `(p > threshold) == y` (y is 0 or 1).
pub fn binary_accuracy<T: Element>(target: &[T], pred: &[T], threshold: f64) -> Result<f64> {
    check_same("binary_accuracy: y_true", target.len(), "y_pred", pred.len())?;
    let thr: T = to_t(threshold);
    let hits = chunked_sum(pred.len(), MIN_LEN, |r| {
        r.filter(|&i| {
            let hit = if pred[i] > thr { T::one() } else { T::zero() };
            hit == target[i]
        })
        .count() as f64
    })?;
    Ok(fraction(hits, pred.len()))
}

// ---------------------------------------------------------------------------------
// Batch normalization (channels-last: statistics over every axis but the last)
// ---------------------------------------------------------------------------------

/// Per-channel sums of `term(value index, channel)` over every row of `c` channels,
/// accumulated in f64 over a chunking that depends only on the size.
#[allow(dead_code)]
fn channel_sums<const K: usize>(
    rows: usize,
    c: usize,
    term: impl Fn(usize, usize) -> [f64; K] + Sync + Send,
) -> Result<Vec<[f64; K]>> {
    let chunks = rows.min((rows * c).div_ceil(MIN_LEN)).clamp(1, 64);
    let per = rows.div_ceil(chunks);
    let mut parts = try_filled(chunks * c, [0.0f64; K], "per-channel partial sums")?;
    parts.par_chunks_mut(c).enumerate().for_each(|(k, acc)| {
        for r in k * per..((k + 1) * per).min(rows) {
            for (ch, a) in acc.iter_mut().enumerate() {
                let t = term(r * c + ch, ch);
                for j in 0..K {
                    a[j] += t[j];
                }
            }
        }
    });
    let mut total = try_filled(c, [0.0f64; K], "per-channel sums")?;
    for part in parts.chunks_exact(c) {
        for (t, p) in total.iter_mut().zip(part) {
            for j in 0..K {
                t[j] += p[j];
            }
        }
    }
    Ok(total)
}

/// Per-channel sums of `x` (`S1`) and of `(x - m)^2` (`S2`, when `m` is given) over the
/// rows of one chunk, in f64, added into `acc` (`c` or `2c` values: S1 then S2).
#[inline(always)]
fn bn_stats_body<T: Element>(x: &[T], c: usize, m: &[f64], acc: &mut [f64]) {
    let (s1, s2) = acc.split_at_mut(c);
    for row in x.chunks_exact(c) {
        if m.is_empty() {
            for (a, &v) in s1.iter_mut().zip(row) {
                *a += to_f(v);
            }
        } else {
            for ((a, &v), &mu) in s2.iter_mut().zip(row).zip(m) {
                let d = to_f(v) - mu;
                *a += d * d;
            }
        }
    }
}
crate::multiversion!(fn bn_stats_chunk => bn_stats_body<T: Element>(x: &[T], c: usize, m: &[f64], acc: &mut [f64]));

/// Per-channel `sum dy` and `sum dy (x - mean) inv_std` over one chunk's rows.
#[inline(always)]
fn bn_grad_sums_body<T: Element>(x: &[T], dy: &[T], c: usize, mean: &[f64], inv_std: &[f64], acc: &mut [f64]) {
    let (s1, s2) = acc.split_at_mut(c);
    for (row, grow) in x.chunks_exact(c).zip(dy.chunks_exact(c)) {
        for ((((a, b), &v), &g), (&mu, &is)) in s1.iter_mut().zip(s2.iter_mut()).zip(row).zip(grow).zip(mean.iter().zip(inv_std)) {
            let g = to_f(g);
            *a += g;
            *b += g * (to_f(v) - mu) * is;
        }
    }
}
crate::multiversion!(fn bn_grad_sums_chunk => bn_grad_sums_body<T: Element>(x: &[T], dy: &[T], c: usize, mean: &[f64],
                                                                          inv_std: &[f64], acc: &mut [f64]));

/// The two per-channel sums of one pass over `rows x c` values, in a fixed split of
/// the rows (a function of the shape only, so the same bits on any thread count).
fn channel_pass(rows: usize, c: usize, f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync + Send) -> Result<Vec<f64>> {
    let chunks = rows.min((rows * c).div_ceil(MIN_LEN)).clamp(1, 64);
    let per = rows.div_ceil(chunks);
    let mut parts = try_filled(chunks * 2 * c, 0.0f64, "per-channel partial sums")?;
    // the last chunks may start past the end (per = ceil(rows / chunks)): empty ranges
    parts.par_chunks_mut(2 * c).enumerate().for_each(|(k, acc)| f((k * per).min(rows)..((k + 1) * per).min(rows), acc));
    let mut total = try_filled(2 * c, 0.0f64, "per-channel sums")?;
    for part in parts.chunks_exact(2 * c) {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    Ok(total)
}

fn check_channel_vec<T>(what: &str, v: Option<&[T]>, c: usize) -> Result<()> {
    match v {
        Some(v) if v.len() != c => Err(Error::Value(format!(
            "batch normalization: {what} has {} elements but the input has {c} channels (last axis)",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// `y = x * scale[ch] + shift[ch]`, in parallel over rows of `c`.
fn affine_channels<T: Element>(x: &[T], scale: &[T], shift: &[T], c: usize) -> Result<Vec<T>> {
    let mut y = try_uninit::<T>(x.len(), "the batch normalization output")?;
    let per = rows_min_len(c).max(crate::cpu::elementwise::CHUNK / c.max(1)) * c.max(1);
    y.par_chunks_mut(per).zip(x.par_chunks(per)).for_each(|(yc, xc)| {
        crate::cpu::simd::dispatch(|| {
            for (yr, xr) in yc.chunks_mut(c).zip(xc.chunks(c)) {
                for (((o, &v), &a), &b) in yr.iter_mut().zip(xr).zip(scale).zip(shift) {
                    o.write(v * a + b);
                }
            }
        })
    });
    // SAFETY: the chunks cover y, every slot written.
    Ok(unsafe { assume_init_vec(y) })
}

/// Per-channel `(gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps))`.
fn bn_affine<T: Element>(
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> Result<(Vec<T>, Vec<T>)> {
    let c = mean.len();
    let mut scale = try_filled(c, T::zero(), "the batch normalization scale")?;
    let mut shift = try_filled(c, T::zero(), "the batch normalization shift")?;
    for ch in 0..c {
        let g = gamma.map_or(1.0, |g| to_f(g[ch]));
        let b = beta.map_or(0.0, |b| to_f(b[ch]));
        let s = g / (to_f(var[ch]) + eps).sqrt();
        scale[ch] = to_t(s);
        shift[ch] = to_t(b - to_f(mean[ch]) * s);
    }
    Ok((scale, shift))
}

/// Training-mode batch normalization over every axis but the last (`c` channels):
/// returns `(y, batch mean, batch variance)`. The variance is the biased one (divided by
/// the number of rows), which Keras 3 uses both to normalize and to update the moving
/// variance (`moving = moving * momentum + var * (1 - momentum)`, the caller's job).
/// `gamma`/`beta` = None means scale 1 / offset 0 (Keras `scale=False` / `center=False`).
pub fn batchnorm_train_forward<T: Element>(
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    c: usize,
    eps: f64,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let rows = rows_of("batch normalization: x", x.len(), c)?;
    check_channel_vec("gamma", gamma, c)?;
    check_channel_vec("beta", beta, c)?;
    if rows == 0 {
        return Err(Error::Value("batch normalization in training mode needs a non-empty batch".into()));
    }
    let inv_m = 1.0 / rows as f64;
    let sums = channel_pass(rows, c, |r, acc| bn_stats_chunk(&x[r.start * c..r.end * c], c, &[], acc))?;
    let mean_f: Vec<f64> = sums[..c].iter().map(|s| s * inv_m).collect();
    let sq = channel_pass(rows, c, |r, acc| bn_stats_chunk(&x[r.start * c..r.end * c], c, &mean_f, acc))?;
    let sq: Vec<[f64; 1]> = sq[c..].iter().map(|&v| [v]).collect();
    let mut mean = try_filled(c, T::zero(), "the batch mean")?;
    let mut var = try_filled(c, T::zero(), "the batch variance")?;
    for ch in 0..c {
        mean[ch] = to_t(mean_f[ch]);
        var[ch] = to_t(sq[ch][0] * inv_m);
    }
    // Normalize with the f64 statistics (not their rounded copies).
    let mut scale = try_filled(c, T::zero(), "the batch normalization scale")?;
    let mut shift = try_filled(c, T::zero(), "the batch normalization shift")?;
    for ch in 0..c {
        let g = gamma.map_or(1.0, |g| to_f(g[ch]));
        let b = beta.map_or(0.0, |b| to_f(b[ch]));
        let s = g / (sq[ch][0] * inv_m + eps).sqrt();
        scale[ch] = to_t(s);
        shift[ch] = to_t(b - mean_f[ch] * s);
    }
    let y = affine_channels(x, &scale, &shift, c)?;
    Ok((y, mean, var))
}

/// Inference-mode batch normalization with the moving statistics:
/// `y = gamma (x - mean) / sqrt(var + eps) + beta`.
pub fn batchnorm_infer_forward<T: Element>(
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    moving_mean: &[T],
    moving_var: &[T],
    c: usize,
    eps: f64,
) -> Result<Vec<T>> {
    rows_of("batch normalization: x", x.len(), c)?;
    check_channel_vec("gamma", gamma, c)?;
    check_channel_vec("beta", beta, c)?;
    check_channel_vec("moving_mean", Some(moving_mean), c)?;
    check_channel_vec("moving_var", Some(moving_var), c)?;
    let (scale, shift) = bn_affine(gamma, beta, moving_mean, moving_var, eps)?;
    affine_channels(x, &scale, &shift, c)
}

/// Backward of training-mode batch normalization given the batch `mean` and biased
/// `var` the forward pass returned: `(dx, dgamma, dbeta)` with
/// `xhat = (x - mean) / sqrt(var + eps)`, `dbeta = sum dy`, `dgamma = sum dy xhat`,
/// `dx = gamma / sqrt(var + eps) * (dy - dbeta / m - xhat dgamma / m)` (m rows).
#[allow(clippy::type_complexity)]
pub fn batchnorm_backward<T: Element>(
    x: &[T],
    gamma: Option<&[T]>,
    mean: &[T],
    var: &[T],
    c: usize,
    eps: f64,
    dy: &[T],
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let rows = rows_of("batch normalization backward: x", x.len(), c)?;
    check_same("batch normalization backward: dy", dy.len(), "x", x.len())?;
    check_channel_vec("gamma", gamma, c)?;
    check_channel_vec("mean", Some(mean), c)?;
    check_channel_vec("var", Some(var), c)?;
    let inv_std: Vec<f64> = var.iter().map(|&v| 1.0 / (to_f(v) + eps).sqrt()).collect();
    let mean_f: Vec<f64> = mean.iter().map(|&v| to_f(v)).collect();
    let flat = channel_pass(rows, c, |r, acc| {
        bn_grad_sums_chunk(&x[r.start * c..r.end * c], &dy[r.start * c..r.end * c], c, &mean_f, &inv_std, acc)
    })?;
    let sums: Vec<[f64; 2]> = (0..c).map(|ch| [flat[ch], flat[c + ch]]).collect();
    let mut dgamma = try_filled(c, T::zero(), "the gamma gradient")?;
    let mut dbeta = try_filled(c, T::zero(), "the beta gradient")?;
    // Per channel: dx = a * dy + b * x + d, folding the constants.
    let (mut ka, mut kb, mut kd) =
        (try_filled(c, T::zero(), "bn")?, try_filled(c, T::zero(), "bn")?, try_filled(c, T::zero(), "bn")?);
    let inv_m = if rows == 0 { 0.0 } else { 1.0 / rows as f64 };
    for ch in 0..c {
        let (db, dg) = (sums[ch][0], sums[ch][1]);
        dbeta[ch] = to_t(db);
        dgamma[ch] = to_t(dg);
        let a = gamma.map_or(1.0, |g| to_f(g[ch])) * inv_std[ch];
        // dx = a (dy - db/m - (x - mean) inv_std dg / m)
        let b = -a * inv_std[ch] * dg * inv_m;
        ka[ch] = to_t(a);
        kb[ch] = to_t(b);
        kd[ch] = to_t(-a * db * inv_m - b * mean_f[ch]);
    }
    let mut dx = try_zeroed::<T>(x.len(), "the batch normalization input gradient")?;
    if c > 0 {
        let per = rows_min_len(c).max(crate::cpu::elementwise::CHUNK / c) * c;
        dx.par_chunks_mut(per).zip(x.par_chunks(per).zip(dy.par_chunks(per))).for_each(|(oc, (xc, gc))| {
            crate::cpu::simd::dispatch(|| {
                for (o, (xr, gr)) in oc.chunks_mut(c).zip(xc.chunks(c).zip(gc.chunks(c))) {
                    for ch in 0..c {
                        o[ch] = ka[ch] * gr[ch] + kb[ch] * xr[ch] + kd[ch];
                    }
                }
            })
        });
    }
    Ok((dx, dgamma, dbeta))
}

// ---------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------

#[inline(always)]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` for element `i` of the stream `seed`: counter-based, so
/// any element can be drawn by any thread in any order.
#[inline(always)]
pub fn uniform_at(seed: u64, i: u64) -> f64 {
    let key = splitmix64(seed ^ 0x5851_F42D_4C95_7F2D);
    let bits = splitmix64(key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Inverted dropout (Keras): element `i` is kept when `uniform_at(seed, i) >= rate` and
/// scaled by `1 / (1 - rate)`. Returns `(y, mask)` with `mask` in `{0, 1/(1-rate)}` and
/// `y = x * mask`. `rate` must be in `[0, 1]`; rate 1 drops everything.
pub fn dropout_forward<T: Element>(x: &[T], rate: f64, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(Error::Value(format!("dropout rate must be in [0, 1], got {rate}")));
    }
    let keep: T = if rate < 1.0 { to_t(1.0 / (1.0 - rate)) } else { T::zero() };
    // `uniform_at(seed, i) >= rate` without floats: the uniform is `(bits >> 11) * 2^-53`,
    // exact, so it is >= rate exactly when `bits >> 11 >= ceil(rate * 2^53)` (rate * 2^53
    // is exact too). Integer compares and selects vectorise; the masks are the same bits.
    let threshold: u64 = if rate < 1.0 { (rate * (1u64 << 53) as f64).ceil() as u64 } else { u64::MAX };
    let key = splitmix64(seed ^ 0x5851_F42D_4C95_7F2D);
    let mut y = try_uninit::<T>(x.len(), "the dropout output")?;
    let mut mask = try_uninit::<T>(x.len(), "the dropout mask")?;
    const C: usize = crate::cpu::elementwise::CHUNK;
    y.par_chunks_mut(C).zip(mask.par_chunks_mut(C)).zip(x.par_chunks(C)).enumerate().for_each(
        |(k, ((yc, mc), xc))| {
            let base = (k * C) as u64;
            let m_of = |i: u64| -> T {
                let bits = splitmix64(key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                if (bits >> 11) >= threshold { keep } else { T::zero() }
            };
            // the mask first (a pure function of the index), then y = x * mask
            crate::cpu::elementwise::apply_indexed(mc, base, &m_of);
            // SAFETY: mc was written whole just above.
            let m: &[T] = unsafe { std::slice::from_raw_parts(mc.as_ptr() as *const T, mc.len()) };
            crate::cpu::elementwise::apply2(yc, xc, m, &|a: T, b: T| if b != T::zero() { a * b } else { T::zero() });
        },
    );
    // SAFETY: the chunks cover both buffers, each written whole.
    Ok(unsafe { (assume_init_vec(y), assume_init_vec(mask)) })
}

/// Dropout backward: `dx = dy * mask`.
pub fn dropout_backward<T: Element>(dy: &[T], mask: &[T]) -> Result<Vec<T>> {
    check_same("dropout backward: dy", dy.len(), "mask", mask.len())?;
    map2(dy, mask, "the dropout gradient", |g, m| g * m)
}

// ---------------------------------------------------------------------------------
// Global pooling over the spatial axes (x seen as (batch, positions, channels))
// ---------------------------------------------------------------------------------

fn global_check(what: &str, len: usize, batch: usize, positions: usize, c: usize) -> Result<()> {
    let want = batch.checked_mul(positions).and_then(|v| v.checked_mul(c));
    if want != Some(len) {
        return Err(Error::Value(format!(
            "{what}: x has {len} elements, not batch {batch} x positions {positions} x channels {c}"
        )));
    }
    Ok(())
}

/// Keras GlobalAveragePooling / GlobalMaxPooling (channels-last): `x` of `batch` images
/// of `positions` spatial cells of `c` channels; `y` of shape `(batch, c)`.
pub fn global_pool_forward<T: Element>(
    kind: PoolKind,
    x: &[T],
    batch: usize,
    positions: usize,
    c: usize,
) -> Result<Vec<T>> {
    global_check("global pooling", x.len(), batch, positions, c)?;
    if positions == 0 {
        return Err(Error::Value("global pooling needs at least one spatial position".into()));
    }
    let mut y = try_zeroed::<T>(batch * c, "the global pooling output")?;
    if c == 0 {
        return Ok(y);
    }
    let img = positions * c;
    y.par_chunks_mut(c).zip(x.par_chunks(img)).try_for_each(|(yr, xi)| -> Result<()> {
        match kind {
            PoolKind::Avg => {
                let mut acc = try_filled(c, 0.0f64, "the global average accumulator")?;
                for row in xi.chunks_exact(c) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += to_f(v);
                    }
                }
                let inv = 1.0 / positions as f64;
                for (o, a) in yr.iter_mut().zip(&acc) {
                    *o = to_t(a * inv);
                }
            }
            PoolKind::Max => {
                yr.copy_from_slice(&xi[..c]);
                for row in xi[c..].chunks_exact(c) {
                    for (o, &v) in yr.iter_mut().zip(row) {
                        if v > *o || (v.is_nan() && !o.is_nan()) {
                            *o = v;
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(y)
}

/// Backward of global pooling: average spreads `dy / positions` over every cell; max
/// splits `dy` evenly among the cells equal to the maximum (TensorFlow's reduce_max
/// gradient).
pub fn global_pool_backward<T: Element>(
    kind: PoolKind,
    x: &[T],
    dy: &[T],
    batch: usize,
    positions: usize,
    c: usize,
) -> Result<Vec<T>> {
    global_check("global pooling backward", x.len(), batch, positions, c)?;
    if Some(dy.len()) != batch.checked_mul(c) {
        return Err(Error::Value(format!(
            "global pooling backward: dy has {} elements but shape ({batch}, {c}) was expected",
            dy.len()
        )));
    }
    let mut dx = try_zeroed::<T>(x.len(), "the global pooling gradient")?;
    if c == 0 || positions == 0 {
        return Ok(dx);
    }
    let img = positions * c;
    match kind {
        PoolKind::Avg => {
            let inv: T = to_t(1.0 / positions as f64);
            dx.par_chunks_mut(c).enumerate().with_min_len(rows_min_len(c)).for_each(|(r, o)| {
                let g = &dy[(r / positions) * c..][..c];
                for (a, &v) in o.iter_mut().zip(g) {
                    *a = v * inv;
                }
            });
        }
        PoolKind::Max => {
            let m = global_pool_forward(PoolKind::Max, x, batch, positions, c)?;
            dx.par_chunks_mut(img).zip(x.par_chunks(img)).enumerate().try_for_each(|(b, (di, xi))| -> Result<()> {
                let (mb, gb) = (&m[b * c..][..c], &dy[b * c..][..c]);
                let hit = |v: T, mv: T| v == mv || (v.is_nan() && mv.is_nan());
                let mut count = try_filled(c, 0usize, "the tie counts")?;
                for row in xi.chunks_exact(c) {
                    for ((n, &v), &mv) in count.iter_mut().zip(row).zip(mb) {
                        *n += usize::from(hit(v, mv));
                    }
                }
                for (drow, row) in di.chunks_exact_mut(c).zip(xi.chunks_exact(c)) {
                    for ch in 0..c {
                        if hit(row[ch], mb[ch]) {
                            drow[ch] = gb[ch] / to_t(count[ch] as f64);
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
    Ok(dx)
}

// ---------------------------------------------------------------------------------
// Optimizer steps (in place)
// ---------------------------------------------------------------------------------

/// Keras 3 SGD step. With momentum: `v = momentum v - lr g`, then `p += v`, or with
/// Nesterov `p += momentum v - lr g` (v already updated). Without a velocity buffer
/// (Keras' momentum = 0): `p -= lr g`.
pub fn sgd_update<T: Element>(
    param: &mut [T],
    grad: &[T],
    velocity: Option<&mut [T]>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
) -> Result<()> {
    check_same("sgd: grad", grad.len(), "the parameter", param.len())?;
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::Value(format!("sgd: momentum must be in [0, 1], got {momentum}")));
    }
    let (lr_t, mo): (T, T) = (to_t(lr), to_t(momentum));
    match velocity {
        None => {
            if momentum != 0.0 {
                return Err(Error::Value(format!(
                    "sgd: momentum={momentum} needs a velocity buffer of the parameter's shape"
                )));
            }
            param.par_iter_mut().zip(grad.par_iter()).with_min_len(MIN_LEN).for_each(|(p, &g)| *p -= lr_t * g);
        }
        Some(v) => {
            check_same("sgd: velocity", v.len(), "the parameter", param.len())?;
            param.par_iter_mut().zip(v.par_iter_mut()).zip(grad.par_iter()).with_min_len(MIN_LEN).for_each(
                |((p, v), &g)| {
                    *v = mo * *v - lr_t * g;
                    if nesterov {
                        *p += mo * *v - lr_t * g;
                    } else {
                        *p += *v;
                    }
                },
            );
        }
    }
    Ok(())
}

/// Keras 3 Adam step `t` (1 for the first update):
/// `alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t)`, `m += (g - m)(1 - beta1)`,
/// `v += (g^2 - v)(1 - beta2)`, `p -= alpha m / (sqrt(v) + eps)`.
#[allow(clippy::too_many_arguments)]
pub fn adam_update<T: Element>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: u64,
) -> Result<()> {
    check_same("adam: grad", grad.len(), "the parameter", param.len())?;
    check_same("adam: m", m.len(), "the parameter", param.len())?;
    check_same("adam: v", v.len(), "the parameter", param.len())?;
    if t == 0 {
        return Err(Error::Value("adam: the step t counts from 1, got 0".into()));
    }
    if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) {
        return Err(Error::Value(format!("adam: beta_1 and beta_2 must be in [0, 1), got {beta1} and {beta2}")));
    }
    let tf = t as f64;
    let alpha = lr * (1.0 - beta2.powf(tf)).sqrt() / (1.0 - beta1.powf(tf));
    let (alpha, a1, a2, eps): (T, T, T, T) = (to_t(alpha), to_t(1.0 - beta1), to_t(1.0 - beta2), to_t(eps));
    param
        .par_iter_mut()
        .zip(m.par_iter_mut())
        .zip(v.par_iter_mut())
        .zip(grad.par_iter())
        .with_min_len(MIN_LEN)
        .for_each(|(((p, m), v), &g)| {
            *m += (g - *m) * a1;
            *v += (g * g - *v) * a2;
            *p -= alpha * *m / (v.sqrt() + eps);
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
        fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
            (0..n).map(|_| lo + (self.unit() + 1.0) * 0.5 * (hi - lo)).collect()
        }
    }

    /// max |a - n| / max |n| (inf-norm relative error).
    fn rel_err(a: &[f64], n: &[f64]) -> f64 {
        assert_eq!(a.len(), n.len());
        let num = a.iter().zip(n).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let den = n.iter().map(|v| v.abs()).fold(0.0, f64::max);
        num / den.max(1e-300)
    }

    /// Central differences of a scalar function of `x`.
    fn fd(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let h = 1e-5;
        let mut xp = x.to_vec();
        (0..x.len())
            .map(|i| {
                let v = xp[i];
                xp[i] = v + h;
                let a = f(&xp);
                xp[i] = v - h;
                let b = f(&xp);
                xp[i] = v;
                (a - b) / (2.0 * h)
            })
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    const TOL: f64 = 1e-6;

    #[test]
    fn activation_backward_matches_finite_differences() {
        let mut rng = Rng(1);
        let last = 5;
        let mut x = rng.vec(40, -3.0, 3.0);
        // Keep relu away from its kink.
        for v in x.iter_mut() {
            if v.abs() < 0.05 {
                *v += 0.1;
            }
        }
        let r = rng.vec(40, -1.0, 1.0);
        for name in ["linear", "relu", "sigmoid", "tanh", "softmax"] {
            let act = Activation::parse(name).unwrap();
            let y = activation_forward(act, &x, last).unwrap();
            let num = fd(&x, |xx| dot(&activation_forward(act, xx, last).unwrap(), &r));
            let with_y = activation_backward(act, Some(&x), Some(&y), &r, last).unwrap();
            let x_only = activation_backward(act, Some(&x), None, &r, last).unwrap();
            let e = rel_err(&with_y, &num);
            assert!(e <= TOL, "{name}: rel err {e}");
            assert_eq!(with_y, x_only, "{name}");
            if act != Activation::Linear {
                let y_only = activation_backward(act, None, Some(&y), &r, last).unwrap();
                assert_eq!(with_y, y_only, "{name}");
            }
        }
        assert!(activation_backward::<f64>(Activation::Sigmoid, None, None, &r, last).is_err());
        assert!(Activation::parse("gelu").is_err());
    }

    #[test]
    fn softmax_is_stable_and_normalized() {
        let x = vec![1000.0f32, 1001.0, 1002.0, -1000.0, 0.0, 1000.0];
        let y = activation_forward(Activation::Softmax, &x, 3).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
        for row in y.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!((y[2] - 0.665_240_9).abs() < 1e-6);
        assert!(activation_forward(Activation::Softmax, &x, 4).is_err());
        let s = activation_forward(Activation::Sigmoid, &[-1000.0f64, 1000.0, 0.0], 1).unwrap();
        assert_eq!(s, vec![0.0, 1.0, 0.5]);
    }

    fn onehot(labels: &[i64], k: usize) -> Vec<f64> {
        let mut t = vec![0.0; labels.len() * k];
        for (r, &l) in labels.iter().enumerate() {
            t[r * k + l as usize] = 1.0;
        }
        t
    }

    #[test]
    fn loss_gradients_match_finite_differences() {
        let mut rng = Rng(7);
        let (n, k) = (6, 4);
        let labels: Vec<i64> = vec![0, 3, 1, 2, 2, 0];
        let t = onehot(&labels, k);
        let logits = rng.vec(n * k, -2.0, 2.0);
        // Unnormalized positive "probabilities" away from the clip bounds: tests the
        // row normalization's part of the gradient too.
        let probs = rng.vec(n * k, 0.2, 1.0);
        let soft: Vec<f64> = rng.vec(n * k, 0.0, 1.0);
        let bin_t: Vec<f64> = rng.vec(n * k, 0.0, 1.0).iter().map(|v| (v > &0.5) as i32 as f64).collect();
        let bin_p = rng.vec(n * k, 0.05, 0.95);

        type F = Box<dyn Fn(&[f64]) -> (f64, Vec<f64>)>;
        let cases: Vec<(&str, Vec<f64>, F)> = vec![
            ("scce logits", logits.clone(), {
                let l = labels.clone();
                Box::new(move |p| sparse_categorical_crossentropy(&l, p, k, true).unwrap())
            }),
            ("scce probs", probs.clone(), {
                let l = labels.clone();
                Box::new(move |p| sparse_categorical_crossentropy(&l, p, k, false).unwrap())
            }),
            ("cce logits soft", logits.clone(), {
                let s = soft.clone();
                Box::new(move |p| categorical_crossentropy(&s, p, k, true).unwrap())
            }),
            ("cce probs soft", probs.clone(), {
                let s = soft.clone();
                Box::new(move |p| categorical_crossentropy(&s, p, k, false).unwrap())
            }),
            ("cce probs onehot", probs.clone(), {
                let s = t.clone();
                Box::new(move |p| categorical_crossentropy(&s, p, k, false).unwrap())
            }),
            ("bce probs", bin_p.clone(), {
                let s = bin_t.clone();
                Box::new(move |p| binary_crossentropy(&s, p, false).unwrap())
            }),
            ("bce logits", logits.clone(), {
                let s = bin_t.clone();
                Box::new(move |p| binary_crossentropy(&s, p, true).unwrap())
            }),
            ("mse", logits.clone(), {
                let s = soft.clone();
                Box::new(move |p| mean_squared_error(&s, p).unwrap())
            }),
        ];
        for (name, x, f) in cases {
            let (_, g) = f(&x);
            let num = fd(&x, |p| f(p).0);
            let e = rel_err(&g, &num);
            assert!(e <= TOL, "{name}: rel err {e}");
        }
    }

    #[test]
    fn loss_values_match_reference_formulas() {
        let p = vec![0.7, 0.2, 0.1, 0.1, 0.1, 0.8];
        let (l, _) = sparse_categorical_crossentropy(&[0, 2], &p, 3, false).unwrap();
        assert!((l - (-(0.7f64.ln()) - 0.8f64.ln()) / 2.0).abs() < 1e-12);
        let (l2, _) = categorical_crossentropy(&onehot(&[0, 2], 3), &p, 3, false).unwrap();
        assert!((l - l2).abs() < 1e-12);
        // Clipping: a zero probability costs -log(1e-7), and no gradient.
        let (l, g) = sparse_categorical_crossentropy(&[1], &[1.0, 0.0], 2, false).unwrap();
        assert!((l + (1e-7f64).ln()).abs() < 1e-9);
        assert!(g.iter().all(|&v| v == 0.0));
        let (l, _) = binary_crossentropy(&[1.0, 0.0], &[0.9, 0.2], false).unwrap();
        assert!((l - (-(0.9f64.ln()) - 0.8f64.ln()) / 2.0).abs() < 1e-12);
        let (l, _) = mean_squared_error(&[1.0, 2.0], &[0.0, 4.0]).unwrap();
        assert_eq!(l, 2.5);
        // Logits far out: stable.
        let (l, g) = binary_crossentropy(&[1.0f64, 0.0], &[-800.0, 800.0], true).unwrap();
        assert!((l - 800.0).abs() < 1e-9 && g.iter().all(|v| v.is_finite()));
        let (l, _) = sparse_categorical_crossentropy(&[0], &[-1000.0f32, 1000.0], 2, true).unwrap();
        assert!((l - 2000.0).abs() < 1e-3);
    }

    #[test]
    fn fused_softmax_crossentropy_equals_softmax_then_crossentropy() {
        let mut rng = Rng(3);
        let (n, k) = (5, 6);
        let z = rng.vec(n * k, -4.0, 4.0);
        let labels: Vec<i64> = vec![5, 0, 2, 2, 3];
        let y = activation_forward(Activation::Softmax, &z, k).unwrap();
        for sparse in [true, false] {
            let (lf, gf) = if sparse {
                sparse_categorical_crossentropy(&labels, &z, k, true).unwrap()
            } else {
                categorical_crossentropy(&onehot(&labels, k), &z, k, true).unwrap()
            };
            let (lp, gp) = if sparse {
                sparse_categorical_crossentropy(&labels, &y, k, false).unwrap()
            } else {
                categorical_crossentropy(&onehot(&labels, k), &y, k, false).unwrap()
            };
            let gz = activation_backward(Activation::Softmax, None, Some(&y), &gp, k).unwrap();
            assert!((lf - lp).abs() < 1e-12, "{lf} vs {lp}");
            assert!(rel_err(&gz, &gf) < 1e-12, "{}", rel_err(&gz, &gf));
        }
    }

    #[test]
    fn bad_labels_and_shapes_are_errors() {
        let e = sparse_categorical_crossentropy(&[0, 3], &[0.5f64; 6], 3, true).unwrap_err();
        let Error::Value(m) = e else { panic!() };
        assert!(m.contains("label 3") && m.contains("3 classes"), "{m}");
        assert!(sparse_categorical_crossentropy(&[-1], &[0.5f64; 3], 3, false).is_err());
        assert!(sparse_categorical_crossentropy(&[0], &[0.5f64; 6], 3, false).is_err());
        assert!(categorical_crossentropy(&[0.5f64; 5], &[0.5f64; 6], 3, false).is_err());
        assert!(mean_squared_error(&[0.5f64; 5], &[0.5f64; 6]).is_err());
        assert!(labels_from_floats(&[1.0f32, 2.5]).is_err());
        assert_eq!(labels_from_floats(&[1.0f32, 2.0]).unwrap(), vec![1, 2]);
        assert!(batchnorm_train_forward(&[1.0f64; 6], Some(&[1.0; 2]), None, 3, 1e-3).is_err());
        assert!(global_pool_forward(PoolKind::Avg, &[1.0f64; 7], 1, 2, 3).is_err());
    }

    #[test]
    fn accuracy_helpers() {
        let p = vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.3, 0.3, 0.4];
        assert_eq!(sparse_categorical_accuracy(&[1, 0, 0], &p, 3).unwrap(), 2.0 / 3.0);
        assert_eq!(categorical_accuracy(&onehot(&[1, 2, 2], 3), &p, 3).unwrap(), 2.0 / 3.0);
        assert_eq!(binary_accuracy(&[1.0, 0.0, 1.0, 0.0], &[0.6, 0.4, 0.5, 0.9], 0.5).unwrap(), 0.5);
        // Ties take the first maximum, like numpy.
        assert_eq!(sparse_categorical_accuracy(&[0], &[0.5, 0.5], 2).unwrap(), 1.0);
    }

    fn naive_bn(x: &[f64], c: usize) -> (Vec<f64>, Vec<f64>) {
        let rows = x.len() / c;
        let mut mean = vec![0.0; c];
        let mut var = vec![0.0; c];
        for r in 0..rows {
            for ch in 0..c {
                mean[ch] += x[r * c + ch] / rows as f64;
            }
        }
        for r in 0..rows {
            for ch in 0..c {
                var[ch] += (x[r * c + ch] - mean[ch]).powi(2) / rows as f64;
            }
        }
        (mean, var)
    }

    #[test]
    fn batchnorm_training_and_inference() {
        let mut rng = Rng(11);
        let c = 3;
        let x: Vec<f64> = rng.vec(4 * 5 * c, -1.0, 3.0);
        let gamma = vec![1.5, 0.5, -2.0];
        let beta = vec![0.1, -0.2, 0.3];
        let eps = 1e-3;
        let (y, mean, var) = batchnorm_train_forward(&x, Some(&gamma), Some(&beta), c, eps).unwrap();
        let (nm, nv) = naive_bn(&x, c);
        assert!(rel_err(&mean, &nm) < 1e-14 && rel_err(&var, &nv) < 1e-14);
        // Normalized output: per-channel mean beta, variance gamma^2 var/(var+eps).
        let (ym, yv) = naive_bn(&y, c);
        for ch in 0..c {
            assert!((ym[ch] - beta[ch]).abs() < 1e-12);
            assert!((yv[ch] - gamma[ch] * gamma[ch] * nv[ch] / (nv[ch] + eps)).abs() < 1e-12);
        }
        // Inference with the batch statistics as moving ones gives the same output;
        // with other moving statistics, the plain affine formula.
        let yi = batchnorm_infer_forward(&x, Some(&gamma), Some(&beta), &mean, &var, c, eps).unwrap();
        assert!(rel_err(&yi, &y) < 1e-13);
        let (mm, mv) = (vec![0.5, -1.0, 2.0], vec![4.0, 0.25, 1.0]);
        let yi = batchnorm_infer_forward(&x, Some(&gamma), Some(&beta), &mm, &mv, c, eps).unwrap();
        for (i, &v) in x.iter().enumerate() {
            let ch = i % c;
            let want = gamma[ch] * (v - mm[ch]) / (mv[ch] + eps).sqrt() + beta[ch];
            assert!((yi[i] - want).abs() < 1e-12);
        }
        let y0 = batchnorm_infer_forward(&x, None, None, &mm, &mv, c, eps).unwrap();
        assert!((y0[0] - (x[0] - 0.5) / (4.0f64 + eps).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn batchnorm_backward_matches_finite_differences() {
        let mut rng = Rng(5);
        let c = 3;
        let x: Vec<f64> = rng.vec(7 * c, -2.0, 2.0);
        let gamma = vec![1.5, 0.5, -2.0];
        let beta = vec![0.1, -0.2, 0.3];
        let r = rng.vec(x.len(), -1.0, 1.0);
        let eps = 1e-3;
        let (_, mean, var) = batchnorm_train_forward(&x, Some(&gamma), Some(&beta), c, eps).unwrap();
        let (dx, dg, db) = batchnorm_backward(&x, Some(&gamma), &mean, &var, c, eps, &r).unwrap();
        let f = |xx: &[f64], g: &[f64], b: &[f64]| dot(&batchnorm_train_forward(xx, Some(g), Some(b), c, eps).unwrap().0, &r);
        let e = rel_err(&dx, &fd(&x, |xx| f(xx, &gamma, &beta)));
        assert!(e <= TOL, "dx {e}");
        let e = rel_err(&dg, &fd(&gamma, |g| f(&x, g, &beta)));
        assert!(e <= TOL, "dgamma {e}");
        let e = rel_err(&db, &fd(&beta, |b| f(&x, &gamma, b)));
        assert!(e <= TOL, "dbeta {e}");
    }

    #[test]
    fn dropout_expectation_and_reproducibility() {
        let n = 200_000;
        let x = vec![2.0f32; n];
        let rate = 0.3;
        let (y, mask) = dropout_forward(&x, rate, 42).unwrap();
        let (y2, mask2) = dropout_forward(&x, rate, 42).unwrap();
        assert_eq!(y, y2);
        assert_eq!(mask, mask2);
        let (_, mask3) = dropout_forward(&x, rate, 43).unwrap();
        assert_ne!(mask, mask3);
        let keep = (1.0 / (1.0 - rate)) as f32;
        assert!(mask.iter().all(|&m| m == 0.0 || m == keep));
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / n as f64;
        // Binomial std at n = 2e5 is about 0.001.
        assert!((kept - 0.7).abs() < 0.005, "{kept}");
        let mean_y: f64 = y.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean_y - 2.0).abs() < 0.02, "{mean_y}");
        for i in 0..n {
            assert_eq!(y[i], x[i] * mask[i]);
        }
        let dy = vec![1.0f32; n];
        assert_eq!(dropout_backward(&dy, &mask).unwrap(), mask);
        let (y0, m0) = dropout_forward(&x, 0.0, 1).unwrap();
        assert_eq!(y0, x);
        assert!(m0.iter().all(|&m| m == 1.0));
        let (y1, _) = dropout_forward(&x[..10], 1.0, 1).unwrap();
        assert!(y1.iter().all(|&v| v == 0.0));
        assert!(dropout_forward(&x[..10], 1.5, 1).is_err());
    }

    #[test]
    fn global_pooling_backward_matches_finite_differences() {
        let mut rng = Rng(9);
        let (b, s, c) = (2, 6, 3);
        let x = rng.vec(b * s * c, -1.0, 1.0); // distinct values almost surely
        let r = rng.vec(b * c, -1.0, 1.0);
        for kind in [PoolKind::Avg, PoolKind::Max] {
            let dx = global_pool_backward(kind, &x, &r, b, s, c).unwrap();
            let num = fd(&x, |xx| dot(&global_pool_forward(kind, xx, b, s, c).unwrap(), &r));
            let e = rel_err(&dx, &num);
            assert!(e <= TOL, "{kind:?}: {e}");
        }
        let y = global_pool_forward(PoolKind::Avg, &[1.0, 2.0, 3.0, 4.0], 1, 2, 2).unwrap();
        assert_eq!(y, vec![2.0, 3.0]);
        // Ties share the gradient.
        let dx = global_pool_backward(PoolKind::Max, &[5.0, 1.0, 5.0, 0.0], &[1.0, 1.0], 1, 2, 2).unwrap();
        assert_eq!(dx, vec![0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn sgd_one_step() {
        let g = [0.5f64, -1.0];
        let mut p = [1.0f64, 2.0];
        sgd_update(&mut p, &g, None, 0.1, 0.0, false).unwrap();
        assert_eq!(p, [0.95, 2.1]);
        let mut p = [1.0f64, 2.0];
        let mut v = [0.2f64, -0.1];
        sgd_update(&mut p, &g, Some(&mut v), 0.1, 0.9, false).unwrap();
        // v = 0.9 v - 0.1 g = [0.18 - 0.05, -0.09 + 0.1]
        assert!((v[0] - 0.13).abs() < 1e-15 && (v[1] - 0.01).abs() < 1e-15);
        assert!((p[0] - 1.13).abs() < 1e-15 && (p[1] - 2.01).abs() < 1e-15);
        let mut p = [1.0f64, 2.0];
        let mut v = [0.2f64, -0.1];
        sgd_update(&mut p, &g, Some(&mut v), 0.1, 0.9, true).unwrap();
        // p += 0.9 v_new - 0.1 g = [0.117 - 0.05, 0.009 + 0.1]
        assert!((p[0] - 1.067).abs() < 1e-15 && (p[1] - 2.109).abs() < 1e-15);
        assert!(sgd_update(&mut p, &g, None, 0.1, 0.9, false).is_err());
        assert!(sgd_update(&mut p, &g[..1], None, 0.1, 0.0, false).is_err());
    }

    #[test]
    fn adam_one_and_two_steps() {
        let (lr, b1, b2, eps) = (0.001, 0.9, 0.999, 1e-7);
        let mut p = [1.0f64, -2.0];
        let mut m = [0.0; 2];
        let mut v = [0.0; 2];
        let g = [0.5, -3.0];
        adam_update(&mut p, &g, &mut m, &mut v, lr, b1, b2, eps, 1).unwrap();
        // Step 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1,
        // p -= alpha m / (sqrt(v) + eps) ~ lr sign(g).
        let alpha = lr * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
        for i in 0..2 {
            let (mi, vi) = (0.1 * g[i], 0.001 * g[i] * g[i]);
            assert!((m[i] - mi).abs() < 1e-15 && (v[i] - vi).abs() < 1e-15);
            let want = [1.0, -2.0][i] - alpha * mi / (vi.sqrt() + eps);
            assert!((p[i] - want).abs() < 1e-15, "{} vs {want}", p[i]);
        }
        assert!((p[0] - (1.0 - 0.001)).abs() < 1e-6 && (p[1] - (-2.0 + 0.001)).abs() < 1e-6);
        // Step 2 with the same gradient.
        let (p1, m1, v1) = (p, m, v);
        adam_update(&mut p, &g, &mut m, &mut v, lr, b1, b2, eps, 2).unwrap();
        let alpha2 = lr * (1.0f64 - 0.999f64.powi(2)).sqrt() / (1.0 - 0.81);
        for i in 0..2 {
            let mi = 0.9 * m1[i] + 0.1 * g[i];
            let vi = 0.999 * v1[i] + 0.001 * g[i] * g[i];
            let want = p1[i] - alpha2 * mi / (vi.sqrt() + eps);
            assert!((p[i] - want).abs() < 1e-15);
        }
        assert!(adam_update(&mut p, &g, &mut m, &mut v, lr, b1, b2, eps, 0).is_err());
    }

    #[test]
    fn float32_paths_agree_with_float64() {
        let mut rng = Rng(21);
        let x64 = rng.vec(64, -3.0, 3.0);
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        for act in [Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::Softmax] {
            let a = activation_forward(act, &x64, 8).unwrap();
            let b = activation_forward(act, &x32, 8).unwrap();
            for (u, v) in a.iter().zip(&b) {
                assert!((u - *v as f64).abs() < 1e-6);
            }
        }
        let labels: Vec<i64> = (0..8).map(|i| i % 8).collect();
        let (l64, _) = sparse_categorical_crossentropy(&labels, &x64, 8, true).unwrap();
        let (l32, _) = sparse_categorical_crossentropy(&labels, &x32, 8, true).unwrap();
        assert!((l64 - l32).abs() < 1e-5);
        let (y64, _, _) = batchnorm_train_forward(&x64, None, None, 4, 1e-3).unwrap();
        let (y32, _, _) = batchnorm_train_forward(&x32, None, None, 4, 1e-3).unwrap();
        for (u, v) in y64.iter().zip(&y32) {
            assert!((u - *v as f64).abs() < 1e-5);
        }
    }
}
