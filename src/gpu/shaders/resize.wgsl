// 2-D upsampling by integer factors (spec: src/ops/resize.rs), channels-last.
// Parameters: UpsampleParams (src/gpu/ops.rs), read through p_<field>().
// s1: input, s2: output (forward); s1: dy, s2: dx (backward, a gather: no atomics).

// (i0, i1, weight of i1) of output coordinate o along an axis of n inputs.
fn taps(o: u32, size: u32, n: u32) -> vec3<f32> {
    if (p_bilinear() == 0u) {
        let i = f32(o / size);
        return vec3<f32>(i, i, 0.0);
    }
    let src = clamp((f32(o) + 0.5) / f32(size) - 0.5, 0.0, f32(n - 1u));
    let i0 = floor(src);
    let i1 = min(i0 + 1.0, f32(n - 1u));
    return vec3<f32>(i0, i1, src - i0);
}

fn weight(o: u32, i: u32, size: u32, n: u32) -> f32 {
    let t = taps(o, size, n);
    var w = 0.0;
    if (u32(t.x) == i) { w += 1.0 - t.z; }
    if (u32(t.y) == i) { w += t.z; }
    return w;
}

@compute @workgroup_size(256)
fn upsample_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let c = p_channels();
    let oh = p_in_h() * p_size_h();
    let ow = p_in_w() * p_size_w();
    let ch = i % c;
    let ox = (i / c) % ow;
    let oy = (i / (c * ow)) % oh;
    let n = i / (c * ow * oh);
    let ty = taps(oy, p_size_h(), p_in_h());
    let tx = taps(ox, p_size_w(), p_in_w());
    let base = o1() + n * p_in_h() * p_in_w() * c;
    let iw = p_in_w();
    let v00 = s1[base + (u32(ty.x) * iw + u32(tx.x)) * c + ch];
    let v01 = s1[base + (u32(ty.x) * iw + u32(tx.y)) * c + ch];
    let v10 = s1[base + (u32(ty.y) * iw + u32(tx.x)) * c + ch];
    let v11 = s1[base + (u32(ty.y) * iw + u32(tx.y)) * c + ch];
    var out = v00;
    if (p_bilinear() != 0u) {
        out = (1.0 - ty.z) * ((1.0 - tx.z) * v00 + tx.z * v01) + ty.z * ((1.0 - tx.z) * v10 + tx.z * v11);
    }
    s2[o2() + i] = out;
}

@compute @workgroup_size(256)
fn upsample_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) ng: vec3<u32>, @builtin(local_invocation_index) l: u32) {
    let i = lin(wg, ng, l);
    if (i >= p_count()) { return; }
    let c = p_channels();
    let ih = p_in_h();
    let iw = p_in_w();
    let sh = p_size_h();
    let sw = p_size_w();
    let oh = ih * sh;
    let ow = iw * sw;
    let ch = i % c;
    let ix = (i / c) % iw;
    let iy = (i / (c * iw)) % ih;
    let n = i / (c * iw * ih);
    let base = o1() + n * oh * ow * c;
    var acc = 0.0;
    for (var oy = max(iy, 1u) * sh - sh; oy < min((iy + 2u) * sh, oh); oy++) {
        let wy = weight(oy, iy, sh, ih);
        if (wy == 0.0) { continue; }
        for (var ox = max(ix, 1u) * sw - sw; ox < min((ix + 2u) * sw, ow); ox++) {
            let wx = weight(ox, ix, sw, iw);
            if (wx != 0.0) { acc += wy * wx * s1[base + (oy * ow + ox) * c + ch]; }
        }
    }
    s2[o2() + i] = acc;
}
