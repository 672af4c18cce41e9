//! Optimizer update rules (Keras 3's `keras.optimizers`): the spec both backends run.
//! `OptimStep::new` checks a rule's hyperparameters and state buffers once and reduces
//! them to the per-element coefficients (bias corrections, Nadam's momentum schedule),
//! so the CPU kernel (`crate::cpu::optim`) and the WGSL kernel (`shaders/optim.wgsl`)
//! compute the same formula from the same numbers.

use crate::error::{Error, Result};
use num_traits::{Float, FromPrimitive};

/// An update rule; `code()` is the shader's number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Sgd,
    Adam,
    RmsProp,
    Adagrad,
    Adadelta,
    Adamax,
    Nadam,
    Lion,
}

/// Per-rule table: name, hyperparameters in the order the binding takes them, the three
/// state slots ("" = never used).
const TABLE: &[(Rule, &str, &[&str], [&str; 3])] = &[
    (Rule::Sgd, "sgd", &["learning_rate", "momentum", "nesterov"], ["velocity", "", ""]),
    (Rule::Adam, "adam", &["learning_rate", "beta_1", "beta_2", "epsilon", "step", "amsgrad"], ["m", "v", "v_hat"]),
    (Rule::RmsProp, "rmsprop", &["learning_rate", "rho", "momentum", "epsilon", "centered"],
     ["velocity", "average_gradient", "momentum"]),
    (Rule::Adagrad, "adagrad", &["learning_rate", "epsilon"], ["accumulator", "", ""]),
    (Rule::Adadelta, "adadelta", &["learning_rate", "rho", "epsilon"], ["accumulated_grad", "accumulated_delta_var", ""]),
    (Rule::Adamax, "adamax", &["learning_rate", "beta_1", "beta_2", "epsilon", "step"], ["m", "u", ""]),
    (Rule::Nadam, "nadam", &["learning_rate", "beta_1", "beta_2", "epsilon", "step", "u_product"], ["m", "v", ""]),
    (Rule::Lion, "lion", &["learning_rate", "beta_1", "beta_2"], ["m", "", ""]),
];

impl Rule {
    pub fn parse(name: &str) -> Result<Rule> {
        TABLE.iter().find(|e| e.1 == name).map(|e| e.0).ok_or_else(|| {
            let names: Vec<&str> = TABLE.iter().map(|e| e.1).collect();
            Error::Value(format!("optimizer_update: unknown rule {name:?}; the rules are {}", names.join(", ")))
        })
    }

    fn entry(self) -> &'static (Rule, &'static str, &'static [&'static str], [&'static str; 3]) {
        TABLE.iter().find(|e| e.0 == self).expect("every rule has a table entry")
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    pub fn hyper_names(self) -> &'static [&'static str] {
        self.entry().2
    }

    pub fn slot_names(self) -> [&'static str; 3] {
        self.entry().3
    }

    pub fn code(self) -> u32 {
        TABLE.iter().position(|e| e.0 == self).unwrap() as u32
    }
}

/// Flag bits of `OptimStep::flags` (shared with the shader).
pub const HAS_SLOT0: u32 = 1;
pub const HAS_SLOT1: u32 = 2;
pub const HAS_SLOT2: u32 = 4;
/// SGD: Nesterov momentum.
pub const NESTEROV: u32 = 8;
/// clipvalue is set.
pub const CLIP: u32 = 16;

/// One validated update: the rule, which slots it uses, its coefficients and the
/// common parts (decoupled weight decay `p -= p * wd_lr` first, gradient clipped to
/// `[-clip, clip]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimStep {
    pub rule: Rule,
    pub flags: u32,
    /// The hyperparameters as given (`Rule::hyper_names` order, zero-padded).
    pub hyper: [f64; 8],
    pub wd_lr: f64,
    pub clip: f64,
}

fn in_range(rule: Rule, what: &str, v: f64, lo: f64, hi: f64, hi_open: bool) -> Result<()> {
    let ok = v >= lo && if hi_open { v < hi } else { v <= hi };
    if !ok {
        let close = if hi_open { ")" } else { "]" };
        return Err(Error::Value(format!("optimizer_update ({}): {what} must be in [{lo}, {hi}{close}, got {v}", rule.name())));
    }
    Ok(())
}

impl OptimStep {
    /// `hyper` in the order of `Rule::hyper_names`; `present[k]`: state slot k is given.
    pub fn new(rule: Rule, hyper: &[f64], present: [bool; 3], wd_lr: f64, clip: Option<f64>) -> Result<OptimStep> {
        let names = rule.hyper_names();
        let f = format!("optimizer_update ({})", rule.name());
        if hyper.len() != names.len() {
            return Err(Error::Value(format!(
                "{f}: expected {} hyperparameters ({}), got {}",
                names.len(),
                names.join(", "),
                hyper.len()
            )));
        }
        if let Some((n, v)) = names.iter().zip(hyper).find(|(_, v)| !v.is_finite()) {
            return Err(Error::Value(format!("{f}: {n} must be finite, got {v}")));
        }
        if !wd_lr.is_finite() {
            return Err(Error::Value(format!("{f}: the weight decay step must be finite, got {wd_lr}")));
        }
        let mut flags = 0u32;
        if let Some(c) = clip {
            if c.is_nan() || c <= 0.0 {
                return Err(Error::Value(format!("{f}: clipvalue must be > 0, got {c}")));
            }
            flags |= CLIP;
        }
        let h = hyper;
        let step = |k: usize| -> Result<f64> {
            let t = h[k];
            if t < 1.0 || t.fract() != 0.0 {
                return Err(Error::Value(format!("{f}: the step counts from 1, got {t}")));
            }
            Ok(t)
        };
        // Which slots the rule needs for these hyperparameters.
        let need: [bool; 3] = match rule {
            Rule::Sgd => {
                in_range(rule, "momentum", h[1], 0.0, 1.0, false)?;
                if h[2] != 0.0 {
                    flags |= NESTEROV;
                }
                [h[1] != 0.0, false, false]
            }
            Rule::Adam => {
                in_range(rule, "beta_1", h[1], 0.0, 1.0, true)?;
                in_range(rule, "beta_2", h[2], 0.0, 1.0, true)?;
                step(4)?;
                [true, true, h[5] != 0.0]
            }
            Rule::RmsProp => {
                in_range(rule, "rho", h[1], 0.0, 1.0, false)?;
                in_range(rule, "momentum", h[2], 0.0, 1.0, false)?;
                [true, h[4] != 0.0, h[2] > 0.0]
            }
            Rule::Adagrad => [true, false, false],
            Rule::Adadelta => {
                in_range(rule, "rho", h[1], 0.0, 1.0, false)?;
                [true, true, false]
            }
            Rule::Adamax => {
                in_range(rule, "beta_1", h[1], 0.0, 1.0, true)?;
                in_range(rule, "beta_2", h[2], 0.0, 1.0, false)?;
                step(4)?;
                [true, true, false]
            }
            Rule::Nadam => {
                in_range(rule, "beta_1", h[1], 0.0, 1.0, true)?;
                in_range(rule, "beta_2", h[2], 0.0, 1.0, true)?;
                step(4)?;
                if !(0.0..1.0).contains(&h[5]) {
                    return Err(Error::Value(format!("{f}: u_product must be in [0, 1), got {}", h[5])));
                }
                [true, true, false]
            }
            Rule::Lion => {
                in_range(rule, "beta_1", h[1], 0.0, 1.0, false)?;
                in_range(rule, "beta_2", h[2], 0.0, 1.0, false)?;
                [true, false, false]
            }
        };
        let slots = rule.slot_names();
        for k in 0..3 {
            if need[k] != present[k] {
                let what = if need[k] { "needs" } else { "takes no" };
                let name = if slots[k].is_empty() { "third" } else { slots[k] };
                return Err(Error::Value(format!("{f}: these hyperparameters {what} a {name} buffer (state slot {k})")));
            }
            if need[k] {
                flags |= 1 << k;
            }
        }
        let mut hy = [0.0; 8];
        hy[..hyper.len()].copy_from_slice(hyper);
        Ok(OptimStep { rule, flags, hyper: hy, wd_lr, clip: clip.unwrap_or(f64::INFINITY) })
    }

    /// The per-element coefficients of the rule (see `crate::cpu::optim::step`),
    /// computed in the variable's float type as Keras computes them (its bias
    /// corrections `1 - beta^t` are float32 for float32 variables, which moves a
    /// trajectory by more than 1e-5 from a float64 correction).
    pub fn coefficients<T: Float + FromPrimitive>(&self) -> [T; 8] {
        let t = |v: f64| T::from_f64(v).unwrap_or_else(T::nan);
        let h = self.hyper.map(t);
        let one = T::one();
        let z = T::zero();
        match self.rule {
            Rule::Sgd => [h[0], h[1], z, z, z, z, z, z],
            Rule::Adam => {
                let (b1p, b2p) = (h[1].powf(h[4]), h[2].powf(h[4]));
                let alpha = h[0] * (one - b2p).sqrt() / (one - b1p);
                [alpha, t(1.0 - self.hyper[1]), t(1.0 - self.hyper[2]), h[3], z, z, z, z]
            }
            Rule::RmsProp => [h[0], h[1], t(1.0 - self.hyper[1]), h[2], h[3], z, z, z],
            Rule::Adagrad => [h[0], h[1], z, z, z, z, z, z],
            Rule::Adadelta => [h[0], h[1], t(1.0 - self.hyper[1]), h[2], z, z, z, z],
            Rule::Adamax => [h[0], t(1.0 - self.hyper[1]), h[2], h[3], one - h[1].powf(h[4]), z, z, z],
            Rule::Nadam => {
                // Keras 3's momentum schedule u_t = beta_1 (1 - 0.5 * 0.96^t); h[5] is the
                // product u_1 ... u_t (this step's included), kept by the caller.
                let (b1, step, half, decay) = (h[1], h[4], t(0.5), t(0.96));
                let u_t = b1 * (one - half * decay.powf(step));
                let u_t1 = b1 * (one - half * decay.powf(step + one));
                let up_t = h[5];
                let up_t1 = up_t * u_t1;
                let c1 = u_t1 / (one - up_t1);
                let c2 = (one - u_t) / (one - up_t);
                [h[0], one - b1, one - h[2], h[3], c1, c2, one - h[2].powf(step), z]
            }
            Rule::Lion => [h[0], h[1], h[2], z, z, z, z, z],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hyperparameters() {
        assert!(OptimStep::new(Rule::Sgd, &[0.1, 0.0, 0.0], [false; 3], 0.0, None).is_ok());
        assert!(OptimStep::new(Rule::Sgd, &[0.1, 0.9, 0.0], [false; 3], 0.0, None).is_err());
        let s = OptimStep::new(Rule::Adam, &[0.1, 0.9, 0.999, 1e-7, 1.0, 1.0], [true; 3], 0.0, Some(1.0)).unwrap();
        assert_eq!(s.flags, HAS_SLOT0 | HAS_SLOT1 | HAS_SLOT2 | CLIP);
        assert!(OptimStep::new(Rule::Adam, &[0.1, 0.9, 0.999, 1e-7, 0.0, 0.0], [true, true, false], 0.0, None).is_err());
        assert!(OptimStep::new(Rule::RmsProp, &[0.1, 1.5, 0.0, 1e-7, 0.0], [true, false, false], 0.0, None).is_err());
        assert!(OptimStep::new(Rule::Lion, &[0.1, 0.9], [true, false, false], 0.0, None).is_err());
        assert!(OptimStep::new(Rule::Lion, &[f64::NAN, 0.9, 0.99], [true, false, false], 0.0, None).is_err());
        assert!(Rule::parse("adamw").unwrap_err().to_string().contains("rmsprop"));
        for e in TABLE {
            assert_eq!(Rule::parse(e.1).unwrap(), e.0);
        }
    }
}
