//! Criterion benchmarks of the CPU kernels (no Python needed): `cargo bench`.
use convcore::cpu::correlate::correlate_direct;
use convcore::ops::correlate::{Boundary, CorrPlan, Mode};
use criterion::{criterion_group, criterion_main, Criterion};

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0).collect()
}

fn bench_correlate(c: &mut Criterion) {
    let x = data(2048 * 2048);
    for k in [3usize, 5, 15] {
        let w = data(k * k);
        let p = CorrPlan::ndimage(&[2048, 2048], &[k, k], &[0, 0], Boundary::Constant, 0.0).unwrap();
        c.bench_function(&format!("correlate2d_direct_2048_{k}x{k}_f32"), |b| {
            b.iter(|| convcore::threads::install(|| correlate_direct(&x, &w, &p).unwrap()).unwrap())
        });
    }
    let s = data(1 << 20);
    for k in [8usize, 64, 512] {
        let w = data(k);
        let p = CorrPlan::signal(&[1 << 20], &[k], Mode::Same).unwrap();
        c.bench_function(&format!("correlate1d_direct_2^20_{k}_f32"), |b| {
            b.iter(|| convcore::threads::install(|| correlate_direct(&s, &w, &p).unwrap()).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_correlate
}
criterion_main!(benches);
