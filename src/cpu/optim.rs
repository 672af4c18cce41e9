//! CPU optimizer updates: one in-place pass over a variable and its state for any rule
//! of `crate::ops::optim` (Keras 3's formulas, operation for operation, so float32 runs
//! round like Keras's). rayon over fixed-size chunks; absent state slots are scratch.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::ops::optim::{OptimStep, Rule, CLIP, HAS_SLOT0, HAS_SLOT1, HAS_SLOT2, NESTEROV};
use rayon::prelude::*;

const CHUNK: usize = 1 << 12;

/// sign with sign(0) = 0 (Rust's signum gives 1 for +0).
#[inline(always)]
fn sign<T: Element>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        x
    }
}

/// max that keeps a NaN of either side (numpy's maximum).
#[inline(always)]
fn nanmax<T: Element>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        a + b
    } else if a > b {
        a
    } else {
        b
    }
}

/// One element: p the variable, g its gradient, a b c the rule's state slots.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<T: Element>(rule: Rule, flags: u32, k: &[T; 8], wd: T, clip: T, p: &mut T, g: T, a: &mut T, b: &mut T, c: &mut T) {
    let mut g = g;
    if flags & CLIP != 0 {
        // a NaN passes through, as ops.clip's
        if g > clip {
            g = clip;
        } else if g < -clip {
            g = -clip;
        }
    }
    if wd != T::zero() {
        *p = *p - *p * wd;
    }
    match rule {
        Rule::Sgd => {
            // k: lr, momentum
            if flags & HAS_SLOT0 == 0 {
                *p -= g * k[0];
            } else {
                *a = *a * k[1] - g * k[0];
                if flags & NESTEROV != 0 {
                    *p += *a * k[1] - g * k[0];
                } else {
                    *p += *a;
                }
            }
        }
        Rule::Adam => {
            // k: alpha (bias-corrected), 1 - beta_1, 1 - beta_2, epsilon
            *a += (g - *a) * k[1];
            *b += (g * g - *b) * k[2];
            let v = if flags & HAS_SLOT2 != 0 {
                *c = nanmax(*c, *b);
                *c
            } else {
                *b
            };
            *p -= *a * k[0] / (v.sqrt() + k[3]);
        }
        Rule::RmsProp => {
            // k: lr, rho, 1 - rho, momentum, epsilon
            *a = k[1] * *a + k[2] * (g * g);
            let den = if flags & HAS_SLOT1 != 0 {
                *b = k[1] * *b + k[2] * g;
                *a - *b * *b + k[4]
            } else {
                *a + k[4]
            };
            let inc = k[0] * g / den.sqrt();
            if flags & HAS_SLOT2 != 0 {
                *c = k[3] * *c + inc;
                *p -= *c;
            } else {
                *p -= inc;
            }
        }
        Rule::Adagrad => {
            // k: lr, epsilon
            *a += g * g;
            *p -= k[0] * g / (*a + k[1]).sqrt();
        }
        Rule::Adadelta => {
            // k: lr, rho, 1 - rho, epsilon
            *a = k[1] * *a + k[2] * (g * g);
            let delta = -((*b + k[3]).sqrt() * g / (*a + k[3]).sqrt());
            *b = k[1] * *b + k[2] * (delta * delta);
            *p += k[0] * delta;
        }
        Rule::Adamax => {
            // k: lr, 1 - beta_1, beta_2, epsilon, 1 - beta_1^t
            *a += (g - *a) * k[1];
            *b = nanmax(k[2] * *b, g.abs());
            *p -= k[0] * *a / (k[4] * (*b + k[3]));
        }
        Rule::Nadam => {
            // k: lr, 1 - beta_1, 1 - beta_2, epsilon, u_{t+1} / (1 - prod_{t+1}),
            //    (1 - u_t) / (1 - prod_t), 1 - beta_2^t
            *a += (g - *a) * k[1];
            *b += (g * g - *b) * k[2];
            let m_hat = k[4] * *a + k[5] * g;
            let v_hat = *b / k[6];
            *p -= m_hat * k[0] / (v_hat.sqrt() + k[3]);
        }
        Rule::Lion => {
            // k: lr, beta_1, beta_2
            *p -= k[0] * sign(*a * k[1] + g * (T::one() - k[1]));
            *a = *a * k[2] + g * (T::one() - k[2]);
        }
    }
}

fn split<T>(s: Option<&mut [T]>, n_chunks: usize) -> Vec<Option<&mut [T]>> {
    match s {
        Some(x) => x.chunks_mut(CHUNK).map(Some).collect(),
        None => (0..n_chunks).map(|_| None).collect(),
    }
}

/// Apply `s` in place to `param` and its state `slots` (absent where the rule's flags
/// say so; the spec checked which).
pub fn optim_update<T: Element>(s: &OptimStep, param: &mut [T], grad: &[T], slots: [Option<&mut [T]>; 3]) -> Result<()> {
    let n = param.len();
    if grad.len() != n {
        return Err(Error::Value(format!("optimizer_update: the gradient has {} elements, the variable {n}", grad.len())));
    }
    for (k, sl) in slots.iter().enumerate() {
        if let Some(sl) = sl {
            if sl.len() != n {
                return Err(Error::Value(format!(
                    "optimizer_update: state slot {k} ({}) has {} elements, the variable {n}",
                    s.rule.slot_names()[k],
                    sl.len()
                )));
            }
        }
        if sl.is_some() != (s.flags & (HAS_SLOT0 << k) != 0) {
            return Err(Error::Value(format!("optimizer_update: state slot {k} does not match the spec")));
        }
    }
    let k: [T; 8] = s.coefficients::<T>();
    let (wd, clip) = (T::from_f64_lossy(s.wd_lr), T::from_f64_lossy(s.clip));
    let (rule, flags) = (s.rule, s.flags);
    let nc = n.div_ceil(CHUNK);
    let [s0, s1, s2] = slots;
    let (c0, c1, c2) = (split(s0, nc), split(s1, nc), split(s2, nc));
    param.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)).zip(c0).zip(c1).zip(c2).for_each(
        |((((p, g), mut a), mut b), mut c)| {
            for i in 0..p.len() {
                let (mut za, mut zb, mut zc) = (T::zero(), T::zero(), T::zero());
                let ai = match a.as_deref_mut() {
                    Some(a) => &mut a[i],
                    None => &mut za,
                };
                let bi = match b.as_deref_mut() {
                    Some(b) => &mut b[i],
                    None => &mut zb,
                };
                let ci = match c.as_deref_mut() {
                    Some(c) => &mut c[i],
                    None => &mut zc,
                };
                step(rule, flags, &k, wd, clip, &mut p[i], g[i], ai, bi, ci);
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam one step from zero state moves each weight by lr * sign(g) (bias correction).
    #[test]
    fn adam_first_step_is_lr_sign() {
        let s = OptimStep::new(Rule::Adam, &[0.1, 0.9, 0.999, 1e-12, 1.0, 0.0], [true, true, false], 0.0, None).unwrap();
        let mut p = vec![1.0f64; 5000];
        let g: Vec<f64> = (0..5000).map(|i| if i % 2 == 0 { 2.0 } else { -3.0 }).collect();
        let (mut m, mut v) = (vec![0.0; 5000], vec![0.0; 5000]);
        optim_update(&s, &mut p, &g, [Some(&mut m), Some(&mut v), None]).unwrap();
        for (i, x) in p.iter().enumerate() {
            let want = if i % 2 == 0 { 0.9 } else { 1.1 };
            assert!((x - want).abs() < 1e-9, "{i}: {x}");
        }
    }

    #[test]
    fn weight_decay_clip_and_lion_sign() {
        let s = OptimStep::new(Rule::Lion, &[0.5, 0.9, 0.99], [true, false, false], 0.1, Some(1.0)).unwrap();
        let mut p = vec![2.0f32, 2.0, 2.0];
        let g = vec![0.0f32, 5.0, -5.0];
        let mut m = vec![0.0f32; 3];
        optim_update(&s, &mut p, &g, [Some(&mut m), None, None]).unwrap();
        // p = 2 - 0.2 (decay), then -0.5 * sign(0.1 * clip(g)); m = 0.01 * clip(g)
        for (x, want) in p.iter().zip([1.8f32, 1.3, 2.3]) {
            assert!((x - want).abs() < 1e-6, "{x} vs {want}");
        }
        assert!((m[1] - 0.01).abs() < 1e-7 && (m[2] + 0.01).abs() < 1e-7 && m[0] == 0.0);
        assert!(optim_update(&s, &mut p, &g[..2], [Some(&mut m), None, None]).is_err());
        assert!(optim_update(&s, &mut p, &g, [None, None, None]).is_err());
    }
}
