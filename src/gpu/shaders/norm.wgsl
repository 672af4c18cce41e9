// Fused group / layer normalization (spec: src/ops/norm.rs): x as (rows, pixels, groups,
// cg); one 64-thread workgroup per (row, group) for the statistics and dx, one thread
// per channel for dgamma / dbeta. Parameters: NormParams (src/gpu/ops.rs).
// fwd: s1 x, s2 gamma, s3 beta, s4 y, s5 mean, s6 rstd.
// dx:  s1 x, s2 gamma, s3 dy, s4 mean, s5 rstd, s6 dx.
// dgb: s1 x, s2 dy, s3 mean, s4 rstd, s5 [dgamma | dbeta].

var<workgroup> red_a: array<f32, 64>;
var<workgroup> red_b: array<f32, 64>;

fn reduce_ab(l: u32) {
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (l < w) {
            red_a[l] += red_a[l + w];
            red_b[l] += red_b[l + w];
        }
        workgroupBarrier();
    }
}

fn chans() -> u32 { return p_groups() * p_cg(); }

// Element e of group g of row r.
fn at(r: u32, g: u32, e: u32) -> u32 {
    return r * p_pixels() * chans() + (e / p_cg()) * chans() + g * p_cg() + e % p_cg();
}

fn gamma_of(ch: u32) -> f32 { return select(1.0, s2[o2() + ch], p_has_gamma() != 0u); }

@compute @workgroup_size(64)
fn norm_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let id = group_id(wg, ng);
    let live = id < p_count();
    let r = id / p_groups();
    let g = id % p_groups();
    let k = p_pixels() * p_cg();
    var s = 0.0;
    if (live) { for (var e = l; e < k; e += 64u) { s += s1[o1() + at(r, g, e)]; } }
    red_a[l] = s;
    red_b[l] = 0.0;
    reduce_ab(l);
    let mean = red_a[0] / f32(k);
    workgroupBarrier();
    var q = 0.0;
    if (live) { for (var e = l; e < k; e += 64u) { let d = s1[o1() + at(r, g, e)] - mean; q += d * d; } }
    red_a[l] = q;
    reduce_ab(l);
    let rstd = 1.0 / sqrt(red_a[0] / f32(k) + p_epsilon());
    if (!live) { return; }
    for (var e = l; e < k; e += 64u) {
        let i = at(r, g, e);
        let ch = g * p_cg() + e % p_cg();
        var v = (s1[o1() + i] - mean) * (rstd * gamma_of(ch));
        if (p_has_beta() != 0u) { v += s3[o3() + ch]; }
        s4[o4() + i] = v;
    }
    if (l == 0u) {
        s5[o5() + id] = mean;
        s6[o6() + id] = rstd;
    }
}

@compute @workgroup_size(64)
fn norm_dx(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let id = group_id(wg, ng);
    let live = id < p_count();
    let r = id / p_groups();
    let g = id % p_groups();
    let k = p_pixels() * p_cg();
    var mean = 0.0;
    var rstd = 0.0;
    if (live) {
        mean = s4[o4() + id];
        rstd = s5[o5() + id];
    }
    var a = 0.0;
    var b = 0.0;
    if (live) {
        for (var e = l; e < k; e += 64u) {
            let i = at(r, g, e);
            let xh = (s1[o1() + i] - mean) * rstd;
            let dxh = s3[o3() + i] * gamma_of(g * p_cg() + e % p_cg());
            a += dxh;
            b += dxh * xh;
        }
    }
    red_a[l] = a;
    red_b[l] = b;
    reduce_ab(l);
    let ma = red_a[0] / f32(k);
    let mb = red_b[0] / f32(k);
    if (!live) { return; }
    for (var e = l; e < k; e += 64u) {
        let i = at(r, g, e);
        let xh = (s1[o1() + i] - mean) * rstd;
        let dxh = s3[o3() + i] * gamma_of(g * p_cg() + e % p_cg());
        s6[o6() + i] = rstd * (dxh - ma - xh * mb);
    }
}

@compute @workgroup_size(256)
fn norm_dgb(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let ch = lin(wg, ng, l);
    let c = chans();
    if (ch >= c) { return; }
    let g = ch / p_cg();
    var dg = 0.0;
    var db = 0.0;
    for (var r = 0u; r < p_rows(); r++) {
        let mean = s3[o3() + r * p_groups() + g];
        let rstd = s4[o4() + r * p_groups() + g];
        for (var px = 0u; px < p_pixels(); px++) {
            let i = (r * p_pixels() + px) * c + ch;
            let d = s2[o2() + i];
            dg += d * (s1[o1() + i] - mean) * rstd;
            db += d;
        }
    }
    s5[o5() + ch] = dg;
    s5[o5() + c + ch] = db;
}
