// Shared by every convcore shader: binding 0 is a block of 48 words of parameters
// (words 0..5 hold the element offset of each bound window inside its binding);
// bindings 1..6 are storage windows. Integer data (argmax, labels) is stored as bits.
struct Params { v: array<vec4<u32>, 12> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> s1: array<f32>;
@group(0) @binding(2) var<storage, read_write> s2: array<f32>;
@group(0) @binding(3) var<storage, read_write> s3: array<f32>;
@group(0) @binding(4) var<storage, read_write> s4: array<f32>;
@group(0) @binding(5) var<storage, read_write> s5: array<f32>;
@group(0) @binding(6) var<storage, read_write> s6: array<f32>;

fn pu(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
// Three consecutive words (a spatial size, stride, ... of the geometry block).
fn pu3(i: u32) -> vec3<u32> { return vec3<u32>(pu(i), pu(i + 1u), pu(i + 2u)); }
fn o1() -> u32 { return pu(0u); }
fn o2() -> u32 { return pu(1u); }
fn o3() -> u32 { return pu(2u); }
fn o4() -> u32 { return pu(3u); }
fn o5() -> u32 { return pu(4u); }
fn o6() -> u32 { return pu(5u); }
// Linear index of a thread in a 256-wide 1-D layout spread over x and y groups.
fn lin(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 256u + lid; }
fn group_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
// NaN by its bits: compilers may fold `v != v` to false (WGSL lets them assume no NaN).
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// max that propagates NaN as numpy's (WGSL's max may return either operand for NaN).
fn nanmax(a: f32, b: f32) -> f32 { return select(max(a, b), a + b, is_nan(a) || is_nan(b)); }
// clamp that keeps NaN (numpy's clip), for the same reason.
fn nanclamp(v: f32, lo: f32, hi: f32) -> f32 { return select(clamp(v, lo, hi), v, is_nan(v)); }
