// Depthwise convolution (spec: src/ops/depthwise.rs), channels-last, geometry padded to
// three spatial axes. Parameters: DepthwiseParams (src/gpu/ops.rs), read through p_<field>().
// A padding cell reads as a zero that is multiplied like any input (0 * inf is NaN, as
// on the CPU); `select` keeps the compiler from folding the product away.
// fwd: s1 x, s2 kernel, s3 y.  dx: s1 dy, s2 kernel, s3 dx.  dk: s1 x, s2 dy, s3 dk.

fn in_pixel(n: u32, i: vec3<i32>) -> u32 {
    let s = p_in_size3();
    return ((n * s.x + u32(i.x)) * s.y + u32(i.y)) * s.z + u32(i.z);
}

fn inside(i: vec3<i32>) -> bool {
    let s = vec3<i32>(p_in_size3());
    return all(i >= vec3<i32>(0)) && all(i < s);
}

@compute @workgroup_size(256)
fn dw_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let t = lin(wg, ng, l);
    if (t >= p_count()) { return; }
    let c = p_channels();
    let m = p_mult();
    let cm = c * m;
    let os = p_out_size3();
    let k = p_kernel3();
    let j = t % cm;
    let ch = j / m;
    let pix = t / cm;
    let o = vec3<u32>((pix / (os.y * os.z)) % os.x, (pix / os.z) % os.y, pix % os.z);
    let n = pix / (os.x * os.y * os.z);
    let base = vec3<i32>(o * p_strides3()) - vec3<i32>(p_pad_before3());
    let d = vec3<i32>(p_dilation3());
    var acc = 0.0;
    for (var j0 = 0u; j0 < k.x; j0++) {
        for (var j1 = 0u; j1 < k.y; j1++) {
            for (var j2 = 0u; j2 < k.z; j2++) {
                let i = base + vec3<i32>(i32(j0), i32(j1), i32(j2)) * d;
                let ok = inside(i);
                let xi = select(0u, in_pixel(n, i) * c + ch, ok);
                let v = select(0.0, s1[o1() + xi], ok);
                acc += v * s2[o2() + ((j0 * k.y + j1) * k.z + j2) * cm + j];
            }
        }
    }
    s3[o3() + t] = acc;
}

@compute @workgroup_size(256)
fn dw_dx(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let t = lin(wg, ng, l);
    if (t >= p_count()) { return; }
    let c = p_channels();
    let m = p_mult();
    let cm = c * m;
    let is = p_in_size3();
    let os = vec3<i32>(p_out_size3());
    let k = p_kernel3();
    let st = vec3<i32>(p_strides3());
    let d = vec3<i32>(p_dilation3());
    let ch = t % c;
    let pix = t / c;
    let i = vec3<i32>(vec3<u32>((pix / (is.y * is.z)) % is.x, (pix / is.z) % is.y, pix % is.z));
    let n = pix / (is.x * is.y * is.z);
    let base = i + vec3<i32>(p_pad_before3());
    var acc = 0.0;
    for (var j0 = 0u; j0 < k.x; j0++) {
        for (var j1 = 0u; j1 < k.y; j1++) {
            for (var j2 = 0u; j2 < k.z; j2++) {
                let q = base - vec3<i32>(i32(j0), i32(j1), i32(j2)) * d;
                if (any(q < vec3<i32>(0)) || any(q % st != vec3<i32>(0))) { continue; }
                let o = q / st;
                if (any(o >= os)) { continue; }
                let at = ((((n * u32(os.x) + u32(o.x)) * u32(os.y) + u32(o.y)) * u32(os.z) + u32(o.z)) * cm) + ch * m;
                let w = ((j0 * k.y + j1) * k.z + j2) * cm + ch * m;
                for (var mi = 0u; mi < m; mi++) {
                    acc += s1[o1() + at + mi] * s2[o2() + w + mi];
                }
            }
        }
    }
    s3[o3() + t] = acc;
}

// One thread per kernel element (tap, c, m), summing over this dispatch's samples and
// every output position; `accumulate` adds to the previous batch chunk's sum.
@compute @workgroup_size(256)
fn dw_dk(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let t = lin(wg, ng, l);
    if (t >= p_count()) { return; }
    let c = p_channels();
    let m = p_mult();
    let cm = c * m;
    let os = p_out_size3();
    let k = p_kernel3();
    let j = t % cm;
    let ch = j / m;
    let tap = t / cm;
    let jv = vec3<i32>(vec3<u32>(tap / (k.y * k.z), (tap / k.z) % k.y, tap % k.z)) * vec3<i32>(p_dilation3())
        - vec3<i32>(p_pad_before3());
    let st = p_strides3();
    let opix = os.x * os.y * os.z;
    var acc = 0.0;
    for (var n = 0u; n < p_nb(); n++) {
        for (var o0 = 0u; o0 < os.x; o0++) {
            for (var oo1 = 0u; oo1 < os.y; oo1++) {
                for (var oo2 = 0u; oo2 < os.z; oo2++) {
                    let i = vec3<i32>(vec3<u32>(o0, oo1, oo2) * st) + jv;
                    let ok = inside(i);
                    let xi = select(0u, in_pixel(n, i) * c + ch, ok);
                    let v = select(0.0, s1[o1() + xi], ok);
                    acc += v * s2[o2() + ((n * opix + (o0 * os.y + oo1) * os.z + oo2) * cm) + j];
                }
            }
        }
    }
    if (p_accumulate() != 0u) { acc += s3[o3() + t]; }
    s3[o3() + t] = acc;
}
