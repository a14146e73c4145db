//! Observables as sums of Pauli strings, their expectation values, and exact ground-state
//! energies (Lanczos) to check variational results against.

use std::fmt;

use crate::complex::C64;
use crate::state::StateVector;

/// One Pauli factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pauli {
    X,
    Y,
    Z,
}

/// `coefficient · P_{q1} P_{q2} …` (identity on the other qubits).
#[derive(Debug, Clone, PartialEq)]
pub struct PauliTerm {
    pub coefficient: f64,
    pub factors: Vec<(usize, Pauli)>,
}

/// A Hermitian observable `Σ c_k P_k`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PauliSum {
    pub terms: Vec<PauliTerm>,
}

/// A Pauli string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Pauli string `{text}`: {message}")]
pub struct PauliError {
    pub text: String,
    pub message: String,
}

impl PauliTerm {
    /// Parses `"Z0 Z1"`, `"X3"`, `"Z0*Z1"` or `"I"` (the identity).
    pub fn parse(coefficient: f64, text: &str) -> Result<PauliTerm, PauliError> {
        let err = |message: String| PauliError {
            text: text.to_string(),
            message,
        };
        let mut factors = Vec::new();
        for token in text
            .split(|c: char| c.is_whitespace() || c == '*')
            .filter(|t| !t.is_empty())
        {
            let mut chars = token.chars();
            let p = match chars.next().map(|c| c.to_ascii_uppercase()) {
                Some('X') => Pauli::X,
                Some('Y') => Pauli::Y,
                Some('Z') => Pauli::Z,
                Some('I') if token.len() == 1 => continue,
                _ => return Err(err(format!("`{token}` is not X<n>, Y<n>, Z<n> or I"))),
            };
            let q: usize = chars
                .as_str()
                .parse()
                .map_err(|_| err(format!("`{token}` needs a qubit number, like Z0")))?;
            if factors.iter().any(|(fq, _)| *fq == q) {
                return Err(err(format!("qubit {q} appears twice")));
            }
            factors.push((q, p));
        }
        factors.sort();
        Ok(PauliTerm {
            coefficient,
            factors,
        })
    }

    fn masks(&self) -> (usize, usize, u32) {
        let (mut x, mut z, mut ny) = (0usize, 0usize, 0u32);
        for &(q, p) in &self.factors {
            match p {
                Pauli::X => x |= 1 << q,
                Pauli::Z => z |= 1 << q,
                Pauli::Y => {
                    x |= 1 << q;
                    z |= 1 << q;
                    ny += 1;
                }
            }
        }
        (x, z, ny)
    }
}

impl fmt::Display for PauliTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.coefficient)?;
        if self.factors.is_empty() {
            return write!(f, " I");
        }
        for (q, p) in &self.factors {
            write!(f, " {p:?}{q}")?;
        }
        Ok(())
    }
}

impl PauliSum {
    pub fn new() -> PauliSum {
        PauliSum::default()
    }

    pub fn add(&mut self, coefficient: f64, factors: &[(usize, Pauli)]) -> &mut Self {
        let mut factors = factors.to_vec();
        factors.sort();
        self.terms.push(PauliTerm {
            coefficient,
            factors,
        });
        self
    }

    /// The transverse-field Ising model `J Σ Z_i Z_{i+1} + h Σ X_i` on `n` spins, with the
    /// bond `Z_{n-1} Z_0` when `periodic`.
    pub fn ising(n: usize, j: f64, h: f64, periodic: bool) -> PauliSum {
        let mut sum = PauliSum::new();
        let bonds = if periodic && n > 2 {
            n
        } else {
            n.saturating_sub(1)
        };
        for i in 0..bonds {
            sum.add(j, &[(i, Pauli::Z), ((i + 1) % n, Pauli::Z)]);
        }
        for i in 0..n {
            sum.add(h, &[(i, Pauli::X)]);
        }
        sum
    }

    /// The highest qubit any term acts on.
    pub fn max_qubit(&self) -> Option<usize> {
        self.terms
            .iter()
            .flat_map(|t| t.factors.iter().map(|(q, _)| *q))
            .max()
    }

    /// `<ψ|H|ψ>`.
    pub fn expectation(&self, state: &StateVector) -> f64 {
        self.terms
            .iter()
            .map(|t| {
                let (x, z, ny) = t.masks();
                t.coefficient * state.pauli_expectation(x, z, ny)
            })
            .sum()
    }

    /// `H|ψ>` as amplitudes.
    pub fn apply(&self, amps: &[C64]) -> Vec<C64> {
        let mut out = vec![C64::ZERO; amps.len()];
        for t in &self.terms {
            let (x, z, ny) = t.masks();
            let phase = match ny % 4 {
                0 => C64::ONE,
                1 => C64::I,
                2 => -C64::ONE,
                _ => -C64::I,
            }
            .scale(t.coefficient);
            for (i, a) in amps.iter().enumerate() {
                let sign = if (i & z).count_ones() % 2 == 1 {
                    -1.0
                } else {
                    1.0
                };
                out[i ^ x] += (phase * *a).scale(sign);
            }
        }
        out
    }

    /// The smallest eigenvalue on `num_qubits` qubits, by Lanczos with full
    /// reorthogonalization (exact to ~1e-10 for the sizes variational jobs use, ≤ 16 qubits).
    pub fn ground_energy(&self, num_qubits: usize) -> f64 {
        let dim = 1usize << num_qubits;
        let steps = dim.min(200);
        // A fixed, generic start vector (not an eigenvector of any simple model).
        let mut v: Vec<C64> = (0..dim)
            .map(|i| {
                C64::new(
                    1.0 + ((i * 7919) % 13) as f64 * 0.1,
                    ((i * 104_729) % 7) as f64 * 0.05,
                )
            })
            .collect();
        normalize(&mut v);
        let mut basis: Vec<Vec<C64>> = Vec::new();
        let mut alpha = Vec::new();
        let mut beta: Vec<f64> = Vec::new();
        for _ in 0..steps {
            let mut w = self.apply(&v);
            let a = dot(&v, &w).re;
            alpha.push(a);
            basis.push(v.clone());
            for b in &basis {
                let c = dot(b, &w);
                for (wi, bi) in w.iter_mut().zip(b) {
                    *wi = *wi - c * *bi;
                }
            }
            let norm = dot(&w, &w).re.sqrt();
            if norm < 1e-12 || basis.len() == dim {
                break;
            }
            beta.push(norm);
            for wi in w.iter_mut() {
                *wi = wi.scale(1.0 / norm);
            }
            v = w;
        }
        smallest_tridiagonal_eigenvalue(&alpha, &beta[..alpha.len() - 1])
    }
}

fn dot(a: &[C64], b: &[C64]) -> C64 {
    a.iter()
        .zip(b)
        .fold(C64::ZERO, |acc, (x, y)| acc + x.conj() * *y)
}

fn normalize(v: &mut [C64]) {
    let n = dot(v, v).re.sqrt();
    for x in v.iter_mut() {
        *x = x.scale(1.0 / n);
    }
}

/// Smallest eigenvalue of the symmetric tridiagonal matrix (diagonal `a`, off-diagonal `b`),
/// by bisection on the Sturm sequence.
fn smallest_tridiagonal_eigenvalue(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let radius = |i: usize| {
        let l = if i > 0 { b[i - 1].abs() } else { 0.0 };
        let r = if i + 1 < n { b[i].abs() } else { 0.0 };
        l + r
    };
    let mut lo = (0..n)
        .map(|i| a[i] - radius(i))
        .fold(f64::INFINITY, f64::min);
    let mut hi = (0..n)
        .map(|i| a[i] + radius(i))
        .fold(f64::NEG_INFINITY, f64::max);
    // Number of eigenvalues below x.
    let count_below = |x: f64| {
        let mut count = 0;
        let mut d = 1.0;
        for i in 0..n {
            let off = if i > 0 { b[i - 1] * b[i - 1] } else { 0.0 };
            d = a[i] - x - if i > 0 { off / d } else { 0.0 };
            if d == 0.0 {
                d = 1e-300;
            }
            if d < 0.0 {
                count += 1;
            }
        }
        count
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if count_below(mid) >= 1 {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo < 1e-13 {
            break;
        }
    }
    0.5 * (lo + hi)
}
