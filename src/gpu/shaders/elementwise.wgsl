// Elementwise kernels. Parameters: ElemParams (elem_*), ActParams (act_*), DropoutParams
// (drop_*), SgdParams (sgd_*), AdamParams (adam_*), CopyColsParams (cols_*) in src/gpu/ops.rs.

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= elem_count()) { return; }
    s1[o1() + i] = elem_a();
}

// s3 = a * s1 + b * s2
@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= elem_count()) { return; }
    s3[o3() + i] = elem_a() * s1[o1() + i] + elem_b() * s2[o2() + i];
}

// The step guard of a training step, slot 6: NaN once a loss or gradient of the step
// was inf or NaN (flag_nonfinite); the in-place updates then leave every weight as it
// was. Unbound, the slot is a zero-filled dummy. Tested by its bits (NaN compares may
// be folded away).
fn guarded() -> bool { return bitcast<u32>(s6[o6()]) != 0u; }

// s6[0] = NaN if any element of s1..s5 (flag_n1..n5 elements each) is inf or NaN (every
// writer writes the same value; NaN, so that adding the guard to a loss makes it NaN).
fn nonfinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }

@compute @workgroup_size(256)
fn flag_nonfinite(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= flag_count()) { return; }
    var bad = false;
    if (i < flag_n1()) { bad = bad || nonfinite(s1[o1() + i]); }
    if (i < flag_n2()) { bad = bad || nonfinite(s2[o2() + i]); }
    if (i < flag_n3()) { bad = bad || nonfinite(s3[o3() + i]); }
    if (i < flag_n4()) { bad = bad || nonfinite(s4[o4() + i]); }
    if (i < flag_n5()) { bad = bad || nonfinite(s5[o5() + i]); }
    if (bad) { s6[o6()] = bitcast<f32>(0x7fc00000u); }
}

// s1 = a * s1 + b * s2 (in place; skipped when guarded)
@compute @workgroup_size(256)
fn axpby_inplace(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= elem_count() || guarded()) { return; }
    s1[o1() + i] = elem_a() * s1[o1() + i] + elem_b() * s2[o2() + i];
}

// s3 = s1 * s2
@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= elem_count()) { return; }
    s3[o3() + i] = s1[o1() + i] * s2[o2() + i];
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// s2 = act(s1); act_act(): 1 relu, 2 sigmoid, 3 tanh
@compute @workgroup_size(256)
fn act_fwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= act_count()) { return; }
    let x = s1[o1() + i];
    var y = x;
    switch act_act() {
        case 1u: { y = max(x, 0.0); if (is_nan(x)) { y = x; } }
        case 2u: { y = sigmoid(x); }
        case 3u: { y = tanh(x); }
        default: {}
    }
    s2[o2() + i] = y;
}

// s4 = d act: x in s1, y in s2, dy in s3
@compute @workgroup_size(256)
fn act_bwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= act_count()) { return; }
    let x = s1[o1() + i];
    let y = s2[o2() + i];
    let dy = s3[o3() + i];
    var d = dy;
    switch act_act() {
        case 1u: { d = select(0.0, dy, x > 0.0); }
        case 2u: { d = dy * y * (1.0 - y); }
        case 3u: { d = dy * (1.0 - y * y); }
        default: {}
    }
    s4[o4() + i] = d;
}

// ---- 64-bit integer helpers for the counter-based generator (splitmix64), the same
// stream as the CPU's uniform_at(seed, i): a u64 is vec2(lo, hi).
fn mul32(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu; let a1 = a >> 16u;
    let b0 = b & 0xffffu; let b1 = b >> 16u;
    let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p = mul32(a.x, b.x);
    return vec2<u32>(p.x, p.y + a.x * b.y + a.y * b.x);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> {
    // 0 < s < 32
    return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
}
fn splitmix(zin: vec2<u32>) -> vec2<u32> {
    var z = add64(zin, vec2<u32>(0x7F4A7C15u, 0x9E3779B9u));
    z = mul64(z ^ shr64(z, 30u), vec2<u32>(0x1CE4E5B9u, 0xBF58476Du));
    z = mul64(z ^ shr64(z, 27u), vec2<u32>(0x133111EBu, 0x94D049BBu));
    return z ^ shr64(z, 31u);
}

// Dropout: s1 x -> s2 y, s3 mask; the key is splitmix(seed ^ C), the threshold that of
// the 53-bit draw (both (lo, hi) words).
@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= drop_count()) { return; }
    let gi = drop_index_base() + i;
    let key = vec2<u32>(drop_key(0u), drop_key(1u));
    let bits = splitmix(add64(key, mul64(vec2<u32>(gi, 0u), vec2<u32>(0x7F4A7C15u, 0x9E3779B9u))));
    let u = shr64(bits, 11u);
    let th = vec2<u32>(drop_threshold(0u), drop_threshold(1u));
    let keep = (u.y > th.y) || (u.y == th.y && u.x >= th.x);
    var m = 0.0;
    if (keep && drop_drop_all() == 0u) { m = drop_scale(); }
    s3[o3() + i] = m;
    s2[o2() + i] = s1[o1() + i] * m;
}

// SGD: p s1, g s2, v s3.
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= sgd_count() || guarded()) { return; }
    let lr = sgd_lr();
    let gr = s2[o2() + i];
    if (sgd_use_velocity() == 0u) {
        s1[o1() + i] = s1[o1() + i] - lr * gr;
        return;
    }
    let mo = sgd_momentum();
    let v = mo * s3[o3() + i] - lr * gr;
    s3[o3() + i] = v;
    if (sgd_nesterov() == 1u) {
        s1[o1() + i] = s1[o1() + i] + (mo * v - lr * gr);
    } else {
        s1[o1() + i] = s1[o1() + i] + v;
    }
}

// Adam: p s1, g s2, m s3, v s4.
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= adam_count() || guarded()) { return; }
    let gr = s2[o2() + i];
    var m = s3[o3() + i];
    var v = s4[o4() + i];
    m = m + (gr - m) * adam_one_minus_beta1();
    v = v + (gr * gr - v) * adam_one_minus_beta2();
    s3[o3() + i] = m;
    s4[o4() + i] = v;
    s1[o1() + i] = s1[o1() + i] - adam_alpha() * m / (sqrt(v) + adam_eps());
}

// Strided column copy (concatenate / split on the last axis): rows x width values from
// s1 to s2, each with its row stride and column offset.
@compute @workgroup_size(256)
fn copy_cols(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= cols_count()) { return; }
    let wd = cols_width();
    let r = i / wd;
    let c = i % wd;
    s2[o2() + r * cols_dst_stride() + cols_dst_col() + c] = s1[o1() + r * cols_src_stride() + cols_src_col() + c];
}
