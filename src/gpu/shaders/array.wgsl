// Generic array algebra on float32 tensors (spec: ArrayParams in src/gpu/ops.rs, read
// through p_<field>()): elementwise unary and broadcasting binary ops, strided gathers
// (transpose, broadcast, slicing, flips) and single-axis reductions. NaN propagates as
// in numpy (max / min included).
// s1: a, s2: b (binary) or output, s3: output (binary).

// The element offset in an operand of output element i, from the output shape and the
// operand's (signed) strides; base: the operand's first element.
fn offset(i: u32, base: u32, which: u32) -> u32 {
    var rem = i;
    var off = i32(base);
    for (var d = i32(p_rank()) - 1; d >= 0; d--) {
        let n = p_shape(u32(d));
        let idx = rem % n;
        rem = rem / n;
        if (which == 0u) { off += i32(idx) * p_a_strides(u32(d)); } else { off += i32(idx) * p_b_strides(u32(d)); }
    }
    return u32(off);
}


fn unary(op: u32, x: f32) -> f32 {
    switch op {
        case 0u: { return -x; }
        case 1u: { return exp(x); }
        case 2u: { return log(x); }
        case 3u: { return sqrt(x); }
        case 4u: { return abs(x); }
        case 5u: { return select(sign(x), x, is_nan(x)); }
        case 6u: { return x * x; }
        case 7u: { return 1.0 / x; }
        case 8u: { return log(1.0 + x); }
        case 9u: { return exp(x) - 1.0; }
        case 10u: { return sin(x); }
        case 11u: { return cos(x); }
        case 12u: { return floor(x); }
        case 13u: { return ceil(x); }
        case 14u: { return round(x); }
        default: { return tanh(x); }
    }
}

// C99 / numpy pow, special cases included (WGSL's pow is undefined for a <= 0 and does
// not promise them): pow(x, 0) = pow(1, y) = 1, NaN otherwise propagates, signed zeros
// and infinities for odd integer exponents, NaN for a negative base and a fractional one.
fn power(a: f32, b: f32) -> f32 {
    if (b == 0.0 || a == 1.0) { return 1.0; }
    if (is_nan(a) || is_nan(b)) { return bitcast<f32>(0x7fc00000u); }
    let inf = bitcast<f32>(0x7f800000u);
    let ab = abs(a);
    if (abs(b) == inf) {
        if (ab == 1.0) { return 1.0; }
        return select(inf, 0.0, (ab < 1.0) == (b > 0.0));
    }
    let integer = floor(b) == b;
    let odd = integer && fract(b * 0.5) != 0.0;
    let negative = (bitcast<u32>(a) >> 31u) == 1u;
    if (ab == inf || ab == 0.0) {
        // |a| = inf: inf for b > 0, 0 for b < 0; |a| = 0: the reverse. Sign of a if b is odd.
        let r = select(0.0, inf, (ab == inf) == (b > 0.0));
        return select(r, -r, negative && odd);
    }
    if (negative) {
        if (!integer) { return bitcast<f32>(0x7fc00000u); }
        let m = pow(ab, b);
        return select(m, -m, odd);
    }
    return pow(a, b);
}

fn binary(op: u32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return power(a, b); }
        case 5u: { return select(max(a, b), a + b, is_nan(a) || is_nan(b)); }
        default: { return select(min(a, b), a + b, is_nan(a) || is_nan(b)); }
    }
}

@compute @workgroup_size(256)
fn unary_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    s2[o2() + i] = unary(p_op(), s1[o1() + i]);
}

@compute @workgroup_size(256)
fn binary_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let a = s1[o1() + offset(i, p_a_base(), 0u)];
    let b = s2[o2() + offset(i, p_b_base(), 1u)];
    s3[o3() + i] = binary(p_op(), a, b);
}

@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    s2[o2() + i] = s1[o1() + offset(i, p_a_base(), 0u)];
}

// Reduce the middle axis of a (outer, n, inner) view: shape(0) outer, shape(1) n,
// shape(2) inner; op 0 sum, 1 max, 2 min.
@compute @workgroup_size(256)
fn reduce_axis(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let n = p_shape(1u);
    let inner = p_shape(2u);
    let o = i / inner;
    let j = i % inner;
    let base = o1() + o * n * inner + j;
    var acc = s1[base];
    for (var k = 1u; k < n; k++) {
        let v = s1[base + k * inner];
        switch p_op() {
            case 0u: { acc += v; }
            case 1u: { acc = select(max(acc, v), acc + v, is_nan(acc) || is_nan(v)); }
            default: { acc = select(min(acc, v), acc + v, is_nan(acc) || is_nan(v)); }
        }
    }
    s2[o2() + i] = acc;
}
