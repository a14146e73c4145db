//! Complex numbers in double precision, laid out as `[re, im]` so a state vector is one flat
//! array of `f64` pairs the compiler can vectorize over.

use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub};

/// A complex number `re + i·im`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(C)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const ZERO: C64 = C64 { re: 0.0, im: 0.0 };
    pub const ONE: C64 = C64 { re: 1.0, im: 0.0 };
    pub const I: C64 = C64 { re: 0.0, im: 1.0 };

    #[inline(always)]
    pub const fn new(re: f64, im: f64) -> C64 {
        C64 { re, im }
    }
    /// `e^{iθ}`.
    #[inline]
    pub fn cis(theta: f64) -> C64 {
        let (s, c) = theta.sin_cos();
        C64 { re: c, im: s }
    }
    #[inline(always)]
    pub fn conj(self) -> C64 {
        C64 {
            re: self.re,
            im: -self.im,
        }
    }
    #[inline(always)]
    pub fn norm_sqr(self) -> f64 {
        self.re * self.re + self.im * self.im
    }
    #[inline(always)]
    pub fn abs(self) -> f64 {
        self.norm_sqr().sqrt()
    }
    #[inline(always)]
    pub fn scale(self, k: f64) -> C64 {
        C64 {
            re: self.re * k,
            im: self.im * k,
        }
    }
    /// Whether `self` and `other` differ by less than `eps` in both parts.
    pub fn approx_eq(self, other: C64, eps: f64) -> bool {
        (self.re - other.re).abs() < eps && (self.im - other.im).abs() < eps
    }
}

impl Add for C64 {
    type Output = C64;
    #[inline(always)]
    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }
}
impl AddAssign for C64 {
    #[inline(always)]
    fn add_assign(&mut self, o: C64) {
        self.re += o.re;
        self.im += o.im;
    }
}
impl Sub for C64 {
    type Output = C64;
    #[inline(always)]
    fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }
}
impl Mul for C64 {
    type Output = C64;
    #[inline(always)]
    fn mul(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}
impl MulAssign for C64 {
    #[inline(always)]
    fn mul_assign(&mut self, o: C64) {
        *self = *self * o;
    }
}
impl Neg for C64 {
    type Output = C64;
    #[inline(always)]
    fn neg(self) -> C64 {
        C64::new(-self.re, -self.im)
    }
}
impl From<f64> for C64 {
    fn from(re: f64) -> C64 {
        C64::new(re, 0.0)
    }
}

/// A 2x2 matrix, row-major: `[m00, m01, m10, m11]`.
pub type Mat2 = [C64; 4];
/// A 4x4 matrix, row-major. Basis index `k = bit(q0) + 2·bit(q1)` for a gate on `[q0, q1]`.
pub type Mat4 = [C64; 16];

/// `a · b` for 2x2 matrices.
pub fn mul2(a: &Mat2, b: &Mat2) -> Mat2 {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
    ]
}

/// `a · b` for 4x4 matrices.
pub fn mul4(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut out = [C64::ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            let mut acc = C64::ZERO;
            for k in 0..4 {
                acc += a[r * 4 + k] * b[k * 4 + c];
            }
            out[r * 4 + c] = acc;
        }
    }
    out
}

/// The conjugate transpose of a 2x2 matrix.
pub fn dagger2(m: &Mat2) -> Mat2 {
    [m[0].conj(), m[2].conj(), m[1].conj(), m[3].conj()]
}

/// The conjugate transpose of a 4x4 matrix.
pub fn dagger4(m: &Mat4) -> Mat4 {
    let mut out = [C64::ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[r * 4 + c] = m[c * 4 + r].conj();
        }
    }
    out
}

/// `hi ⊗ lo` as a 4x4 matrix in the `bit(q0) + 2·bit(q1)` basis: `lo` acts on `q0`.
pub fn kron2(hi: &Mat2, lo: &Mat2) -> Mat4 {
    let mut out = [C64::ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[r * 4 + c] = hi[(r >> 1) * 2 + (c >> 1)] * lo[(r & 1) * 2 + (c & 1)];
        }
    }
    out
}

/// Swaps the roles of the two qubits of a 4x4 matrix (basis indices 1 and 2 exchanged).
pub fn swap_qubits4(m: &Mat4) -> Mat4 {
    const P: [usize; 4] = [0, 2, 1, 3];
    let mut out = [C64::ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[P[r] * 4 + P[c]] = m[r * 4 + c];
        }
    }
    out
}

/// Whether every off-diagonal entry is (numerically) zero.
pub fn is_diagonal4(m: &Mat4) -> bool {
    (0..16).all(|k| k / 4 == k % 4 || m[k].norm_sqr() < 1e-24)
}
