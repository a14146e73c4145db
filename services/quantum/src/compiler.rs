//! The circuit compiler: parse, validate, optimize (cancel adjacent inverses, merge
//! rotations, fuse one-qubit runs), translate to a device's native gates, and route two-qubit
//! gates along its coupling map with SWAPs. Every pass is deterministic, so the same input and
//! options give byte-identical AQO.

use std::collections::{HashMap, VecDeque};
use std::f64::consts::{FRAC_PI_2, TAU};

use qsim::complex::{Mat2, mul2};
use qsim::gate::{Gate, zyz_angles};
use qsim::{Circuit, Op};

/// What a device accepts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Target {
    /// Native gate names; empty: every gate.
    pub native_gates: Vec<String>,
    /// Undirected pairs of physical qubits; empty: all-to-all.
    pub coupling_map: Vec<(u32, u32)>,
    /// Physical qubits (0: unlimited).
    pub num_qubits: usize,
}

/// The compiler's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub circuit: Circuit,
    pub gates_before: usize,
    pub swaps: usize,
    pub report: Vec<String>,
    /// Logical qubit → physical qubit of the device, after routing (identity when unrouted).
    pub layout: Vec<usize>,
}

/// A program that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

/// Parses `source` in `format` (`qasm2`, `qasm3`, `aqo`), binding AQO parameters.
pub fn parse(
    source: &str,
    format: &str,
    bindings: &HashMap<String, f64>,
) -> Result<Circuit, CompileError> {
    let circuit =
        match format {
            "qasm2" => qsim::qasm::parse_qasm2(source)
                .map_err(|e| CompileError(format!("OpenQASM 2: {e}")))?,
            "qasm3" => qsim::qasm::parse_qasm3(source)
                .map_err(|e| CompileError(format!("OpenQASM 3: {e}")))?,
            "aqo" => {
                qsim::aqo::parse(source, bindings).map_err(|e| CompileError(format!("AQO: {e}")))?
            }
            other => {
                return Err(CompileError(format!(
                    "unknown format `{other}` (qasm2, qasm3, aqo)"
                )));
            }
        };
    circuit
        .validate()
        .map_err(|e| CompileError(e.to_string()))?;
    Ok(circuit)
}

/// Runs the passes on `circuit` for `target`.
pub fn compile(
    circuit: &Circuit,
    target: &Target,
    optimize: bool,
) -> Result<Compiled, CompileError> {
    circuit
        .validate()
        .map_err(|e| CompileError(e.to_string()))?;
    let mut report = vec![format!(
        "validate: {} qubits, {} gates, depth {}",
        circuit.num_qubits,
        circuit.gate_count(),
        circuit.depth()
    )];
    if target.num_qubits > 0 && circuit.num_qubits > target.num_qubits {
        return Err(CompileError(format!(
            "the circuit needs {} qubits; the device has {}",
            circuit.num_qubits, target.num_qubits
        )));
    }
    let gates_before = circuit.gate_count();
    let mut c = circuit.clone();
    if optimize {
        let before = c.gate_count();
        c = cancel_and_merge(&c);
        report.push(format!(
            "optimize: cancelled inverses and merged rotations, {before} → {} gates",
            c.gate_count()
        ));
    }
    if !target.native_gates.is_empty() {
        let before = c.gate_count();
        c = translate(&c, &target.native_gates)?;
        report.push(format!(
            "translate to {{{}}}: {before} → {} gates",
            target.native_gates.join(", "),
            c.gate_count()
        ));
    }
    let mut swaps = 0;
    let mut layout: Vec<usize> = (0..c.num_qubits).collect();
    if !target.coupling_map.is_empty() {
        let routed = route(&c, target)?;
        swaps = routed.1;
        layout = routed.2;
        c = routed.0;
        report.push(format!(
            "route on the coupling map: {swaps} SWAP(s) inserted"
        ));
        if !target.native_gates.is_empty() {
            c = translate(&c, &target.native_gates)?;
        }
    }
    if optimize {
        let before = c.gate_count();
        c = cancel_and_merge(&c);
        if !target.native_gates.is_empty() {
            c = fuse_one_qubit_runs(&c, &target.native_gates);
        }
        report.push(format!(
            "final optimize: {before} → {} gates, depth {}",
            c.gate_count(),
            c.depth()
        ));
    }
    Ok(Compiled {
        circuit: c,
        gates_before,
        swaps,
        report,
        layout,
    })
}

/// Rotation-like gates that add their angles: (kind, period of the angle).
fn rotation_kind(g: &Gate) -> Option<(&'static str, f64, f64)> {
    Some(match *g {
        Gate::RX(a) => ("rx", a, 2.0 * TAU),
        Gate::RY(a) => ("ry", a, 2.0 * TAU),
        Gate::RZ(a) => ("rz", a, 2.0 * TAU),
        Gate::P(a) => ("p", a, TAU),
        Gate::CP(a) => ("cp", a, TAU),
        Gate::CRX(a) => ("crx", a, 2.0 * TAU),
        Gate::CRY(a) => ("cry", a, 2.0 * TAU),
        Gate::CRZ(a) => ("crz", a, 2.0 * TAU),
        Gate::RXX(a) => ("rxx", a, 2.0 * TAU),
        Gate::RYY(a) => ("ryy", a, 2.0 * TAU),
        Gate::RZZ(a) => ("rzz", a, 2.0 * TAU),
        _ => return None,
    })
}

fn with_angle(kind: &str, a: f64) -> Option<Gate> {
    Gate::from_name(kind, &[a])
}

/// Whether a gate's qubit order does not matter.
fn symmetric(g: &Gate) -> bool {
    matches!(
        g,
        Gate::CZ | Gate::Swap | Gate::CP(_) | Gate::RXX(_) | Gate::RYY(_) | Gate::RZZ(_)
    )
}

fn angle_is_zero(a: f64, period: f64) -> bool {
    let r = a.rem_euclid(period);
    r.abs() < 1e-12 || (period - r).abs() < 1e-12
}

/// Cancels adjacent inverse pairs and merges adjacent rotations of one kind, using a stack of
/// the operations on each qubit so that a cancellation exposes the pair before it.
pub fn cancel_and_merge(c: &Circuit) -> Circuit {
    let mut out: Vec<Option<Op>> = Vec::with_capacity(c.ops.len());
    let mut stacks: Vec<Vec<usize>> = vec![Vec::new(); c.num_qubits];
    for op in &c.ops {
        if let Op::Gate {
            gate,
            qubits,
            condition: None,
        } = op
        {
            // The previous operation on every one of these qubits must be the same one.
            let prev = qubits.first().and_then(|&q| stacks[q].last().copied());
            let same = prev.filter(|&j| qubits.iter().all(|&q| stacks[q].last() == Some(&j)));
            if let Some(j) = same {
                if let Some(Op::Gate {
                    gate: g0,
                    qubits: q0,
                    condition: None,
                }) = &out[j]
                {
                    let same_qubits = q0 == qubits
                        || (symmetric(gate)
                            && q0.len() == 2
                            && q0[0] == qubits[1]
                            && q0[1] == qubits[0]);
                    if same_qubits && q0.len() == qubits.len() {
                        if *g0 == gate.inverse()
                            && !matches!(gate, Gate::Unitary1(_) | Gate::Unitary2(_))
                        {
                            out[j] = None;
                            for &q in qubits {
                                stacks[q].pop();
                            }
                            continue;
                        }
                        if let (Some((k0, a0, period)), Some((k1, a1, _))) =
                            (rotation_kind(g0), rotation_kind(gate))
                        {
                            if k0 == k1 && (q0 == qubits || symmetric(gate)) {
                                let sum = a0 + a1;
                                if angle_is_zero(sum, period) {
                                    out[j] = None;
                                    for &q in qubits {
                                        stacks[q].pop();
                                    }
                                } else if let Some(g) = with_angle(k0, sum) {
                                    out[j] = Some(Op::Gate {
                                        gate: g,
                                        qubits: q0.clone(),
                                        condition: None,
                                    });
                                }
                                continue;
                            }
                        }
                    }
                }
            }
            if let Some((_, a, period)) = rotation_kind(gate) {
                if angle_is_zero(a, period) {
                    continue;
                }
            }
            if *gate == Gate::I {
                continue;
            }
        }
        let i = out.len();
        let qs: Vec<usize> = match op {
            // Conditions and measurements depend on classical state: fence every qubit.
            Op::Measure { .. }
            | Op::Reset { .. }
            | Op::Gate {
                condition: Some(_), ..
            }
            | Op::Barrier { .. } => {
                if matches!(op, Op::Barrier { .. }) {
                    op.qubits().to_vec()
                } else {
                    (0..c.num_qubits).collect()
                }
            }
            _ => op.qubits().to_vec(),
        };
        for q in qs {
            stacks[q].push(i);
        }
        out.push(Some(op.clone()));
    }
    Circuit {
        ops: out.into_iter().flatten().collect(),
        ..c.clone()
    }
}

/// The gates of a standard decomposition into {one-qubit gates, CX}.
fn decompose(g: &Gate, q: &[usize]) -> Option<Vec<(Gate, Vec<usize>)>> {
    let (a, b) = (q.first().copied()?, q.get(1).copied().unwrap_or(0));
    let v = |g: Gate, qs: &[usize]| (g, qs.to_vec());
    Some(match g {
        Gate::CY
        | Gate::CZ
        | Gate::CH
        | Gate::CP(_)
        | Gate::CRX(_)
        | Gate::CRY(_)
        | Gate::CRZ(_) => {
            let m = g.matrix4();
            let u: Mat2 = [m[4 + 1], m[4 + 3], m[3 * 4 + 1], m[3 * 4 + 3]];
            controlled_u(&u, a, b)
        }
        Gate::Swap => vec![
            v(Gate::CX, &[a, b]),
            v(Gate::CX, &[b, a]),
            v(Gate::CX, &[a, b]),
        ],
        Gate::RZZ(t) => vec![
            v(Gate::CX, &[a, b]),
            v(Gate::RZ(*t), &[b]),
            v(Gate::CX, &[a, b]),
        ],
        Gate::RXX(t) => vec![
            v(Gate::H, &[a]),
            v(Gate::H, &[b]),
            v(Gate::CX, &[a, b]),
            v(Gate::RZ(*t), &[b]),
            v(Gate::CX, &[a, b]),
            v(Gate::H, &[a]),
            v(Gate::H, &[b]),
        ],
        Gate::RYY(t) => vec![
            v(Gate::RX(FRAC_PI_2), &[a]),
            v(Gate::RX(FRAC_PI_2), &[b]),
            v(Gate::CX, &[a, b]),
            v(Gate::RZ(*t), &[b]),
            v(Gate::CX, &[a, b]),
            v(Gate::RX(-FRAC_PI_2), &[a]),
            v(Gate::RX(-FRAC_PI_2), &[b]),
        ],
        Gate::ISwap => vec![
            v(Gate::S, &[a]),
            v(Gate::S, &[b]),
            v(Gate::H, &[a]),
            v(Gate::CX, &[a, b]),
            v(Gate::CX, &[b, a]),
            v(Gate::H, &[b]),
        ],
        Gate::CCX => {
            let c = q.get(2).copied()?;
            vec![
                v(Gate::H, &[c]),
                v(Gate::CX, &[b, c]),
                v(Gate::Tdg, &[c]),
                v(Gate::CX, &[a, c]),
                v(Gate::T, &[c]),
                v(Gate::CX, &[b, c]),
                v(Gate::Tdg, &[c]),
                v(Gate::CX, &[a, c]),
                v(Gate::T, &[b]),
                v(Gate::T, &[c]),
                v(Gate::H, &[c]),
                v(Gate::CX, &[a, b]),
                v(Gate::T, &[a]),
                v(Gate::Tdg, &[b]),
                v(Gate::CX, &[a, b]),
            ]
        }
        Gate::CSwap => {
            let c = q.get(2).copied()?;
            let mut out = vec![v(Gate::CX, &[c, b])];
            out.extend(decompose(&Gate::CCX, &[a, b, c])?);
            out.push(v(Gate::CX, &[c, b]));
            out
        }
        _ => return None,
    })
}

/// Controlled-U (control `c`, target `t`) as A·CX·B·CX·C plus a phase on the control, from
/// U = e^{iα} Rz(β) Ry(γ) Rz(δ).
fn controlled_u(u: &Mat2, c: usize, t: usize) -> Vec<(Gate, Vec<usize>)> {
    let (theta, phi, lambda, phase) = zyz_angles(u);
    let alpha = phase + (phi + lambda) / 2.0;
    let (beta, gamma, delta) = (phi, theta, lambda);
    vec![
        (Gate::RZ((delta - beta) / 2.0), vec![t]),
        (Gate::CX, vec![c, t]),
        (Gate::RZ(-(delta + beta) / 2.0), vec![t]),
        (Gate::RY(-gamma / 2.0), vec![t]),
        (Gate::CX, vec![c, t]),
        (Gate::RY(gamma / 2.0), vec![t]),
        (Gate::RZ(beta), vec![t]),
        (Gate::P(alpha), vec![c]),
    ]
}

/// A one-qubit gate in the native set: as is, or as U3 (global phase dropped).
fn native_1q(g: &Gate, native: &[String]) -> Result<Gate, CompileError> {
    if native.iter().any(|n| n == g.name()) {
        return Ok(g.clone());
    }
    if native.iter().any(|n| n == "u3" || n == "u") {
        let (t, p, l, _) = zyz_angles(&g.matrix2());
        return Ok(Gate::U3(t, p, l));
    }
    Err(CompileError(format!(
        "cannot express `{}` in the native gates {{{}}} (a native set needs u3)",
        g.name(),
        native.join(", ")
    )))
}

/// Rewrites every gate into `native` (which must contain `cx` and `u3` unless the gates are
/// already native).
pub fn translate(c: &Circuit, native: &[String]) -> Result<Circuit, CompileError> {
    let mut ops = Vec::with_capacity(c.ops.len());
    let has = |n: &str| native.iter().any(|x| x == n);
    for op in &c.ops {
        let Op::Gate {
            gate,
            qubits,
            condition,
        } = op
        else {
            ops.push(op.clone());
            continue;
        };
        if has(gate.name()) {
            ops.push(op.clone());
            continue;
        }
        let push = |ops: &mut Vec<Op>, g: Gate, q: Vec<usize>| {
            ops.push(Op::Gate {
                gate: g,
                qubits: q,
                condition: condition.clone(),
            })
        };
        if gate.num_qubits() == 1 {
            push(&mut ops, native_1q(gate, native)?, qubits.clone());
            continue;
        }
        if *gate == Gate::CX || !has("cx") {
            return Err(CompileError(format!(
                "cannot express `{}` in the native gates {{{}}}",
                gate.name(),
                native.join(", ")
            )));
        }
        let parts = decompose(gate, qubits).ok_or_else(|| {
            CompileError(format!(
                "cannot translate `{}` (an arbitrary two-qubit unitary) to {{{}}}",
                gate.name(),
                native.join(", ")
            ))
        })?;
        for (g, q) in parts {
            if g == Gate::CX {
                push(&mut ops, g, q);
            } else {
                push(&mut ops, native_1q(&g, native)?, q);
            }
        }
    }
    Ok(Circuit { ops, ..c.clone() })
}

/// Merges runs of one-qubit gates on a qubit into one U3 (when `u3` is native).
pub fn fuse_one_qubit_runs(c: &Circuit, native: &[String]) -> Circuit {
    if !native.iter().any(|n| n == "u3") {
        return c.clone();
    }
    let mut out: Vec<Option<Op>> = Vec::with_capacity(c.ops.len());
    let mut pending: Vec<Option<(usize, Mat2)>> = vec![None; c.num_qubits];
    let flush = |out: &mut Vec<Option<Op>>, slot: &mut Option<(usize, Mat2)>| {
        if let Some((i, m)) = slot.take() {
            let (t, p, l, _) = zyz_angles(&m);
            let identity = t.abs() < 1e-12
                && ((p + l).rem_euclid(TAU) < 1e-12 || (TAU - (p + l).rem_euclid(TAU)) < 1e-12);
            out[i] = if identity {
                None
            } else {
                Some(Op::Gate {
                    gate: Gate::U3(t, p, l),
                    qubits: vec![i_qubit(&out[i])],
                    condition: None,
                })
            };
        }
    };
    fn i_qubit(op: &Option<Op>) -> usize {
        op.as_ref()
            .and_then(|o| o.qubits().first().copied())
            .unwrap_or(0)
    }
    for op in &c.ops {
        match op {
            Op::Gate {
                gate,
                qubits,
                condition: None,
            } if qubits.len() == 1 => {
                let q = qubits[0];
                match &mut pending[q] {
                    Some((_, m)) => *m = mul2(&gate.matrix2(), m),
                    slot @ None => {
                        *slot = Some((out.len(), gate.matrix2()));
                        out.push(Some(op.clone()));
                    }
                }
            }
            _ => {
                let qs: Vec<usize> = match op {
                    Op::Gate {
                        condition: None,
                        qubits,
                        ..
                    } => qubits.clone(),
                    Op::Barrier { qubits } => qubits.clone(),
                    _ => (0..c.num_qubits).collect(),
                };
                for q in qs {
                    flush(&mut out, &mut pending[q]);
                }
                out.push(Some(op.clone()));
            }
        }
    }
    for slot in pending.iter_mut() {
        flush(&mut out, slot);
    }
    Circuit {
        ops: out.into_iter().flatten().collect(),
        ..c.clone()
    }
}

/// Shortest-path distances on the coupling graph: one BFS row per physical qubit, computed on
/// first use and kept (a 1000-qubit device needs at most 1000 rows of 2 KB).
struct Distances<'a> {
    adj: &'a [Vec<usize>],
    rows: Vec<Vec<u16>>,
}

impl Distances<'_> {
    const UNREACHABLE: u16 = u16::MAX;

    fn row(&mut self, from: usize) -> &[u16] {
        if self.rows[from].is_empty() {
            let mut d = vec![Self::UNREACHABLE; self.adj.len()];
            d[from] = 0;
            let mut queue = VecDeque::from([from]);
            while let Some(x) = queue.pop_front() {
                for &y in &self.adj[x] {
                    if d[y] == Self::UNREACHABLE {
                        d[y] = d[x] + 1;
                        queue.push_back(y);
                    }
                }
            }
            self.rows[from] = d;
        }
        &self.rows[from]
    }

    fn get(&mut self, a: usize, b: usize) -> u16 {
        self.row(b)[a]
    }
}

/// How many of a qubit's next two-qubit gates the router looks at, and their weights.
const LOOKAHEAD_WEIGHTS: [i64; 8] = [16, 12, 8, 6, 4, 3, 2, 1];

/// Routes on the coupling map: the trivial initial layout, then, before each two-qubit gate on
/// non-neighbours, SWAPs that each bring its two qubits one step closer (either end may move,
/// so they meet where it costs least). Among the SWAPs that do, the router takes the one that
/// best serves the next gates of the two qubits it moves (a weighted sum of their partners'
/// distances: a SABRE-style look-ahead, per qubit rather than over a window of the program,
/// which on a large device rarely touches the same qubits); ties go to the lowest physical
/// pair, so the result is deterministic. Distances come from BFS rows computed once per
/// physical qubit. The result is compacted to the physical qubits used.
/// Returns (circuit, swaps, logical → physical layout at the end).
pub fn route(c: &Circuit, target: &Target) -> Result<(Circuit, usize, Vec<usize>), CompileError> {
    let n_phys = target
        .coupling_map
        .iter()
        .map(|&(a, b)| a.max(b) as usize + 1)
        .max()
        .unwrap_or(0)
        .max(target.num_qubits)
        .max(c.num_qubits);
    if n_phys > 20_000 {
        return Err(CompileError(format!(
            "coupling maps of more than 20000 qubits are not supported ({n_phys})"
        )));
    }
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n_phys];
    for &(a, b) in &target.coupling_map {
        let (a, b) = (a as usize, b as usize);
        if a != b && !adj[a].contains(&b) {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    for list in &mut adj {
        list.sort_unstable();
    }
    let mut dist = Distances {
        adj: &adj,
        rows: vec![Vec::new(); n_phys],
    };
    // Each logical qubit's two-qubit gates, in order, as (partner); `next[q]` is the first
    // one not yet routed.
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); c.num_qubits];
    for op in &c.ops {
        if let Op::Gate { qubits, .. } = op {
            if qubits.len() > 2 {
                return Err(CompileError(
                    "routing needs gates of at most two qubits; translate to native gates first"
                        .into(),
                ));
            }
            if let [a, b] = qubits[..] {
                partners[a].push(b);
                partners[b].push(a);
            }
        }
    }
    let mut next = vec![0usize; c.num_qubits];
    let mut l2p: Vec<usize> = (0..c.num_qubits).collect();
    let mut p2l: Vec<Option<usize>> = (0..n_phys)
        .map(|p| (p < c.num_qubits).then_some(p))
        .collect();
    let mut ops = Vec::with_capacity(c.ops.len());
    let mut swaps = 0;
    let mut used = vec![false; n_phys];
    for op in &c.ops {
        let mut op = op.clone();
        if let Op::Gate { qubits, .. } = &op {
            if let [la, lb] = qubits[..] {
                next[la] += 1;
                next[lb] += 1;
                loop {
                    let (pa, pb) = (l2p[la], l2p[lb]);
                    let d = dist.get(pa, pb);
                    if d == Distances::UNREACHABLE {
                        return Err(CompileError(format!(
                            "physical qubits {pa} and {pb} are not connected in the coupling map"
                        )));
                    }
                    if d <= 1 {
                        break;
                    }
                    // (look-ahead cost change, low, high): the smallest wins.
                    let mut best: Option<(i64, usize, usize)> = None;
                    for (moving, other) in [(pa, pb), (pb, pa)] {
                        for &to in &adj[moving] {
                            if dist.get(to, other) >= d {
                                continue;
                            }
                            let mut delta = 0i64;
                            for (from, dest) in [(moving, to), (to, moving)] {
                                let Some(l) = p2l[from] else { continue };
                                let upcoming = partners[l].iter().skip(next[l]);
                                for (w, &partner) in LOOKAHEAD_WEIGHTS.iter().zip(upcoming) {
                                    // The partner may be the other qubit of this very swap.
                                    let pp = match l2p[partner] {
                                        p if p == from => dest,
                                        p if p == dest => from,
                                        p => p,
                                    };
                                    delta += w
                                        * (i64::from(dist.get(dest, pp))
                                            - i64::from(dist.get(from, pp)));
                                }
                            }
                            let key = (delta, moving.min(to), moving.max(to));
                            if best.is_none_or(|b| key < b) {
                                best = Some(key);
                            }
                        }
                    }
                    let Some((_, x, y)) = best else {
                        return Err(CompileError("the coupling map is inconsistent".into()));
                    };
                    ops.push(Op::Gate {
                        gate: Gate::Swap,
                        qubits: vec![x, y],
                        condition: None,
                    });
                    used[x] = true;
                    used[y] = true;
                    swaps += 1;
                    let (lx, ly) = (p2l[x], p2l[y]);
                    p2l[x] = ly;
                    p2l[y] = lx;
                    if let Some(l) = lx {
                        l2p[l] = y;
                    }
                    if let Some(l) = ly {
                        l2p[l] = x;
                    }
                }
            }
        }
        match &mut op {
            Op::Gate { qubits, .. } | Op::Barrier { qubits } => {
                for q in qubits.iter_mut() {
                    *q = l2p[*q];
                }
            }
            Op::Measure { qubit, .. } | Op::Reset { qubit } => *qubit = l2p[*qubit],
        }
        for &q in op.qubits() {
            used[q] = true;
        }
        ops.push(op);
    }
    // Compact: physical qubits in use, in increasing order, become 0..k.
    let mut index = vec![usize::MAX; n_phys];
    let mut k = 0;
    for (p, u) in used.iter().enumerate() {
        if *u {
            index[p] = k;
            k += 1;
        }
    }
    for op in &mut ops {
        match op {
            Op::Gate { qubits, .. } | Op::Barrier { qubits } => {
                for q in qubits.iter_mut() {
                    *q = index[*q];
                }
            }
            Op::Measure { qubit, .. } | Op::Reset { qubit } => *qubit = index[*qubit],
        }
    }
    ops.retain(|op| !matches!(op, Op::Barrier { qubits } if qubits.contains(&usize::MAX)));
    let circuit = Circuit {
        num_qubits: k.max(1),
        num_clbits: c.num_clbits,
        ops,
        qregs: Vec::new(),
        cregs: c.cregs.clone(),
    };
    Ok((circuit, swaps, l2p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use qsim::Simulator;

    fn state(c: &Circuit) -> qsim::StateVector {
        Simulator::default().statevector(c).unwrap()
    }

    fn prepared(n: usize) -> Circuit {
        let mut c = Circuit::new(n, 0);
        for q in 0..n {
            c.gate(Gate::RY(0.3 + 0.4 * q as f64), &[q])
                .gate(Gate::RZ(0.2 * q as f64), &[q]);
        }
        c
    }

    #[test]
    fn translation_preserves_every_gate_up_to_global_phase() {
        let native = vec!["u3".to_string(), "cx".to_string()];
        for (name, nq, np) in qsim::gate::GATE_NAMES {
            let params: Vec<f64> = (0..*np).map(|k| 0.7 - 0.3 * k as f64).collect();
            let g = Gate::from_name(name, &params).unwrap();
            let qs: Vec<usize> = match nq {
                1 => vec![1],
                2 => vec![2, 0],
                _ => vec![1, 2, 0],
            };
            let mut c = prepared(3);
            c.gate(g, &qs);
            let t = translate(&c, &native).unwrap();
            assert!(
                t.ops.iter().all(|op| matches!(
                    op,
                    Op::Gate {
                        gate: Gate::CX | Gate::U3(..),
                        ..
                    }
                )),
                "{name}"
            );
            let f = state(&c).fidelity(&state(&t));
            assert!((f - 1.0).abs() < 1e-9, "{name}: fidelity {f}");
        }
    }

    #[test]
    fn inverses_cancel_and_rotations_merge() {
        let mut c = Circuit::new(2, 0);
        c.gate(Gate::H, &[0])
            .gate(Gate::H, &[0])
            .gate(Gate::CX, &[0, 1])
            .gate(Gate::S, &[1])
            .gate(Gate::Sdg, &[1])
            .gate(Gate::CX, &[0, 1]);
        c.gate(Gate::RZ(0.25), &[1])
            .gate(Gate::RZ(0.5), &[1])
            .gate(Gate::RX(1.0), &[0])
            .gate(Gate::RX(-1.0), &[0]);
        let o = cancel_and_merge(&c);
        assert_eq!(
            o.ops,
            vec![Op::Gate {
                gate: Gate::RZ(0.75),
                qubits: vec![1],
                condition: None
            }]
        );
        assert!((state(&c).fidelity(&state(&o)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn routing_on_a_line_inserts_swaps_and_keeps_the_distribution() {
        let mut c = Circuit::new(4, 4);
        c.gate(Gate::H, &[0])
            .gate(Gate::CX, &[0, 3])
            .gate(Gate::CX, &[3, 1])
            .measure_all();
        let target = Target {
            native_gates: vec!["u3".into(), "cx".into()],
            coupling_map: vec![(0, 1), (1, 2), (2, 3)],
            num_qubits: 4,
        };
        let out = compile(&c, &target, true).unwrap();
        assert!(out.swaps >= 2, "{:?}", out.report);
        for op in &out.circuit.ops {
            if let Op::Gate { qubits, .. } = op {
                if qubits.len() == 2 {
                    assert_eq!(
                        qubits[0].abs_diff(qubits[1]),
                        1,
                        "non-neighbour CX {qubits:?}"
                    );
                }
            }
        }
        let a = Simulator::with_seed(1).run(&c, 200).unwrap();
        let b = Simulator::with_seed(1).run(&out.circuit, 200).unwrap();
        assert_eq!(
            a.counts.keys().collect::<Vec<_>>(),
            b.counts.keys().collect::<Vec<_>>()
        );
        // Deterministic: same input, same bytes.
        let again = compile(&c, &target, true).unwrap();
        assert_eq!(
            qsim::aqo::write(&out.circuit),
            qsim::aqo::write(&again.circuit)
        );
    }
}
