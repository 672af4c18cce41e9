// Convolution input gradient computed directly, one thread per element of dx, for
// layers with few input channels (the first layer of a network), where the implicit
// GEMM's N = C_in would leave most of a tile idle:
//   dx[n, p, ci] = sum over taps q and output channels co of
//                  dz[n, (p + pad - q * dil) / stride, co] * w[q, ci, co].
// s1 dz, s2 w, s3 dx. Words: 8 elements of dx in this chunk; the convolution geometry
// of the GEMM (16..18 input spatial, 19..21 output spatial, 22..24 kernel, 25..27
// strides, 28..30 dilation, 32..34 padding before, 35 C_in, 36 C_out).


@compute @workgroup_size(256)
fn conv_dx_direct(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= pu(8u)) { return; }
    let ins = pu3(16u);
    let outs = vec3<i32>(pu3(19u));
    let ks = pu3(22u);
    let st = vec3<i32>(pu3(25u));
    let dil = vec3<i32>(pu3(28u));
    let pad = vec3<i32>(pu3(32u));
    let cin = pu(35u);
    let cout = pu(36u);
    let strided = any(st != vec3<i32>(1));
    let nin = ins.x * ins.y * ins.z;
    let nout = u32(outs.x * outs.y * outs.z);
    let ci = i % cin;
    let m = i / cin;
    let n = m / nin;
    let p = m % nin;
    let ip = vec3<i32>(vec3<u32>(p / (ins.y * ins.z), (p / ins.z) % ins.y, p % ins.z)) + pad;
    var acc = 0.0;
    var q = 0u;
    for (var a = 0u; a < ks.x; a++) {
        for (var b = 0u; b < ks.y; b++) {
            for (var c = 0u; c < ks.z; c++) {
                var t = ip - vec3<i32>(vec3<u32>(a, b, c)) * dil;
                var ok = all(t >= vec3<i32>(0));
                if (ok && strided) {
                    ok = all((t % st) == vec3<i32>(0));
                    t = t / st;
                }
                ok = ok && all(t < outs);
                if (ok) {
                    let zb = o1() + (n * nout + u32((t.x * outs.y + t.y) * outs.z + t.z)) * cout;
                    let wb = o2() + (q * cin + ci) * cout;
                    for (var co = 0u; co < cout; co++) {
                        acc = fma(s1[zb + co], s2[wb + co], acc);
                    }
                }
                q += 1u;
            }
        }
    }
    s3[o3() + i] = acc;
}
