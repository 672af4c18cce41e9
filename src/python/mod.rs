//! PyO3 bindings: numpy <-> slices, error mapping, GIL release. No computation here:
//! each function builds a spec from `crate::ops`, then hands it to a `crate::cpu` kernel
//! inside the crate's rayon pool with the GIL released.

use crate::cpu;
use crate::element::Element;
use crate::error::Error;
use crate::ops::correlate::{Boundary, CorrPlan, Mode};
use crate::threads;
use ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::borrow::Cow;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Value(m) => PyValueError::new_err(m),
            Error::Type(m) => PyTypeError::new_err(m),
            Error::Memory(m) => PyMemoryError::new_err(m),
            Error::Device(m) => pyo3::exceptions::PyRuntimeError::new_err(m),
        }
    }
}

/// A C-contiguous view of `a`: borrowed when the layout allows, copied otherwise
/// (Fortran order, negative or gapped strides).
fn contiguous<'a, T: numpy::Element + Copy>(a: &'a PyReadonlyArrayDyn<'_, T>) -> Result<Cow<'a, [T]>, Error> {
    // as_slice() also accepts Fortran order; only C order may be borrowed as is.
    if a.is_c_contiguous() {
        if let Ok(s) = a.as_slice() {
            return Ok(Cow::Borrowed(s));
        }
    }
    let v = a.as_array();
    let Some(&first) = v.iter().next() else {
        return Ok(Cow::Owned(Vec::new()));
    };
    let mut buf = crate::error::try_filled(v.len(), first, "a contiguous copy of the input")?;
    for (d, s) in buf.iter_mut().zip(v.iter()) {
        *d = *s;
    }
    Ok(Cow::Owned(buf))
}

/// Run `f` without the GIL, in the crate's pool, turning a panic into RuntimeError.
fn run_native<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R, Error> + Send) -> PyResult<R> {
    let r = py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| threads::install(f)))
    });
    match r {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) | Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PyRuntimeError::new_err(
            "convcore internal error: a native kernel panicked (please report this with the input shapes)",
        )),
    }
}

/// An output shape numpy cannot hold is a MemoryError; any other mismatch is ours.
pub(crate) fn shape_error(e: ndarray::ShapeError) -> PyErr {
    if e.kind() == ndarray::ErrorKind::Overflow {
        return pyo3::exceptions::PyMemoryError::new_err(format!("the result's shape has more elements than an array can hold ({e})"));
    }
    PyRuntimeError::new_err(format!("convcore internal error: {e}"))
}

fn to_numpy<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let a = ArrayD::from_shape_vec(IxDyn(shape), v)
        .map_err(shape_error)?;
    Ok(a.into_pyarray(py))
}

/// Dispatch a two-array function on the common float dtype of its inputs.
macro_rules! dispatch_float2 {
    ($py:expr, $a:expr, $b:expr, $name:literal, |$x:ident, $k:ident| $body:expr) => {{
        if let (Ok($x), Ok($k)) = ($a.extract::<PyReadonlyArrayDyn<f32>>(), $b.extract::<PyReadonlyArrayDyn<f32>>()) {
            $body.map(|r| r.into_any())
        } else if let (Ok($x), Ok($k)) =
            ($a.extract::<PyReadonlyArrayDyn<f64>>(), $b.extract::<PyReadonlyArrayDyn<f64>>())
        {
            $body.map(|r| r.into_any())
        } else {
            Err(PyTypeError::new_err(concat!(
                $name,
                ": expected two numpy arrays of the same dtype, float32 or float64"
            )))
        }
    }};
}

fn correlate_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, T>,
    k: PyReadonlyArrayDyn<'py, T>,
    plan: CorrPlan,
    method: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let use_fft = match method {
        "direct" => false,
        "fft" => {
            if plan.boundary != Boundary::Constant || plan.cval != 0.0 {
                return Err(PyValueError::new_err("method='fft' needs a zero-fill boundary"));
            }
            true
        }
        "auto" => cpu::fft::prefer_fft::<T>(&plan),
        other => {
            return Err(PyValueError::new_err(format!(
                "method must be 'auto', 'direct' or 'fft', got {other:?}"
            )))
        }
    };
    let xs = contiguous(&x)?;
    let ks = contiguous(&k)?;
    let out = run_native(py, || {
        if use_fft {
            cpu::fft::correlate_fft(&xs, &ks, &plan)
        } else {
            cpu::correlate::correlate_direct(&xs, &ks, &plan)
        }
    })?;
    to_numpy(py, out, &plan.out_shape)
}

/// scipy.signal.correlate(in1, in2, mode, method) for float arrays of one dtype.
#[pyfunction]
#[pyo3(signature = (in1, in2, mode="full", method="auto"))]
fn correlate<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    mode: &str,
    method: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mode = Mode::parse(mode)?;
    dispatch_float2!(py, in1, in2, "correlate", |x, k| {
        let plan = CorrPlan::signal(x.shape(), k.shape(), mode)?;
        correlate_impl(py, x, k, plan, method)
    })
}

/// The method `correlate(..., method='auto')` would use: 'direct' or 'fft'.
#[pyfunction]
#[pyo3(signature = (in1_shape, in2_shape, mode="full", double=false))]
fn choose_method(in1_shape: Vec<usize>, in2_shape: Vec<usize>, mode: &str, double: bool) -> PyResult<&'static str> {
    let plan = CorrPlan::signal(&in1_shape, &in2_shape, Mode::parse(mode)?)?;
    let fft = if double { cpu::fft::prefer_fft::<f64>(&plan) } else { cpu::fft::prefer_fft::<f32>(&plan) };
    Ok(if fft { "fft" } else { "direct" })
}

/// scipy.signal.correlate2d(in1, in2, mode, boundary, fillvalue).
/// `flipped`: in2 is an already flipped kernel (convolve2d), which changes the 'same' centring.
#[pyfunction]
#[pyo3(signature = (in1, in2, mode="full", boundary="fill", fillvalue=0.0, flipped=false))]
fn correlate2d<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    mode: &str,
    boundary: &str,
    fillvalue: f64,
    flipped: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let mode = Mode::parse(mode)?;
    let boundary = Boundary::parse_signal2d(boundary)?;
    dispatch_float2!(py, in1, in2, "correlate2d", |x, k| {
        let plan = CorrPlan::signal2d(x.shape(), k.shape(), mode, boundary, fillvalue, flipped)?;
        correlate_impl(py, x, k, plan, "direct")
    })
}

/// scipy.ndimage.correlate(input, weights, mode, cval, origin); origin has one entry per axis.
/// `footprint`: leave zero weights out (scipy's N-D correlate; correlate1d multiplies them).
/// float32 input with float64 weights is summed in float64 and rounded once (scipy's
/// precision); inputs and weights of one dtype are summed in that dtype.
#[pyfunction]
#[pyo3(signature = (input, weights, mode="reflect", cval=0.0, origin=None, footprint=false))]
fn ndimage_correlate<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    mode: &str,
    cval: f64,
    origin: Option<Vec<isize>>,
    footprint: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let boundary = Boundary::parse_ndimage(mode)?;
    if let (Ok(x), Ok(k)) = (input.extract::<PyReadonlyArrayDyn<f32>>(), weights.extract::<PyReadonlyArrayDyn<f64>>()) {
        let origin = origin.unwrap_or_else(|| vec![0; x.ndim()]);
        let mut plan = CorrPlan::ndimage(x.shape(), k.shape(), &origin, boundary, cval)?;
        plan.skip_zero = footprint;
        let xs = contiguous(&x)?;
        let ks = contiguous(&k)?;
        let out = run_native(py, || cpu::correlate::correlate_direct_wide(&xs, &ks, &plan))?;
        return to_numpy(py, out, &plan.out_shape).map(|r| r.into_any());
    }
    dispatch_float2!(py, input, weights, "correlate", |x, k| {
        let origin = origin.clone().unwrap_or_else(|| vec![0; x.ndim()]);
        let mut plan = CorrPlan::ndimage(x.shape(), k.shape(), &origin, boundary, cval)?;
        plan.skip_zero = footprint;
        correlate_impl(py, x, k, plan, "direct")
    })
}

/// The sum of separable filters of a 2-D float array, fused in strips of rows
/// (`cpu::correlate::separable2`): `filters` is a list of `(w0, mode0, w1, mode1)`, `w0`
/// along axis 0 then `w1` along axis 1 (no origins), each pass stored in the input's
/// dtype, the filters added in order; with `add_to` (same dtype and shape) the result is
/// added to it. float32 data with float64 weights is summed in float64.
#[pyfunction]
#[pyo3(signature = (input, filters, cval, add_to=None))]
fn ndimage_separable2<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    filters: Vec<(Bound<'py, PyAny>, String, Bound<'py, PyAny>, String)>,
    cval: f64,
    add_to: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    fn addend<'a, T: numpy::Element + Copy>(
        add_to: Option<&'a Bound<'_, PyAny>>,
        shape: &[usize],
    ) -> PyResult<Option<PyReadonlyArrayDyn<'a, T>>> {
        match add_to {
            None => Ok(None),
            Some(a) => {
                let a = a.extract::<PyReadonlyArrayDyn<T>>().map_err(|_| {
                    PyTypeError::new_err("separable2: add_to must be an array of the input's dtype")
                })?;
                if a.shape() != shape {
                    return Err(PyValueError::new_err(format!(
                        "separable2: add_to has shape {:?}, expected the input's {shape:?}",
                        a.shape()
                    )));
                }
                Ok(Some(a))
            }
        }
    }
    /// The filters' weights as `W` and their two plans each.
    #[allow(clippy::type_complexity)]
    fn prepared<W: numpy::Element + Copy>(
        filters: &[(Bound<'_, PyAny>, String, Bound<'_, PyAny>, String)],
        shape: &[usize],
        cval: f64,
    ) -> PyResult<Option<Vec<(Vec<W>, CorrPlan, Vec<W>, CorrPlan)>>> {
        if shape.len() != 2 {
            return Err(PyValueError::new_err(format!("separable2: expected a 2-D input, got shape {shape:?}")));
        }
        let mut out = Vec::new();
        for (w0, m0, w1, m1) in filters {
            let (Ok(w0), Ok(w1)) = (w0.extract::<PyReadonlyArrayDyn<W>>(), w1.extract::<PyReadonlyArrayDyn<W>>()) else {
                return Ok(None);
            };
            let (b0, b1) = (Boundary::parse_ndimage(m0)?, Boundary::parse_ndimage(m1)?);
            let (k0, k1) = (contiguous(&w0)?.into_owned(), contiguous(&w1)?.into_owned());
            let p0 = CorrPlan::ndimage(shape, &[k0.len(), 1], &[0, 0], b0, cval)?;
            let p1 = CorrPlan::ndimage(shape, &[1, k1.len()], &[0, 0], b1, cval)?;
            out.push((k0, p0, k1, p1));
        }
        Ok(Some(out))
    }
    macro_rules! run {
        ($x:ident, $t:ty, $w:ty, $f:path) => {{
            let shape = $x.shape().to_vec();
            if let Some(fs) = prepared::<$w>(&filters, &shape, cval)? {
                let add = addend::<$t>(add_to, &shape)?;
                let xs = contiguous(&$x)?;
                let adds = match &add {
                    Some(a) => Some(contiguous(a)?),
                    None => None,
                };
                let passes: Vec<cpu::correlate::Passes<$w>> = fs
                    .iter()
                    .map(|(k0, p0, k1, p1)| cpu::correlate::Passes { k0, plan0: p0, k1, plan1: p1 })
                    .collect();
                let out = run_native(py, || $f(&xs, &passes, adds.as_deref()))?;
                return to_numpy(py, out, &shape).map(|r| r.into_any());
            }
        }};
    }
    if let Ok(x) = input.extract::<PyReadonlyArrayDyn<f32>>() {
        run!(x, f32, f64, cpu::correlate::separable2_wide);
        run!(x, f32, f32, cpu::correlate::separable2::<f32>);
    }
    if let Ok(x) = input.extract::<PyReadonlyArrayDyn<f64>>() {
        run!(x, f64, f64, cpu::correlate::separable2::<f64>);
    }
    Err(PyTypeError::new_err(
        "separable2: expected a float32 or float64 input with weights of its dtype (or float64 weights for float32)",
    ))
}

#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    Ok(threads::set_num_threads(n)?)
}

#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}

/// The instruction-set path the CPU kernels take now: "portable", "avx2" or "avx512".
#[pyfunction]
fn simd_level() -> &'static str {
    crate::cpu::simd::level().name()
}

/// Every path this CPU can take, from the most portable up.
#[pyfunction]
fn simd_levels() -> Vec<&'static str> {
    crate::cpu::simd::available().into_iter().map(|l| l.name()).collect()
}

/// Take the path `name` from now on (tests force each one); returns the path before.
/// A path this CPU lacks raises ValueError.
#[pyfunction]
fn set_simd_level(name: &str) -> PyResult<&'static str> {
    let l = crate::cpu::simd::Level::parse(name).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "set_simd_level: expected one of 'portable', 'avx2', 'avx512', got {name:?}"
        ))
    })?;
    crate::cpu::simd::set_level(l)
        .map(|before| before.name())
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("set_simd_level: {e}")))
}

/// glibc's malloc, tuned once when the module loads, so that a training step's buffers
/// are reused from one step to the next instead of being returned to the OS and
/// page-faulted in again (measured by benches/warmup.py: a fresh page costs about 7.5 us
/// on this VM; the MNIST convnet's second `fit` step faulted 5,800 times, ResNet-18's
/// steady steps 6,600 times each; with these settings about none). One arena (the
/// kernels allocate on rayon's workers, and a block freed in one worker's arena was not
/// reused by the next step's request from the other), blocks up to glibc's largest
/// mmap threshold (32 MiB) from the heap, and no trimming of the heap below 1 GiB.
/// `CONVCORE_MALLOC_TUNING=0` leaves malloc as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    if std::env::var("CONVCORE_MALLOC_TUNING").is_ok_and(|v| v.trim() == "0") {
        return;
    }
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_TOP_PAD: i32 = -2;
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;
    // SAFETY: mallopt only changes allocator parameters; glibc serialises it.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
        mallopt(M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tune_malloc();
    m.add_function(wrap_pyfunction!(correlate, m)?)?;
    m.add_function(wrap_pyfunction!(choose_method, m)?)?;
    m.add_function(wrap_pyfunction!(correlate2d, m)?)?;
    m.add_function(wrap_pyfunction!(ndimage_correlate, m)?)?;
    m.add_function(wrap_pyfunction!(ndimage_separable2, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd_level, m)?)?;
    pool_bindings::register(m)?;
    nn_bindings::register(m)?;
    augment_bindings::register(m)?;
    gpu_bindings::register(m)?;
    resize_bindings::register(m)?;
    depthwise_bindings::register(m)?;
    norm_bindings::register(m)?;
    optim_bindings::register(m)?;
    rank_bindings::register(m)?;
    Ok(())
}

// Shared by the NN and augmentation bindings (the macro must precede their `mod` lines).

/// "float32 array of shape [2, 3]" or the Python type name, for messages.
pub(crate) fn describe(obj: &Bound<'_, PyAny>) -> String {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return format!("a {} array of shape {:?}", a.dtype(), a.shape());
    }
    match obj.get_type().name() {
        Ok(n) => format!("an object of type {n}"),
        Err(_) => "an object of unknown type".to_string(),
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Dt {
    F32,
    F64,
}

/// The float dtype that decides the kernel's element type.
pub(crate) fn lead_dtype(obj: &Bound<'_, PyAny>, fname: &str, what: &str) -> PyResult<Dt> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() {
        Ok(Dt::F32)
    } else if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        Ok(Dt::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{fname}: {what} must be a float32 or float64 numpy array, got {}",
            describe(obj)
        )))
    }
}

/// Call `$f::<T>(args)` with T the float type of `$lead`.
macro_rules! dispatch {
    ($lead:expr, $fname:expr, $what:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match lead_dtype($lead, $fname, $what)? {
            Dt::F32 => $f::<f32>($($arg),*),
            Dt::F64 => $f::<f64>($($arg),*),
        }
    };
}

mod pool_bindings;
mod nn_bindings;
mod augment_bindings;
mod gpu_bindings;
mod resize_bindings;
mod depthwise_bindings;
mod norm_bindings;
mod optim_bindings;
mod rank_bindings;
