// Local pooling over (batch, *spatial, C), spatial padded to 3 axes with trailing ones.
// Parameters: PoolParams (src/gpu/ops.rs), read through p_<field>(). Windows are clipped
// to the input; an average divides by the number of cells inside it (Keras). A dispatch
// may hold rows row0 .. row0 + in_rows of axis 0 of the input and orow0 .. orow0 +
// out_rows of the output (a sample larger than a binding): positions are whole-sample
// ones, window offsets subtract the first row.


// Forward: s1 x -> s2 y, s3 argmax (flat index inside the image, bits).
@compute @workgroup_size(256)
fn pool_fwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= p_count()) { return; }
    let C = p_channels();
    let ins = p_in_size3();
    let outs = p_out_size3();
    let orows = p_out_rows();
    let c = i % C;
    let op = (i / C) % (orows * outs.y * outs.z);
    let n = i / (C * orows * outs.y * outs.z);
    let o = vec3<u32>(op / (outs.y * outs.z) + p_orow0(), (op / outs.z) % outs.y, op % outs.z);
    let st = vec3<i32>(o * p_strides3()) - vec3<i32>(p_pad_before3());
    let lo = vec3<u32>(max(st, vec3<i32>(0)));
    let hi = vec3<u32>(min(st + vec3<i32>(p_pool3()), vec3<i32>(ins)));
    let img = p_in_rows() * ins.y * ins.z * C;
    // The bound input starts at row row0 of the sample.
    let base = o1() + n * img - p_row0() * ins.y * ins.z * C;
    var best = 0.0;
    var at = 0xffffffffu;
    var sum = 0.0;
    for (var a = lo.x; a < hi.x; a++) {
        for (var b = lo.y; b < hi.y; b++) {
            for (var d = lo.z; d < hi.z; d++) {
                let idx = ((a * ins.y + b) * ins.z + d) * C + c;
                let v = s1[base + idx];
                sum += v;
                if (at == 0xffffffffu) { best = v; at = idx; }
                else if (!is_nan(best) && (v > best || is_nan(v))) { best = v; at = idx; }
            }
        }
    }
    if (p_kind() == 1u) {
        let cnt = (hi.x - lo.x) * (hi.y - lo.y) * (hi.z - lo.z);
        s2[o2() + i] = sum / f32(cnt);
    } else {
        s2[o2() + i] = best;
        s3[o3() + i] = bitcast<f32>(at);
    }
}

// Backward by gathering: dx[n, p, c] sums dy over the windows that contain p.
// s1 dy, s2 argmax, s3 dx; p_count() counts inputs.
@compute @workgroup_size(256)
fn pool_bwd(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(w, g, l);
    if (i >= p_count()) { return; }
    let C = p_channels();
    let ins = p_in_size3();
    let outs = p_out_size3();
    let ps = vec3<i32>(p_pool3());
    let sd = vec3<i32>(p_strides3());
    let pad = vec3<i32>(p_pad_before3());
    let c = i % C;
    let rows = p_in_rows();
    let local = i % (rows * ins.y * ins.z * C);
    let n = i / (rows * ins.y * ins.z * C);
    // Whole-sample position and flat index (argmax holds whole-sample indices).
    let idx = local + p_row0() * ins.y * ins.z * C;
    let ip = idx / C;
    let p = vec3<i32>(vec3<u32>(ip / (ins.y * ins.z), (ip / ins.z) % ins.y, ip % ins.z));
    // windows o with o*s - pad <= p < o*s - pad + pool
    let t = p + pad;
    let olo = max((t - ps + sd) / sd, vec3<i32>(0));
    let lo = select(olo, vec3<i32>(0), t - ps + vec3<i32>(1) <= vec3<i32>(0));
    let hi = min(t / sd + vec3<i32>(1), vec3<i32>(outs));
    let nout = p_out_rows() * outs.y * outs.z * C;
    let orow0 = i32(p_orow0());
    var acc = 0.0;
    for (var a = lo.x; a < hi.x; a++) {
        for (var b = lo.y; b < hi.y; b++) {
            for (var d = lo.z; d < hi.z; d++) {
                let o = vec3<i32>(a, b, d);
                let st = o * sd - pad;
                if (any(p < st) || any(p >= st + ps)) { continue; }
                let oi = n * nout + ((u32(a - orow0) * outs.y + u32(b)) * outs.z + u32(d)) * C + c;
                let dy = s1[o1() + oi];
                if (p_kind() == 1u) {
                    let lo2 = vec3<u32>(max(st, vec3<i32>(0)));
                    let hi2 = vec3<u32>(min(st + ps, vec3<i32>(ins)));
                    acc += dy / f32((hi2.x - lo2.x) * (hi2.y - lo2.y) * (hi2.z - lo2.z));
                } else if (bitcast<u32>(s2[o2() + oi]) == idx) {
                    acc += dy;
                }
            }
        }
    }
    s3[o3() + i] = acc;
}
