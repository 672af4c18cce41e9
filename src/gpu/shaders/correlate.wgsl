// N-D correlation (up to 4 axes, leading axes padded with 1), the CorrPlan of the CPU:
// out[o] = sum_j x[o + j - offset] k[j], input indices outside resolved by the boundary
// rule. s1 x, s2 kernel, s3 out. Parameters: CorrParams (src/gpu/ops.rs).

fn map_index(i: i32, n: i32, mode: u32) -> i32 {
    if (i >= 0 && i < n) { return i; }
    switch mode {
        case 0u, 5u: { return -1; }
        case 3u: { return select(n - 1, 0, i < 0); }
        case 4u: { return ((i % n) + n) % n; }
        case 1u: {
            let p = ((i % (2 * n)) + 2 * n) % (2 * n);
            return select(2 * n - 1 - p, p, p < n);
        }
        default: {
            if (n == 1) { return 0; }
            let per = 2 * n - 2;
            let p = ((i % per) + per) % per;
            return select(per - p, p, p < n);
        }
    }
}

@compute @workgroup_size(256)
fn correlate(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= p_count()) { return; }
    let mode = p_boundary();
    let ins = p_in_size4();
    let ks = p_k_size4();
    let outs = p_out_size4();
    let off = p_offset4();
    let o = vec4<u32>(i / (outs.y * outs.z * outs.w), (i / (outs.z * outs.w)) % outs.y, (i / outs.w) % outs.z, i % outs.w);
    let pre = (p_flags() & 1u) != 0u;
    // scipy.ndimage.correlate's footprint: zero weights add nothing (not even 0 * inf).
    let skip0 = (p_flags() & 2u) != 0u;
    var acc = 0.0;
    // First input position of the window (a chunk's axis 0 is already resolved).
    var st = vec4<i32>(o) - off;
    if (pre) { st.x = i32(o.x); }
    if (all(st >= vec4<i32>(0)) && all(st + vec4<i32>(ks) <= ins)) {
        // Interior: the whole window is inside the input, no boundary rule.
        let sw = u32(ins.w);
        let sz = u32(ins.z) * sw;
        let sy = u32(ins.y) * sz;
        let base = o1() + u32(st.x) * sy + u32(st.y) * sz + u32(st.z) * sw + u32(st.w);
        var kb = o2();
        for (var a = 0u; a < ks.x; a++) {
            for (var b = 0u; b < ks.y; b++) {
                for (var c = 0u; c < ks.z; c++) {
                    let row = base + a * sy + b * sz + c * sw;
                    for (var d = 0u; d < ks.w; d++) {
                        let kv = s2[kb];
                        if (!skip0 || kv != 0.0) { acc = fma(s1[row + d], kv, acc); }
                        kb += 1u;
                    }
                }
            }
        }
        s3[o3() + i] = acc;
        return;
    }
    let cval = p_cval();
    for (var a = 0u; a < ks.x; a++) {
        var r0: i32;
        if (pre) { r0 = i32(o.x + a); } else { r0 = map_index(i32(o.x + a) - off.x, ins.x, mode); }
        for (var b = 0u; b < ks.y; b++) {
            let r1 = map_index(i32(o.y + b) - off.y, ins.y, mode);
            for (var c = 0u; c < ks.z; c++) {
                let r2 = map_index(i32(o.z + c) - off.z, ins.z, mode);
                let kb = ((a * ks.y + b) * ks.z + c) * ks.w;
                for (var d = 0u; d < ks.w; d++) {
                    let r3 = map_index(i32(o.w + d) - off.w, ins.w, mode);
                    let kv = s2[o2() + kb + d];
                    if (skip0 && kv == 0.0) { continue; }
                    if (r0 < 0 || r1 < 0 || r2 < 0 || r3 < 0) {
                        // Mode 5 (overlap only): positions outside add nothing.
                        if (mode != 5u) { acc += cval * kv; }
                    } else {
                        let xi = ((u32(r0) * u32(ins.y) + u32(r1)) * u32(ins.z) + u32(r2)) * u32(ins.w) + u32(r3);
                        acc = fma(s1[o1() + xi], kv, acc);
                    }
                }
            }
        }
    }
    s3[o3() + i] = acc;
}
