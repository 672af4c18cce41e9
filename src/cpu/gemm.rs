//! Matrix product `C = alpha * op(A) * op(B) + beta * C` for the convolution and dense
//! kernels, on top of the `gemm` crate (BLIS-style packed micro-kernels with run-time
//! AVX2/AVX-512 dispatch, threaded through rayon so it runs inside the crate's pool).
//!
//! Matrices are strided views; a transpose is a view with rows and columns (and their
//! strides) swapped, see [`MatRef::t`]. Every view is checked against its slice before
//! the unsafe call, so a wrong stride is an `Error::Value`, never an out-of-bounds read.

use crate::element::Element;
use crate::error::{Error, Result};
use std::any::TypeId;

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A C-order `(rows, cols)` matrix at the start of `data`.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A writable strided matrix view. Rows or columns must be contiguous (`cs == 1` with
/// `rs >= cols`, or `rs == 1` with `cs >= rows`) so that no two elements alias.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A C-order `(rows, cols)` matrix at the start of `data`.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}

/// Index of the last element of a `rows x cols` view plus one, or None on overflow.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

fn check_view(what: &str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<()> {
    match extent(rows, cols, rs, cs) {
        Some(e) if e <= len && e <= isize::MAX as usize => Ok(()),
        _ => Err(Error::Value(format!(
            "matmul: {what} view of {rows}x{cols} with strides ({rs}, {cs}) does not fit its {len} elements"
        ))),
    }
}

/// `C = alpha * A * B + beta * C` with `A: m x k`, `B: k x n`, `C: m x n`. When `beta`
/// is zero `C` is not read (it may hold garbage or NaN). `threads > 1` lets the product
/// split its work over that many rayon threads of the current pool.
pub fn matmul<T: Element>(
    c: MatMut<'_, T>,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    threads: usize,
) -> Result<()> {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if a.rows != m || b.rows != k || b.cols != n {
        return Err(Error::Value(format!(
            "matmul: shapes do not chain: A is {}x{}, B is {}x{}, C is {m}x{n}",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    check_view("A", a.data.len(), a.rows, a.cols, a.rs, a.cs)?;
    check_view("B", b.data.len(), b.rows, b.cols, b.rs, b.cs)?;
    check_view("C", c.data.len(), c.rows, c.cols, c.rs, c.cs)?;
    if m == 0 || n == 0 {
        return Ok(()); // nothing to write (and a 0-wide view may have any stride)
    }
    let no_alias = m <= 1 || n <= 1 || (c.cs == 1 && c.rs >= n) || (c.rs == 1 && c.cs >= m);
    if !no_alias || (m > 1 && c.rs == 0) || (n > 1 && c.cs == 0) {
        return Err(Error::Value(format!(
            "matmul: C view of {m}x{n} with strides ({}, {}) has overlapping elements",
            c.rs, c.cs
        )));
    }
    if k == 0 {
        // gemm's contract for empty products is not documented: do it here.
        for i in 0..m {
            for j in 0..n {
                let p = &mut c.data[i * c.rs + j * c.cs];
                *p = if beta == T::zero() { T::zero() } else { beta * *p };
            }
        }
        return Ok(());
    }
    let id = TypeId::of::<T>();
    if id != TypeId::of::<f32>() && id != TypeId::of::<f64>() {
        return Err(Error::Type(format!(
            "matmul supports float32 and float64, got {}",
            T::NAME
        )));
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every view was checked to lie inside its slice, C's elements are distinct
    // and C is borrowed mutably (so it aliases neither A nor B); T is f32 or f64, which
    // gemm supports. gemm computes dst = alpha' * dst + beta' * lhs * rhs, reading dst
    // only when read_dst is set: our (alpha, beta) are its (beta', alpha').
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            c.cs as isize,
            c.rs as isize,
            beta != T::zero(),
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &MatRef<f64>, b: &MatRef<f64>) -> Vec<f64> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0;
                for l in 0..a.cols {
                    s += a.data[i * a.rs + l * a.cs] * b.data[l * b.rs + j * b.cs];
                }
                out[i * b.cols + j] = s;
            }
        }
        out
    }

    #[test]
    fn conv_gemm_matmul_transposes_and_beta() {
        let (m, k, n) = (37, 19, 23);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 104729) % 11) as f64 - 5.0).collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let av = if ta {
                MatRef::row_major(&a, k, m).t()
            } else {
                MatRef::row_major(&a, m, k)
            };
            let bv = if tb {
                MatRef::row_major(&b, n, k).t()
            } else {
                MatRef::row_major(&b, k, n)
            };
            let want = naive(&av, &bv);
            for threads in [1, 2] {
                let mut c = vec![f64::NAN; m * n];
                matmul(MatMut::row_major(&mut c, m, n), 1.0, av, bv, 0.0, threads).unwrap();
                assert_eq!(c, want);
                // C = 2AB + 3C
                let mut c2 = vec![1.0; m * n];
                matmul(MatMut::row_major(&mut c2, m, n), 2.0, av, bv, 3.0, threads).unwrap();
                assert!(c2.iter().zip(&want).all(|(x, w)| *x == 2.0 * w + 3.0));
            }
        }
        // f32 path and a column-major C
        let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let bf: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let mut cf = vec![0f32; m * n];
        let cm = MatMut {
            data: &mut cf,
            rows: m,
            cols: n,
            rs: 1,
            cs: m,
        };
        matmul(
            cm,
            1.0,
            MatRef::row_major(&af, m, k),
            MatRef::row_major(&bf, k, n),
            0.0,
            1,
        )
        .unwrap();
        let want = naive(&MatRef::row_major(&a, m, k), &MatRef::row_major(&b, k, n));
        for i in 0..m {
            for j in 0..n {
                assert_eq!(cf[j * m + i] as f64, want[i * n + j]);
            }
        }
    }

    #[test]
    fn conv_gemm_matmul_rejects_bad_views() {
        let a = vec![0f64; 6];
        let mut c = vec![0f64; 4];
        let e = matmul(
            MatMut::row_major(&mut c, 2, 2),
            1.0,
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&a, 2, 3),
            0.0,
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("do not chain"), "{e}");
        let e = matmul(
            MatMut::row_major(&mut c, 2, 2),
            1.0,
            MatRef::row_major(&a, 2, 4),
            MatRef::row_major(&a, 4, 2),
            0.0,
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let cm = MatMut {
            data: &mut c,
            rows: 2,
            cols: 2,
            rs: 1,
            cs: 1,
        };
        let e = matmul(
            cm,
            1.0,
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&a, 3, 2),
            0.0,
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("overlapping"), "{e}");
        // k == 0: C = beta * C
        let mut c = vec![2f64; 4];
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            1.0,
            MatRef::row_major(&a, 2, 0),
            MatRef::row_major(&a, 0, 2),
            0.5,
            1,
        )
        .unwrap();
        assert_eq!(c, vec![1.0; 4]);
    }
}
