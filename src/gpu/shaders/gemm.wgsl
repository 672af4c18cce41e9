// One tiled matrix product C[M, N] (+)= A[M, K] B[K, N] (+ bias) for dense layers and
// for convolutions as implicit GEMMs: the A operand is gathered from the image on the
// fly (no im2col matrix is ever stored). 64 x 64 tiles, 16-deep slices in workgroup
// memory, 4 x 4 outputs per thread.
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

var<workgroup> As: array<array<f32, 64>, 16>;
var<workgroup> Bs: array<array<f32, 64>, 16>;

fn sp(i: u32) -> vec3<u32> { return vec3<u32>(pu(i), pu(i + 1u), pu(i + 2u)); }

// Input value x[n, pos, ci] with zero outside the image (pos signed).
fn x_at(n: u32, pos: vec3<i32>, ci: u32) -> f32 {
    let ins = vec3<i32>(sp(16u));
    if (any(pos < vec3<i32>(0)) || any(pos >= ins)) { return 0.0; }
    let p = (u32(pos.x) * u32(ins.y) + u32(pos.y)) * u32(ins.z) + u32(pos.z);
    let nin = u32(ins.x * ins.y * ins.z);
    return s1[o1() + (n * nin + p) * pu(35u) + ci];
}

// im2col value for output row m (= n, output position) and column k (= q, ci).
fn im2col(m: u32, k: u32) -> f32 {
    let outs = sp(19u);
    let ks = sp(22u);
    let np = outs.x * outs.y * outs.z;
    let n = m / np;
    let p = m % np;
    let o = vec3<u32>(p / (outs.y * outs.z), (p / outs.z) % outs.y, p % outs.z);
    let cin = pu(35u);
    let q = k / cin;
    let ci = k % cin;
    let kq = vec3<u32>(q / (ks.y * ks.z), (q / ks.z) % ks.y, q % ks.z);
    let pos = vec3<i32>(o * sp(25u) + kq * sp(28u)) - vec3<i32>(sp(32u));
    return x_at(n, pos, ci);
}

// dz gathered for the input gradient: row m = (n, input position), column k = (q, co).
fn dx_gather(m: u32, k: u32) -> f32 {
    let ins = sp(16u);
    let outs = sp(19u);
    let ks = sp(22u);
    let st = vec3<i32>(sp(25u));
    let nin = ins.x * ins.y * ins.z;
    let n = m / nin;
    let p = m % nin;
    let ip = vec3<i32>(vec3<u32>(p / (ins.y * ins.z), (p / ins.z) % ins.y, p % ins.z));
    let cout = pu(36u);
    let q = k / cout;
    let co = k % cout;
    let kq = vec3<i32>(vec3<u32>(q / (ks.y * ks.z), (q / ks.z) % ks.y, q % ks.z));
    let t = ip + vec3<i32>(sp(32u)) - kq * vec3<i32>(sp(28u));
    if (any(t < vec3<i32>(0))) { return 0.0; }
    if (any((t % st) != vec3<i32>(0))) { return 0.0; }
    let o = t / st;
    if (any(o >= vec3<i32>(outs))) { return 0.0; }
    let op = (u32(o.x) * outs.y + u32(o.y)) * outs.z + u32(o.z);
    return s1[o1() + (n * (outs.x * outs.y * outs.z) + op) * cout + co];
}

fn load_a(m: u32, k: u32) -> f32 {
    if (m >= pu(8u) || k >= pu(10u)) { return 0.0; }
    switch pu(11u) {
        case 0u: { return s1[o1() + m * pu(10u) + k]; }
        case 1u: { return s1[o1() + k * pu(8u) + m]; }
        case 2u: { return im2col(m, k); }
        case 3u: { return im2col(k, m); }
        default: { return dx_gather(m, k); }
    }
}

fn load_b(k: u32, n: u32) -> f32 {
    if (k >= pu(10u) || n >= pu(9u)) { return 0.0; }
    switch pu(12u) {
        case 0u: { return s2[o2() + k * pu(9u) + n]; }
        case 1u: { return s2[o2() + n * pu(10u) + k]; }
        default: {
            let cout = pu(36u);
            let q = k / cout;
            let co = k % cout;
            return s2[o2() + (q * pu(35u) + n) * cout + co];
        }
    }
}

@compute @workgroup_size(256)
fn gemm(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let M = pu(8u);
    let N = pu(9u);
    let K = pu(10u);
    let tiles_m = pu(14u);
    let tiles = tiles_m * ((N + 63u) / 64u);
    let gid = group_id(w, g);
    let split = gid / tiles;
    let tile = gid % tiles;
    let m0 = (tile % tiles_m) * 64u;
    let n0 = (tile / tiles_m) * 64u;
    // Split-K: this group sums k in [kbeg, kend) (word 15, a multiple of 16; 0 = all).
    var kbeg = 0u;
    var kend = K;
    if (pu(15u) != 0u) {
        kbeg = split * pu(15u);
        kend = min(K, kbeg + pu(15u));
    }
    let tx = l % 16u;
    let ty = l / 16u;
    let amode = pu(11u);
    let a_mfast = amode == 1u || amode == 3u;
    let b_kfast = pu(12u) != 0u;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }
    for (var k0 = kbeg; k0 < kend; k0 += 16u) {
        for (var r = 0u; r < 4u; r++) {
            let idx = l + 256u * r;
            var kk = idx % 16u;
            var mm = idx / 16u;
            if (a_mfast) { mm = idx % 64u; kk = idx / 64u; }
            As[kk][mm] = load_a(m0 + mm, k0 + kk);
            var bk = idx / 64u;
            var bn = idx % 64u;
            if (b_kfast) { bk = idx % 16u; bn = idx / 16u; }
            Bs[bk][bn] = load_b(k0 + bk, n0 + bn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) { a[i] = As[kk][ty + 16u * i]; b[i] = Bs[kk][tx + 16u * i]; }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }
    let flags = pu(13u);
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + ty + 16u * i;
        if (m >= M) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + tx + 16u * j;
            if (n >= N) { continue; }
            var v = acc[i][j];
            if ((flags & 4u) != 0u) {
                // partial sums of one split, reduced by split_reduce
                s3[o3() + split * M * N + m * N + n] = v;
                continue;
            }
            if ((flags & 2u) != 0u) { v += s4[o4() + n]; }
            let at = o3() + m * N + n;
            if ((flags & 1u) != 0u) { v += s3[at]; }
            s3[at] = v;
        }
    }
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
