//! The state vector and its kernels.
//!
//! Every kernel walks the index space as pairs (or quadruples) of contiguous slices: for a
//! gate on qubit `t`, the amplitudes come in blocks of `2^(t+1)` whose lower half has bit `t`
//! clear and upper half has it set, so `split_at_mut` gives two slices zipped element by
//! element — unit-stride loops the compiler vectorizes, with no index arithmetic and no
//! `unsafe`. Large states are cut into tasks of [`TASK`] amplitudes for rayon; when a block is
//! larger than a task (high target qubits), the two halves are cut in lockstep instead.

use rayon::prelude::*;

use crate::complex::{C64, Mat2, Mat4, swap_qubits4};
use crate::memory::{self, MemoryError};
use crate::rng::Rng;

/// Amplitudes per parallel task (256 KiB): large enough to amortize scheduling, small
/// enough to balance two to a few dozen threads.
pub const TASK: usize = 1 << 14;

/// States smaller than this run on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 15;

/// A pure state of `n` qubits: `2^n` complex amplitudes, index bit `k` is qubit `k`.
#[derive(Debug, PartialEq)]
pub struct StateVector {
    num_qubits: usize,
    amps: Vec<C64>,
}

impl Clone for StateVector {
    fn clone(&self) -> StateVector {
        StateVector {
            num_qubits: self.num_qubits,
            amps: self.amps.clone(),
        }
    }

    /// Reuses this state's buffer: a run that restarts every shot from the same state copies
    /// it instead of allocating `16 · 2^n` bytes per shot.
    fn clone_from(&mut self, source: &StateVector) {
        self.num_qubits = source.num_qubits;
        self.amps.clone_from(&source.amps);
    }
}

impl StateVector {
    /// |0…0> on `num_qubits` qubits. This allocates `16 · 2^n` bytes and, like any `Vec`,
    /// aborts the process when the system refuses them: for states whose size comes from
    /// input, use [`StateVector::try_zero`].
    pub fn zero(num_qubits: usize) -> StateVector {
        let mut amps = vec![C64::ZERO; 1usize << num_qubits];
        amps[0] = C64::ONE;
        StateVector { num_qubits, amps }
    }

    /// |0…0> on `num_qubits` qubits, or an error when the memory cannot be had. Check the
    /// size first with [`crate::memory::check`]; this catches what the check cannot see
    /// (memory taken in between, an overcommit policy that refuses).
    pub fn try_zero(num_qubits: usize) -> Result<StateVector, MemoryError> {
        let len = u32::try_from(num_qubits)
            .ok()
            .and_then(|n| 1usize.checked_shl(n))
            .ok_or_else(|| memory::allocation_failed(num_qubits))?;
        let mut amps = Vec::new();
        amps.try_reserve_exact(len)
            .map_err(|_| memory::allocation_failed(num_qubits))?;
        amps.resize(len, C64::ZERO);
        amps[0] = C64::ONE;
        Ok(StateVector { num_qubits, amps })
    }

    /// A copy in newly allocated memory, or an error when the memory cannot be had.
    pub fn try_clone(&self) -> Result<StateVector, MemoryError> {
        let mut amps = Vec::new();
        amps.try_reserve_exact(self.amps.len())
            .map_err(|_| memory::allocation_failed(self.num_qubits))?;
        amps.extend_from_slice(&self.amps);
        Ok(StateVector {
            num_qubits: self.num_qubits,
            amps,
        })
    }

    /// Back to |0…0>, keeping the buffer.
    pub fn set_zero(&mut self) {
        self.amps.fill(C64::ZERO);
        if let Some(first) = self.amps.first_mut() {
            *first = C64::ONE;
        }
    }

    /// A state from its amplitudes (the length must be a power of two).
    pub fn from_amplitudes(amps: Vec<C64>) -> Option<StateVector> {
        if !amps.len().is_power_of_two() {
            return None;
        }
        Some(StateVector {
            num_qubits: amps.len().trailing_zeros() as usize,
            amps,
        })
    }

    pub fn num_qubits(&self) -> usize {
        self.num_qubits
    }

    pub fn amplitudes(&self) -> &[C64] {
        &self.amps
    }

    pub fn amplitude(&self, index: usize) -> C64 {
        self.amps.get(index).copied().unwrap_or(C64::ZERO)
    }

    fn parallel(&self) -> bool {
        self.amps.len() >= PARALLEL_THRESHOLD && rayon::current_num_threads() > 1
    }

    /// Applies the 2x2 matrix `m` to qubit `t`.
    pub fn apply_mat1(&mut self, t: usize, m: &Mat2) {
        let stride = 1usize << t;
        let block = stride << 1;
        let m = *m;
        if !self.parallel() {
            mat1_chunk(&mut self.amps, t, &m);
        } else if block <= TASK {
            self.amps
                .par_chunks_mut(TASK)
                .for_each(|c| mat1_chunk(c, t, &m));
        } else {
            for outer in self.amps.chunks_exact_mut(block) {
                let (lo, hi) = outer.split_at_mut(stride);
                lo.par_chunks_mut(TASK / 2)
                    .zip(hi.par_chunks_mut(TASK / 2))
                    .for_each(|(a, b)| mat1_pairs(a, b, &m));
            }
        }
    }

    /// Applies the 4x4 matrix `m` to qubits `[q0, q1]` (basis `bit(q0) + 2·bit(q1)`).
    pub fn apply_mat2(&mut self, q0: usize, q1: usize, m: &Mat4) {
        let (a, b, m) = if q0 < q1 {
            (q0, q1, *m)
        } else {
            (q1, q0, swap_qubits4(m))
        };
        let sb = 1usize << b;
        let blockb = sb << 1;
        let blocka = 2usize << a;
        if !self.parallel() {
            for outer in self.amps.chunks_exact_mut(blockb) {
                let (h0, h1) = outer.split_at_mut(sb);
                mat2_halves(h0, h1, a, &m);
            }
        } else if blockb <= TASK {
            self.amps.par_chunks_mut(TASK).for_each(|c| {
                for outer in c.chunks_exact_mut(blockb) {
                    let (h0, h1) = outer.split_at_mut(sb);
                    mat2_halves(h0, h1, a, &m);
                }
            });
        } else {
            let piece = blocka.max(TASK / 2);
            for outer in self.amps.chunks_exact_mut(blockb) {
                let (h0, h1) = outer.split_at_mut(sb);
                h0.par_chunks_mut(piece)
                    .zip(h1.par_chunks_mut(piece))
                    .for_each(|(x, y)| mat2_halves(x, y, a, &m));
            }
        }
    }

    /// Multiplies every amplitude by the phase a diagonal run assigns to its index.
    pub fn apply_diagonal(&mut self, diag: &DiagonalRun) {
        let l = self.num_qubits.min(DIAG_LOW_BITS);
        let block = 1usize << l;
        let plan = DiagonalPlan::new(diag, l);
        if self.parallel() {
            self.amps.par_chunks_mut(block).enumerate().for_each_init(
                || vec![C64::ZERO; block],
                |table, (k, c)| plan.apply_block(k << l, c, table),
            );
        } else {
            let mut table = vec![C64::ZERO; block];
            for (k, c) in self.amps.chunks_mut(block).enumerate() {
                plan.apply_block(k << l, c, &mut table);
            }
        }
    }

    /// Toffoli: flips `t` where `c0` and `c1` are both 1.
    pub fn apply_ccx(&mut self, c0: usize, c1: usize, t: usize) {
        let cm = (1usize << c0) | (1usize << c1);
        let tb = 1usize << t;
        for i in 0..self.amps.len() {
            if i & cm == cm && i & tb == 0 {
                self.amps.swap(i, i | tb);
            }
        }
    }

    /// Fredkin: swaps `a` and `b` where `c` is 1.
    pub fn apply_cswap(&mut self, c: usize, a: usize, b: usize) {
        let cb = 1usize << c;
        let (ab, bb) = (1usize << a, 1usize << b);
        for i in 0..self.amps.len() {
            if i & cb != 0 && i & ab != 0 && i & bb == 0 {
                self.amps.swap(i, i ^ ab ^ bb);
            }
        }
    }

    /// Probability that measuring qubit `q` gives 1.
    pub fn probability_one(&self, q: usize) -> f64 {
        let bit = 1usize << q;
        if self.parallel() {
            self.amps
                .par_iter()
                .enumerate()
                .with_min_len(TASK)
                .filter(|(i, _)| i & bit != 0)
                .map(|(_, a)| a.norm_sqr())
                .sum()
        } else {
            self.amps
                .iter()
                .enumerate()
                .filter(|(i, _)| i & bit != 0)
                .map(|(_, a)| a.norm_sqr())
                .sum()
        }
    }

    /// Measures qubit `q`, collapsing the state; returns the outcome.
    pub fn measure(&mut self, q: usize, rng: &mut Rng) -> bool {
        let p1 = self.probability_one(q);
        let one = rng.uniform() < p1;
        self.collapse(q, one, if one { p1 } else { 1.0 - p1 });
        one
    }

    /// Projects qubit `q` onto `value` and renormalizes (`probability` of that outcome).
    pub fn collapse(&mut self, q: usize, value: bool, probability: f64) {
        let bit = 1usize << q;
        let scale = if probability > 0.0 {
            1.0 / probability.sqrt()
        } else {
            0.0
        };
        let f = |(i, a): (usize, &mut C64)| {
            if (i & bit != 0) == value {
                *a = a.scale(scale);
            } else {
                *a = C64::ZERO;
            }
        };
        if self.parallel() {
            self.amps
                .par_iter_mut()
                .enumerate()
                .with_min_len(TASK)
                .for_each(f);
        } else {
            self.amps.iter_mut().enumerate().for_each(f);
        }
    }

    /// Measures qubit `q` and flips it back to |0> when it was 1.
    pub fn reset(&mut self, q: usize, rng: &mut Rng) {
        if self.measure(q, rng) {
            self.apply_mat1(q, &crate::gate::Gate::X.matrix2());
        }
    }

    /// `|amplitude|²` of every basis state.
    pub fn probabilities(&self) -> Vec<f64> {
        if self.parallel() {
            self.amps.par_iter().map(|a| a.norm_sqr()).collect()
        } else {
            self.amps.iter().map(|a| a.norm_sqr()).collect()
        }
    }

    /// `<ψ|ψ>`.
    pub fn norm_sqr(&self) -> f64 {
        if self.parallel() {
            self.amps.par_iter().map(|a| a.norm_sqr()).sum()
        } else {
            self.amps.iter().map(|a| a.norm_sqr()).sum()
        }
    }

    /// `<ψ|P|ψ>` for the Pauli string with X-part `x_mask`, Z-part `z_mask` (Y sets both) and
    /// `ny` Y factors.
    pub fn pauli_expectation(&self, x_mask: usize, z_mask: usize, ny: u32) -> f64 {
        let amps = &self.amps;
        // P|i> = i^ny (-1)^{|i & z|} |i ^ x>, so <P> = Σ conj(ψ[i^x]) ψ[i] i^ny (-1)^{|i&z|}.
        let term = |i: usize| -> C64 {
            let v = amps[i ^ x_mask].conj() * amps[i];
            if (i & z_mask).count_ones() % 2 == 1 {
                -v
            } else {
                v
            }
        };
        let sum: C64 = if self.parallel() {
            (0..amps.len())
                .into_par_iter()
                .with_min_len(TASK)
                .map(term)
                .reduce(|| C64::ZERO, |a, b| a + b)
        } else {
            (0..amps.len()).map(term).fold(C64::ZERO, |a, b| a + b)
        };
        let phase = match ny % 4 {
            0 => C64::ONE,
            1 => C64::I,
            2 => -C64::ONE,
            _ => -C64::I,
        };
        (phase * sum).re
    }

    /// `|<self|other>|²`.
    pub fn fidelity(&self, other: &StateVector) -> f64 {
        let ip = self
            .amps
            .iter()
            .zip(&other.amps)
            .fold(C64::ZERO, |acc, (a, b)| acc + a.conj() * *b);
        ip.norm_sqr()
    }
}

#[inline]
fn mat1_chunk(c: &mut [C64], t: usize, m: &Mat2) {
    if t == 0 {
        for p in c.chunks_exact_mut(2) {
            let (x, y) = (p[0], p[1]);
            p[0] = m[0] * x + m[1] * y;
            p[1] = m[2] * x + m[3] * y;
        }
    } else {
        let stride = 1usize << t;
        for blk in c.chunks_exact_mut(stride << 1) {
            let (lo, hi) = blk.split_at_mut(stride);
            mat1_pairs(lo, hi, m);
        }
    }
}

#[inline]
fn mat1_pairs(lo: &mut [C64], hi: &mut [C64], m: &Mat2) {
    let [m0, m1, m2, m3] = *m;
    for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
        let (x, y) = (*a, *b);
        *a = m0 * x + m1 * y;
        *b = m2 * x + m3 * y;
    }
}

/// `h0` has the high qubit clear, `h1` set; both are cut in blocks of `2^(a+1)` for the low
/// qubit `a`.
#[inline]
fn mat2_halves(h0: &mut [C64], h1: &mut [C64], a: usize, m: &Mat4) {
    #[inline(always)]
    fn quad(m: &Mat4, p0: &mut C64, p1: &mut C64, p2: &mut C64, p3: &mut C64) {
        let (x0, x1, x2, x3) = (*p0, *p1, *p2, *p3);
        *p0 = m[0] * x0 + m[1] * x1 + m[2] * x2 + m[3] * x3;
        *p1 = m[4] * x0 + m[5] * x1 + m[6] * x2 + m[7] * x3;
        *p2 = m[8] * x0 + m[9] * x1 + m[10] * x2 + m[11] * x3;
        *p3 = m[12] * x0 + m[13] * x1 + m[14] * x2 + m[15] * x3;
    }
    if a == 0 {
        for (c0, c1) in h0.chunks_exact_mut(2).zip(h1.chunks_exact_mut(2)) {
            let (x0, x1) = c0.split_at_mut(1);
            let (x2, x3) = c1.split_at_mut(1);
            quad(m, &mut x0[0], &mut x1[0], &mut x2[0], &mut x3[0]);
        }
        return;
    }
    let sa = 1usize << a;
    for (c0, c1) in h0
        .chunks_exact_mut(sa << 1)
        .zip(h1.chunks_exact_mut(sa << 1))
    {
        let (x0, x1) = c0.split_at_mut(sa);
        let (x2, x3) = c1.split_at_mut(sa);
        for (((p0, p1), p2), p3) in x0
            .iter_mut()
            .zip(x1.iter_mut())
            .zip(x2.iter_mut())
            .zip(x3.iter_mut())
        {
            quad(m, p0, p1, p2, p3);
        }
    }
}

/// Low index bits a diagonal run tabulates per block.
const DIAG_LOW_BITS: usize = 10;

/// A product of commuting diagonal gates: `global · Π_{(mask, phase)} phase^{[i & mask == mask]}`
/// for basis index `i`. One- and two-qubit diagonal gates become at most three terms each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiagonalRun {
    pub global: C64,
    /// (mask of one or two bits, phase), one entry per mask.
    pub terms: Vec<(usize, C64)>,
}

impl DiagonalRun {
    pub fn new() -> DiagonalRun {
        DiagonalRun {
            global: C64::ONE,
            terms: Vec::new(),
        }
    }

    fn term(&mut self, mask: usize, phase: C64) {
        if phase.approx_eq(C64::ONE, 1e-15) {
            return;
        }
        match self.terms.iter_mut().find(|(m, _)| *m == mask) {
            Some((_, p)) => *p *= phase,
            None => self.terms.push((mask, phase)),
        }
    }

    /// Adds `diag(d0, d1)` on qubit `q`.
    pub fn push1(&mut self, q: usize, d0: C64, d1: C64) {
        self.global *= d0;
        self.term(1 << q, d1 * d0.conj());
    }

    /// Adds the diagonal `d[k]`, `k = bit(q0) + 2·bit(q1)`.
    pub fn push2(&mut self, q0: usize, q1: usize, d: [C64; 4]) {
        self.global *= d[0];
        let inv0 = d[0].conj();
        self.term(1 << q0, d[1] * inv0);
        self.term(1 << q1, d[2] * inv0);
        self.term((1 << q0) | (1 << q1), d[3] * d[0] * (d[1] * d[2]).conj());
    }

    /// The qubits any term touches.
    pub fn mask(&self) -> usize {
        self.terms.iter().fold(0, |acc, (m, _)| acc | m)
    }
}

/// A [`DiagonalRun`] prepared for one state size: terms split by whether they touch only the
/// low `l` bits (tabulated once), only high bits (a scalar per block), or one of each (a
/// per-bit factor activated by the block's high bits).
struct DiagonalPlan {
    low_table: Vec<C64>,
    high: Vec<(usize, C64)>,
    mixed: Vec<(usize, usize, C64)>,
    global: C64,
    l: usize,
}

impl DiagonalPlan {
    fn new(run: &DiagonalRun, l: usize) -> DiagonalPlan {
        let low_mask = (1usize << l) - 1;
        let mut low_terms = Vec::new();
        let mut high = Vec::new();
        let mut mixed = Vec::new();
        for &(mask, phase) in &run.terms {
            if mask & !low_mask == 0 {
                low_terms.push((mask, phase));
            } else if mask & low_mask == 0 {
                high.push((mask, phase));
            } else {
                // Two bits, one low and one high.
                let lo_bit = (mask & low_mask).trailing_zeros() as usize;
                mixed.push((mask & !low_mask, lo_bit, phase));
            }
        }
        let low_table = (0..1usize << l)
            .map(|i| {
                low_terms
                    .iter()
                    .filter(|(m, _)| i & m == *m)
                    .fold(C64::ONE, |acc, (_, p)| acc * *p)
            })
            .collect();
        DiagonalPlan {
            low_table,
            high,
            mixed,
            global: run.global,
            l,
        }
    }

    fn apply_block(&self, base: usize, block: &mut [C64], table: &mut [C64]) {
        let scalar = self
            .high
            .iter()
            .filter(|(m, _)| base & m == *m)
            .fold(self.global, |acc, (_, p)| acc * *p);
        let mut factors = [C64::ONE; DIAG_LOW_BITS];
        let mut any = false;
        for &(hi, bit, phase) in &self.mixed {
            if base & hi == hi {
                factors[bit] *= phase;
                any = true;
            }
        }
        if !any {
            for (a, t) in block.iter_mut().zip(&self.low_table) {
                *a *= *t * scalar;
            }
            return;
        }
        // Per-bit factors to a table by doubling: table[i] = Π_{bit b of i} factors[b].
        table[0] = scalar;
        for (b, f) in factors.iter().enumerate().take(self.l) {
            let (done, next) = table[..2 << b].split_at_mut(1 << b);
            for (n, d) in next.iter_mut().zip(done.iter()) {
                *n = *d * *f;
            }
        }
        for ((a, t), lt) in block.iter_mut().zip(table.iter()).zip(&self.low_table) {
            *a *= *t * *lt;
        }
    }
}
