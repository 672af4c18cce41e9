// Generic array algebra on float32 tensors (spec: ArrayParams in src/gpu/ops.rs, read
// through p_<field>()): elementwise unary and broadcasting binary ops (comparisons and
// logical ops give uint32 0 / 1), where, constant padding, strided gathers (transpose,
// broadcast, slicing, flips) and scatters (concatenation, slice gradients), take along
// an axis and its adjoint, and single-axis reductions. NaN propagates as in numpy (max /
// min included). uint32 operands (flags) are read as their values.
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
        if (which == 0u) {
            off += i32(idx) * p_a_strides(u32(d));
        } else if (which == 1u) {
            off += i32(idx) * p_b_strides(u32(d));
        } else {
            off += i32(idx) * p_c_strides(u32(d));
        }
    }
    return u32(off);
}

// A stored word as a value: float32 as it is, uint32 converted.
fn val(w: f32, is_int: bool) -> f32 { return select(w, f32(bitcast<u32>(w)), is_int); }
// numpy's truth of a stored word: nonzero (a float's NaN is true, -0.0 false).
fn truth(w: f32, is_int: bool) -> bool {
    let b = bitcast<u32>(w);
    return select((b & 0x7fffffffu) != 0u, b != 0u, is_int);
}
fn bool_word(v: bool) -> f32 { return bitcast<f32>(select(0u, 1u, v)); }
fn fmax_nan(a: f32, b: f32) -> f32 { return select(max(a, b), a + b, is_nan(a) || is_nan(b)); }
fn fmin_nan(a: f32, b: f32) -> f32 { return select(min(a, b), a + b, is_nan(a) || is_nan(b)); }


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
        case 16u: { return fmin_nan(fmax_nan(x, p_lo()), p_hi()); }  // numpy's clip: minimum(maximum(x, lo), hi)
        case 21u: { return x; }
        default: { return tanh(x); }
    }
}

// Codes 17..20 give truth values: isnan, isfinite, logical_not, nonzero (a cast to bool).
fn unary_bool(op: u32, w: f32, is_int: bool) -> bool {
    let x = val(w, is_int);
    switch op {
        case 17u: { return is_nan(x); }
        case 18u: { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
        case 19u: { return !truth(w, is_int); }
        default: { return truth(w, is_int); }
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
        case 5u: { return fmax_nan(a, b); }
        default: { return fmin_nan(a, b); }
    }
}

// Codes 7..14: equal, not_equal, greater, greater_equal, less, less_equal, logical_and,
// logical_or. Two uint32 operands compare exactly as integers; NaN compares unequal to
// everything (explicitly: WGSL lets compilers assume there is no NaN).
fn binary_bool(op: u32, wa: f32, wb: f32, ia: bool, ib: bool) -> bool {
    if (op == 13u) { return truth(wa, ia) && truth(wb, ib); }
    if (op == 14u) { return truth(wa, ia) || truth(wb, ib); }
    if (ia && ib) {
        let a = bitcast<u32>(wa);
        let b = bitcast<u32>(wb);
        switch op {
            case 7u: { return a == b; }
            case 8u: { return a != b; }
            case 9u: { return a > b; }
            case 10u: { return a >= b; }
            case 11u: { return a < b; }
            default: { return a <= b; }
        }
    }
    let a = val(wa, ia);
    let b = val(wb, ib);
    if (is_nan(a) || is_nan(b)) { return op == 8u; }
    switch op {
        case 7u: { return a == b; }
        case 8u: { return a != b; }
        case 9u: { return a > b; }
        case 10u: { return a >= b; }
        case 11u: { return a < b; }
        default: { return a <= b; }
    }
}

@compute @workgroup_size(256)
fn unary_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let w = s1[o1() + i];
    let ia = (p_flags() & 1u) != 0u;
    if (p_op() >= 17u && p_op() <= 20u) {
        s2[o2() + i] = bool_word(unary_bool(p_op(), w, ia));
    } else {
        s2[o2() + i] = unary(p_op(), val(w, ia));
    }
}

@compute @workgroup_size(256)
fn binary_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let wa = s1[o1() + offset(i, p_a_base(), 0u)];
    let wb = s2[o2() + offset(i, p_b_base(), 1u)];
    let ia = (p_flags() & 1u) != 0u;
    let ib = (p_flags() & 2u) != 0u;
    if (p_op() >= 7u) {
        s3[o3() + i] = bool_word(binary_bool(p_op(), wa, wb, ia, ib));
    } else {
        s3[o3() + i] = binary(p_op(), val(wa, ia), val(wb, ib));
    }
}

// where: s1 condition (strides c), s2 x1 (strides a), s3 x2 (strides b), s4 output; the
// chosen word is copied as it is (float32 or uint32 alike).
@compute @workgroup_size(256)
fn where_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let c = truth(s1[o1() + offset(i, p_c_base(), 2u)], (p_flags() & 1u) != 0u);
    if (c) {
        s4[o4() + i] = s2[o2() + offset(i, p_a_base(), 0u)];
    } else {
        s4[o4() + i] = s3[o3() + offset(i, p_b_base(), 1u)];
    }
}

// Constant padding: output (shape) from s1 (contiguous strides a, sizes in c_strides,
// the leading widths in b_strides); outside the input the fill word p_lo().
@compute @workgroup_size(256)
fn pad_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    var rem = i;
    var off = 0i;
    var inside = true;
    for (var d = i32(p_rank()) - 1; d >= 0; d--) {
        let n = p_shape(u32(d));
        let j = i32(rem % n) - p_b_strides(u32(d));
        rem = rem / n;
        inside = inside && j >= 0 && j < p_c_strides(u32(d));
        off += j * p_a_strides(u32(d));
    }
    if (inside) {
        s2[o2() + i] = s1[o1() + u32(off)];
    } else {
        s2[o2() + i] = p_lo();
    }
}

// Scatter: element i of the contiguous s1 (shape) goes to s2 at the strided view (a).
@compute @workgroup_size(256)
fn scatter_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    s2[o2() + offset(i, p_a_base(), 0u)] = s1[o1() + i];
}

// take along the middle axis of (outer = shape(0), n = shape(1), inner = shape(2)) at the
// shape(3) uint32 indices of s2: s3 is (outer, m, inner).
@compute @workgroup_size(256)
fn take_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let n = p_shape(1u);
    let inner = p_shape(2u);
    let m = p_shape(3u);
    let k = i % inner;
    let j = (i / inner) % m;
    let o = i / (inner * m);
    let t = bitcast<u32>(s2[o2() + j]);
    s3[o3() + i] = s1[o1() + (o * n + t) * inner + k];
}

// The adjoint of take: output (outer, n, inner) element (o, t, k) sums s1 (outer, m,
// inner) at the index positions s2[s3[t] .. s3[t + 1]] (sorted by index, so in the order
// numpy's add.at adds them).
@compute @workgroup_size(256)
fn index_add_op(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let n = p_shape(1u);
    let inner = p_shape(2u);
    let m = p_shape(3u);
    let k = i % inner;
    let t = (i / inner) % n;
    let o = i / (inner * n);
    let lo = bitcast<u32>(s3[o3() + t]);
    let hi = bitcast<u32>(s3[o3() + t + 1u]);
    var acc = 0.0;
    for (var s = lo; s < hi; s++) {
        let j = bitcast<u32>(s2[o2() + s]);
        acc += s1[o1() + (o * m + j) * inner + k];
    }
    s4[o4() + i] = acc;
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
