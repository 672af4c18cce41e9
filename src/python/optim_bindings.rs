//! The optimizer update binding: one function for every rule and every device. A
//! GpuArray variable runs the WGSL kernel (with the trainer's step guard), a numpy one
//! the CPU kernel; the spec (`crate::ops::optim::OptimStep`) is checked once first.

use super::gpu_bindings::{run as run_gpu, PyGpuArray};
use super::{describe, run_native};
use crate::cpu;
use crate::element::Element;
use crate::gpu;
use crate::ops::optim::{OptimStep, Rule};
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::borrow::Cow;

const F: &str = "optimizer_update";

fn slot_name(rule: Rule, k: usize) -> String {
    let n = rule.slot_names()[k];
    if n.is_empty() {
        format!("state slot {k}")
    } else {
        format!("state slot {k} ({n})")
    }
}

fn writable<'py, T: Element + numpy::Element>(obj: &Bound<'py, PyAny>, what: &str, shape: &[usize]) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let a = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!("{F}: {what} must be a {} numpy array (the variable's dtype), got {}", T::NAME, describe(obj)))
    })?;
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{F}: {what} is updated in place and must be C-contiguous")));
    }
    if a.shape() != shape {
        return Err(PyValueError::new_err(format!("{F}: {what} must have shape {shape:?}, got {:?}", a.shape())));
    }
    a.try_readwrite().map_err(|e| {
        PyValueError::new_err(format!("{F}: {what} must be writeable and not also passed as another argument ({e})"))
    })
}

fn cpu_update<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    s: &OptimStep,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    slots: &[Option<Bound<'py, PyAny>>],
) -> PyResult<()> {
    let shape = param.cast::<PyArrayDyn<T>>().map(|a| a.shape().to_vec()).unwrap_or_default();
    let mut pa = writable::<T>(param, "the variable", &shape)?;
    let ga = grad.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!("{F}: the gradient must be a {} numpy array (the variable's dtype), got {}", T::NAME, describe(grad)))
    })?;
    let ga: PyReadonlyArrayDyn<T> = ga.try_readonly().map_err(|e| PyValueError::new_err(format!("{F}: cannot read the gradient ({e})")))?;
    if ga.shape() != shape.as_slice() {
        return Err(PyValueError::new_err(format!("{F}: the gradient must have shape {shape:?}, got {:?}", ga.shape())));
    }
    let gs: Cow<[T]> = match ga.as_slice() {
        Ok(s) if ga.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(ga.as_array().iter().copied().collect()),
    };
    let mut views = Vec::with_capacity(3);
    for (k, sl) in slots.iter().enumerate() {
        views.push(match sl {
            Some(o) => Some(writable::<T>(o, &slot_name(s.rule, k), &shape)?),
            None => None,
        });
    }
    let ps = pa.as_slice_mut().map_err(|e| PyValueError::new_err(format!("{F}: the variable: {e}")))?;
    let mut it = views.iter_mut().map(|v| v.as_mut().map(|v| v.as_slice_mut().expect("checked C-contiguous")));
    let sl = [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()];
    run_native(py, || cpu::optim::optim_update(s, ps, &gs, sl))
}

/// One optimizer step in place: `rule` one of sgd, adam, rmsprop, adagrad, adadelta,
/// adamax, nadam, lion; `hyper` the rule's hyperparameters in the order of
/// `crate::ops::optim` (learning rate first; Adam, Adamax and Nadam take the step
/// counting from 1, Nadam the momentum product); `slots` three entries, None where the
/// rule does not use a state buffer; `weight_decay` the decoupled decay step
/// (weight_decay * learning_rate; `p -= p * weight_decay` first); `clipvalue` clips
/// the gradient to [-clipvalue, clipvalue]. `guard` (GPU only): the trainer's step
/// flag; once set, nothing is written.
#[pyfunction]
#[pyo3(signature = (rule, param, grad, slots, hyper, weight_decay=0.0, clipvalue=None, guard=None))]
#[allow(clippy::too_many_arguments)]
fn optimizer_update<'py>(
    py: Python<'py>,
    rule: &str,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    slots: Vec<Option<Bound<'py, PyAny>>>,
    hyper: Vec<f64>,
    weight_decay: f64,
    clipvalue: Option<f64>,
    guard: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let rule = Rule::parse(rule)?;
    if slots.len() != 3 {
        return Err(PyValueError::new_err(format!("{F}: slots must have 3 entries (None where unused), got {}", slots.len())));
    }
    let present = [slots[0].is_some(), slots[1].is_some(), slots[2].is_some()];
    let s = OptimStep::new(rule, &hyper, present, weight_decay, clipvalue)?;
    if let Ok(p) = param.cast::<PyGpuArray>() {
        let gpu_of = |o: &Bound<'py, PyAny>, what: &str| -> PyResult<gpu::GpuTensor> {
            o.cast::<PyGpuArray>().map(|b| b.borrow().t.clone()).map_err(|_| {
                PyTypeError::new_err(format!("{F}: {what} must be a GpuArray (the variable is on the GPU), got {}", describe(o)))
            })
        };
        let pt = p.borrow().t.clone();
        let gt = gpu_of(grad, "the gradient")?;
        if gt.shape != pt.shape {
            return Err(PyValueError::new_err(format!("{F}: the gradient must have shape {:?}, got {:?}", pt.shape, gt.shape)));
        }
        let mut st: Vec<Option<gpu::GpuTensor>> = Vec::with_capacity(3);
        for (k, sl) in slots.iter().enumerate() {
            st.push(match sl {
                Some(o) => {
                    let t = gpu_of(o, &slot_name(rule, k))?;
                    if t.shape != pt.shape {
                        return Err(PyValueError::new_err(format!(
                            "{F}: {} must have shape {:?}, got {:?}",
                            slot_name(rule, k),
                            pt.shape,
                            t.shape
                        )));
                    }
                    Some(t)
                }
                None => None,
            });
        }
        let gd = match guard {
            Some(o) if !o.is_none() => Some(gpu_of(o, "the step guard")?),
            _ => None,
        };
        let sl = [st[0].as_ref(), st[1].as_ref(), st[2].as_ref()];
        return run_gpu(py, || gpu::ops::optim_update(&s, &pt, &gt, sl, gd.as_ref()));
    }
    if guard.is_some_and(|g| !g.is_none()) {
        return Err(PyValueError::new_err(format!("{F}: a step guard is a GPU flag; on the CPU the caller checks")));
    }
    if param.cast::<PyArrayDyn<f32>>().is_ok() {
        cpu_update::<f32>(py, &s, param, grad, &slots)
    } else if param.cast::<PyArrayDyn<f64>>().is_ok() {
        cpu_update::<f64>(py, &s, param, grad, &slots)
    } else {
        Err(PyTypeError::new_err(format!(
            "{F}: the variable must be a float32/float64 numpy array or a GpuArray, got {}",
            describe(param)
        )))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(optimizer_update, m)?)?;
    Ok(())
}
