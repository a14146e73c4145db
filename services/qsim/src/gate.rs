//! The gate set: names as OpenQASM spells them, their arity and parameters, and their matrices.
//!
//! Matrices of two-qubit gates are in the basis `k = bit(q0) + 2·bit(q1)` for a gate applied
//! to `[q0, q1]` (Qiskit's little-endian convention): for `CX` on `[control, target]`, the
//! control is `q0`.

use std::f64::consts::FRAC_1_SQRT_2;

use crate::complex::{C64, Mat2, Mat4, dagger2, dagger4, kron2};

/// One gate, with its angles.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    I,
    X,
    Y,
    Z,
    H,
    S,
    Sdg,
    T,
    Tdg,
    SX,
    SXdg,
    RX(f64),
    RY(f64),
    RZ(f64),
    /// Phase gate, also `u1`.
    P(f64),
    U2(f64, f64),
    U3(f64, f64, f64),
    CX,
    CY,
    CZ,
    CH,
    Swap,
    ISwap,
    CP(f64),
    CRX(f64),
    CRY(f64),
    CRZ(f64),
    RXX(f64),
    RYY(f64),
    RZZ(f64),
    CCX,
    CSwap,
    /// An arbitrary one-qubit unitary.
    Unitary1(Box<Mat2>),
    /// An arbitrary two-qubit unitary (basis as in the module doc).
    Unitary2(Box<Mat4>),
}

/// Every named gate: (name, qubits, parameters). The names are what QASM, AQO and the
/// compiler use (lowercase).
pub const GATE_NAMES: &[(&str, usize, usize)] = &[
    ("id", 1, 0),
    ("x", 1, 0),
    ("y", 1, 0),
    ("z", 1, 0),
    ("h", 1, 0),
    ("s", 1, 0),
    ("sdg", 1, 0),
    ("t", 1, 0),
    ("tdg", 1, 0),
    ("sx", 1, 0),
    ("sxdg", 1, 0),
    ("rx", 1, 1),
    ("ry", 1, 1),
    ("rz", 1, 1),
    ("p", 1, 1),
    ("u1", 1, 1),
    ("u2", 1, 2),
    ("u3", 1, 3),
    ("u", 1, 3),
    ("cx", 2, 0),
    ("cnot", 2, 0),
    ("cy", 2, 0),
    ("cz", 2, 0),
    ("ch", 2, 0),
    ("swap", 2, 0),
    ("iswap", 2, 0),
    ("cp", 2, 1),
    ("cu1", 2, 1),
    ("cphase", 2, 1),
    ("crx", 2, 1),
    ("cry", 2, 1),
    ("crz", 2, 1),
    ("rxx", 2, 1),
    ("ryy", 2, 1),
    ("rzz", 2, 1),
    ("ccx", 3, 0),
    ("toffoli", 3, 0),
    ("cswap", 3, 0),
    ("fredkin", 3, 0),
];

impl Gate {
    /// Builds a gate from its (case-insensitive) name and parameters; `None` when the name is
    /// unknown or the number of parameters is wrong.
    pub fn from_name(name: &str, params: &[f64]) -> Option<Gate> {
        let lower = name.to_ascii_lowercase();
        let (_, _, nparams) = GATE_NAMES.iter().find(|(n, _, _)| *n == lower)?;
        if *nparams != params.len() {
            return None;
        }
        let p = |i: usize| params[i];
        Some(match lower.as_str() {
            "id" => Gate::I,
            "x" => Gate::X,
            "y" => Gate::Y,
            "z" => Gate::Z,
            "h" => Gate::H,
            "s" => Gate::S,
            "sdg" => Gate::Sdg,
            "t" => Gate::T,
            "tdg" => Gate::Tdg,
            "sx" => Gate::SX,
            "sxdg" => Gate::SXdg,
            "rx" => Gate::RX(p(0)),
            "ry" => Gate::RY(p(0)),
            "rz" => Gate::RZ(p(0)),
            "p" | "u1" => Gate::P(p(0)),
            "u2" => Gate::U2(p(0), p(1)),
            "u3" | "u" => Gate::U3(p(0), p(1), p(2)),
            "cx" | "cnot" => Gate::CX,
            "cy" => Gate::CY,
            "cz" => Gate::CZ,
            "ch" => Gate::CH,
            "swap" => Gate::Swap,
            "iswap" => Gate::ISwap,
            "cp" | "cu1" | "cphase" => Gate::CP(p(0)),
            "crx" => Gate::CRX(p(0)),
            "cry" => Gate::CRY(p(0)),
            "crz" => Gate::CRZ(p(0)),
            "rxx" => Gate::RXX(p(0)),
            "ryy" => Gate::RYY(p(0)),
            "rzz" => Gate::RZZ(p(0)),
            "ccx" | "toffoli" => Gate::CCX,
            "cswap" | "fredkin" => Gate::CSwap,
            _ => return None,
        })
    }

    /// The canonical lowercase name (`unitary` for arbitrary matrices).
    pub fn name(&self) -> &'static str {
        match self {
            Gate::I => "id",
            Gate::X => "x",
            Gate::Y => "y",
            Gate::Z => "z",
            Gate::H => "h",
            Gate::S => "s",
            Gate::Sdg => "sdg",
            Gate::T => "t",
            Gate::Tdg => "tdg",
            Gate::SX => "sx",
            Gate::SXdg => "sxdg",
            Gate::RX(_) => "rx",
            Gate::RY(_) => "ry",
            Gate::RZ(_) => "rz",
            Gate::P(_) => "p",
            Gate::U2(..) => "u2",
            Gate::U3(..) => "u3",
            Gate::CX => "cx",
            Gate::CY => "cy",
            Gate::CZ => "cz",
            Gate::CH => "ch",
            Gate::Swap => "swap",
            Gate::ISwap => "iswap",
            Gate::CP(_) => "cp",
            Gate::CRX(_) => "crx",
            Gate::CRY(_) => "cry",
            Gate::CRZ(_) => "crz",
            Gate::RXX(_) => "rxx",
            Gate::RYY(_) => "ryy",
            Gate::RZZ(_) => "rzz",
            Gate::CCX => "ccx",
            Gate::CSwap => "cswap",
            Gate::Unitary1(_) | Gate::Unitary2(_) => "unitary",
        }
    }

    /// How many qubits the gate acts on.
    pub fn num_qubits(&self) -> usize {
        match self {
            Gate::CX
            | Gate::CY
            | Gate::CZ
            | Gate::CH
            | Gate::Swap
            | Gate::ISwap
            | Gate::CP(_)
            | Gate::CRX(_)
            | Gate::CRY(_)
            | Gate::CRZ(_)
            | Gate::RXX(_)
            | Gate::RYY(_)
            | Gate::RZZ(_)
            | Gate::Unitary2(_) => 2,
            Gate::CCX | Gate::CSwap => 3,
            _ => 1,
        }
    }

    /// The angles, in the order QASM writes them.
    pub fn params(&self) -> Vec<f64> {
        match *self {
            Gate::RX(a)
            | Gate::RY(a)
            | Gate::RZ(a)
            | Gate::P(a)
            | Gate::CP(a)
            | Gate::CRX(a)
            | Gate::CRY(a)
            | Gate::CRZ(a)
            | Gate::RXX(a)
            | Gate::RYY(a)
            | Gate::RZZ(a) => vec![a],
            Gate::U2(a, b) => vec![a, b],
            Gate::U3(a, b, c) => vec![a, b, c],
            _ => Vec::new(),
        }
    }

    /// Whether the matrix is diagonal in the computational basis.
    pub fn is_diagonal(&self) -> bool {
        matches!(
            self,
            Gate::I
                | Gate::Z
                | Gate::S
                | Gate::Sdg
                | Gate::T
                | Gate::Tdg
                | Gate::RZ(_)
                | Gate::P(_)
                | Gate::CZ
                | Gate::CP(_)
                | Gate::CRZ(_)
                | Gate::RZZ(_)
        )
    }

    /// The inverse gate.
    pub fn inverse(&self) -> Gate {
        match self {
            Gate::S => Gate::Sdg,
            Gate::Sdg => Gate::S,
            Gate::T => Gate::Tdg,
            Gate::Tdg => Gate::T,
            Gate::SX => Gate::SXdg,
            Gate::SXdg => Gate::SX,
            Gate::RX(a) => Gate::RX(-a),
            Gate::RY(a) => Gate::RY(-a),
            Gate::RZ(a) => Gate::RZ(-a),
            Gate::P(a) => Gate::P(-a),
            Gate::U2(phi, lam) => Gate::U3(-std::f64::consts::FRAC_PI_2, -lam, -phi),
            Gate::U3(t, phi, lam) => Gate::U3(-t, -lam, -phi),
            Gate::CP(a) => Gate::CP(-a),
            Gate::CRX(a) => Gate::CRX(-a),
            Gate::CRY(a) => Gate::CRY(-a),
            Gate::CRZ(a) => Gate::CRZ(-a),
            Gate::RXX(a) => Gate::RXX(-a),
            Gate::RYY(a) => Gate::RYY(-a),
            Gate::RZZ(a) => Gate::RZZ(-a),
            Gate::ISwap => Gate::Unitary2(Box::new(dagger4(&Gate::ISwap.matrix4()))),
            Gate::Unitary1(m) => Gate::Unitary1(Box::new(dagger2(m))),
            Gate::Unitary2(m) => Gate::Unitary2(Box::new(dagger4(m))),
            other => other.clone(),
        }
    }

    /// The 2x2 matrix of a one-qubit gate (identity for others; check `num_qubits` first).
    pub fn matrix2(&self) -> Mat2 {
        let c = C64::new;
        let z = C64::ZERO;
        let one = C64::ONE;
        let r = FRAC_1_SQRT_2;
        match *self {
            Gate::X => [z, one, one, z],
            Gate::Y => [z, c(0.0, -1.0), c(0.0, 1.0), z],
            Gate::Z => [one, z, z, c(-1.0, 0.0)],
            Gate::H => [c(r, 0.0), c(r, 0.0), c(r, 0.0), c(-r, 0.0)],
            Gate::S => [one, z, z, C64::I],
            Gate::Sdg => [one, z, z, c(0.0, -1.0)],
            Gate::T => [one, z, z, C64::cis(std::f64::consts::FRAC_PI_4)],
            Gate::Tdg => [one, z, z, C64::cis(-std::f64::consts::FRAC_PI_4)],
            Gate::SX => [c(0.5, 0.5), c(0.5, -0.5), c(0.5, -0.5), c(0.5, 0.5)],
            Gate::SXdg => [c(0.5, -0.5), c(0.5, 0.5), c(0.5, 0.5), c(0.5, -0.5)],
            Gate::RX(a) => {
                let (s, co) = (a / 2.0).sin_cos();
                [c(co, 0.0), c(0.0, -s), c(0.0, -s), c(co, 0.0)]
            }
            Gate::RY(a) => {
                let (s, co) = (a / 2.0).sin_cos();
                [c(co, 0.0), c(-s, 0.0), c(s, 0.0), c(co, 0.0)]
            }
            Gate::RZ(a) => [C64::cis(-a / 2.0), z, z, C64::cis(a / 2.0)],
            Gate::P(a) => [one, z, z, C64::cis(a)],
            Gate::U2(phi, lam) => u3(std::f64::consts::FRAC_PI_2, phi, lam),
            Gate::U3(t, phi, lam) => u3(t, phi, lam),
            Gate::Unitary1(ref m) => **m,
            _ => [one, z, z, one],
        }
    }

    /// The 4x4 matrix of a two-qubit gate (basis as in the module doc).
    pub fn matrix4(&self) -> Mat4 {
        let one = C64::ONE;
        let z = C64::ZERO;
        // Controlled-U with the control on q0 (bit 0) and U on q1.
        let controlled = |u: Mat2| -> Mat4 {
            let mut m = [z; 16];
            m[0] = one; // |00>
            m[2 * 4 + 2] = one; // |q1=1,q0=0>
            m[4 + 1] = u[0];
            m[4 + 3] = u[1];
            m[3 * 4 + 1] = u[2];
            m[3 * 4 + 3] = u[3];
            m
        };
        match *self {
            Gate::CX => controlled(Gate::X.matrix2()),
            Gate::CY => controlled(Gate::Y.matrix2()),
            Gate::CZ => controlled(Gate::Z.matrix2()),
            Gate::CH => controlled(Gate::H.matrix2()),
            Gate::CP(a) => controlled(Gate::P(a).matrix2()),
            Gate::CRX(a) => controlled(Gate::RX(a).matrix2()),
            Gate::CRY(a) => controlled(Gate::RY(a).matrix2()),
            Gate::CRZ(a) => controlled(Gate::RZ(a).matrix2()),
            Gate::Swap => {
                let mut m = [z; 16];
                m[0] = one;
                m[4 + 2] = one;
                m[2 * 4 + 1] = one;
                m[15] = one;
                m
            }
            Gate::ISwap => {
                let mut m = [z; 16];
                m[0] = one;
                m[4 + 2] = C64::I;
                m[2 * 4 + 1] = C64::I;
                m[15] = one;
                m
            }
            Gate::RXX(a) | Gate::RYY(a) => {
                // exp(-i a/2 P⊗P): cos on the diagonal, -i sin on the anti-diagonal, with
                // YY's signs on the |00>,|11> pair flipped.
                let (s, co) = (a / 2.0).sin_cos();
                let yy = matches!(self, Gate::RYY(_));
                let mut m = [z; 16];
                for k in 0..4 {
                    m[k * 4 + k] = C64::new(co, 0.0);
                }
                let outer = if yy {
                    C64::new(0.0, s)
                } else {
                    C64::new(0.0, -s)
                };
                let inner = C64::new(0.0, -s);
                m[3] = outer;
                m[3 * 4] = outer;
                m[4 + 2] = inner;
                m[2 * 4 + 1] = inner;
                m
            }
            Gate::RZZ(a) => {
                let mut m = [z; 16];
                let even = C64::cis(-a / 2.0);
                let odd = C64::cis(a / 2.0);
                m[0] = even;
                m[5] = odd;
                m[10] = odd;
                m[15] = even;
                m
            }
            Gate::Unitary2(ref m) => **m,
            _ => {
                if self.num_qubits() == 1 {
                    kron2(&Gate::I.matrix2(), &self.matrix2())
                } else {
                    let mut m = [z; 16];
                    for k in 0..4 {
                        m[k * 4 + k] = one;
                    }
                    m
                }
            }
        }
    }

    /// The 8x8 matrix of a three-qubit gate, basis `bit(q0) + 2·bit(q1) + 4·bit(q2)`.
    pub fn matrix8(&self) -> [C64; 64] {
        let mut m = [C64::ZERO; 64];
        let perm: [usize; 8] = match self {
            // controls q0, q1; target q2: |q0=1,q1=1,q2> flips q2.
            Gate::CCX => [0, 1, 2, 7, 4, 5, 6, 3],
            // control q0; swap q1, q2.
            Gate::CSwap => [0, 1, 2, 5, 4, 3, 6, 7],
            _ => [0, 1, 2, 3, 4, 5, 6, 7],
        };
        for (col, row) in perm.iter().enumerate() {
            m[row * 8 + col] = C64::ONE;
        }
        m
    }
}

/// The generic one-qubit rotation `U(θ, φ, λ)` of OpenQASM.
pub fn u3(theta: f64, phi: f64, lambda: f64) -> Mat2 {
    let (s, c) = (theta / 2.0).sin_cos();
    [
        C64::new(c, 0.0),
        -C64::cis(lambda).scale(s),
        C64::cis(phi).scale(s),
        C64::cis(phi + lambda).scale(c),
    ]
}

/// `(θ, φ, λ, global phase)` with `m = e^{i·phase} · U3(θ, φ, λ)` for a 2x2 unitary `m`.
pub fn zyz_angles(m: &Mat2) -> (f64, f64, f64, f64) {
    let a = m[0].abs();
    let b = m[2].abs();
    let theta = 2.0 * b.atan2(a);
    let arg = |z: C64| z.im.atan2(z.re);
    if b < 1e-12 {
        // Diagonal: only φ+λ is defined.
        let phase = arg(m[0]);
        let lambda = arg(m[3]) - phase;
        (0.0, 0.0, lambda, phase)
    } else if a < 1e-12 {
        let phi_plus_phase = arg(m[2]);
        let lambda_plus_phase = arg(-m[1]);
        // choose phase = 0 for φ, put the rest in λ
        let phase = 0.0;
        (
            theta,
            phi_plus_phase - phase,
            lambda_plus_phase - phase,
            phase,
        )
    } else {
        let phase = arg(m[0]);
        let phi = arg(m[2]) - phase;
        let lambda = arg(-m[1]) - phase;
        (theta, phi, lambda, phase)
    }
}
