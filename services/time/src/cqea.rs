//! CQEA, the classical-or-quantum decision: for a problem of a given kind and size and a time
//! budget, estimate what it costs classically on this machine and on the best quantum device
//! at hand, and say which to use and why.
//!
//! The model is deliberately simple and honest. A state-vector simulator stores 2^n complex
//! amplitudes (16 bytes each) and every gate streams all of them through memory (read and
//! write: 32 bytes per amplitude), so its cost grows as 2^n per gate and it cannot run past
//! the qubit count that fits in memory. Classical exhaustive methods cost 2^n evaluations.
//! The machine's evaluation rate, memory bandwidth and memory are measured the first time a
//! decision needs them ([`Machine::measure`]); real quantum devices (when quantumd reports
//! one) are costed by gate time and shots.

use std::f64::consts::PI;
use std::fmt;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

/// The kinds of problem the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Unstructured search over 2^size items (Grover).
    Search,
    /// Binary optimization over `size` variables (QAOA vs exhaustive).
    Optimization,
    /// Simulating a `size`-qubit circuit of depth ~10·size.
    Simulation,
}

impl FromStr for Problem {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "search" => Ok(Problem::Search),
            "optimization" | "optimisation" => Ok(Problem::Optimization),
            "simulation" => Ok(Problem::Simulation),
            other => Err(format!(
                "unknown problem `{other}`; known: search, optimization, simulation"
            )),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Search => "search",
            Problem::Optimization => "optimization",
            Problem::Simulation => "simulation",
        })
    }
}

/// What this machine can do, measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    /// Simple objective evaluations per second on one core.
    pub evaluations_per_sec: f64,
    /// Sustained memory copy bandwidth (read + write), bytes per second.
    pub bandwidth_bytes_per_sec: f64,
    /// Memory available for a state vector.
    pub memory_bytes: u64,
}

impl Machine {
    /// Measures the machine in about 30 ms: an evaluation loop, a 32 MiB copy, MemAvailable.
    pub fn measure() -> Machine {
        const EVALS: u64 = 2_000_000;
        let start = Instant::now();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut best = u64::MAX;
        for _ in 0..EVALS {
            // xorshift: a stand-in for evaluating one candidate's objective
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            best = best.min(black_box(x));
        }
        black_box(best);
        let evaluations_per_sec = EVALS as f64 / start.elapsed().as_secs_f64().max(1e-9);

        const BYTES: usize = 32 << 20;
        let src = vec![1u8; BYTES];
        let mut dst = vec![0u8; BYTES];
        dst.copy_from_slice(&src); // fault the pages in before timing
        let start = Instant::now();
        const ROUNDS: usize = 4;
        for _ in 0..ROUNDS {
            dst.copy_from_slice(black_box(&src));
        }
        black_box(&dst);
        let bandwidth_bytes_per_sec =
            (2 * BYTES * ROUNDS) as f64 / start.elapsed().as_secs_f64().max(1e-9);

        Machine {
            evaluations_per_sec,
            bandwidth_bytes_per_sec,
            memory_bytes: memory_available(),
        }
    }

    /// The largest state vector that fits in memory, in qubits.
    pub fn max_simulated_qubits(&self) -> u32 {
        qubits_fitting(self.memory_bytes)
    }
}

/// The largest state vector (16 bytes per amplitude) that fits in `memory_bytes`, in qubits.
pub fn qubits_fitting(memory_bytes: u64) -> u32 {
    ((memory_bytes / 16).max(1) as f64).log2().floor() as u32
}

/// The memory a simulator run may take now, as quantumd's simulator counts it
/// ([`qsim::memory::available_memory`]: MemAvailable, or the unused RAM where /proc/meminfo is
/// hidden), or 1 GiB when neither can be read.
pub fn memory_available() -> u64 {
    qsim::memory::available_memory().unwrap_or(1 << 30)
}

/// A quantum device the decision may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: String,
    pub kind: DeviceKind,
    pub max_qubits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceKind {
    /// Runs on this machine: costs 2^n amplitude updates per gate.
    Simulator,
    /// Real hardware: costs `gate_seconds` per gate layer and `shot_overhead_seconds` per shot.
    Hardware {
        gate_seconds: f64,
        shot_overhead_seconds: f64,
    },
}

impl Device {
    /// quantumd's built-in state-vector simulator on this machine.
    pub fn local_simulator(machine: &Machine) -> Device {
        Device {
            name: "sim-statevector".into(),
            kind: DeviceKind::Simulator,
            max_qubits: machine.max_simulated_qubits(),
        }
    }
}

/// The answer of `ShouldUseQuantum`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub use_quantum: bool,
    pub reason: String,
    /// Estimated seconds; infinite when it cannot run at all.
    pub classical_seconds: f64,
    pub quantum_seconds: f64,
    /// The device the quantum estimate is for; empty when there is none.
    pub device: String,
}

/// Shots a hardware run takes for a usable estimate.
const SHOTS: f64 = 1000.0;
/// Outer optimizer iterations of a variational (QAOA) run.
const VARIATIONAL_ITERATIONS: f64 = 100.0;

/// Gates of the quantum algorithm for `problem` at `n`: (gate count, circuit runs).
fn quantum_work(problem: Problem, n: f64) -> (f64, f64) {
    match problem {
        // Grover: ⌈π/4·√(2^n)⌉ iterations of oracle + diffusion, ~4n gates each; one run.
        Problem::Search => ((PI / 4.0 * 2f64.powf(n / 2.0)).ceil() * 4.0 * n, 1.0),
        // QAOA with p = 2: per layer n mixers and ~3n cost terms; one run per iteration.
        Problem::Optimization => (2.0 * 4.0 * n, VARIATIONAL_ITERATIONS),
        // A circuit of depth 10 on n qubits.
        Problem::Simulation => (10.0 * n, 1.0),
    }
}

fn classical_seconds(problem: Problem, n: f64, machine: &Machine) -> f64 {
    let amplitudes = 2f64.powf(n);
    match problem {
        Problem::Search => amplitudes / 2.0 / machine.evaluations_per_sec,
        Problem::Optimization => amplitudes * n / machine.evaluations_per_sec,
        // Classical simulation *is* the state-vector method: it needs the memory too.
        Problem::Simulation => {
            if n as u32 > machine.max_simulated_qubits() {
                f64::INFINITY
            } else {
                10.0 * n * amplitudes * 32.0 / machine.bandwidth_bytes_per_sec
            }
        }
    }
}

fn quantum_seconds(problem: Problem, n: f64, machine: &Machine, device: &Device) -> f64 {
    if n as u32 > device.max_qubits {
        return f64::INFINITY;
    }
    let (gates, runs) = quantum_work(problem, n);
    match device.kind {
        DeviceKind::Simulator => {
            runs * gates * 2f64.powf(n) * 32.0 / machine.bandwidth_bytes_per_sec
        }
        DeviceKind::Hardware {
            gate_seconds,
            shot_overhead_seconds,
        } => runs * SHOTS * (gates / n.max(1.0) * gate_seconds + shot_overhead_seconds),
    }
}

fn seconds(s: f64) -> String {
    if s.is_infinite() {
        "impossible".into()
    } else if s >= 3.15e7 {
        format!("{:.1e} years", s / 3.15e7)
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Decides. `size` is bits (search), variables (optimization) or qubits (simulation);
/// `budget_seconds` is how long the caller can wait.
pub fn decide(
    problem: Problem,
    size: u32,
    budget_seconds: f64,
    machine: &Machine,
    devices: &[Device],
) -> Result<Decision, String> {
    if !(1..=1000).contains(&size) {
        return Err(format!("size must be 1..1000, not {size}"));
    }
    if !(budget_seconds > 0.0 && budget_seconds.is_finite()) {
        return Err(format!(
            "budget must be a positive number of seconds, not {budget_seconds}"
        ));
    }
    let n = f64::from(size);
    let classical = classical_seconds(problem, n, machine);
    let best = devices
        .iter()
        .map(|d| (d, quantum_seconds(problem, n, machine, d)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let (device, quantum) = match best {
        Some((d, q)) => (d.name.clone(), q),
        None => (String::new(), f64::INFINITY),
    };
    let use_quantum = quantum < classical;
    let chosen = if use_quantum { quantum } else { classical };
    let why = match (use_quantum, problem, devices.iter().find(|d| d.name == device).map(|d| d.kind)) {
        (_, _, None) => "no quantum device is available".to_string(),
        (false, _, Some(DeviceKind::Simulator)) if quantum.is_infinite() => {
            format!("{size} qubits do not fit in this machine's memory (at most {})", machine.max_simulated_qubits())
        }
        (false, _, Some(DeviceKind::Simulator)) => {
            "a simulator pays for every gate with a pass over all 2^n amplitudes, so the classical method is cheaper".into()
        }
        (true, _, Some(DeviceKind::Simulator)) => "the simulated quantum algorithm needs fewer passes than the classical method".into(),
        (true, _, Some(DeviceKind::Hardware { .. })) => "the quantum device's cost grows more slowly with the size".into(),
        (false, _, Some(DeviceKind::Hardware { .. })) => "at this size the device's gate and shot overhead outweigh its speed-up".into(),
    };
    let budget = if chosen > budget_seconds {
        format!(
            "; over the budget of {} either way",
            seconds(budget_seconds)
        )
    } else {
        String::new()
    };
    let reason = format!(
        "{problem} of size {size}: classical {}, quantum{} {}: {why}{budget}",
        seconds(classical),
        if device.is_empty() {
            String::new()
        } else {
            format!(" on {device}")
        },
        seconds(quantum),
    );
    Ok(Decision {
        use_quantum,
        reason,
        classical_seconds: classical,
        quantum_seconds: quantum,
        device,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A machine with round numbers: 1e8 evaluations/s, 10 GB/s, 16 GiB.
    fn machine() -> Machine {
        Machine {
            evaluations_per_sec: 1e8,
            bandwidth_bytes_per_sec: 1e10,
            memory_bytes: 16 << 30,
        }
    }

    #[test]
    fn memory_bounds_the_simulator() {
        assert_eq!(machine().max_simulated_qubits(), 30); // 16 GiB / 16 B = 2^30
        let d = decide(
            Problem::Simulation,
            34,
            60.0,
            &machine(),
            &[Device::local_simulator(&machine())],
        )
        .unwrap();
        assert!(d.classical_seconds.is_infinite() && d.quantum_seconds.is_infinite());
        assert!(!d.use_quantum);
        assert!(d.reason.contains("do not fit"), "{}", d.reason);
    }

    #[test]
    fn a_simulator_never_beats_classical_search() {
        let m = machine();
        for size in [4, 10, 20, 28] {
            let d = decide(
                Problem::Search,
                size,
                60.0,
                &m,
                &[Device::local_simulator(&m)],
            )
            .unwrap();
            assert!(!d.use_quantum, "size {size}: {}", d.reason);
            assert!(d.quantum_seconds > d.classical_seconds);
        }
    }

    #[test]
    fn hardware_wins_large_searches_and_loses_small_ones() {
        let m = machine();
        let hw = Device {
            name: "qpu".into(),
            kind: DeviceKind::Hardware {
                gate_seconds: 1e-6,
                shot_overhead_seconds: 1e-4,
            },
            max_qubits: 100,
        };
        let small = decide(Problem::Search, 8, 60.0, &m, std::slice::from_ref(&hw)).unwrap();
        assert!(!small.use_quantum, "{}", small.reason);
        let large = decide(Problem::Search, 60, 1e9, &m, &[hw]).unwrap();
        assert!(large.use_quantum, "{}", large.reason);
        assert_eq!(large.device, "qpu");
    }

    #[test]
    fn no_device_means_classical() {
        let d = decide(Problem::Optimization, 10, 1.0, &machine(), &[]).unwrap();
        assert!(!d.use_quantum);
        assert!(d.reason.contains("no quantum device"), "{}", d.reason);
    }

    #[test]
    fn over_budget_is_said() {
        let d = decide(Problem::Optimization, 60, 1.0, &machine(), &[]).unwrap();
        assert!(d.reason.contains("over the budget"), "{}", d.reason);
    }

    #[test]
    fn bad_input() {
        let m = machine();
        assert!(decide(Problem::Search, 0, 1.0, &m, &[]).is_err());
        assert!(decide(Problem::Search, 5000, 1.0, &m, &[]).is_err());
        assert!(decide(Problem::Search, 5, -1.0, &m, &[]).is_err());
        assert!(decide(Problem::Search, 5, f64::NAN, &m, &[]).is_err());
        assert!(
            "factoring"
                .parse::<Problem>()
                .unwrap_err()
                .contains("unknown problem")
        );
    }

    #[test]
    fn measuring_gives_plausible_figures() {
        let m = Machine::measure();
        assert!(m.evaluations_per_sec > 1e6, "{m:?}");
        assert!(m.bandwidth_bytes_per_sec > 1e8, "{m:?}");
        assert!(m.max_simulated_qubits() >= 10, "{m:?}");
    }
}
