//! AQO JSON: QuantumOS's intermediate representation of a circuit, an ordered operation list
//! with angles that may be symbolic (bound when a job is submitted).
//!
//! ```json
//! {"format": "aqo", "version": 1, "qubits": 2, "clbits": 2, "parameters": ["theta"],
//!  "ops": [{"op": "H", "qubits": [0]},
//!          {"op": "RY", "qubits": [1], "params": ["theta/2"]},
//!          {"op": "CX", "qubits": [0, 1]},
//!          {"op": "MEASURE", "qubits": [0, 1], "clbits": [0, 1]},
//!          {"op": "X", "qubits": [1], "condition": {"clbits": [0], "value": 1}}]}
//! ```
//!
//! Operation names are case-insensitive gate names (see [`crate::gate::GATE_NAMES`]), plus
//! `MEASURE`, `RESET`, `BARRIER` and `UNITARY` (with `matrix`: rows of `[re, im]` pairs).
//! [`write`] produces the same text for the same circuit, byte for byte.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::circuit::{Circuit, Condition, Op};
use crate::complex::C64;
use crate::expr::Expr;
use crate::gate::Gate;

/// An AQO document that could not be read: a JSON syntax error (with line and column) or an
/// operation that makes no sense (with its path, e.g. `ops[3].qubits`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct AqoError {
    /// `line 3, column 7` or `ops[3].params[0]`.
    pub location: String,
    pub message: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<u32>,
    qubits: usize,
    #[serde(default)]
    clbits: usize,
    #[serde(default)]
    parameters: Vec<String>,
    ops: Vec<RawOp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    op: String,
    #[serde(default)]
    qubits: Vec<usize>,
    #[serde(default)]
    clbits: Vec<usize>,
    #[serde(default)]
    params: Vec<Value>,
    #[serde(default)]
    matrix: Option<Vec<Vec<[f64; 2]>>>,
    #[serde(default)]
    condition: Option<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    clbits: Vec<usize>,
    value: u64,
}

/// Parses AQO JSON, binding symbolic parameters from `bindings`.
pub fn parse(text: &str, bindings: &HashMap<String, f64>) -> Result<Circuit, AqoError> {
    let doc: Document = serde_json::from_str(text).map_err(|e| AqoError {
        location: format!("line {}, column {}", e.line(), e.column()),
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    let at = |path: String, message: String| AqoError {
        location: path,
        message,
        line: 0,
        column: 0,
    };
    if let Some(f) = &doc.format {
        if f != "aqo" {
            return Err(at("format".into(), format!("`{f}` is not \"aqo\"")));
        }
    }
    if let Some(v) = doc.version {
        if v != 1 {
            return Err(at(
                "version".into(),
                format!("version {v} is not supported (only 1)"),
            ));
        }
    }
    if doc.qubits > crate::qasm::MAX_QUBITS || doc.clbits > crate::qasm::MAX_QUBITS {
        return Err(at(
            "qubits".into(),
            format!("at most {} qubits and bits", crate::qasm::MAX_QUBITS),
        ));
    }
    for p in &doc.parameters {
        if !bindings.contains_key(p) {
            return Err(at(
                "parameters".into(),
                format!("parameter `{p}` has no value; bind it at submit time"),
            ));
        }
    }
    let mut c = Circuit::new(doc.qubits, doc.clbits);
    for (i, raw) in doc.ops.iter().enumerate() {
        let path = |field: &str| format!("ops[{i}]{field}");
        let name = raw.op.to_ascii_lowercase();
        let condition = raw.condition.as_ref().map(|rc| Condition {
            clbits: rc.clbits.clone(),
            value: rc.value,
        });
        match name.as_str() {
            "measure" => {
                if raw.qubits.len() != raw.clbits.len() {
                    return Err(at(
                        path(".clbits"),
                        format!(
                            "{} qubit(s) but {} bit(s)",
                            raw.qubits.len(),
                            raw.clbits.len()
                        ),
                    ));
                }
                for (&qubit, &clbit) in raw.qubits.iter().zip(&raw.clbits) {
                    c.ops.push(Op::Measure { qubit, clbit });
                }
            }
            "reset" => c
                .ops
                .extend(raw.qubits.iter().map(|&qubit| Op::Reset { qubit })),
            "barrier" => c.ops.push(Op::Barrier {
                qubits: raw.qubits.clone(),
            }),
            "unitary" => {
                let m = raw
                    .matrix
                    .as_ref()
                    .ok_or_else(|| at(path(".matrix"), "UNITARY needs `matrix`".into()))?;
                let gate = unitary_from_rows(m).map_err(|msg| at(path(".matrix"), msg))?;
                c.ops.push(Op::Gate {
                    gate,
                    qubits: raw.qubits.clone(),
                    condition,
                });
            }
            _ => {
                let mut params = Vec::new();
                for (k, v) in raw.params.iter().enumerate() {
                    let value = match v {
                        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                        Value::String(s) => {
                            let e = Expr::parse(s).map_err(|e| {
                                at(
                                    path(&format!(".params[{k}]")),
                                    format!("`{s}`: {} (at offset {})", e.message, e.offset),
                                )
                            })?;
                            e.eval(bindings)
                                .map_err(|m| at(path(&format!(".params[{k}]")), m))?
                        }
                        other => {
                            return Err(at(
                                path(&format!(".params[{k}]")),
                                format!(
                                    "expected a number or an expression, found {}",
                                    json_kind(other)
                                ),
                            ));
                        }
                    };
                    params.push(value);
                }
                let gate =
                    Gate::from_name(&name, &params).ok_or_else(|| match crate::gate::GATE_NAMES
                        .iter()
                        .find(|(n, _, _)| *n == name)
                    {
                        Some((_, _, np)) => at(
                            path(".params"),
                            format!(
                                "`{}` takes {np} parameter(s), given {}",
                                raw.op,
                                params.len()
                            ),
                        ),
                        None => at(path(".op"), format!("unknown operation `{}`", raw.op)),
                    })?;
                c.ops.push(Op::Gate {
                    gate,
                    qubits: raw.qubits.clone(),
                    condition,
                });
            }
        }
    }
    c.validate().map_err(|e| {
        at(
            format!("ops[{}]", e.index),
            format!("{}: {}", e.name, e.message),
        )
    })?;
    Ok(c)
}

/// What kind of JSON value `v` is ("an array"), for a message: the value itself may be
/// megabytes long.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unitary_from_rows(rows: &[Vec<[f64; 2]>]) -> Result<Gate, String> {
    let n = rows.len();
    if !(n == 2 || n == 4) || rows.iter().any(|r| r.len() != n) {
        return Err("a 2x2 or 4x4 matrix of [re, im] pairs is needed".into());
    }
    let flat: Vec<C64> = rows
        .iter()
        .flatten()
        .map(|[re, im]| C64::new(*re, *im))
        .collect();
    // Unitarity: M M† = I.
    for r in 0..n {
        for col in 0..n {
            let mut acc = C64::ZERO;
            for k in 0..n {
                acc += flat[r * n + k] * flat[col * n + k].conj();
            }
            let want = if r == col { C64::ONE } else { C64::ZERO };
            if !acc.approx_eq(want, 1e-6) {
                return Err("the matrix is not unitary".into());
            }
        }
    }
    Ok(if n == 2 {
        Gate::Unitary1(Box::new([flat[0], flat[1], flat[2], flat[3]]))
    } else {
        let mut m = [C64::ZERO; 16];
        m.copy_from_slice(&flat);
        Gate::Unitary2(Box::new(m))
    })
}

fn num(out: &mut String, v: f64) {
    // serde_json writes the shortest representation that reads back to the same f64.
    let text = serde_json::to_string(&v).unwrap_or_else(|_| "0".into());
    out.push_str(&text);
}

/// Writes `circuit` as AQO JSON: one operation per line, fixed key order, shortest exact
/// numbers, so the same circuit always gives the same bytes.
pub fn write(circuit: &Circuit) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"format\":\"aqo\",\"version\":1,\"qubits\":{},\"clbits\":{},\"ops\":[",
        circuit.num_qubits, circuit.num_clbits
    );
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for (i, op) in circuit.ops.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        match op {
            Op::Gate {
                gate,
                qubits,
                condition,
            } => {
                let _ = write!(
                    out,
                    "{{\"op\":\"{}\",\"qubits\":[{}]",
                    gate.name().to_ascii_uppercase(),
                    list(qubits)
                );
                let params = gate.params();
                if !params.is_empty() {
                    out.push_str(",\"params\":[");
                    for (k, p) in params.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        num(&mut out, *p);
                    }
                    out.push(']');
                }
                let matrix: Option<Vec<C64>> = match gate {
                    Gate::Unitary1(m) => Some(m.to_vec()),
                    Gate::Unitary2(m) => Some(m.to_vec()),
                    _ => None,
                };
                if let Some(m) = matrix {
                    let n = if m.len() == 4 { 2 } else { 4 };
                    out.push_str(",\"matrix\":[");
                    for r in 0..n {
                        if r > 0 {
                            out.push(',');
                        }
                        out.push('[');
                        for col in 0..n {
                            if col > 0 {
                                out.push(',');
                            }
                            out.push('[');
                            num(&mut out, m[r * n + col].re);
                            out.push(',');
                            num(&mut out, m[r * n + col].im);
                            out.push(']');
                        }
                        out.push(']');
                    }
                    out.push(']');
                }
                if let Some(c) = condition {
                    let _ = write!(
                        out,
                        ",\"condition\":{{\"clbits\":[{}],\"value\":{}}}",
                        list(&c.clbits),
                        c.value
                    );
                }
                out.push('}');
            }
            Op::Measure { qubit, clbit } => {
                let _ = write!(
                    out,
                    "{{\"op\":\"MEASURE\",\"qubits\":[{qubit}],\"clbits\":[{clbit}]}}"
                );
            }
            Op::Reset { qubit } => {
                let _ = write!(out, "{{\"op\":\"RESET\",\"qubits\":[{qubit}]}}");
            }
            Op::Barrier { qubits } => {
                let _ = write!(out, "{{\"op\":\"BARRIER\",\"qubits\":[{}]}}", list(qubits));
            }
        }
    }
    out.push_str("\n]}\n");
    out
}
