// Optimizer updates (one kernel for every rule of src/ops/optim.rs, Keras 3's formulas
// as in src/cpu/optim.rs). Parameters: OptimParams (opt_*) in src/gpu/ops.rs.
// Bindings: s1 the variable, s2 its gradient, s3..s5 the rule's state slots (unbound:
// zero-filled dummies, never read unless the flags say so), s6 the step guard.

// Flag bits (crate::ops::optim).
const HAS0: u32 = 1u;
const HAS1: u32 = 2u;
const HAS2: u32 = 4u;
const NESTEROV: u32 = 8u;
const CLIP: u32 = 16u;

// The step guard, as in elementwise.wgsl: a set flag leaves weights and state as they were.
fn guarded() -> bool { return bitcast<u32>(s6[o6()]) != 0u; }

fn has(bit: u32) -> bool { return (opt_flags() & bit) != 0u; }

@compute @workgroup_size(256)
fn optim_update(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, ng, l);
    if (i >= opt_count() || guarded()) { return; }
    var g = s2[o2() + i];
    if (has(CLIP)) { g = nanclamp(g, -opt_clip(), opt_clip()); }
    var p = s1[o1() + i];
    let wd = opt_wd();
    if (wd != 0.0) { p = p - p * wd; }
    var a = 0.0;
    var b = 0.0;
    var c = 0.0;
    if (has(HAS0)) { a = s3[o3() + i]; }
    if (has(HAS1)) { b = s4[o4() + i]; }
    if (has(HAS2)) { c = s5[o5() + i]; }
    let rule = opt_rule();
    if (rule == 0u) {            // SGD: lr, momentum
        if (!has(HAS0)) {
            p = p - g * opt_c(0u);
        } else {
            a = a * opt_c(1u) - g * opt_c(0u);
            if (has(NESTEROV)) { p = p + (a * opt_c(1u) - g * opt_c(0u)); } else { p = p + a; }
        }
    } else if (rule == 1u) {     // Adam: alpha, 1 - beta_1, 1 - beta_2, epsilon
        a = a + (g - a) * opt_c(1u);
        b = b + (g * g - b) * opt_c(2u);
        var v = b;
        if (has(HAS2)) { c = nanmax(c, b); v = c; }
        p = p - a * opt_c(0u) / (sqrt(v) + opt_c(3u));
    } else if (rule == 2u) {     // RMSprop: lr, rho, 1 - rho, momentum, epsilon
        a = opt_c(1u) * a + opt_c(2u) * (g * g);
        var den = a + opt_c(4u);
        if (has(HAS1)) {
            b = opt_c(1u) * b + opt_c(2u) * g;
            den = a - b * b + opt_c(4u);
        }
        let inc = opt_c(0u) * g / sqrt(den);
        if (has(HAS2)) { c = opt_c(3u) * c + inc; p = p - c; } else { p = p - inc; }
    } else if (rule == 3u) {     // Adagrad: lr, epsilon
        a = a + g * g;
        p = p - opt_c(0u) * g / sqrt(a + opt_c(1u));
    } else if (rule == 4u) {     // Adadelta: lr, rho, 1 - rho, epsilon
        a = opt_c(1u) * a + opt_c(2u) * (g * g);
        let delta = -(sqrt(b + opt_c(3u)) * g / sqrt(a + opt_c(3u)));
        b = opt_c(1u) * b + opt_c(2u) * (delta * delta);
        p = p + opt_c(0u) * delta;
    } else if (rule == 5u) {     // Adamax: lr, 1 - beta_1, beta_2, epsilon, 1 - beta_1^t
        a = a + (g - a) * opt_c(1u);
        b = nanmax(opt_c(2u) * b, abs(g));
        p = p - opt_c(0u) * a / (opt_c(4u) * (b + opt_c(3u)));
    } else if (rule == 6u) {     // Nadam: lr, 1 - beta_1, 1 - beta_2, epsilon, c1, c2, 1 - beta_2^t
        a = a + (g - a) * opt_c(1u);
        b = b + (g * g - b) * opt_c(2u);
        let m_hat = opt_c(4u) * a + opt_c(5u) * g;
        let v_hat = b / opt_c(6u);
        p = p - m_hat * opt_c(0u) / (sqrt(v_hat) + opt_c(3u));
    } else {                     // Lion: lr, beta_1, beta_2
        p = p - opt_c(0u) * sign(a * opt_c(1u) + g * (1.0 - opt_c(1u)));
        a = a * opt_c(2u) + g * (1.0 - opt_c(2u));
    }
    s1[o1() + i] = p;
    if (has(HAS0)) { s3[o3() + i] = a; }
    if (has(HAS1)) { s4[o4() + i] = b; }
    if (has(HAS2)) { s5[o5() + i] = c; }
}
