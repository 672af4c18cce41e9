//! Measures candidate GEMM libraries on the float32 products convcore's CPU convolution
//! actually runs (src/cpu/conv.rs: per-piece `Col @ W`, `Col^T @ dY`, `dY @ W^T`), to
//! choose the library by measurement (issue 15, item 2). `conv_gemm_calls.py` beside
//! this file derives the shapes from the real networks.
//!
//! ```text
//! cargo run --release                                   # gemm AVX2, matrixmultiply AVX2
//! cargo run --release --features gemm-v4,mm-avx512      # both with their AVX-512 kernels
//! MATMUL_NUM_THREADS=2 cargo run --release --features mm-threading -- --threads 2
//! ```
//! Arguments: `--threads 1|2` (only shapes with that GEMM thread count; default both),
//! `--shapes` / `--packing` (one part only), `--quick` (fewer rounds).
//!
//! Every figure is GFLOP/s = 2mnk / time over rounds that alternate the libraries (so a
//! burst of load on a shared machine hits all alike), with warm caches (each product
//! repeats on the same buffers), in three readings: the median of the calling thread's
//! CPU time (single-threaded rows: immune to another process taking the core), the
//! median wall time, and the best round's wall time (the least disturbed one, for the
//! two-threaded rows). Every library's result is checked against the `gemm` crate's
//! before it is timed.

use std::time::Instant;

/// A product `C (m x n) = A (m x k) @ B (k x n) [+ C]` with strided operands, as
/// convcore passes them.
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    a_rs: usize,
    a_cs: usize,
    b: Vec<f32>,
    b_rs: usize,
    b_cs: usize,
    /// C is row-major (rs = n, cs = 1), as convcore's always is.
    accumulate: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    /// Y (rows x c_out) = Col (rows x K) @ W (K x c_out): m = rows, k = K, n = c_out.
    Fwd,
    /// dW (K x c_out) += Col^T @ dY: m = K, k = rows, n = c_out; A is Col transposed.
    DW,
    /// dCol (rows x K) = dY (rows x c_out) @ W^T: m = rows, k = c_out, n = K; B is W^T.
    DCol,
    /// The same with W^T transposed into its own row-major buffer beforehand (once per
    /// backward call, not timed): B row-major.
    DColPre,
}

fn lcg_fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

impl Problem {
    fn new(op: Op, m: usize, k: usize, n: usize) -> Problem {
        let (a_rs, a_cs, b_rs, b_cs, accumulate) = match op {
            Op::Fwd => (k, 1, n, 1, false),
            // Col is stored rows x K row-major (rows = this k, K = this m).
            Op::DW => (1, m, n, 1, true),
            // W is stored K x c_out row-major (K = this n, c_out = this k).
            Op::DCol => (k, 1, 1, k, false),
            Op::DColPre => (k, 1, n, 1, false),
        };
        Problem {
            m,
            n,
            k,
            a: lcg_fill(m * k, 1),
            a_rs,
            a_cs,
            b: lcg_fill(k * n, 2),
            b_rs,
            b_cs,
            accumulate,
        }
    }

    fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lib {
    /// The `gemm` crate 0.19 (convcore's today), kernel chosen by its build features.
    Gemm,
    /// `matrixmultiply` 0.3 `sgemm`.
    MatrixMultiply,
    /// `private-gemm-x86` (the x86_64 kernels under faer 0.24's matmul), AVX2 kernels.
    PrivAvx2,
    /// The same with its AVX-512 kernels.
    PrivAvx512,
    /// `faer::linalg::matmul::matmul` (dispatches to private-gemm-x86 on x86_64).
    Faer,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Gemm => "gemm",
            Lib::MatrixMultiply => "matrixmultiply",
            Lib::PrivAvx2 => "pgx86-avx2",
            Lib::PrivAvx512 => "pgx86-avx512",
            Lib::Faer => "faer",
        }
    }
}

/// Threads matrixmultiply runs with in this process (fixed at its first call).
fn mm_threads() -> usize {
    if cfg!(feature = "mm-threading") {
        std::env::var("MATMUL_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1usize)
            .clamp(1, 4)
    } else {
        1
    }
}

/// `C = A @ B (+ C)` on rows `r0 .. r0 + rows` of A and C (the whole product when
/// `rows == p.m`): the per-piece calls of the packing experiment.
fn run(lib: Lib, p: &Problem, c: &mut [f32], r0: usize, rows: usize, threads: usize) {
    assert!(r0 + rows <= p.m && c.len() >= p.m * p.n);
    let q = Problem { m: rows, a: Vec::new(), b: Vec::new(), ..*p };
    run_view(lib, &q, &p.a[r0 * p.a_rs..], &p.b, &mut c[r0 * p.n..], threads);
}

/// `C = A @ B (+ C)` for the shape and strides of `p` on the given operands.
fn run_view(lib: Lib, p: &Problem, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    let (m, n, k) = (p.m, p.n, p.k);
    let need = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    assert!(a.len() >= need(m, k, p.a_rs, p.a_cs) && b.len() >= need(k, n, p.b_rs, p.b_cs) && c.len() >= m * n);
    let (c_rs, c_cs) = (n, 1usize);
    let beta = if p.accumulate { 1.0f32 } else { 0.0 };
    // SAFETY (every arm): the assert above keeps the m x k, k x n and m x n views with
    // these strides inside a, b and c.
    unsafe {
        match lib {
            Lib::Gemm => gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                c_cs as isize,
                c_rs as isize,
                p.accumulate,
                a.as_ptr(),
                p.a_cs as isize,
                p.a_rs as isize,
                b.as_ptr(),
                p.b_cs as isize,
                p.b_rs as isize,
                beta,
                1.0,
                false,
                false,
                false,
                if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                },
            ),
            Lib::MatrixMultiply => matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                p.a_rs as isize,
                p.a_cs as isize,
                b.as_ptr(),
                p.b_rs as isize,
                p.b_cs as isize,
                beta,
                c.as_mut_ptr(),
                c_rs as isize,
                c_cs as isize,
            ),
            Lib::PrivAvx2 | Lib::PrivAvx512 => {
                let alpha = 1.0f32;
                private_gemm_x86::gemm(
                    private_gemm_x86::DType::F32,
                    private_gemm_x86::IType::U64,
                    if lib == Lib::PrivAvx512 {
                        private_gemm_x86::InstrSet::Avx512
                    } else {
                        private_gemm_x86::InstrSet::Avx256
                    },
                    m,
                    n,
                    k,
                    c.as_mut_ptr() as *mut (),
                    c_rs as isize,
                    c_cs as isize,
                    std::ptr::null(),
                    std::ptr::null(),
                    private_gemm_x86::DstKind::Full,
                    if p.accumulate {
                        private_gemm_x86::Accum::Add
                    } else {
                        private_gemm_x86::Accum::Replace
                    },
                    a.as_ptr() as *const (),
                    p.a_rs as isize,
                    p.a_cs as isize,
                    false,
                    std::ptr::null(),
                    0,
                    b.as_ptr() as *const (),
                    p.b_rs as isize,
                    p.b_cs as isize,
                    false,
                    &alpha as *const f32 as *const (),
                    threads,
                )
            }
            Lib::Faer => {
                let dst = faer::MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, c_rs as isize, c_cs as isize);
                let lhs = faer::MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, p.a_rs as isize, p.a_cs as isize);
                let rhs = faer::MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, p.b_rs as isize, p.b_cs as isize);
                faer::linalg::matmul::matmul(
                    dst,
                    if p.accumulate {
                        faer::Accum::Add
                    } else {
                        faer::Accum::Replace
                    },
                    lhs,
                    rhs,
                    1.0f32,
                    if threads > 1 { faer::Par::rayon(threads) } else { faer::Par::Seq },
                )
            }
        }
    }
}

/// Runs the product over the whole of A in pieces of `piece` rows (one call when
/// `piece >= m`).
fn run_pieces(lib: Lib, p: &Problem, c: &mut [f32], piece: usize, threads: usize) {
    let mut r0 = 0;
    while r0 < p.m {
        let rows = piece.min(p.m - r0);
        run(lib, p, c, r0, rows, threads);
        r0 += rows;
    }
}

/// The weight gradient `dW += Col^T @ dY` over all `p.k` rows in pieces of `piece`
/// rows along the reduction, as the backward calls it piece by piece (`p` is an `Op::DW`
/// problem; every piece accumulates into the same C).
fn run_k_pieces(lib: Lib, p: &Problem, c: &mut [f32], piece: usize, threads: usize) {
    let mut r0 = 0;
    while r0 < p.k {
        let rows = piece.min(p.k - r0);
        let q = Problem {
            m: p.m,
            n: p.n,
            k: rows,
            a: Vec::new(),
            a_rs: p.a_rs,
            a_cs: p.a_cs,
            b: Vec::new(),
            b_rs: p.b_rs,
            b_cs: p.b_cs,
            accumulate: true,
        };
        run_view(lib, &q, &p.a[r0 * p.a_cs..], &p.b[r0 * p.b_rs..], c, threads);
        r0 += rows;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Checks that every library computes the product `gemm` computes.
fn check(p: &Problem, libs: &[Lib], exec: &dyn Fn(Lib, &mut [f32])) {
    let mut want = vec![0.25f32; p.m * p.n];
    exec(Lib::Gemm, &mut want);
    let scale = want.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-30);
    for &lib in libs {
        let mut got = vec![0.25f32; p.m * p.n];
        exec(lib, &mut got);
        let err = got.iter().zip(&want).fold(0f32, |s, (g, w)| s.max((g - w).abs())) / scale;
        assert!(err < 1e-4, "{} differs from gemm by {err} (relative) on {}x{}x{}", lib.name(), p.m, p.k, p.n);
    }
}

/// CPU time of the calling thread, in seconds: unlike the wall clock it does not count
/// the time another process held the core (the test machine is shared).
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec out-pointer and a clock every Linux has.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// GFLOP/s of one library in three readings (see `main`).
#[derive(Clone, Copy)]
struct Reading {
    cpu_median: f64,
    wall_median: f64,
    wall_best: f64,
}

/// Each library's GFLOP/s: `rounds` rounds, each timing every library for about
/// `slice_s` seconds in turn.
fn measure(p: &Problem, libs: &[Lib], rounds: usize, slice_s: f64, exec: &dyn Fn(Lib, &mut [f32])) -> Vec<Reading> {
    check(p, libs, exec);
    let mut c = vec![0.25f32; p.m * p.n];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); libs.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); libs.len()];
    // Calls per slice, from one warm-up call each.
    let reps: Vec<usize> = libs
        .iter()
        .map(|&lib| {
            exec(lib, &mut c);
            let t = Instant::now();
            exec(lib, &mut c);
            ((slice_s / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000)
        })
        .collect();
    for _ in 0..rounds {
        for (i, &lib) in libs.iter().enumerate() {
            let (t, c0) = (Instant::now(), thread_cpu_s());
            for _ in 0..reps[i] {
                exec(lib, &mut c);
            }
            cpu[i].push((thread_cpu_s() - c0) / reps[i] as f64);
            wall[i].push(t.elapsed().as_secs_f64() / reps[i] as f64);
        }
    }
    let f = p.flops() / 1e9;
    wall.into_iter()
        .zip(cpu)
        .map(|(w, c)| {
            let best = w.iter().cloned().fold(f64::INFINITY, f64::min);
            Reading { cpu_median: f / median(c), wall_median: f / median(w), wall_best: f / best }
        })
        .collect()
}

/// Prints one table per reading: rows of (label cells, one reading per column or None).
fn print_tables(title: &str, header: &str, ncols: usize, rows: &[(String, usize, Vec<Option<Reading>>)]) {
    let readings: [(&str, fn(&Reading) -> f64); 3] = [
        ("CPU time of the calling thread, median (1-thread rows only)", |r| r.cpu_median),
        ("wall clock, median", |r| r.wall_median),
        ("wall clock, best round", |r| r.wall_best),
    ];
    for (what, get) in readings {
        println!("\n{title}: GFLOP/s, {what}\n");
        println!("{header}");
        println!("|{}", "---|".repeat(ncols));
        for (label, threads, cells) in rows {
            if what.starts_with("CPU") && *threads != 1 {
                continue;
            }
            let cs: Vec<String> = cells.iter().map(|c| c.map_or("-".to_string(), |r| format!("{:.0}", get(&r)))).collect();
            println!("{label} {} |", cs.join(" | "));
        }
    }
}

/// The GEMMs of `conv_gemm_calls.py`'s listing that carry most of the FLOPs of the
/// MNIST convnet (training, batch 128), ResNet-18 (training, batch 32), ResNet-50 and
/// VGG16 (inference, batch 32 on one GEMM thread per task; batch 1 on two).
const SHAPES: &[(&str, Op, usize, usize, usize, usize)] = &[
    // (where, op, m, k, n, GEMM threads)
    ("VGG16 conv5 / R50 l4 3x3, b32", Op::Fwd, 512, 4608, 512, 1),
    ("VGG16 conv4 / R50 l3 3x3, b32", Op::Fwd, 512, 2304, 256, 1),
    ("VGG16 conv2 / R18 l1 3x3, b32", Op::Fwd, 455, 576, 64, 1),
    ("VGG16 conv3 / R50 l2 3x3, b32", Op::Fwd, 227, 1152, 128, 1),
    ("R50 l3 1x1 256->1024, b32", Op::Fwd, 196, 256, 1024, 1),
    ("R50 l3 1x1 1024->256, b32", Op::Fwd, 196, 1024, 256, 1),
    ("R50 l1 1x1 64->256, b32", Op::Fwd, 3136, 64, 256, 1),
    ("R50 l2 1x1 128->512, b32", Op::Fwd, 784, 128, 512, 1),
    ("R50/R18 stem 7x7x3, b32", Op::Fwd, 1783, 147, 64, 1),
    ("MNIST conv2 fwd, b128", Op::Fwd, 484, 288, 64, 1),
    ("R18 l1 dW, b32", Op::DW, 576, 227, 64, 1),
    ("R18 l1 dCol, b32", Op::DCol, 227, 64, 576, 1),
    ("R18 l3 dW, b32", Op::DW, 2304, 196, 256, 1),
    ("R18 l3 dCol, b32", Op::DCol, 196, 256, 2304, 1),
    ("R18 l4 dW, b32", Op::DW, 4608, 49, 512, 1),
    ("R18 l4 dCol, b32", Op::DCol, 49, 512, 4608, 1),
    ("R18 l3 dCol, W^T copied, b32", Op::DColPre, 196, 256, 2304, 1),
    ("R18 l4 dCol, W^T copied, b32", Op::DColPre, 49, 512, 4608, 1),
    ("MNIST conv2 dW, b128", Op::DW, 288, 455, 64, 1),
    ("MNIST conv2 dCol, b128", Op::DCol, 455, 64, 288, 1),
    ("MNIST conv2 dCol, W^T copied, b128", Op::DColPre, 455, 64, 288, 1),
    ("MNIST conv1 dW, b128", Op::DW, 9, 2704, 32, 1),
    ("R50 l3 3x3, b1", Op::Fwd, 196, 2304, 256, 2),
    ("R50 l4 3x3, b1", Op::Fwd, 49, 4608, 512, 2),
    ("R50 l3 1x1 256->1024, b1", Op::Fwd, 196, 256, 1024, 2),
    ("VGG16 conv2, b1", Op::Fwd, 910, 576, 64, 2),
    ("VGG16 conv5 3x3, b1", Op::Fwd, 512, 4608, 512, 2),
];

/// (what, op, K, c_out, total rows, piece sizes): the same rows against the same W as
/// one call and as the per-piece calls convcore makes (each of which packs W again):
/// the forward `Col @ W` and the input gradient `dY @ W^T`.
const PACKING: &[(&str, Op, usize, usize, usize, &[usize])] = &[
    ("3x3 512->512 (l4 / conv5)", Op::Fwd, 4608, 512, 1568, &[49, 196, 512]),
    ("3x3 256->256 (l3 / conv4)", Op::Fwd, 2304, 256, 3136, &[49, 196, 512]),
    ("3x3 128->128 (l2 / conv3)", Op::Fwd, 1152, 128, 3136, &[49, 196, 227]),
    ("3x3 64->64 (l1 / conv2)", Op::Fwd, 576, 64, 3136, &[49, 196, 455]),
    ("1x1 256->1024 (R50 l3)", Op::Fwd, 256, 1024, 3136, &[49, 196]),
    ("3x3 512->512 (R18 l4)", Op::DCol, 4608, 512, 1568, &[49, 196, 392]),
    ("3x3 256->256 (R18 l3)", Op::DCol, 2304, 256, 3136, &[196, 392, 784]),
];

/// (K, c_out, total rows, piece sizes): the weight gradient over the same rows in one
/// call and in the per-piece calls the backward makes, each accumulating into dW.
const DW_PIECES: &[(&str, usize, usize, usize, &[usize])] = &[
    ("3x3 512->512 (R18 l4)", 4608, 512, 1568, &[49, 196, 392]),
    ("3x3 256->256 (R18 l3)", 2304, 256, 3136, &[196, 392, 784]),
    ("3x3 64->64 (R18 l1)", 576, 64, 3136, &[227, 784]),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |s: &str| args.iter().any(|a| a == s);
    let threads_only: Option<usize> = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    let quick = flag("--quick");
    let (rounds, slice) = if quick { (3, 0.02) } else { (7, 0.04) };
    let (do_shapes, do_packing) = match (flag("--shapes"), flag("--packing")) {
        (false, false) => (true, true),
        f => f,
    };
    let mmt = mm_threads();
    println!(
        "# gemm_choice: gemm 0.19 {} | matrixmultiply 0.3 {}, {} thread(s) | private-gemm-x86 0.1 (faer 0.24) avx2 + avx512 | rayon {} threads",
        if cfg!(feature = "gemm-v4") { "x86-v4 (AVX-512 kernels)" } else { "default (AVX2+FMA kernels)" },
        if cfg!(feature = "mm-avx512") { "avx512 feature" } else { "no avx512 feature (AVX2+FMA)" },
        mmt,
        rayon::current_num_threads()
    );
    println!(
        "# CPU: avx2 {} fma {} avx512f {}",
        is_x86_feature_detected!("avx2"),
        is_x86_feature_detected!("fma"),
        is_x86_feature_detected!("avx512f")
    );
    let all = [Lib::Gemm, Lib::MatrixMultiply, Lib::PrivAvx2, Lib::PrivAvx512, Lib::Faer];
    let names = all.map(|l| l.name()).join(" | ");
    if do_shapes {
        let mut rows = Vec::new();
        for &(what, op, m, k, n, threads) in SHAPES {
            if threads_only.is_some_and(|t| t != threads) {
                continue;
            }
            let libs: Vec<Lib> = all.iter().copied().filter(|&l| l != Lib::MatrixMultiply || mmt == threads).collect();
            let p = Problem::new(op, m, k, n);
            let g = measure(&p, &libs, rounds, slice, &|lib, c| run(lib, &p, c, 0, m, threads));
            let cells = all.iter().map(|l| libs.iter().position(|x| x == l).map(|i| g[i])).collect();
            rows.push((format!("| {what} | {op:?} | {m} | {k} | {n} | {threads} |"), threads, cells));
        }
        print_tables("shapes", &format!("| shape | op | m | k | n | threads | {names} |"), 6 + all.len(), &rows);
    }
    if do_packing && threads_only.is_none_or(|t| t == 1) {
        // One GEMM thread, as each conv task runs.
        let mut rows = Vec::new();
        for &(what, op, kw, c_out, total, pieces) in PACKING {
            let p = match op {
                Op::DCol => Problem::new(op, total, c_out, kw),
                _ => Problem::new(op, total, kw, c_out),
            };
            let libs: Vec<Lib> = all.iter().copied().filter(|&l| l != Lib::MatrixMultiply || mmt == 1).collect();
            for &piece in pieces.iter().chain([total].iter()) {
                let g = measure(&p, &libs, rounds, slice, &|lib, c| run_pieces(lib, &p, c, piece, 1));
                let cells = all.iter().map(|l| libs.iter().position(|x| x == l).map(|i| g[i])).collect();
                let pl = if piece == total { "one call".to_string() } else { piece.to_string() };
                rows.push((format!("| {what} | {op:?} | {total} | {pl} |"), 1, cells));
            }
        }
        print_tables("packing", &format!("| K x c_out | op | rows | piece rows | {names} |"), 4 + all.len(), &rows);
        let mut rows = Vec::new();
        for &(what, k, n, total, pieces) in DW_PIECES {
            let p = Problem::new(Op::DW, k, total, n);
            let libs: Vec<Lib> = all.iter().copied().filter(|&l| l != Lib::MatrixMultiply || mmt == 1).collect();
            for &piece in pieces.iter().chain([total].iter()) {
                let g = measure(&p, &libs, rounds, slice, &|lib, c| run_k_pieces(lib, &p, c, piece, 1));
                let cells = all.iter().map(|l| libs.iter().position(|x| x == l).map(|i| g[i])).collect();
                let pl = if piece == total { "one call".to_string() } else { piece.to_string() };
                rows.push((format!("| {what} | {total} | {pl} |"), 1, cells));
            }
        }
        print_tables("dW over pieces", &format!("| K x c_out | rows | piece rows | {names} |"), 3 + all.len(), &rows);
    }
}
