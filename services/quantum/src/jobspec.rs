//! JobSpec YAML: what a user submits. `QuantumJob` runs a program (OpenQASM 2/3 or AQO) for a
//! number of shots; `VariationalJob` runs a declarative hybrid loop (ansatz, Hamiltonian,
//! classical optimizer) with no user code executed here. Every error names the field.
//!
//! ```yaml
//! apiVersion: quantumos.io/v1
//! kind: QuantumJob
//! metadata: {name: bell, labels: {team: demo}}
//! spec:
//!   program: {format: qasm2, source: "OPENQASM 2.0; ..."}
//!   target: {device: sim-statevector}
//!   shots: 1024
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The largest JobSpec accepted (a document, not a data upload); qos-ctl checks the same limit.
pub const MAX_SPEC_BYTES: usize = steppps::api::quantum::MAX_JOBSPEC_BYTES;
pub const MAX_SHOTS: i64 = 10_000_000;
pub const API_VERSION: &str = "quantumos.io/v1";
/// How many jobs one job may wait for (`spec.dependsOn`). Each is sent in every status reply
/// of the job, so the list must stay far from the bus's message limit.
pub const MAX_DEPENDENCIES: usize = 256;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    pub program: Option<Program>,
    #[serde(default)]
    pub target: Target,
    pub shots: Option<i64>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub compiler: CompilerOptions,
    /// Values of the program's symbolic parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, f64>,
    /// Names or ids of jobs that must finish (DONE) first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub outputs: Outputs,
    pub ansatz: Option<Ansatz>,
    pub hamiltonian: Option<Hamiltonian>,
    pub optimizer: Option<Optimizer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub format: String,
    pub source: Option<String>,
    /// A file next to the JobSpec; qos-ctl reads it and sends it as `source`.
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    pub device: Option<String>,
    pub selector: Option<Selector>,
    /// A token from ReserveDevice.
    pub reservation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub min_qubits: Option<u32>,
    /// `simulator` or `noisy-simulator`.
    pub kind: Option<String>,
    pub noisy: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompilerOptions {
    pub optimize: bool,
}

impl Default for CompilerOptions {
    fn default() -> Self {
        CompilerOptions { optimize: true }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outputs {
    pub statevector: bool,
    /// Pauli-sum observables whose expectation value to report, e.g. `{"zz": "Z0 Z1"}`.
    pub expectations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ansatz {
    #[serde(rename = "type", default = "hardware_efficient")]
    pub kind: String,
    pub qubits: u32,
    #[serde(default = "one")]
    pub depth: u32,
    /// `linear` (default), `full` or `circular`; hardware-efficient only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entanglement: Option<String>,
    /// Some of `rx`, `ry`, `rz` (default `[ry, rz]`); hardware-efficient only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotations: Option<Vec<String>>,
}

/// `spec.ansatz.type` values.
pub const HARDWARE_EFFICIENT: &str = "hardware-efficient";
pub const HAMILTONIAN_VARIATIONAL: &str = "hamiltonian-variational";

impl Ansatz {
    pub fn entanglement(&self) -> &str {
        self.entanglement.as_deref().unwrap_or("linear")
    }

    pub fn rotations(&self) -> Vec<&str> {
        match &self.rotations {
            Some(r) => r.iter().map(String::as_str).collect(),
            None => vec!["ry", "rz"],
        }
    }
}

fn hardware_efficient() -> String {
    HARDWARE_EFFICIENT.into()
}
fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hamiltonian {
    pub ising: Option<Ising>,
    pub pauli_sum: Option<Vec<PauliEntry>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ising {
    pub spins: u32,
    #[serde(rename = "J")]
    pub j: f64,
    pub h: f64,
    #[serde(default)]
    pub periodic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauliEntry {
    pub coefficient: f64,
    /// `"Z0 Z1"`, `"X3"`, `"I"`.
    pub term: String,
}

/// The classical optimizer of a variational job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Optimizer {
    /// `nelder-mead` (derivative-free) or `lbfgs` (L-BFGS on parameter-shift gradients).
    #[serde(default = "nelder_mead")]
    pub method: String,
    /// All iterations together: every start, Nelder–Mead steps and L-BFGS steps.
    #[serde(default = "max_iterations")]
    pub max_iterations: u32,
    #[serde(default = "tolerance")]
    pub tolerance: f64,
    #[serde(default)]
    pub seed: u64,
    /// Starting points: the first near zero, the others uniform in [-π, π) from `seed`; the
    /// best result wins. One start finds a local minimum; symmetric ground states (the
    /// ordered Ising chain's cat state) usually need several.
    #[serde(default = "one")]
    pub starts: u32,
    /// After Nelder–Mead: `parameter-shift` polishes each start's point with L-BFGS on
    /// parameter-shift gradients (circuit evaluations only), `none` does not.
    #[serde(default = "parameter_shift")]
    pub polish: String,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer {
            method: nelder_mead(),
            max_iterations: max_iterations(),
            tolerance: tolerance(),
            seed: 0,
            starts: 1,
            polish: parameter_shift(),
        }
    }
}

fn parameter_shift() -> String {
    "parameter-shift".into()
}

fn nelder_mead() -> String {
    "nelder-mead".into()
}
fn max_iterations() -> u32 {
    2000
}
fn tolerance() -> f64 {
    1e-8
}

/// A JobSpec that is not acceptable; the message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn field(path: &str, message: impl std::fmt::Display) -> SpecError {
    SpecError(format!("{path}: {message}"))
}

/// Parses one or more JobSpec documents (separated by `---`).
pub fn parse_documents(text: &str) -> Result<Vec<JobSpec>, SpecError> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(SpecError(format!(
            "the JobSpec is {:.1} MiB; the limit is {} MiB, programs included",
            text.len() as f64 / (1 << 20) as f64,
            MAX_SPEC_BYTES >> 20
        )));
    }
    let mut specs = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let spec = JobSpec::deserialize(doc).map_err(|e| {
            let prefix = if i > 0 {
                format!("document {}: ", i + 1)
            } else {
                String::new()
            };
            SpecError(format!("{prefix}{e}"))
        })?;
        specs.push(spec);
        if specs.len() > 1000 {
            return Err(SpecError("at most 1000 jobs per submission".into()));
        }
    }
    if specs.is_empty() {
        return Err(SpecError("the JobSpec is empty".into()));
    }
    for s in &specs {
        s.validate()?;
    }
    Ok(specs)
}

impl JobSpec {
    /// Checks what serde cannot: versions, kinds, ranges, and that the kind has its sections.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.api_version != API_VERSION {
            return Err(field(
                "apiVersion",
                format!("`{}` is not supported; use {API_VERSION}", self.api_version),
            ));
        }
        let name = &self.metadata.name;
        if name.is_empty()
            || name.len() > 253
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(field(
                "metadata.name",
                format!(
                    "{} must be 1–253 characters of letters, digits, `-`, `_`, `.`",
                    steppps::error::quote(name)
                ),
            ));
        }
        if name.starts_with("job-") && name[4..].chars().all(|c| c.is_ascii_digit()) {
            return Err(field(
                "metadata.name",
                format!("`{name}` looks like a job id; choose another name"),
            ));
        }
        let s = &self.spec;
        if let Some(shots) = s.shots {
            if !(0..=MAX_SHOTS).contains(&shots) {
                return Err(field(
                    "spec.shots",
                    format!("{shots} is out of range (0 to {MAX_SHOTS})"),
                ));
            }
        }
        if !(-1000..=1000).contains(&s.priority) {
            return Err(field(
                "spec.priority",
                format!("{} is out of range (-1000 to 1000)", s.priority),
            ));
        }
        if let (Some(_), Some(_)) = (&s.target.device, &s.target.selector) {
            return Err(field(
                "spec.target",
                "give either `device` or `selector`, not both",
            ));
        }
        if s.depends_on.len() > MAX_DEPENDENCIES {
            return Err(field(
                "spec.dependsOn",
                format!(
                    "{} jobs; a job may wait for at most {MAX_DEPENDENCIES}",
                    s.depends_on.len()
                ),
            ));
        }
        for (k, v) in &s.parameters {
            if !v.is_finite() {
                return Err(field(
                    &format!("spec.parameters.{k}"),
                    "must be a finite number",
                ));
            }
        }
        match self.kind.as_str() {
            "QuantumJob" => {
                let p = s
                    .program
                    .as_ref()
                    .ok_or_else(|| field("spec.program", "a QuantumJob needs a program"))?;
                if !["qasm2", "qasm3", "aqo"].contains(&p.format.as_str()) {
                    return Err(field(
                        "spec.program.format",
                        format!("`{}` is not one of qasm2, qasm3, aqo", p.format),
                    ));
                }
                match (&p.source, &p.path) {
                    (Some(_), None) => {}
                    (None, Some(path)) => {
                        return Err(field(
                            "spec.program.path",
                            format!(
                                "`{path}` was not inlined: quantumd does not read files; submit with qos-ctl, which reads it next to the JobSpec"
                            ),
                        ));
                    }
                    _ => {
                        return Err(field(
                            "spec.program",
                            "give exactly one of `source` and `path`",
                        ));
                    }
                }
                for key in ["ansatz", "hamiltonian", "optimizer"] {
                    let present = match key {
                        "ansatz" => s.ansatz.is_some(),
                        "hamiltonian" => s.hamiltonian.is_some(),
                        _ => s.optimizer.is_some(),
                    };
                    if present {
                        return Err(field(
                            &format!("spec.{key}"),
                            "only a VariationalJob has this",
                        ));
                    }
                }
            }
            "VariationalJob" => {
                if s.program.is_some() {
                    return Err(field(
                        "spec.program",
                        "a VariationalJob builds its circuit from `ansatz`",
                    ));
                }
                if s.shots.is_some_and(|n| n > 0) {
                    return Err(field(
                        "spec.shots",
                        "variational jobs use exact expectation values on the state vector; omit shots",
                    ));
                }
                let a = s
                    .ansatz
                    .as_ref()
                    .ok_or_else(|| field("spec.ansatz", "a VariationalJob needs an ansatz"))?;
                if a.kind != HARDWARE_EFFICIENT && a.kind != HAMILTONIAN_VARIATIONAL {
                    return Err(field(
                        "spec.ansatz.type",
                        format!(
                            "`{}` is not one of {HARDWARE_EFFICIENT}, {HAMILTONIAN_VARIATIONAL}",
                            a.kind
                        ),
                    ));
                }
                if a.kind == HAMILTONIAN_VARIATIONAL {
                    // Its gates are the Hamiltonian's own terms: nothing else to choose.
                    for (name, given) in [
                        ("entanglement", a.entanglement.is_some()),
                        ("rotations", a.rotations.is_some()),
                    ] {
                        if given {
                            return Err(field(
                                &format!("spec.ansatz.{name}"),
                                format!("applies to the {HARDWARE_EFFICIENT} ansatz only"),
                            ));
                        }
                    }
                    if s.hamiltonian.as_ref().is_none_or(|h| h.ising.is_none()) {
                        return Err(field(
                            "spec.ansatz.type",
                            format!("{HAMILTONIAN_VARIATIONAL} needs `hamiltonian.ising`"),
                        ));
                    }
                }
                if !(1..=20).contains(&a.qubits) {
                    return Err(field(
                        "spec.ansatz.qubits",
                        format!("{} is out of range (1 to 20)", a.qubits),
                    ));
                }
                if a.depth > 50 {
                    return Err(field(
                        "spec.ansatz.depth",
                        format!("{} is out of range (0 to 50)", a.depth),
                    ));
                }
                if !["linear", "full", "circular"].contains(&a.entanglement()) {
                    return Err(field(
                        "spec.ansatz.entanglement",
                        format!(
                            "`{}` is not one of linear, full, circular",
                            a.entanglement()
                        ),
                    ));
                }
                if a.rotations().is_empty() {
                    return Err(field(
                        "spec.ansatz.rotations",
                        "name at least one of rx, ry, rz",
                    ));
                }
                for r in a.rotations() {
                    if !["rx", "ry", "rz"].contains(&r) {
                        return Err(field(
                            "spec.ansatz.rotations",
                            format!("`{r}` is not one of rx, ry, rz"),
                        ));
                    }
                }
                let h = s.hamiltonian.as_ref().ok_or_else(|| {
                    field("spec.hamiltonian", "a VariationalJob needs a hamiltonian")
                })?;
                match (&h.ising, &h.pauli_sum) {
                    (Some(i), None) => {
                        if i.spins != a.qubits {
                            return Err(field(
                                "spec.hamiltonian.ising.spins",
                                format!("{} spins but the ansatz has {} qubits", i.spins, a.qubits),
                            ));
                        }
                        if !i.j.is_finite() || !i.h.is_finite() {
                            return Err(field("spec.hamiltonian.ising", "J and h must be finite"));
                        }
                    }
                    (None, Some(terms)) => {
                        if terms.is_empty() {
                            return Err(field(
                                "spec.hamiltonian.pauliSum",
                                "needs at least one term",
                            ));
                        }
                        for (k, t) in terms.iter().enumerate() {
                            let term =
                                qsim::PauliTerm::parse(t.coefficient, &t.term).map_err(|e| {
                                    field(&format!("spec.hamiltonian.pauliSum[{k}].term"), e)
                                })?;
                            if let Some((q, _)) =
                                term.factors.iter().find(|(q, _)| *q >= a.qubits as usize)
                            {
                                return Err(field(
                                    &format!("spec.hamiltonian.pauliSum[{k}].term"),
                                    format!(
                                        "qubit {q} is outside the ansatz's {} qubits",
                                        a.qubits
                                    ),
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(field(
                            "spec.hamiltonian",
                            "give exactly one of `ising` and `pauliSum`",
                        ));
                    }
                }
                if let Some(o) = &s.optimizer {
                    match o.method.as_str() {
                        "nelder-mead" | "lbfgs" => {}
                        "cobyla" => {
                            return Err(field(
                                "spec.optimizer.method",
                                "cobyla is not implemented; use nelder-mead or lbfgs",
                            ));
                        }
                        other => {
                            return Err(field(
                                "spec.optimizer.method",
                                format!("`{other}` is not one of nelder-mead, lbfgs"),
                            ));
                        }
                    }
                    if !(1..=1000).contains(&o.starts) {
                        return Err(field(
                            "spec.optimizer.starts",
                            format!("{} is out of range (1 to 1000)", o.starts),
                        ));
                    }
                    if !["parameter-shift", "none"].contains(&o.polish.as_str()) {
                        return Err(field(
                            "spec.optimizer.polish",
                            format!("`{}` is not one of parameter-shift, none", o.polish),
                        ));
                    }
                    if !(1..=1_000_000).contains(&o.max_iterations) {
                        return Err(field(
                            "spec.optimizer.maxIterations",
                            format!("{} is out of range (1 to 1000000)", o.max_iterations),
                        ));
                    }
                    if !(o.tolerance > 0.0 && o.tolerance < 1.0) {
                        return Err(field(
                            "spec.optimizer.tolerance",
                            format!("{} must be between 0 and 1", o.tolerance),
                        ));
                    }
                }
            }
            other => {
                return Err(field(
                    "kind",
                    format!("`{other}` is not QuantumJob or VariationalJob"),
                ));
            }
        }
        Ok(())
    }

    pub fn shots(&self) -> u64 {
        self.spec
            .shots
            .map_or(if self.kind == "QuantumJob" { 1024 } else { 0 }, |s| {
                s.max(0) as u64
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BELL: &str = r#"
apiVersion: quantumos.io/v1
kind: QuantumJob
metadata:
  name: bell
spec:
  program:
    format: qasm2
    source: |
      OPENQASM 2.0;
      include "qelib1.inc";
      qreg q[2]; creg c[2];
      h q[0]; cx q[0], q[1];
      measure q -> c;
  shots: 100
"#;

    #[test]
    fn parses_a_quantum_job() {
        let specs = parse_documents(BELL).unwrap();
        assert_eq!(specs[0].metadata.name, "bell");
        assert_eq!(specs[0].shots(), 100);
        assert!(specs[0].spec.compiler.optimize);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_documents(&BELL.replace("shots: 100", "shots: -5")).unwrap_err();
        assert!(e.0.starts_with("spec.shots: -5 is out of range"), "{e}");
        let e = parse_documents(&BELL.replace("shots: 100", "shotz: 100")).unwrap_err();
        assert!(e.0.contains("unknown field `shotz`"), "{e}");
        let e = parse_documents(&BELL.replace("qasm2", "qasm9")).unwrap_err();
        assert!(e.0.starts_with("spec.program.format"), "{e}");
        let e = parse_documents(&BELL.replace("quantumos.io/v1", "v0")).unwrap_err();
        assert!(e.0.starts_with("apiVersion"), "{e}");
        let e = parse_documents("kind: [").unwrap_err();
        assert!(e.0.contains("line"), "{e}");
        let big = "#".repeat(MAX_SPEC_BYTES + 1);
        assert!(
            parse_documents(&big)
                .unwrap_err()
                .0
                .contains("limit is 8 MiB")
        );
    }

    #[test]
    fn variational_job_needs_its_sections() {
        let vqe = r#"
apiVersion: quantumos.io/v1
kind: VariationalJob
metadata: {name: vqe}
spec:
  ansatz: {qubits: 4, depth: 2}
  hamiltonian: {ising: {spins: 4, J: -1.0, h: 0.5}}
  optimizer: {method: nelder-mead, maxIterations: 100}
"#;
        parse_documents(vqe).unwrap();
        let e = parse_documents(&vqe.replace("spins: 4", "spins: 5")).unwrap_err();
        assert!(e.0.starts_with("spec.hamiltonian.ising.spins"), "{e}");
        let e = parse_documents(&vqe.replace("nelder-mead", "adam")).unwrap_err();
        assert!(e.0.starts_with("spec.optimizer.method"), "{e}");
        let e = parse_documents(&vqe.replace("maxIterations: 100", "starts: 0")).unwrap_err();
        assert!(e.0.starts_with("spec.optimizer.starts"), "{e}");
        let e = parse_documents(&vqe.replace("maxIterations: 100", "polish: newton")).unwrap_err();
        assert!(e.0.starts_with("spec.optimizer.polish"), "{e}");
        let lbfgs = parse_documents(&vqe.replace("nelder-mead", "lbfgs")).unwrap();
        assert_eq!(lbfgs[0].spec.optimizer.as_ref().map(|o| o.starts), Some(1));
    }

    #[test]
    fn hamiltonian_variational_ansatz_takes_only_an_ising_chain() {
        let vqe = r#"
apiVersion: quantumos.io/v1
kind: VariationalJob
metadata: {name: vqe}
spec:
  ansatz: {type: hamiltonian-variational, qubits: 4, depth: 2}
  hamiltonian: {ising: {spins: 4, J: -1.0, h: 0.5}}
"#;
        let ok = parse_documents(vqe).unwrap();
        assert_eq!(
            ok[0].spec.ansatz.as_ref().map(Ansatz::entanglement),
            Some("linear")
        );
        let e = parse_documents(&vqe.replace("depth: 2", "depth: 2, rotations: [rx]")).unwrap_err();
        assert_eq!(
            e.0,
            "spec.ansatz.rotations: applies to the hardware-efficient ansatz only"
        );
        let e = parse_documents(&vqe.replace(
            "{ising: {spins: 4, J: -1.0, h: 0.5}}",
            "{pauliSum: [{coefficient: 1.0, term: \"Z0 Z1\"}]}",
        ))
        .unwrap_err();
        assert!(
            e.0.starts_with("spec.ansatz.type: hamiltonian-variational needs"),
            "{e}"
        );
        let e = parse_documents(&vqe.replace("hamiltonian-variational", "uccsd")).unwrap_err();
        assert!(
            e.0.starts_with("spec.ansatz.type: `uccsd` is not one of"),
            "{e}"
        );
    }
}
