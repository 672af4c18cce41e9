// Reductions and row-wise kernels of the networks: column statistics (bias gradients,
// batch normalization), softmax, global pooling and the losses with their metrics.

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn reduce2(l: u32) {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (l < s) {
            red_a[l] += red_a[l + s];
            red_b[l] += red_b[l + s];
        }
        workgroupBarrier();
    }
}

// One workgroup per column c of a rows x cols matrix (ColStatsParams); cs_add() adds to
// the outputs instead of overwriting them (row chunks of a larger matrix). cs_mode():
// 0 scaled column sums of s1 into s2 (cs_scale(): 1 for bias gradients, 1 / total rows
// for batch-norm means); 3 batch-norm variance part: s2 = scale * sum (s1 - s3 mean)^2;
// 2 batch-norm backward sums: x s1, dy s2, stats s3, eps cs_scale() -> s4 = [sum dy,
// sum dy xhat].
@compute @workgroup_size(256)
fn col_stats(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let c = group_id(w, g);
    let rows = cs_rows();
    let cols = cs_cols();
    let mode = cs_mode();
    let add = cs_add() == 1u;
    if (c >= cols) { return; }
    var a = 0.0;
    var b = 0.0;
    if (mode == 0u || mode == 3u) {
        if (mode == 0u) {
            for (var r = l; r < rows; r += 256u) { a += s1[o1() + r * cols + c]; }
        } else {
            let mean = s3[o3() + c];
            for (var r = l; r < rows; r += 256u) {
                let d = s1[o1() + r * cols + c] - mean;
                a += d * d;
            }
        }
        red_a[l] = a; red_b[l] = 0.0;
        reduce2(l);
        if (l == 0u) {
            var v = red_a[0] * cs_scale();
            if (add) { v += s2[o2() + c]; }
            s2[o2() + c] = v;
        }
    } else {
        let mean = s3[o3() + c];
        let inv = 1.0 / sqrt(s3[o3() + cols + c] + cs_scale());
        for (var r = l; r < rows; r += 256u) {
            let dy = s2[o2() + r * cols + c];
            a += dy;
            b += dy * (s1[o1() + r * cols + c] - mean) * inv;
        }
        red_a[l] = a; red_b[l] = b;
        reduce2(l);
        if (l == 0u) {
            var sa = red_a[0];
            var sb = red_b[0];
            if (add) {
                sa += s4[o4() + c];
                sb += s4[o4() + cols + c];
            }
            s4[o4() + c] = sa;
            s4[o4() + cols + c] = sb;
        }
    }
}

// Shared by bn_apply and bn_backward (BnParams): gamma of channel c (1 without) and
// 1 / sqrt(var + eps) from the statistics s3 = [mean (C), var (C)].
fn bn_gamma(c: u32) -> f32 {
    if (bn_has_gamma() == 1u) { return s4[o4() + c]; }
    return 1.0;
}
fn bn_inv_std(c: u32, C: u32) -> f32 { return 1.0 / sqrt(s3[o3() + C + c] + bn_eps()); }

// y = gamma (x - mean) / sqrt(var + eps) + beta. s1 x, s2 y, s3 [mean, var], s4 gamma,
// s5 beta. BnParams.
@compute @workgroup_size(256)
fn bn_apply(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= bn_count()) { return; }
    let C = bn_channels();
    let c = i % C;
    var bt = 0.0;
    if (bn_has_beta() == 1u) { bt = s5[o5() + c]; }
    let s = bn_gamma(c) * bn_inv_std(c, C);
    s2[o2() + i] = (s1[o1() + i] - s3[o3() + c]) * s + bt;
}

// Batch-norm input gradient. s1 x, s2 dy, s3 [mean, var], s4 gamma, s5 [sum dy, sum dy
// xhat], s6 dx. BnParams.
@compute @workgroup_size(256)
fn bn_backward(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= bn_count()) { return; }
    let C = bn_channels();
    let c = i % C;
    let inv = bn_inv_std(c, C);
    let a = bn_gamma(c) * inv;
    let dy = s2[o2() + i];
    if (bn_training() == 0u) {
        s6[o6() + i] = a * dy;
        return;
    }
    let m = f32(bn_rows());
    let xhat = (s1[o1() + i] - s3[o3() + c]) * inv;
    s6[o6() + i] = a * (dy - s5[o5() + c] / m - xhat * s5[o5() + C + c] / m);
}

// Row softmax: s1 z -> s2 y (SoftmaxParams). One thread per row.
@compute @workgroup_size(256)
fn softmax(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let r = lin(w, g, l);
    if (r >= sm_rows()) { return; }
    let k = sm_cols();
    let b1 = o1() + r * k;
    let b2 = o2() + r * k;
    var m = s1[b1];
    for (var j = 1u; j < k; j++) { m = nanmax(m, s1[b1 + j]); }
    var s = 0.0;
    for (var j = 0u; j < k; j++) { let e = exp(s1[b1 + j] - m); s2[b2 + j] = e; s += e; }
    for (var j = 0u; j < k; j++) { s2[b2 + j] = s2[b2 + j] / s; }
}

// Softmax backward: y s1, dy s2 -> dx s3 = y (dy - sum(dy y)).
@compute @workgroup_size(256)
fn softmax_bwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let r = lin(w, g, l);
    if (r >= sm_rows()) { return; }
    let k = sm_cols();
    var d = 0.0;
    for (var j = 0u; j < k; j++) { d += s1[o1() + r * k + j] * s2[o2() + r * k + j]; }
    for (var j = 0u; j < k; j++) {
        let y = s1[o1() + r * k + j];
        s3[o3() + r * k + j] = y * (s2[o2() + r * k + j] - d);
    }
}

// Global pooling: s1 x (batch, P, C) -> s2 y (batch, C) (GlobalPoolParams). s3 receives
// the argmax position (bits) for max.
@compute @workgroup_size(256)
fn global_pool(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= gp_count()) { return; }
    let P = gp_positions();
    let C = gp_channels();
    let n = i / C;
    let c = i % C;
    let base = o1() + n * P * C + c;
    if (gp_kind() == 1u) {
        var s = 0.0;
        for (var p = 0u; p < P; p++) { s += s1[base + p * C]; }
        s2[o2() + i] = s / f32(P);
    } else {
        var best = s1[base];
        var at = 0u;
        for (var p = 1u; p < P; p++) {
            let v = s1[base + p * C];
            if (is_nan(best)) { break; }
            if (v > best || is_nan(v)) { best = v; at = p; }
        }
        s2[o2() + i] = best;
        s3[o3() + i] = bitcast<f32>(at);
    }
}

// Global pooling backward: dy s1 (batch, C), argmax s2 -> dx s3 (batch, P, C).
@compute @workgroup_size(256)
fn global_pool_bwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= gp_count()) { return; }
    let P = gp_positions();
    let C = gp_channels();
    let c = i % C;
    let p = (i / C) % P;
    let n = i / (C * P);
    let d = s1[o1() + n * C + c];
    if (gp_kind() == 1u) {
        s3[o3() + i] = d / f32(P);
    } else {
        s3[o3() + i] = select(0.0, d, bitcast<u32>(s2[o2() + n * C + c]) == p);
    }
}

// Global max pooling backward with the CPU's tie rule: one thread per (sample, channel)
// finds the maximum of x s2 (batch, P, C) as global_pool does (the first NaN wins), counts
// the positions equal to it (NaN equal to NaN), and gives each dy s1 (batch, C) / count;
// dx s3 (batch, P, C) is zero elsewhere.
@compute @workgroup_size(256)
fn global_pool_bwd_ties(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= gp_count()) { return; }
    let P = gp_positions();
    let C = gp_channels();
    let n = i / C;
    let c = i % C;
    let bx = o2() + n * P * C + c;
    let bd = o3() + n * P * C + c;
    var best = s2[bx];
    for (var p = 1u; p < P; p++) {
        let v = s2[bx + p * C];
        if (is_nan(best)) { break; }
        if (v > best || is_nan(v)) { best = v; }
    }
    let nan_best = is_nan(best);
    var count = 0u;
    for (var p = 0u; p < P; p++) {
        let v = s2[bx + p * C];
        if (v == best || (nan_best && is_nan(v))) { count++; }
    }
    let share = s1[o1() + i] / f32(count);
    for (var p = 0u; p < P; p++) {
        let v = s2[bx + p * C];
        s3[bd + p * C] = select(0.0, share, v == best || (nan_best && is_nan(v)));
    }
}

const KERAS_EPS: f32 = 1e-7;

fn row_argmax(base: u32, k: u32, which: u32) -> u32 {
    var best = 0u;
    for (var j = 1u; j < k; j++) {
        var b: f32; var v: f32;
        if (which == 1u) { b = s1[base + best]; v = s1[base + j]; } else { b = s2[base + best]; v = s2[base + j]; }
        if (is_nan(b)) { break; }
        if (v > b || is_nan(v)) { best = j; }
    }
    return best;
}

// Row losses: pred s1, target s2 (labels as bits for sparse), grad s3, per row
// [loss, hit] into s4 (LossParams; kind 0 sparse CE, 1 categorical CE).
@compute @workgroup_size(256)
fn loss_rows(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let r = lin(w, g, l);
    if (r >= loss_count()) { return; }
    let k = loss_classes();
    let kind = loss_kind();
    let inv_n = loss_inv_n();
    let bp = o1() + r * k;
    let bg = o3() + r * k;
    var label = 0u;
    var tsum = 1.0;
    if (kind == 0u) {
        label = bitcast<u32>(s2[o2() + r]);
    } else {
        tsum = 0.0;
        for (var j = 0u; j < k; j++) { tsum += s2[o2() + r * k + j]; }
    }
    var loss = 0.0;
    if (loss_from_logits() == 1u) {
        var m = s1[bp];
        for (var j = 1u; j < k; j++) { m = nanmax(m, s1[bp + j]); }
        var s = 0.0;
        for (var j = 0u; j < k; j++) { s += exp(s1[bp + j] - m); }
        let lse = log(s);
        for (var j = 0u; j < k; j++) {
            let z = s1[bp + j];
            var t = 0.0;
            if (kind == 0u) { t = select(0.0, 1.0, j == label); } else { t = s2[o2() + r * k + j]; }
            loss += t * (m + lse - z);
            s3[bg + j] = (exp(z - m - lse) * tsum - t) * inv_n;
        }
    } else {
        var s = 0.0;
        for (var j = 0u; j < k; j++) { s += s1[bp + j]; }
        var dot = 0.0;
        for (var j = 0u; j < k; j++) {
            let q = s1[bp + j] / s;
            var t = 0.0;
            if (kind == 0u) { t = select(0.0, 1.0, j == label); } else { t = s2[o2() + r * k + j]; }
            let c = nanclamp(q, KERAS_EPS, 1.0 - KERAS_EPS);
            if (t != 0.0) { loss -= t * log(c); }
            var gq = 0.0;
            if (q > KERAS_EPS && q < 1.0 - KERAS_EPS) { gq = -t / q; }
            dot += gq * q;
            s3[bg + j] = gq;
        }
        for (var j = 0u; j < k; j++) { s3[bg + j] = (s3[bg + j] - dot) / s * inv_n; }
    }
    var want = label;
    if (kind == 1u) { want = row_argmax(o2() + r * k, k, 2u); }
    let hit = select(0.0, 1.0, row_argmax(bp, k, 1u) == want);
    s4[o4() + 2u * r] = loss;
    s4[o4() + 2u * r + 1u] = hit;
}

fn sigm(x: f32) -> f32 {
    if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
    let e = exp(x);
    return e / (1.0 + e);
}

// Elementwise losses: pred s1, target s2, grad s3, per element [loss, hit] s4
// (LossParams; kind 2 binary CE, 3 MSE).
@compute @workgroup_size(256)
fn loss_elems(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= loss_count()) { return; }
    let p = s1[o1() + i];
    let y = s2[o2() + i];
    let inv_n = loss_inv_n();
    var loss = 0.0;
    var d = 0.0;
    var hit = 0.0;
    if (loss_kind() == 3u) {
        loss = (p - y) * (p - y);
        d = 2.0 * (p - y);
        hit = select(0.0, 1.0, p == y);
    } else {
        if (loss_from_logits() == 1u) {
            loss = nanmax(p, 0.0) - p * y + log(1.0 + exp(-abs(p)));
            d = sigm(p) - y;
        } else {
            let c = nanclamp(p, KERAS_EPS, 1.0 - KERAS_EPS);
            loss = -(y * log(c) + (1.0 - y) * log(1.0 - c));
            if (p > KERAS_EPS && p < 1.0 - KERAS_EPS) { d = -(y / p) + (1.0 - y) / (1.0 - p); }
        }
        hit = select(0.0, 1.0, select(0.0, 1.0, p > 0.5) == y);
    }
    s3[o3() + i] = d * inv_n;
    s4[o4() + 2u * i] = loss;
    s4[o4() + 2u * i + 1u] = hit;
}

// Sum the [loss, hit] pairs of s1 into s2 = [sum loss * loss_scale, sum hit * hit_scale]
// (LossReduceParams; add: accumulate). One workgroup.
@compute @workgroup_size(256)
fn loss_reduce(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let n = lred_pairs();
    var a = 0.0;
    var b = 0.0;
    for (var i = l; i < n; i += 256u) { a += s1[o1() + 2u * i]; b += s1[o1() + 2u * i + 1u]; }
    red_a[l] = a; red_b[l] = b;
    reduce2(l);
    if (l == 0u) {
        var x = red_a[0] * lred_loss_scale();
        var y = red_b[0] * lred_hit_scale();
        if (lred_add() == 1u) { x += s2[o2()]; y += s2[o2() + 1u]; }
        s2[o2()] = x;
        s2[o2() + 1u] = y;
    }
}
