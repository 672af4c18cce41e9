//! Data-augmentation kernels for channels-last image batches (N, H, W, C), the native
//! half of Keras's RandomFlip / RandomTranslation / RandomRotation / RandomZoom /
//! RandomContrast / RandomBrightness layers. The random parameters are drawn by the
//! caller and arrive here as one value (or one 2x3 matrix) per image, so every kernel is
//! a deterministic function of its inputs, and each has an exact backward:
//!
//! - `affine_warp`: output pixel (x, y) (x = column, y = row) samples the input at
//!   (a0*x + a1*y + a2, b0*x + b1*y + b2), Keras's `affine_transform` convention, with
//!   bilinear or nearest interpolation and Keras's four fill modes applied to each tap;
//!   `affine_warp_adjoint` is the exact transpose of its linear part (a scatter-add).
//! - `flip_images`: per-image left-right / up-down flips (their own adjoint).
//! - `contrast_*` / `brightness_*`: per-image contrast and brightness with clipping to a
//!   value range; the backward passes no gradient where the output was clipped.
//!
//! Shapes and parameters are checked here, once, by the `*Spec` constructors; the kernels
//! assume a validated spec.

use crate::element::Element;
use crate::error::{checked_numel, try_zeroed, Error, Result};
use rayon::prelude::*;

/// How a sample tap outside the image is filled (Keras `fill_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillMode {
    /// d c b a | a b c d | d c b a (scipy.ndimage mode 'reflect').
    Reflect,
    /// a b c d | a b c d | a b c d (scipy 'grid-wrap').
    Wrap,
    /// k k k k | a b c d | k k k k with k = fill_value (scipy 'grid-constant').
    Constant,
    /// a a a a | a b c d | d d d d (scipy 'nearest').
    Nearest,
    /// scipy.ndimage's plain 'constant' (Keras's ImageDataGenerator): a sample whose
    /// coordinate leaves [0, n - 1] on either axis is the fill value, with no blending;
    /// inside, the taps are clamped.
    NdimageConstant,
    /// scipy.ndimage's plain 'wrap': the coordinate wraps with period n - 1 (not n), then
    /// the taps are clamped.
    NdimageWrap,
}

impl FillMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "reflect" => Ok(FillMode::Reflect),
            "wrap" => Ok(FillMode::Wrap),
            "constant" => Ok(FillMode::Constant),
            "nearest" => Ok(FillMode::Nearest),
            "ndimage_constant" => Ok(FillMode::NdimageConstant),
            "ndimage_wrap" => Ok(FillMode::NdimageWrap),
            other => Err(Error::Value(format!(
                "fill_mode must be one of 'reflect', 'wrap', 'constant', 'nearest', 'ndimage_constant', \
                 'ndimage_wrap', got '{other}'"
            ))),
        }
    }

    /// The input index a tap at integer position `i` reads on an axis of length `n`
    /// (n >= 1), or None for the constant fill.
    #[inline]
    fn map(self, i: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self {
            FillMode::Constant => None,
            FillMode::Nearest | FillMode::NdimageConstant | FillMode::NdimageWrap => Some(i.clamp(0, n - 1) as usize),
            FillMode::Wrap => Some(i.rem_euclid(n) as usize),
            FillMode::Reflect => {
                let m = i.rem_euclid(2 * n);
                Some(if m < n { m } else { 2 * n - 1 - m } as usize)
            }
        }
    }

    /// Whether the mode maps the sample coordinate itself (scipy.ndimage's plain modes),
    /// before the taps.
    fn maps_coordinates(self) -> bool {
        matches!(self, FillMode::NdimageConstant | FillMode::NdimageWrap)
    }

    /// scipy.ndimage's `map_coordinate`: a sample coordinate `c` on an axis of length `n`
    /// mapped into [0, n - 1] by the mode (None: the constant fill).
    fn map_coordinate(self, c: f64, n: usize) -> Option<f64> {
        let len = n as f64;
        if (0.0..=len - 1.0).contains(&c) {
            return Some(c);
        }
        if n <= 1 && self != FillMode::Constant && self != FillMode::NdimageConstant {
            return Some(0.0);
        }
        match self {
            FillMode::Constant | FillMode::NdimageConstant => None,
            FillMode::Nearest => Some(c.clamp(0.0, len - 1.0)),
            FillMode::Reflect => {
                let sz2 = 2.0 * len;
                let mut c = c;
                if c < 0.0 {
                    if c < -sz2 {
                        c += sz2 * (-c / sz2).trunc();
                    }
                    Some(if c < -len { c + sz2 } else { -c - 1.0 })
                } else {
                    c -= sz2 * (c / sz2).trunc();
                    Some(if c >= len { sz2 - c - 1.0 } else { c })
                }
            }
            FillMode::Wrap | FillMode::NdimageWrap => {
                let sz = len - 1.0;
                Some(if c < 0.0 { c + sz * ((-c / sz).trunc() + 1.0) } else { c - sz * (c / sz).trunc() })
            }
        }
    }
}

/// Keras `interpolation` of the geometric layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    /// The nearest pixel, halves rounded to even (numpy's `round`, as Keras's
    /// `map_coordinates(order=0)`).
    Nearest,
    /// scipy.ndimage's order 0 (Keras's ImageDataGenerator with interpolation_order=0):
    /// the coordinate is mapped by the fill mode first, then the pixel at
    /// floor(c + 0.5), clamped, is taken.
    NdimageNearest,
}

impl Interpolation {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "bilinear" => Ok(Interpolation::Bilinear),
            "nearest" => Ok(Interpolation::Nearest),
            "ndimage_nearest" => Ok(Interpolation::NdimageNearest),
            other => Err(Error::Value(format!(
                "interpolation must be 'bilinear', 'nearest' or 'ndimage_nearest', got '{other}'"
            ))),
        }
    }
}

/// The dimensions of a channels-last image batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageBatch {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl ImageBatch {
    /// Dimensions of an array of shape (N, H, W, C); `what` names the array in messages.
    pub fn from_shape(what: &str, shape: &[usize]) -> Result<Self> {
        if shape.len() != 4 {
            return Err(Error::Value(format!(
                "{what} must have shape (batch, height, width, channels), got shape {shape:?}"
            )));
        }
        checked_numel(shape)?;
        Ok(ImageBatch { n: shape[0], h: shape[1], w: shape[2], c: shape[3] })
    }

    pub fn numel(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    fn image_len(&self) -> usize {
        self.h * self.w * self.c
    }

    fn shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c]
    }
}

/// A validated affine warp of a batch: one row-major 2x3 matrix per image.
#[derive(Clone, Debug)]
pub struct WarpSpec {
    pub dims: ImageBatch,
    /// (N, 6): [a0, a1, a2, b0, b1, b2] per image.
    pub matrices: Vec<f64>,
    pub interpolation: Interpolation,
    pub fill_mode: FillMode,
    pub fill_value: f64,
}

impl WarpSpec {
    pub fn new(
        dims: ImageBatch,
        matrices: &[f64],
        matrices_shape: &[usize],
        interpolation: Interpolation,
        fill_mode: FillMode,
        fill_value: f64,
    ) -> Result<Self> {
        if matrices_shape != [dims.n, 6] {
            return Err(Error::Value(format!(
                "transforms must have shape [{}, 6] (one [a0, a1, a2, b0, b1, b2] per image of the batch of shape \
                 {:?}), got shape {matrices_shape:?}",
                dims.n,
                dims.shape()
            )));
        }
        if let Some(i) = matrices.iter().position(|v| !v.is_finite()) {
            return Err(Error::Value(format!(
                "transforms must be finite, got {} at image {}, entry {}",
                matrices[i],
                i / 6,
                i % 6
            )));
        }
        if !fill_value.is_finite() {
            return Err(Error::Value(format!("fill_value must be finite, got {fill_value}")));
        }
        Ok(WarpSpec { dims, matrices: matrices.to_vec(), interpolation, fill_mode, fill_value })
    }
}

/// One input sample contributing to an output pixel: its pixel index within the image
/// (None: the constant fill) and its weight.
#[derive(Clone, Copy)]
struct Tap {
    src: Option<usize>,
    weight: f64,
}

/// The taps of output pixel (x, y) of an image warped by `m`. Forward and adjoint both
/// read them from here, which makes the adjoint the exact transpose.
#[inline]
fn taps(spec: &WarpSpec, m: &[f64], x: usize, y: usize, out: &mut [Tap; 4]) -> usize {
    let (xf, yf) = (x as f64, y as f64);
    let mut sx = m[0] * xf + m[1] * yf + m[2];
    let mut sy = m[3] * xf + m[4] * yf + m[5];
    let (h, w, mode) = (spec.dims.h, spec.dims.w, spec.fill_mode);
    if mode.maps_coordinates() || spec.interpolation == Interpolation::NdimageNearest {
        // scipy.ndimage's plain modes: the coordinate is mapped, then the taps clamped
        match (mode.map_coordinate(sx, w), mode.map_coordinate(sy, h)) {
            (Some(cx), Some(cy)) => {
                sx = cx;
                sy = cy;
            }
            _ => {
                out[0] = Tap { src: None, weight: 1.0 };
                return 1;
            }
        }
        if spec.interpolation == Interpolation::NdimageNearest {
            let r = to_index((sy + 0.5).floor()).clamp(0, h as i64 - 1) as usize;
            let c = to_index((sx + 0.5).floor()).clamp(0, w as i64 - 1) as usize;
            out[0] = Tap { src: Some(r * w + c), weight: 1.0 };
            return 1;
        }
    }
    let pixel = |r: i64, c: i64| -> Option<usize> {
        match (mode.map(r, h), mode.map(c, w)) {
            (Some(r), Some(c)) => Some(r * w + c),
            _ => None,
        }
    };
    match spec.interpolation {
        Interpolation::Nearest | Interpolation::NdimageNearest => {
            out[0] = Tap { src: pixel(to_index(sy.round_ties_even()), to_index(sx.round_ties_even())), weight: 1.0 };
            1
        }
        Interpolation::Bilinear => {
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (to_index(x0), to_index(y0));
            let mut k = 0;
            if x0 >= 0 && y0 >= 0 && x0 + 1 < w as i64 && y0 + 1 < h as i64 {
                // all four taps inside the image: no fill mode to apply (the same taps)
                let base = y0 as usize * w + x0 as usize;
                for (dy, wy) in [(0usize, 1.0 - fy), (w, fy)] {
                    if wy == 0.0 {
                        continue;
                    }
                    for (dx, wx) in [(0usize, 1.0 - fx), (1, fx)] {
                        if wx == 0.0 {
                            continue;
                        }
                        out[k] = Tap { src: Some(base + dy + dx), weight: wy * wx };
                        k += 1;
                    }
                }
                return k;
            }
            for (dy, wy) in [(0i64, 1.0 - fy), (1, fy)] {
                if wy == 0.0 {
                    continue;
                }
                for (dx, wx) in [(0i64, 1.0 - fx), (1, fx)] {
                    if wx == 0.0 {
                        continue;
                    }
                    out[k] = Tap { src: pixel(y0.saturating_add(dy), x0.saturating_add(dx)), weight: wy * wx };
                    k += 1;
                }
            }
            k
        }
    }
}

/// A whole-valued coordinate as an index; far-away coordinates saturate (they land in
/// the fill region for 'constant'/'nearest', and anywhere is as good for the periodic
/// modes at a distance where f64 has no fractional digits left).
#[inline]
fn to_index(v: f64) -> i64 {
    v as i64
}

/// Warp every image of `x` (shape `spec.dims`) by its matrix: parallel over output rows.
pub fn affine_warp<T: Element>(x: &[T], spec: &WarpSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    debug_assert_eq!(x.len(), d.numel());
    let mut out = try_zeroed::<T>(d.numel(), "the warped images")?;
    let (row, img) = (d.w * d.c, d.image_len());
    if out.is_empty() {
        return Ok(out);
    }
    let fill = T::from_f64_lossy(spec.fill_value);
    // rows of small images are small tasks: at least ~4K output values per task
    let min_rows = (4096 / row.max(1)).max(1);
    out.par_chunks_mut(row).enumerate().with_min_len(min_rows).for_each(|(r, orow)| {
        let (n, y) = (r / d.h, r % d.h);
        let m = &spec.matrices[n * 6..n * 6 + 6];
        let xin = &x[n * img..(n + 1) * img];
        let mut t = [Tap { src: None, weight: 0.0 }; 4];
        let direct = spec.interpolation == Interpolation::Bilinear && !spec.fill_mode.maps_coordinates();
        for (xo, o) in orow.chunks_exact_mut(d.c).enumerate() {
            if direct {
                // The common case: four taps inside the image, none of weight 0. The same
                // arithmetic as `taps` (the adjoint's), without its fill-mode mapping.
                let (xf, yf) = (xo as f64, y as f64);
                let sx = m[0] * xf + m[1] * yf + m[2];
                let sy = m[3] * xf + m[4] * yf + m[5];
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let (xi, yi) = (to_index(x0), to_index(y0));
                if fx != 0.0 && fy != 0.0 && xi >= 0 && yi >= 0 && xi + 1 < d.w as i64 && yi + 1 < d.h as i64 {
                    let wts = [(1.0 - fy) * (1.0 - fx), (1.0 - fy) * fx, fy * (1.0 - fx), fy * fx].map(T::from_f64_lossy);
                    let p = (yi as usize * d.w + xi as usize) * d.c;
                    let q = p + d.w * d.c;
                    let (a, b) = (&xin[p..p + 2 * d.c], &xin[q..q + 2 * d.c]);
                    for (ch, oc) in o.iter_mut().enumerate() {
                        *oc = T::zero() + wts[0] * a[ch] + wts[1] * a[d.c + ch] + wts[2] * b[ch] + wts[3] * b[d.c + ch];
                    }
                    continue;
                }
            }
            let k = taps(spec, m, xo, y, &mut t);
            for tap in &t[..k] {
                let wt = T::from_f64_lossy(tap.weight);
                match tap.src {
                    Some(p) => {
                        for (oc, &v) in o.iter_mut().zip(&xin[p * d.c..(p + 1) * d.c]) {
                            *oc += wt * v;
                        }
                    }
                    None => {
                        for oc in o.iter_mut() {
                            *oc += wt * fill;
                        }
                    }
                }
            }
        }
    });
    Ok(out)
}

/// Row blocks per image for the adjoint's scatter: enough independent jobs for the pool
/// when the batch is small. Depends only on the shape, so results do not depend on the
/// thread count.
fn adjoint_blocks(n: usize, h: usize) -> usize {
    const JOBS: usize = 8;
    if n >= JOBS {
        1
    } else {
        JOBS.div_ceil(n.max(1)).min(h).max(1)
    }
}

/// Scatter output rows `rows` of one image's `dy` into `dx` (that image's gradient).
fn scatter_rows<T: Element>(spec: &WarpSpec, m: &[f64], dy: &[T], rows: std::ops::Range<usize>, dx: &mut [T]) {
    let d = spec.dims;
    let row = d.w * d.c;
    let mut t = [Tap { src: None, weight: 0.0 }; 4];
    for y in rows {
        for (xo, g) in dy[y * row..(y + 1) * row].chunks_exact(d.c).enumerate() {
            let k = taps(spec, m, xo, y, &mut t);
            for tap in &t[..k] {
                if let Some(p) = tap.src {
                    let wt = T::from_f64_lossy(tap.weight);
                    for (dc, &gv) in dx[p * d.c..(p + 1) * d.c].iter_mut().zip(g) {
                        *dc += wt * gv;
                    }
                }
            }
        }
    }
}

/// The transpose of `affine_warp`'s linear part: dx[src] += weight * dy[dst] for every
/// tap (the constant fill takes no gradient). Parallel over images, and over blocks of
/// output rows with private accumulators when the batch is small.
pub fn affine_warp_adjoint<T: Element>(dy: &[T], spec: &WarpSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    debug_assert_eq!(dy.len(), d.numel());
    let mut dx = try_zeroed::<T>(d.numel(), "the gradient of the warped images")?;
    if dx.is_empty() {
        return Ok(dx);
    }
    let img = d.image_len();
    let blocks = adjoint_blocks(d.n, d.h);
    let mat = |n: usize| &spec.matrices[n * 6..n * 6 + 6];
    if blocks == 1 {
        dx.par_chunks_mut(img).enumerate().for_each(|(n, dxi)| {
            scatter_rows(spec, mat(n), &dy[n * img..(n + 1) * img], 0..d.h, dxi);
        });
        return Ok(dx);
    }
    let total = img.checked_mul(blocks * d.n).ok_or_else(|| Error::Memory("adjoint buffers overflow".into()))?;
    let mut partial = try_zeroed::<T>(total, "the adjoint's per-block accumulators")?;
    partial.par_chunks_mut(img).enumerate().for_each(|(j, buf)| {
        let (n, b) = (j / blocks, j % blocks);
        let rows = b * d.h / blocks..(b + 1) * d.h / blocks;
        scatter_rows(spec, mat(n), &dy[n * img..(n + 1) * img], rows, buf);
    });
    const CHUNK: usize = 4096;
    dx.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, out)| {
        for (k, o) in out.iter_mut().enumerate() {
            let e = ci * CHUNK + k;
            let (n, off) = (e / img, e % img);
            let base = n * blocks * img + off;
            for b in 0..blocks {
                *o += partial[base + b * img];
            }
        }
    });
    Ok(dx)
}

/// Per-image flips: `horizontal[n]` mirrors image n left-right (along W), `vertical[n]`
/// up-down (along H). A flip is its own inverse and its own adjoint.
pub fn flip_images<T: Element>(x: &[T], dims: ImageBatch, horizontal: &[bool], vertical: &[bool]) -> Result<Vec<T>> {
    check_per_image("horizontal", horizontal.len(), dims)?;
    check_per_image("vertical", vertical.len(), dims)?;
    debug_assert_eq!(x.len(), dims.numel());
    let mut out = try_zeroed::<T>(dims.numel(), "the flipped images")?;
    if out.is_empty() {
        return Ok(out);
    }
    let (c, row, img) = (dims.c, dims.w * dims.c, dims.image_len());
    out.par_chunks_mut(row).enumerate().for_each(|(r, orow)| {
        let (n, y) = (r / dims.h, r % dims.h);
        let ys = if vertical[n] { dims.h - 1 - y } else { y };
        let src = &x[n * img + ys * row..n * img + (ys + 1) * row];
        if horizontal[n] {
            for (o, s) in orow.chunks_exact_mut(c).zip(src.chunks_exact(c).rev()) {
                o.copy_from_slice(s);
            }
        } else {
            orow.copy_from_slice(src);
        }
    });
    Ok(out)
}

fn check_per_image(what: &str, len: usize, dims: ImageBatch) -> Result<()> {
    if len != dims.n {
        return Err(Error::Value(format!(
            "{what} must have one entry per image: shape [{}] for images of shape {:?}, got {len} entries",
            dims.n,
            dims.shape()
        )));
    }
    Ok(())
}

/// A validated per-image colour adjustment: one parameter per image and the value range
/// the result is clipped to.
#[derive(Clone, Debug)]
pub struct ColorSpec {
    pub dims: ImageBatch,
    /// Contrast factor or brightness delta (already scaled to the value range), per image.
    pub params: Vec<f64>,
    pub low: f64,
    pub high: f64,
}

impl ColorSpec {
    pub fn new(dims: ImageBatch, what: &str, params: &[f64], low: f64, high: f64) -> Result<Self> {
        check_per_image(what, params.len(), dims)?;
        if let Some(i) = params.iter().position(|v| !v.is_finite()) {
            return Err(Error::Value(format!("{what} must be finite, got {} for image {i}", params[i])));
        }
        if low.is_nan() || high.is_nan() || low > high {
            return Err(Error::Value(format!("the value range must satisfy low <= high, got ({low}, {high})")));
        }
        Ok(ColorSpec { dims, params: params.to_vec(), low, high })
    }

    /// The unclipped value, its clipped value and whether the gradient passes (the
    /// unclipped value lies inside the closed range).
    #[inline]
    fn clip(&self, z: f64) -> (f64, bool) {
        if z < self.low {
            (self.low, false)
        } else if z > self.high {
            (self.high, false)
        } else {
            (z, true)
        }
    }
}

/// Per (image, channel) means over H and W, in f64: (N * C).
fn channel_means<T: Element>(x: &[T], d: ImageBatch) -> Vec<f64> {
    let (img, c) = (d.image_len(), d.c);
    let hw = (d.h * d.w) as f64;
    (0..d.n)
        .into_par_iter()
        .flat_map_iter(|n| {
            let mut s = vec![0.0f64; c];
            for px in x[n * img..(n + 1) * img].chunks_exact(c) {
                for (a, v) in s.iter_mut().zip(px) {
                    *a += v.to_f64().unwrap_or(f64::NAN);
                }
            }
            s.into_iter().map(move |v| if hw > 0.0 { v / hw } else { 0.0 })
        })
        .collect()
}

/// Keras RandomContrast on validated params (factor f per image):
/// y = clip((x - mean) * f + mean, low, high), mean over H and W per image and channel.
pub fn contrast_forward<T: Element>(x: &[T], spec: &ColorSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    let mut out = try_zeroed::<T>(d.numel(), "the contrast-adjusted images")?;
    if out.is_empty() {
        return Ok(out);
    }
    let means = channel_means(x, d);
    let (row, c) = (d.w * d.c, d.c);
    out.par_chunks_mut(row).zip(x.par_chunks(row)).enumerate().for_each(|(r, (orow, xrow))| {
        let n = r / d.h;
        let f = spec.params[n];
        let m = &means[n * c..(n + 1) * c];
        for (o, xp) in orow.chunks_exact_mut(c).zip(xrow.chunks_exact(c)) {
            for ((ov, &xv), &mv) in o.iter_mut().zip(xp).zip(m) {
                let z = (xv.to_f64().unwrap_or(f64::NAN) - mv) * f + mv;
                *ov = T::from_f64_lossy(spec.clip(z).0);
            }
        }
    });
    Ok(out)
}

/// Backward of `contrast_forward`: with g = dy where the output was not clipped (0
/// elsewhere), dx = f * g + (1 - f) * mean_hw(g), the second term from the mean's
/// dependence on x.
pub fn contrast_backward<T: Element>(x: &[T], dy: &[T], spec: &ColorSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    let mut dx = try_zeroed::<T>(d.numel(), "the gradient of the contrast adjustment")?;
    if dx.is_empty() {
        return Ok(dx);
    }
    let (img, c) = (d.image_len(), d.c);
    let means = channel_means(x, d);
    let hw = (d.h * d.w) as f64;
    dx.par_chunks_mut(img).enumerate().for_each(|(n, dxi)| {
        let f = spec.params[n];
        let m = &means[n * c..(n + 1) * c];
        let (xi, gi) = (&x[n * img..(n + 1) * img], &dy[n * img..(n + 1) * img]);
        let mut gsum = vec![0.0f64; c];
        // dx first holds the masked g, then the full gradient.
        for ((o, xp), gp) in dxi.chunks_exact_mut(c).zip(xi.chunks_exact(c)).zip(gi.chunks_exact(c)) {
            for ch in 0..c {
                let z = (xp[ch].to_f64().unwrap_or(f64::NAN) - m[ch]) * f + m[ch];
                let g = if spec.clip(z).1 { gp[ch].to_f64().unwrap_or(f64::NAN) } else { 0.0 };
                gsum[ch] += g;
                o[ch] = T::from_f64_lossy(g);
            }
        }
        let shift: Vec<f64> = gsum.iter().map(|s| (1.0 - f) * s / hw).collect();
        for o in dxi.chunks_exact_mut(c) {
            for (ov, &s) in o.iter_mut().zip(&shift) {
                *ov = T::from_f64_lossy(f * ov.to_f64().unwrap_or(f64::NAN) + s);
            }
        }
    });
    Ok(dx)
}

/// Keras RandomBrightness on validated params (delta per image, in value units):
/// y = clip(x + delta, low, high).
pub fn brightness_forward<T: Element>(x: &[T], spec: &ColorSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    let img = d.image_len();
    let mut out = try_zeroed::<T>(d.numel(), "the brightness-adjusted images")?;
    if out.is_empty() {
        return Ok(out);
    }
    out.par_chunks_mut(img).enumerate().for_each(|(n, oi)| {
        let delta = spec.params[n];
        for (o, &xv) in oi.iter_mut().zip(&x[n * img..(n + 1) * img]) {
            *o = T::from_f64_lossy(spec.clip(xv.to_f64().unwrap_or(f64::NAN) + delta).0);
        }
    });
    Ok(out)
}

/// Backward of `brightness_forward`: dx = dy where the output was not clipped, else 0.
pub fn brightness_backward<T: Element>(x: &[T], dy: &[T], spec: &ColorSpec) -> Result<Vec<T>> {
    let d = spec.dims;
    let img = d.image_len();
    let mut dx = try_zeroed::<T>(d.numel(), "the gradient of the brightness adjustment")?;
    if dx.is_empty() {
        return Ok(dx);
    }
    dx.par_chunks_mut(img).enumerate().for_each(|(n, dxi)| {
        let delta = spec.params[n];
        for ((o, &xv), &g) in dxi.iter_mut().zip(&x[n * img..(n + 1) * img]).zip(&dy[n * img..(n + 1) * img]) {
            *o = if spec.clip(xv.to_f64().unwrap_or(f64::NAN) + delta).1 { g } else { T::zero() };
        }
    });
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndimage_coordinates_follow_scipys_map_coordinate() {
        let m = |mode: FillMode, c: f64, n: usize| mode.map_coordinate(c, n);
        // plain 'wrap' has period n - 1: on 5 samples, 4.5 is 0.5 and -0.5 is 3.5
        assert_eq!(m(FillMode::NdimageWrap, 4.5, 5), Some(0.5));
        assert_eq!(m(FillMode::NdimageWrap, -0.5, 5), Some(3.5));
        assert_eq!(m(FillMode::NdimageWrap, 9.0, 5), Some(1.0));
        // plain 'constant': anything outside [0, n - 1] is the fill, the ends are inside
        assert_eq!(m(FillMode::NdimageConstant, -0.01, 5), None);
        assert_eq!(m(FillMode::NdimageConstant, 4.0, 5), Some(4.0));
        assert_eq!(m(FillMode::NdimageConstant, 4.01, 5), None);
        // 'reflect' (half-sample symmetric): -1 is 0, 5 is 4, -6 is 4, 10.25 is 0.25
        assert_eq!(m(FillMode::Reflect, -1.0, 5), Some(0.0));
        assert_eq!(m(FillMode::Reflect, 5.0, 5), Some(4.0));
        assert_eq!(m(FillMode::Reflect, -6.0, 5), Some(4.0));
        assert_eq!(m(FillMode::Reflect, 10.25, 5), Some(0.25));
        assert_eq!(m(FillMode::Nearest, -3.5, 5), Some(0.0));
        assert_eq!(m(FillMode::NdimageWrap, 7.0, 1), Some(0.0));
        // order 0: floor(c + 0.5) of the mapped coordinate (2.5 -> 3, not numpy's 2)
        let d = ImageBatch { n: 1, h: 1, w: 5, c: 1 };
        let x: Vec<f64> = (0..5).map(f64::from).collect();
        let s = WarpSpec::new(d, &[1.0, 0.0, 0.5, 0.0, 1.0, 0.0], &[1, 6], Interpolation::NdimageNearest,
                              FillMode::NdimageWrap, 0.0).unwrap();
        assert_eq!(affine_warp(&x, &s).unwrap(), vec![1.0, 2.0, 3.0, 4.0, 1.0]);
        let s = WarpSpec::new(d, &[1.0, 0.0, -0.5, 0.0, 1.0, 0.0], &[1, 6], Interpolation::Bilinear,
                              FillMode::NdimageConstant, -1.0).unwrap();
        assert_eq!(affine_warp(&x, &s).unwrap(), vec![-1.0, 0.5, 1.5, 2.5, 3.5]);
    }

    /// A small deterministic pseudo-random sequence in [-1, 1).
    fn noise(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn spec(d: ImageBatch, mats: Vec<f64>, interp: Interpolation, mode: FillMode, fill: f64) -> WarpSpec {
        WarpSpec::new(d, &mats, &[d.n, 6], interp, mode, fill).unwrap()
    }

    const MODES: [FillMode; 4] = [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest];
    const INTERPS: [Interpolation; 2] = [Interpolation::Bilinear, Interpolation::Nearest];

    #[test]
    fn fill_modes_map_indices_like_keras() {
        // n = 4: positions -5..9
        let got = |m: FillMode| (-5..9).map(|i| m.map(i, 4).map(|v| v as i64).unwrap_or(-1)).collect::<Vec<_>>();
        assert_eq!(got(FillMode::Reflect), vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        assert_eq!(got(FillMode::Wrap), vec![3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(got(FillMode::Nearest), vec![0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3]);
        assert_eq!(got(FillMode::Constant), vec![-1, -1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, -1]);
        // a one-pixel axis
        assert_eq!(FillMode::Reflect.map(-3, 1), Some(0));
        assert_eq!(FillMode::Wrap.map(7, 1), Some(0));
    }

    #[test]
    fn identity_matrix_is_exact_for_every_mode() {
        let d = ImageBatch { n: 3, h: 5, w: 7, c: 2 };
        let x: Vec<f32> = noise(d.numel(), 1).iter().map(|&v| v as f32).collect();
        for mode in MODES {
            for interp in INTERPS {
                let s = spec(d, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0].repeat(3), interp, mode, 9.0);
                assert_eq!(affine_warp(&x, &s).unwrap(), x);
                assert_eq!(affine_warp_adjoint(&x, &s).unwrap(), x);
            }
        }
    }

    #[test]
    fn integer_translation_with_constant_fill_shifts_and_pads() {
        let d = ImageBatch { n: 1, h: 4, w: 5, c: 1 };
        let x: Vec<f64> = (0..20).map(|v| v as f64).collect();
        // output (x, y) reads input (x - 2, y + 1): content moves right 2, up 1
        let s = spec(d, vec![1.0, 0.0, -2.0, 0.0, 1.0, 1.0], Interpolation::Bilinear, FillMode::Constant, -1.0);
        let y = affine_warp(&x, &s).unwrap();
        for r in 0..4 {
            for c in 0..5 {
                let want = if c >= 2 && r + 1 < 4 { x[(r + 1) * 5 + c - 2] } else { -1.0 };
                assert_eq!(y[r * 5 + c], want, "({r}, {c})");
            }
        }
    }

    #[test]
    fn quarter_turn_is_counter_clockwise() {
        let n = 6;
        let d = ImageBatch { n: 1, h: n, w: n, c: 1 };
        let x = noise(n * n, 3);
        let c = (n - 1) as f64;
        // Keras's rotation matrix at angle pi/2, exactly
        let s = spec(d, vec![0.0, -1.0, c, 1.0, 0.0, 0.0], Interpolation::Bilinear, FillMode::Reflect, 0.0);
        let y = affine_warp(&x, &s).unwrap();
        for r in 0..n {
            for col in 0..n {
                // np.rot90: out[r, c] = in[c, n-1-r]
                assert_eq!(y[r * n + col], x[col * n + (n - 1 - r)]);
            }
        }
    }

    #[test]
    fn adjoint_is_the_transpose() {
        let d = ImageBatch { n: 2, h: 7, w: 6, c: 3 };
        let mats: Vec<f64> = (0..2)
            .flat_map(|i| {
                let a = 0.7 + i as f64 * 0.9;
                vec![a.cos() * 1.3, -a.sin(), 2.3, a.sin(), a.cos() * 0.8, -1.7]
            })
            .collect();
        let x = noise(d.numel(), 5);
        let g = noise(d.numel(), 6);
        for mode in MODES {
            for interp in INTERPS {
                // fill 0: the warp is then linear
                let s = spec(d, mats.clone(), interp, mode, 0.0);
                let wx = affine_warp(&x, &s).unwrap();
                let wtg = affine_warp_adjoint(&g, &s).unwrap();
                let lhs: f64 = wx.iter().zip(&g).map(|(a, b)| a * b).sum();
                let rhs: f64 = x.iter().zip(&wtg).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{mode:?} {interp:?}: {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn adjoint_blocks_match_one_block() {
        // one image uses row blocks with private accumulators; compare with a batch of 8
        // (one block per image) holding the same image
        let one = ImageBatch { n: 1, h: 9, w: 4, c: 2 };
        let eight = ImageBatch { n: 8, ..one };
        let m = vec![0.9, 0.2, 0.5, -0.3, 1.1, 0.25];
        let g = noise(one.numel(), 8);
        let a = affine_warp_adjoint(&g, &spec(one, m.clone(), Interpolation::Bilinear, FillMode::Reflect, 0.0)).unwrap();
        let b = affine_warp_adjoint(&g.repeat(8), &spec(eight, m.repeat(8), Interpolation::Bilinear, FillMode::Reflect, 0.0))
            .unwrap();
        for (i, v) in a.iter().enumerate() {
            assert!((v - b[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn flips_are_involutions() {
        let d = ImageBatch { n: 4, h: 3, w: 5, c: 2 };
        let x = noise(d.numel(), 9);
        let hz = [false, true, false, true];
        let vt = [false, false, true, true];
        let y = flip_images(&x, d, &hz, &vt).unwrap();
        assert_eq!(flip_images(&y, d, &hz, &vt).unwrap(), x);
        assert_eq!(&y[..30], &x[..30]);
        // image 1 flipped left-right: pixel (0, 0) is the input's (0, 4)
        assert_eq!(&y[30..32], &x[30 + 8..30 + 10]);
        assert!(flip_images(&x, d, &hz[..3], &vt).is_err());
    }

    #[test]
    fn contrast_keeps_the_mean_and_its_gradient_matches_differences() {
        let d = ImageBatch { n: 2, h: 3, w: 4, c: 2 };
        let x: Vec<f64> = noise(d.numel(), 10).iter().map(|v| 100.0 + 20.0 * v).collect();
        let s = ColorSpec::new(d, "factors", &[0.6, 1.4], 0.0, 255.0).unwrap();
        let y = contrast_forward(&x, &s).unwrap();
        let (mx, my) = (channel_means(&x, d), channel_means(&y, d));
        for (a, b) in mx.iter().zip(&my) {
            assert!((a - b).abs() < 1e-10);
        }
        let g = noise(d.numel(), 11);
        let dx = contrast_backward(&x, &g, &s).unwrap();
        let loss = |x: &[f64]| -> f64 { contrast_forward(x, &s).unwrap().iter().zip(&g).map(|(a, b)| a * b).sum() };
        for i in [0, 5, 17, 40] {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += 1e-4;
            xm[i] -= 1e-4;
            let fd = (loss(&xp) - loss(&xm)) / 2e-4;
            assert!((fd - dx[i]).abs() < 1e-8, "{i}: {fd} vs {}", dx[i]);
        }
    }

    #[test]
    fn brightness_clips_and_stops_the_gradient() {
        let d = ImageBatch { n: 1, h: 1, w: 3, c: 1 };
        let x = vec![10.0f32, 200.0, 250.0];
        let s = ColorSpec::new(d, "deltas", &[20.0], 0.0, 255.0).unwrap();
        assert_eq!(brightness_forward(&x, &s).unwrap(), vec![30.0, 220.0, 255.0]);
        assert_eq!(brightness_backward(&x, &[1.0, 2.0, 3.0], &s).unwrap(), vec![1.0, 2.0, 0.0]);
        assert!(ColorSpec::new(d, "deltas", &[1.0, 2.0], 0.0, 1.0).is_err());
        assert!(ColorSpec::new(d, "deltas", &[1.0], 2.0, 1.0).is_err());
    }

    #[test]
    fn bad_specs_are_value_errors() {
        let d = ImageBatch { n: 2, h: 2, w: 2, c: 1 };
        assert!(WarpSpec::new(d, &[0.0; 6], &[1, 6], Interpolation::Nearest, FillMode::Wrap, 0.0).is_err());
        let mut m = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0].repeat(2);
        m[4] = f64::NAN;
        assert!(WarpSpec::new(d, &m, &[2, 6], Interpolation::Nearest, FillMode::Wrap, 0.0).is_err());
        assert!(FillMode::parse("mirror").is_err());
        assert!(Interpolation::parse("bicubic").is_err());
        assert!(ImageBatch::from_shape("x", &[2, 3, 4]).is_err());
    }
}
