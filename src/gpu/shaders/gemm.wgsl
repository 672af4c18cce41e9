// One tiled matrix product C[M, N] (+)= A[M, K] B[K, N] (+ bias) for dense layers and
// for convolutions as implicit GEMMs: the A operand is gathered from the image on the
// fly (no im2col matrix is ever stored). TM x TN output tiles (constants prepended by
// the host: 64 x 64; 128 x 32 when N <= 32, 32 x 128 when M <= 32, 32 x 32 when both),
// 16-deep slices in workgroup memory held as vec4s, 4 x 4 outputs per thread in four
// vec4 accumulators, TM * TN / 16 threads per workgroup.
//
// Bindings: s1 A source, s2 B source, s3 C, s4 bias.
// Words: 8 M, 9 N, 10 K, 11 A mode, 12 B mode, 13 flags (1 accumulate, 2 bias),
// 14 tiles along M; convolution geometry (3 spatial axes, leading ones padded with 1):
// 16..18 input spatial, 19..21 output spatial, 22..24 kernel, 25..27 strides,
// 28..30 dilation, 32..34 padding before, 35 C_in, 36 C_out.
// A modes: 0 row-major, 1 transposed (A[m,k] = a[k*M+m]), 2 im2col of x,
// 3 im2col transposed (weight gradient), 4 input-gradient gather of dz.
// B modes: 0 row-major, 1 transposed (B[k,n] = b[n*K+k]), 2 conv weights for the input
// gradient (B[(q, co), ci] = w[(q*Cin + ci)*Cout + co]).
//
// Index arithmetic: the row decomposition of each thread's A rows is computed once per
// tile, the column decomposition once per 16-deep slice, and divisions by the geometry
// use a float reciprocal with one exact integer correction.

const T: u32 = TM * TN / 16u; // threads
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;
const AR: u32 = 256u / TN; // A elements each thread loads per slice
const BR: u32 = 256u / TM; // B elements each thread loads per slice

var<workgroup> As: array<vec4<f32>, 4u * TM>; // As[kk * TM4 + i] = A[m0 + 4i .. 4i + 3, k0 + kk]
var<workgroup> Bs: array<vec4<f32>, 4u * TN>; // Bs[kk * TN4 + j] = B[k0 + kk, n0 + 4j .. 4j + 3]

var<private> gM: u32;
var<private> gN: u32;
var<private> gK: u32;
var<private> g_ins: vec3<i32>;
var<private> g_outs: vec3<i32>;
var<private> g_ks: vec3<u32>;
var<private> g_st: vec3<i32>;
var<private> g_dil: vec3<i32>;
var<private> g_pad: vec3<i32>;
var<private> g_cin: u32;
var<private> g_cout: u32;
var<private> g_nin: u32;
var<private> g_nout: u32;
var<private> r_ins: vec2<f32>;
var<private> r_outs: vec2<f32>;
var<private> r_ks: vec2<f32>;
var<private> r_cin: f32;
var<private> r_cout: f32;
var<private> r_nin: f32;
var<private> r_nout: f32;
var<private> g_strided: bool;

// floor(a / b) for b > 0 and a / b < 2^22; rb = 1 / b.
fn fdiv(a: u32, b: u32, rb: f32) -> u32 {
    var q = u32(f32(a) * rb);
    let r = i32(a) - i32(q * b);
    if (r < 0) { q -= 1u; } else if (r >= i32(b)) { q += 1u; }
    return q;
}

fn recips(d: vec3<u32>) -> vec2<f32> { return vec2<f32>(1.0 / f32(d.y * d.z), 1.0 / f32(d.z)); }

// Coordinates of flat position p in a grid d (rd = recips(d)).
fn unflat(p: u32, d: vec3<u32>, rd: vec2<f32>) -> vec3<u32> {
    let yz = d.y * d.z;
    let x = fdiv(p, yz, rd.x);
    let r = p - x * yz;
    let y = fdiv(r, d.z, rd.y);
    return vec3<u32>(x, y, r - y * d.z);
}

fn flat(p: vec3<i32>, d: vec3<i32>) -> i32 { return (p.x * d.y + p.y) * d.z + p.z; }

fn setup() {
    gM = pu(8u);
    gN = pu(9u);
    gK = pu(10u);
    let ins = pu3(16u);
    let outs = pu3(19u);
    g_ks = pu3(22u);
    g_ins = vec3<i32>(ins);
    g_outs = vec3<i32>(outs);
    g_st = vec3<i32>(pu3(25u));
    g_dil = vec3<i32>(pu3(28u));
    g_pad = vec3<i32>(pu3(32u));
    g_cin = max(pu(35u), 1u);
    g_cout = max(pu(36u), 1u);
    g_nin = ins.x * ins.y * ins.z;
    g_nout = outs.x * outs.y * outs.z;
    r_ins = recips(ins);
    r_outs = recips(outs);
    r_ks = recips(g_ks);
    r_cin = 1.0 / f32(g_cin);
    r_cout = 1.0 / f32(g_cout);
    r_nin = 1.0 / f32(g_nin);
    r_nout = 1.0 / f32(g_nout);
    g_strided = any(g_st != vec3<i32>(1));
}

// An im2col row i (< lim) = (image n, output position): (n * pixels, first input
// position of its window); x = -1 past the end.
fn im2col_row(i: u32, lim: u32) -> vec4<i32> {
    if (i >= lim || g_nout == 0u) { return vec4<i32>(-1, 0, 0, 0); }
    let n = fdiv(i, g_nout, r_nout);
    let o = unflat(i - n * g_nout, vec3<u32>(g_outs), r_outs);
    return vec4<i32>(i32(n * g_nin), vec3<i32>(o) * g_st - g_pad);
}

// An im2col column j (< lim) = (tap q, channel ci): (ci, tap offset); x = -1 past the end.
fn im2col_col(j: u32, lim: u32) -> vec4<i32> {
    if (j >= lim) { return vec4<i32>(-1, 0, 0, 0); }
    let q = fdiv(j, g_cin, r_cin);
    let kq = unflat(q, g_ks, r_ks);
    return vec4<i32>(i32(j - q * g_cin), vec3<i32>(kq) * g_dil);
}

fn im2col_at(row: vec4<i32>, col: vec4<i32>) -> f32 {
    if (row.x < 0 || col.x < 0) { return 0.0; }
    let pos = row.yzw + col.yzw;
    if (any(pos < vec3<i32>(0)) || any(pos >= g_ins)) { return 0.0; }
    return s1[o1() + u32(row.x + flat(pos, g_ins)) * g_cin + u32(col.x)];
}

// Input-gradient rows m = (image n, input position): (n * output pixels, position + pad).
fn dx_row(i: u32) -> vec4<i32> {
    if (i >= gM || g_nin == 0u) { return vec4<i32>(-1, 0, 0, 0); }
    let n = fdiv(i, g_nin, r_nin);
    let p = unflat(i - n * g_nin, vec3<u32>(g_ins), r_ins);
    return vec4<i32>(i32(n * g_nout), vec3<i32>(p) + g_pad);
}

// Input-gradient columns k = (tap q, output channel co): (co, tap offset).
fn dx_col(j: u32) -> vec4<i32> {
    if (j >= gK) { return vec4<i32>(-1, 0, 0, 0); }
    let q = fdiv(j, g_cout, r_cout);
    let kq = unflat(q, g_ks, r_ks);
    return vec4<i32>(i32(j - q * g_cout), vec3<i32>(kq) * g_dil);
}

fn dx_at(row: vec4<i32>, col: vec4<i32>) -> f32 {
    if (row.x < 0 || col.x < 0) { return 0.0; }
    var t = row.yzw - col.yzw;
    if (any(t < vec3<i32>(0))) { return 0.0; }
    if (g_strided) {
        if (any((t % g_st) != vec3<i32>(0))) { return 0.0; }
        t = t / g_st;
    }
    if (any(t >= g_outs)) { return 0.0; }
    return s1[o1() + u32(row.x + flat(t, g_outs)) * g_cout + u32(col.x)];
}

fn a_rm(m: u32, k: u32) -> f32 {
    if (m >= gM || k >= gK) { return 0.0; }
    return s1[o1() + m * gK + k];
}

fn a_tr(m: u32, k: u32) -> f32 {
    if (m >= gM || k >= gK) { return 0.0; }
    return s1[o1() + k * gM + m];
}

fn b_rm(k: u32, n: u32) -> f32 {
    if (k >= gK || n >= gN) { return 0.0; }
    return s2[o2() + k * gN + n];
}

fn b_tr(k: u32, n: u32) -> f32 {
    if (k >= gK || n >= gN) { return 0.0; }
    return s2[o2() + n * gK + k];
}

// Conv weights for the input gradient: kb = q * Cin * Cout + co (or -1), n = ci.
fn b_w(kb: i32, n: u32) -> f32 {
    if (kb < 0 || n >= gN) { return 0.0; }
    return s2[o2() + u32(kb) + n * g_cout];
}

fn put_a(m: u32, kk: u32, v: f32) { As[kk * TM4 + m / 4u][m % 4u] = v; }
fn put_b(kk: u32, n: u32, v: f32) { Bs[kk * TN4 + n / 4u][n % 4u] = v; }

fn store_row(m: u32, n0: u32, split: u32, flags: u32, v: vec4<f32>) {
    if (m >= gM) { return; }
    for (var c = 0u; c < 4u; c++) {
        let n = n0 + c;
        if (n >= gN) { return; }
        var x = v[c];
        if ((flags & 4u) != 0u) {
            // partial sums of one split, reduced by split_reduce
            s3[o3() + split * gM * gN + m * gN + n] = x;
            continue;
        }
        if ((flags & 2u) != 0u) { x += s4[o4() + n]; }
        let at = o3() + m * gN + n;
        if ((flags & 1u) != 0u) { x += s3[at]; }
        s3[at] = x;
    }
}

@compute @workgroup_size(T)
fn gemm(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    setup();
    let tiles_m = pu(14u);
    let tiles = tiles_m * ((gN + TN - 1u) / TN);
    let gid = group_id(w, g);
    let split = gid / tiles;
    let tile = gid % tiles;
    let m0 = (tile % tiles_m) * TM;
    let n0 = (tile / tiles_m) * TN;
    // Split-K: this group sums k in [kbeg, kend) (word 15, a multiple of 16; 0 = all).
    var kbeg = 0u;
    var kend = gK;
    if (pu(15u) != 0u) {
        kbeg = split * pu(15u);
        kend = min(gK, kbeg + pu(15u));
    }
    let tx = l % TN4;
    let ty = l / TN4;
    let amode = pu(11u);
    let bmode = pu(12u);
    // A loads. Modes 0, 2, 4 (consecutive k contiguous): column l % 16 of rows
    // l / 16 + (T / 16) r; modes 1, 3: row l % TM at columns l / TM + (T / TM) r.
    let a_kfast = amode == 0u || amode == 2u || amode == 4u;
    let a_k = select(l / TM, l % 16u, a_kfast);
    let a_m = select(l % TM, l / 16u, a_kfast);
    let a_ms = select(0u, T / 16u, a_kfast);
    let a_ks = select(T / TM, 0u, a_kfast);
    // Per-row geometry, computed once.
    var rows: array<vec4<i32>, AR>;
    for (var r = 0u; r < AR; r++) {
        let m = m0 + a_m + r * a_ms;
        if (amode == 2u) {
            rows[r] = im2col_row(m, gM);
        } else if (amode == 4u) {
            rows[r] = dx_row(m);
        } else if (amode == 3u) {
            rows[r] = im2col_col(m, gM);
        }
    }
    // B loads. Mode 0: column l % TN at rows l / TN + (T / TN) r; modes 1, 2: row l % 16
    // of columns l / 16 + (T / 16) r.
    let b_kfast = bmode != 0u;
    let b_k = select(l / TN, l % 16u, b_kfast);
    let b_n = select(l % TN, l / 16u, b_kfast);
    let b_ns = select(0u, T / 16u, b_kfast);
    let b_ks = select(T / TN, 0u, b_kfast);

    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k0 = kbeg; k0 < kend; k0 += 16u) {
        // the column geometry of this thread's k (k-fast modes)
        var col = vec4<i32>(-1, 0, 0, 0);
        if (amode == 2u) {
            col = im2col_col(k0 + a_k, gK);
        } else if (amode == 4u) {
            col = dx_col(k0 + a_k);
        }
        for (var r = 0u; r < AR; r++) {
            let mm = a_m + r * a_ms;
            let kk = a_k + r * a_ks;
            let m = m0 + mm;
            let k = k0 + kk;
            var v = 0.0;
            switch amode {
                case 0u: { v = a_rm(m, k); }
                case 1u: { v = a_tr(m, k); }
                case 2u: { v = im2col_at(rows[r], col); }
                case 3u: { v = im2col_at(im2col_row(k, gK), rows[0]); }
                default: { v = dx_at(rows[r], col); }
            }
            put_a(mm, kk, v);
        }
        var kb = -1;
        if (bmode == 2u) {
            let k = k0 + b_k;
            if (k < gK) {
                let q = fdiv(k, g_cout, r_cout);
                kb = i32(q * g_cin * g_cout + (k - q * g_cout));
            }
        }
        for (var r = 0u; r < BR; r++) {
            let nn = b_n + r * b_ns;
            let kk = b_k + r * b_ks;
            let n = n0 + nn;
            let k = k0 + kk;
            var v = 0.0;
            switch bmode {
                case 0u: { v = b_rm(k, n); }
                case 1u: { v = b_tr(k, n); }
                default: { v = b_w(kb, n); }
            }
            put_b(kk, nn, v);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let a = As[kk * TM4 + ty];
            let b = Bs[kk * TN4 + tx];
            c0 = fma(vec4<f32>(a.x), b, c0);
            c1 = fma(vec4<f32>(a.y), b, c1);
            c2 = fma(vec4<f32>(a.z), b, c2);
            c3 = fma(vec4<f32>(a.w), b, c3);
        }
        workgroupBarrier();
    }
    let flags = pu(13u);
    let n = n0 + 4u * tx;
    let m = m0 + 4u * ty;
    store_row(m, n, split, flags, c0);
    store_row(m + 1u, n, split, flags, c1);
    store_row(m + 2u, n, split, flags, c2);
    store_row(m + 3u, n, split, flags, c3);
}

// C (+)= sum over splits of the partial products (+ bias). s1 partials, s2 C, s3 bias.
// Words 8 M*N, 9 splits, 10 N, 13 flags (1 accumulate, 2 bias).
@compute @workgroup_size(256)
fn split_reduce(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    let mn = pu(8u);
    if (i >= mn) { return; }
    var v = 0.0;
    for (var s = 0u; s < pu(9u); s++) { v += s1[o1() + s * mn + i]; }
    let flags = pu(13u);
    if ((flags & 2u) != 0u) { v += s3[o3() + i % pu(10u)]; }
    if ((flags & 1u) != 0u) { v += s2[o2() + i]; }
    s2[o2() + i] = v;
}
