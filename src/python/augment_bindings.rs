//! Data-augmentation bindings: the kernels behind convcore.layers' RandomFlip,
//! RandomTranslation, RandomRotation, RandomZoom, RandomContrast and RandomBrightness.
//!
//! Conventions (as nn_bindings): images are numpy float32 or float64 arrays of shape
//! (N, H, W, C), the dtype of `x` (or `dy`) decides the kernel's element type and any
//! second image array must have it too; per-image parameters (matrices, factors,
//! deltas, flip flags) are converted to float64 / bool. The random parameters are drawn
//! by the caller: every function here is deterministic.

use super::{contiguous, describe, lead_dtype, run_native, to_numpy, Dt};
use crate::cpu::augment::{self, ColorSpec, FillMode, ImageBatch, Interpolation, WarpSpec};
use crate::element::Element;
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A read-only image array of dtype `T` and its batch dimensions.
fn images<'py, T: Element + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    fname: &str,
    what: &str,
) -> PyResult<(PyReadonlyArrayDyn<'py, T>, ImageBatch)> {
    let a = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: {what} must be a {} numpy array (the dtype of the images), got {}",
            T::NAME,
            describe(obj)
        ))
    })?;
    let r = a
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{fname}: cannot read {what}: it is being written elsewhere ({e})")))?;
    let dims = ImageBatch::from_shape(&format!("{fname}: {what}"), r.shape())?;
    Ok((r, dims))
}

/// Any real numeric array (or sequence) as a C-contiguous float64 vector and its shape.
fn f64_values(obj: &Bound<'_, PyAny>, fname: &str, what: &str) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let np = obj.py().import("numpy")?;
    let conv = np.call_method1("asarray", (obj,)).map_err(|_| {
        PyTypeError::new_err(format!("{fname}: {what} must be a real numeric array, got {}", describe(obj)))
    })?;
    let kind: String = conv.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "b" | "i" | "u" | "f") {
        return Err(PyTypeError::new_err(format!(
            "{fname}: {what} must be a real numeric array, got {}",
            describe(obj)
        )));
    }
    let conv = np.call_method1("ascontiguousarray", (conv, "float64"))?;
    let a = conv.cast::<PyArrayDyn<f64>>()?.readonly();
    Ok((a.as_slice()?.to_vec(), a.shape().to_vec()))
}

/// A one-dimensional per-image parameter array of length n.
fn per_image(obj: &Bound<'_, PyAny>, fname: &str, what: &str, dims: ImageBatch) -> PyResult<Vec<f64>> {
    let (v, shape) = f64_values(obj, fname, what)?;
    if shape != [dims.n] {
        return Err(PyValueError::new_err(format!(
            "{fname}: {what} must have shape [{}] (one value per image), got shape {shape:?}",
            dims.n
        )));
    }
    Ok(v)
}

fn flags(obj: &Bound<'_, PyAny>, fname: &str, what: &str, dims: ImageBatch) -> PyResult<Vec<bool>> {
    Ok(per_image(obj, fname, what, dims)?.into_iter().map(|v| v != 0.0).collect())
}

fn out<'py, T: Element + numpy::Element>(py: Python<'py>, v: Vec<T>, dims: ImageBatch) -> PyResult<Bound<'py, PyAny>> {
    Ok(to_numpy(py, v, &[dims.n, dims.h, dims.w, dims.c])?.into_any())
}

fn warp_spec(
    obj: &Bound<'_, PyAny>,
    fname: &str,
    dims: ImageBatch,
    interpolation: &str,
    fill_mode: &str,
    fill_value: f64,
) -> PyResult<WarpSpec> {
    let interpolation = Interpolation::parse(interpolation).map_err(|e| PyValueError::new_err(format!("{fname}: {e}")))?;
    let fill_mode = FillMode::parse(fill_mode).map_err(|e| PyValueError::new_err(format!("{fname}: {e}")))?;
    let (m, shape) = f64_values(obj, fname, "transforms")?;
    WarpSpec::new(dims, &m, &shape, interpolation, fill_mode, fill_value)
        .map_err(|e| PyValueError::new_err(format!("{fname}: {e}")))
}

// ---------------------------------------------------------------------------------
// Affine warp
// ---------------------------------------------------------------------------------

fn affine_warp_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    transforms: &Bound<'py, PyAny>,
    interpolation: &str,
    fill_mode: &str,
    fill_value: f64,
    adjoint: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let fname = if adjoint { "affine_warp_adjoint" } else { "affine_warp" };
    let (xa, dims) = images::<T>(x, fname, if adjoint { "dy" } else { "x" })?;
    let spec = warp_spec(transforms, fname, dims, interpolation, fill_mode, fill_value)?;
    let xs = contiguous(&xa)?;
    let y = run_native(py, || {
        if adjoint {
            augment::affine_warp_adjoint(&xs, &spec)
        } else {
            augment::affine_warp(&xs, &spec)
        }
    })?;
    out(py, y, dims)
}

/// Warp each image of x (N, H, W, C) by its own affine map: output pixel (x, y)
/// (x = column, y = row) samples the input at (a0*x + a1*y + a2, b0*x + b1*y + b2), with
/// transforms (N, 6) = [a0, a1, a2, b0, b1, b2] per image (Keras's affine_transform
/// convention, without the projective terms). interpolation: 'bilinear' | 'nearest' |
/// 'ndimage_nearest' (scipy.ndimage's order 0: the mapped coordinate, halves rounded up);
/// fill_mode: 'reflect' | 'wrap' | 'constant' | 'nearest', applied per sample tap as
/// scipy.ndimage's 'reflect' | 'grid-wrap' | 'grid-constant' | 'nearest', or
/// 'ndimage_constant' | 'ndimage_wrap': scipy.ndimage's plain 'constant' and 'wrap',
/// which map the sample coordinate (Keras's ImageDataGenerator).
#[pyfunction]
#[pyo3(signature = (x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0))]
fn affine_warp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    transforms: &Bound<'py, PyAny>,
    interpolation: &str,
    fill_mode: &str,
    fill_value: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "affine_warp", "x", affine_warp_t(py, x, transforms, interpolation, fill_mode, fill_value, false))
}

/// The exact transpose of affine_warp's linear part (the constant fill takes no
/// gradient): the gradient with respect to x of sum(affine_warp(x, ...) * dy).
#[pyfunction]
#[pyo3(signature = (dy, transforms, interpolation="bilinear", fill_mode="reflect"))]
fn affine_warp_adjoint<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    transforms: &Bound<'py, PyAny>,
    interpolation: &str,
    fill_mode: &str,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(dy, "affine_warp_adjoint", "dy", affine_warp_t(py, dy, transforms, interpolation, fill_mode, 0.0, true))
}

// ---------------------------------------------------------------------------------
// Flips
// ---------------------------------------------------------------------------------

fn flip_images_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    horizontal: &Bound<'py, PyAny>,
    vertical: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "flip_images";
    let (xa, dims) = images::<T>(x, F, "x")?;
    let hz = flags(horizontal, F, "horizontal", dims)?;
    let vt = flags(vertical, F, "vertical", dims)?;
    let xs = contiguous(&xa)?;
    let y = run_native(py, || augment::flip_images(&xs, dims, &hz, &vt))?;
    out(py, y, dims)
}

/// Flip image n of x (N, H, W, C) left-right where horizontal[n] and up-down where
/// vertical[n] (boolean or 0/1 arrays of shape (N,)). Its own inverse and adjoint.
#[pyfunction]
fn flip_images<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    horizontal: &Bound<'py, PyAny>,
    vertical: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "flip_images", "x", flip_images_t(py, x, horizontal, vertical))
}

// ---------------------------------------------------------------------------------
// Contrast and brightness
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Color {
    ContrastForward,
    ContrastBackward,
    BrightnessForward,
    BrightnessBackward,
}

impl Color {
    fn name(self) -> &'static str {
        match self {
            Color::ContrastForward => "contrast_forward",
            Color::ContrastBackward => "contrast_backward",
            Color::BrightnessForward => "brightness_forward",
            Color::BrightnessBackward => "brightness_backward",
        }
    }
    fn param(self) -> &'static str {
        match self {
            Color::ContrastForward | Color::ContrastBackward => "factors",
            _ => "deltas",
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn color_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    op: Color,
    x: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
    dy: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let fname = op.name();
    let (xa, dims) = images::<T>(x, fname, "x")?;
    let p = per_image(params, fname, op.param(), dims)?;
    let spec = ColorSpec::new(dims, op.param(), &p, low, high).map_err(|e| PyValueError::new_err(format!("{fname}: {e}")))?;
    let xs = contiguous(&xa)?;
    let y = match dy {
        None => run_native(py, || match op {
            Color::ContrastForward => augment::contrast_forward(&xs, &spec),
            _ => augment::brightness_forward(&xs, &spec),
        })?,
        Some(dy) => {
            let (da, ddims) = images::<T>(dy, fname, "dy")?;
            if ddims != dims {
                return Err(PyValueError::new_err(format!(
                    "{fname}: dy must have the shape of x, {:?}, got shape {:?}",
                    xa.shape(),
                    da.shape()
                )));
            }
            let ds = contiguous(&da)?;
            run_native(py, || match op {
                Color::ContrastBackward => augment::contrast_backward(&xs, &ds, &spec),
                _ => augment::brightness_backward(&xs, &ds, &spec),
            })?
        }
    };
    out(py, y, dims)
}

/// Keras RandomContrast with the factor already drawn: for image n of x (N, H, W, C),
/// y = clip((x - mean) * factors[n] + mean, low, high), mean over H and W per channel.
#[pyfunction]
#[pyo3(signature = (x, factors, low=f64::NEG_INFINITY, high=f64::INFINITY))]
fn contrast_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    factors: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "contrast_forward", "x", color_t(py, Color::ContrastForward, x, factors, low, high, None))
}

/// Gradient of contrast_forward with respect to x (zero where the output was clipped;
/// includes the term through the channel mean).
#[pyfunction]
#[pyo3(signature = (x, factors, dy, low=f64::NEG_INFINITY, high=f64::INFINITY))]
fn contrast_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    factors: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "contrast_backward", "x", color_t(py, Color::ContrastBackward, x, factors, low, high, Some(dy)))
}

/// Keras RandomBrightness with the delta already drawn (in value units): for image n,
/// y = clip(x + deltas[n], low, high).
#[pyfunction]
#[pyo3(signature = (x, deltas, low=f64::NEG_INFINITY, high=f64::INFINITY))]
fn brightness_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    deltas: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "brightness_forward", "x", color_t(py, Color::BrightnessForward, x, deltas, low, high, None))
}

/// Gradient of brightness_forward with respect to x: dy where the output was not
/// clipped, 0 elsewhere.
#[pyfunction]
#[pyo3(signature = (x, deltas, dy, low=f64::NEG_INFINITY, high=f64::INFINITY))]
fn brightness_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    deltas: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "brightness_backward", "x", color_t(py, Color::BrightnessBackward, x, deltas, low, high, Some(dy)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(affine_warp, m)?)?;
    m.add_function(wrap_pyfunction!(affine_warp_adjoint, m)?)?;
    m.add_function(wrap_pyfunction!(flip_images, m)?)?;
    m.add_function(wrap_pyfunction!(contrast_forward, m)?)?;
    m.add_function(wrap_pyfunction!(contrast_backward, m)?)?;
    m.add_function(wrap_pyfunction!(brightness_forward, m)?)?;
    m.add_function(wrap_pyfunction!(brightness_backward, m)?)?;
    Ok(())
}
