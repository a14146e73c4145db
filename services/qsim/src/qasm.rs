//! OpenQASM 2.0 and an OpenQASM 3 subset, to a [`Circuit`].
//!
//! OpenQASM 2: `qreg`/`creg`, `include "qelib1.inc"` (built in), `gate` definitions, `U`/`CX`,
//! `measure`, `reset`, `barrier`, `if (creg == n)`. OpenQASM 3 adds: `qubit[n] q;`,
//! `bit[n] c;`, `include "stdgates.inc"`, `c = measure q;`, the gate modifiers `inv @` and
//! `ctrl @` (one control, on one-qubit gates, CX and SWAP, and user gates built from them),
//! `if (c[i] == 1)` and `gphase` (ignored: a global phase). Errors carry the line and column.

use std::collections::HashMap;
use std::fmt;

use crate::circuit::{Circuit, Condition, Op, Register};
use crate::complex::C64;
use crate::expr::{Expr, FUNCTIONS};
use crate::gate::Gate;

/// The largest register (and circuit) a source may declare.
pub const MAX_QUBITS: usize = 1 << 20;
/// How deep user gate definitions may nest.
const MAX_GATE_DEPTH: usize = 64;
/// Most operations one source may expand to.
pub const MAX_OPS: usize = 20_000_000;

/// A syntax or meaning error at a place in the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64, bool),
    Str(String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

const SYMBOLS: &[&str] = &[
    "->", "==", "!=", "<=", ">=", ";", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "^",
    "@", "=", "<", ">", ":",
];

fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |line, column, message: String| ParseError {
        line,
        column,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let (l0, c0) = (line, col);
            i += 2;
            col += 2;
            loop {
                match chars.get(i) {
                    None => return Err(err(l0, c0, "unterminated comment".into())),
                    Some('*') if chars.get(i + 1) == Some(&'/') => {
                        i += 2;
                        col += 2;
                        break;
                    }
                    Some('\n') => {
                        line += 1;
                        col = 1;
                        i += 1;
                    }
                    Some(_) => {
                        i += 1;
                        col += 1;
                    }
                }
            }
            continue;
        }
        let (l0, c0) = (line, col);
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            col += i - start;
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                line: l0,
                column: c0,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let mut real = false;
            while i < chars.len() {
                let d = chars[i];
                if d.is_ascii_digit() || d == '_' {
                    i += 1;
                } else if d == '.' || d == 'e' || d == 'E' {
                    real = true;
                    i += 1;
                    if (d == 'e' || d == 'E') && matches!(chars.get(i), Some('+' | '-')) {
                        i += 1;
                    }
                } else {
                    break;
                }
            }
            col += i - start;
            let text: String = chars[start..i].iter().filter(|&&d| d != '_').collect();
            let v: f64 = text
                .parse()
                .map_err(|_| err(l0, c0, format!("`{text}` is not a number")))?;
            out.push(Token {
                tok: Tok::Num(v, !real),
                line: l0,
                column: c0,
            });
            continue;
        }
        if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                i += 1;
            }
            if chars.get(i) != Some(&'"') {
                return Err(err(l0, c0, "unterminated string".into()));
            }
            let s: String = chars[start..i].iter().collect();
            i += 1;
            col += s.chars().count() + 2;
            out.push(Token {
                tok: Tok::Str(s),
                line: l0,
                column: c0,
            });
            continue;
        }
        if c == 'π' {
            i += 1;
            col += 1;
            out.push(Token {
                tok: Tok::Ident("pi".into()),
                line: l0,
                column: c0,
            });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
            Some(s) => {
                i += s.len();
                col += s.len();
                out.push(Token {
                    tok: Tok::Sym(s),
                    line: l0,
                    column: c0,
                });
            }
            None => return Err(err(l0, c0, format!("unexpected character `{c}`"))),
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        column: col,
    });
    Ok(out)
}

#[derive(Debug, Clone)]
enum Modifier {
    Inv,
    Ctrl(usize),
}

#[derive(Debug, Clone)]
struct GateCall {
    modifiers: Vec<Modifier>,
    name: String,
    params: Vec<Expr>,
    args: Vec<String>,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone)]
struct GateDef {
    params: Vec<String>,
    qargs: Vec<String>,
    body: Vec<GateCall>,
}

/// Which language a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// Parses OpenQASM 2 or 3, whichever the `OPENQASM` header says (2 without a header).
pub fn parse(src: &str) -> Result<Circuit, ParseError> {
    Parser::new(src, None)?.program()
}

/// Parses OpenQASM 2.0.
pub fn parse_qasm2(src: &str) -> Result<Circuit, ParseError> {
    Parser::new(src, Some(Version::V2))?.program()
}

/// Parses the OpenQASM 3 subset.
pub fn parse_qasm3(src: &str) -> Result<Circuit, ParseError> {
    Parser::new(src, Some(Version::V3))?.program()
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    version: Version,
    expected: Option<Version>,
    circuit: Circuit,
    gates: HashMap<String, GateDef>,
}

type Res<T> = Result<T, ParseError>;

impl Parser {
    fn new(src: &str, expected: Option<Version>) -> Res<Parser> {
        Ok(Parser {
            toks: lex(src)?,
            pos: 0,
            version: expected.unwrap_or(Version::V2),
            expected,
            circuit: Circuit::default(),
            gates: HashMap::new(),
        })
    }

    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn error_at(&self, t: &Token, message: impl Into<String>) -> ParseError {
        ParseError {
            line: t.line,
            column: t.column,
            message: message.into(),
        }
    }
    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.peek(), message)
    }
    fn describe(t: &Tok) -> String {
        match t {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Num(v, _) => format!("`{v}`"),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Sym(s) => format!("`{s}`"),
            Tok::Eof => "the end of the file".into(),
        }
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Sym(x) if *x == s)
    }
    fn is_ident(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(x) if x == s)
    }
    fn expect_sym(&mut self, s: &str) -> Res<()> {
        if self.is_sym(s) {
            self.next();
            Ok(())
        } else {
            Err(self.error(format!(
                "expected `{s}`, found {}",
                Self::describe(&self.peek().tok)
            )))
        }
    }
    fn ident(&mut self) -> Res<(String, Token)> {
        let t = self.next();
        match &t.tok {
            Tok::Ident(s) => Ok((s.clone(), t.clone())),
            other => Err(self.error_at(
                &t,
                format!("expected a name, found {}", Self::describe(other)),
            )),
        }
    }
    fn integer(&mut self) -> Res<(usize, Token)> {
        let t = self.next();
        match t.tok {
            Tok::Num(v, true) if (0.0..1e15).contains(&v) => Ok((v as usize, t)),
            ref other => Err(self.error_at(
                &t,
                format!(
                    "expected a non-negative integer, found {}",
                    Self::describe(other)
                ),
            )),
        }
    }

    fn program(mut self) -> Res<Circuit> {
        if self.is_ident("OPENQASM") {
            let t = self.next();
            let v = self.next();
            let version = match v.tok {
                Tok::Num(x, _) if (2.0..3.0).contains(&x) => Version::V2,
                Tok::Num(x, _) if (3.0..4.0).contains(&x) => Version::V3,
                ref other => {
                    return Err(self.error_at(
                        &v,
                        format!(
                            "unsupported OpenQASM version {}; this parser reads 2.0 and a 3 subset",
                            Self::describe(other)
                        ),
                    ));
                }
            };
            if let Some(e) = self.expected {
                if e != version {
                    return Err(self.error_at(
                        &t,
                        format!(
                            "the header says OpenQASM {}, but {} was asked for",
                            if version == Version::V2 { "2" } else { "3" },
                            if e == Version::V2 { "qasm2" } else { "qasm3" }
                        ),
                    ));
                }
            }
            self.version = version;
            self.expect_sym(";")?;
        }
        while self.peek().tok != Tok::Eof {
            self.statement()?;
        }
        Ok(self.circuit)
    }

    fn statement(&mut self) -> Res<()> {
        let t = self.peek().clone();
        let Tok::Ident(word) = &t.tok else {
            return Err(self.error(format!(
                "expected a statement, found {}",
                Self::describe(&t.tok)
            )));
        };
        match word.as_str() {
            "OPENQASM" => Err(self.error("`OPENQASM` must be the first statement")),
            "include" => {
                self.next();
                let s = self.next();
                match &s.tok {
                    Tok::Str(name) if name == "qelib1.inc" || name == "stdgates.inc" => {}
                    Tok::Str(name) => {
                        return Err(self.error_at(&s, format!("cannot include \"{name}\": only qelib1.inc and stdgates.inc are built in")));
                    }
                    other => {
                        return Err(self.error_at(
                            &s,
                            format!(
                                "expected a file name in quotes, found {}",
                                Self::describe(other)
                            ),
                        ));
                    }
                }
                self.expect_sym(";")
            }
            "qreg" | "creg" => {
                self.next();
                let (name, nt) = self.ident()?;
                self.expect_sym("[")?;
                let (size, st) = self.integer()?;
                self.expect_sym("]")?;
                self.expect_sym(";")?;
                self.declare(word == "qreg", name, size, &nt, &st)
            }
            "qubit" | "bit" if self.version == Version::V3 => {
                self.next();
                let mut size = 1;
                let mut st = t.clone();
                if self.is_sym("[") {
                    self.next();
                    (size, st) = self.integer()?;
                    self.expect_sym("]")?;
                }
                let (name, nt) = self.ident()?;
                self.expect_sym(";")?;
                self.declare(word == "qubit", name, size, &nt, &st)
            }
            "gate" => self.gate_definition(),
            "opaque" => Err(self.error("opaque gates have no definition and cannot be simulated")),
            "measure" => {
                self.next();
                let q = self.arg(true)?;
                self.expect_sym("->")?;
                let c = self.arg(false)?;
                self.expect_sym(";")?;
                self.measure(q, c, &t)
            }
            "reset" => {
                self.next();
                let q = self.arg(true)?;
                self.expect_sym(";")?;
                for qubit in q {
                    self.push(Op::Reset { qubit }, &t)?;
                }
                Ok(())
            }
            "barrier" => {
                self.next();
                let mut qubits = Vec::new();
                while !self.is_sym(";") {
                    qubits.extend(self.arg(true)?);
                    if !self.is_sym(";") {
                        self.expect_sym(",")?;
                    }
                }
                self.next();
                if qubits.is_empty() {
                    qubits = (0..self.circuit.num_qubits).collect();
                }
                self.push(Op::Barrier { qubits }, &t)
            }
            "if" => self.if_statement(),
            "gphase" if self.version == Version::V3 => {
                // A global phase does not change any measurement or expectation value.
                while !self.is_sym(";") && self.peek().tok != Tok::Eof {
                    self.next();
                }
                self.expect_sym(";")
            }
            "const" | "input" | "output" | "def" | "for" | "while" | "float" | "int" | "angle"
            | "let" | "box" | "delay" => Err(self.error(format!(
                "`{word}` is outside the supported OpenQASM 3 subset"
            ))),
            _ => {
                if self.version == Version::V3 && self.is_assignment_measure() {
                    return self.assignment_measure();
                }
                let call = self.gate_call()?;
                self.apply_call(&call, None)
            }
        }
    }

    fn declare(
        &mut self,
        quantum: bool,
        name: String,
        size: usize,
        nt: &Token,
        st: &Token,
    ) -> Res<()> {
        if self
            .circuit
            .qregs
            .iter()
            .chain(&self.circuit.cregs)
            .any(|r| r.name == name)
        {
            return Err(self.error_at(nt, format!("`{name}` is already declared")));
        }
        let (count, regs) = if quantum {
            (&mut self.circuit.num_qubits, &mut self.circuit.qregs)
        } else {
            (&mut self.circuit.num_clbits, &mut self.circuit.cregs)
        };
        if size == 0 || *count + size > MAX_QUBITS {
            return Err(ParseError {
                line: st.line,
                column: st.column,
                message: format!(
                    "register size {size} must be between 1 and {MAX_QUBITS} in total"
                ),
            });
        }
        regs.push(Register {
            name,
            start: *count,
            size,
        });
        *count += size;
        Ok(())
    }

    /// `name` or `name[i]`, resolved to indices.
    fn arg(&mut self, quantum: bool) -> Res<Vec<usize>> {
        let (name, nt) = self.ident()?;
        let regs = if quantum {
            &self.circuit.qregs
        } else {
            &self.circuit.cregs
        };
        let Some(reg) = regs.iter().find(|r| r.name == name).cloned() else {
            let kind = if quantum { "quantum" } else { "classical" };
            return Err(self.error_at(&nt, format!("unknown {kind} register `{name}`")));
        };
        if self.is_sym("[") {
            self.next();
            let (i, it) = self.integer()?;
            self.expect_sym("]")?;
            if i >= reg.size {
                return Err(self.error_at(
                    &it,
                    format!("index {i} out of range: `{name}` has {} bits", reg.size),
                ));
            }
            Ok(vec![reg.start + i])
        } else {
            Ok((reg.start..reg.start + reg.size).collect())
        }
    }

    fn push(&mut self, op: Op, at: &Token) -> Res<()> {
        if self.circuit.ops.len() >= MAX_OPS {
            return Err(self.error_at(
                at,
                format!("the circuit expands to more than {MAX_OPS} operations"),
            ));
        }
        self.circuit.ops.push(op);
        Ok(())
    }

    fn measure(&mut self, q: Vec<usize>, c: Vec<usize>, t: &Token) -> Res<()> {
        if q.len() != c.len() {
            return Err(self.error_at(
                t,
                format!(
                    "cannot measure {} qubit(s) into {} bit(s)",
                    q.len(),
                    c.len()
                ),
            ));
        }
        for (qubit, clbit) in q.into_iter().zip(c) {
            self.push(Op::Measure { qubit, clbit }, t)?;
        }
        Ok(())
    }

    fn is_assignment_measure(&self) -> bool {
        let mut k = 1;
        if matches!(self.peek_at(1), Tok::Sym("[")) {
            k = 4;
        }
        matches!(self.peek_at(k), Tok::Sym("="))
            && matches!(self.peek_at(k + 1), Tok::Ident(w) if w == "measure")
    }

    fn assignment_measure(&mut self) -> Res<()> {
        let t = self.peek().clone();
        let c = self.arg(false)?;
        self.expect_sym("=")?;
        self.next(); // measure
        let q = self.arg(true)?;
        self.expect_sym(";")?;
        self.measure(q, c, &t)
    }

    fn if_statement(&mut self) -> Res<()> {
        let t = self.next();
        self.expect_sym("(")?;
        let (name, nt) = self.ident()?;
        let Some(reg) = self.circuit.cregs.iter().find(|r| r.name == name).cloned() else {
            return Err(self.error_at(&nt, format!("unknown classical register `{name}`")));
        };
        let mut clbits: Vec<usize> = (reg.start..reg.start + reg.size).collect();
        if self.is_sym("[") {
            self.next();
            let (i, it) = self.integer()?;
            self.expect_sym("]")?;
            if i >= reg.size {
                return Err(self.error_at(
                    &it,
                    format!("index {i} out of range: `{name}` has {} bits", reg.size),
                ));
            }
            clbits = vec![reg.start + i];
        }
        self.expect_sym("==")?;
        let (value, vt) = self.integer()?;
        if clbits.len() < 64 && (value as u64) >> clbits.len() != 0 {
            return Err(self.error_at(
                &vt,
                format!("{value} does not fit in {} bit(s)", clbits.len()),
            ));
        }
        self.expect_sym(")")?;
        let condition = Condition {
            clbits,
            value: value as u64,
        };
        let mut calls = Vec::new();
        if self.version == Version::V3 && self.is_sym("{") {
            self.next();
            while !self.is_sym("}") {
                if self.peek().tok == Tok::Eof {
                    return Err(self.error("expected `}`"));
                }
                calls.push(self.gate_call()?);
            }
            self.next();
        } else {
            if self.is_ident("measure") || self.is_ident("reset") {
                return Err(self.error_at(&t, "only gates may be conditioned in this simulator"));
            }
            calls.push(self.gate_call()?);
        }
        for call in calls {
            self.apply_call(&call, Some(&condition))?;
        }
        Ok(())
    }

    fn gate_definition(&mut self) -> Res<()> {
        self.next();
        let (name, nt) = self.ident()?;
        if self.gates.contains_key(&name) {
            return Err(self.error_at(&nt, format!("gate `{name}` is already defined")));
        }
        let mut params = Vec::new();
        if self.is_sym("(") {
            self.next();
            while !self.is_sym(")") {
                params.push(self.ident()?.0);
                if !self.is_sym(")") {
                    self.expect_sym(",")?;
                }
            }
            self.next();
        }
        let mut qargs = Vec::new();
        while !self.is_sym("{") {
            let (q, qt) = self.ident()?;
            if qargs.contains(&q) {
                return Err(self.error_at(&qt, format!("qubit argument `{q}` repeated")));
            }
            qargs.push(q);
            if !self.is_sym("{") {
                self.expect_sym(",")?;
            }
        }
        if qargs.is_empty() {
            return Err(self.error_at(
                &nt,
                format!("gate `{name}` needs at least one qubit argument"),
            ));
        }
        self.next();
        let mut body = Vec::new();
        while !self.is_sym("}") {
            if self.peek().tok == Tok::Eof {
                return Err(self.error(format!("gate `{name}`: expected `}}`")));
            }
            if self.is_ident("barrier") {
                while !self.is_sym(";") && self.peek().tok != Tok::Eof {
                    self.next();
                }
                self.expect_sym(";")?;
                continue;
            }
            let call = self.gate_call()?;
            for a in &call.args {
                if !qargs.contains(a) {
                    return Err(ParseError {
                        line: call.line,
                        column: call.column,
                        message: format!("gate `{name}`: `{a}` is not one of its qubit arguments"),
                    });
                }
            }
            body.push(call);
        }
        self.next();
        self.gates.insert(
            name,
            GateDef {
                params,
                qargs,
                body,
            },
        );
        Ok(())
    }

    /// `[modifiers @] name [(exprs)] args ;` — args are kept as written (`q` or `q[1]`).
    fn gate_call(&mut self) -> Res<GateCall> {
        let start = self.peek().clone();
        let mut modifiers = Vec::new();
        loop {
            if self.is_ident("inv") && matches!(self.peek_at(1), Tok::Sym("@")) {
                self.next();
                self.next();
                modifiers.push(Modifier::Inv);
            } else if self.is_ident("ctrl") {
                self.next();
                let mut n = 1;
                if self.is_sym("(") {
                    self.next();
                    n = self.integer()?.0;
                    self.expect_sym(")")?;
                }
                self.expect_sym("@")?;
                modifiers.push(Modifier::Ctrl(n));
            } else {
                break;
            }
        }
        if !modifiers.is_empty() && self.version == Version::V2 {
            return Err(self.error_at(&start, "gate modifiers (`inv @`, `ctrl @`) need OpenQASM 3"));
        }
        let (name, nt) = self.ident()?;
        let mut params = Vec::new();
        if self.is_sym("(") {
            self.next();
            while !self.is_sym(")") {
                params.push(self.expr(0)?);
                if !self.is_sym(")") {
                    self.expect_sym(",")?;
                }
            }
            self.next();
        }
        let mut args = Vec::new();
        while !self.is_sym(";") {
            let (a, at) = self.ident()?;
            let mut text = a;
            if self.is_sym("[") {
                self.next();
                let (i, _) = self.integer()?;
                self.expect_sym("]")?;
                text = format!("{text}[{i}]");
            }
            let _ = at;
            args.push(text);
            if !self.is_sym(";") {
                self.expect_sym(",")?;
            }
        }
        self.next();
        Ok(GateCall {
            modifiers,
            name,
            params,
            args,
            line: nt.line,
            column: nt.column,
        })
    }

    fn expr(&mut self, depth: usize) -> Res<Expr> {
        if depth > 100 {
            return Err(self.error("expression nested too deeply"));
        }
        let mut lhs = self.term(depth)?;
        while self.is_sym("+") || self.is_sym("-") {
            let op = if self.is_sym("+") { '+' } else { '-' };
            self.next();
            let rhs = self.term(depth)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn term(&mut self, depth: usize) -> Res<Expr> {
        let mut lhs = self.power(depth)?;
        while self.is_sym("*") || self.is_sym("/") {
            let op = if self.is_sym("*") { '*' } else { '/' };
            self.next();
            let rhs = self.power(depth)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn power(&mut self, depth: usize) -> Res<Expr> {
        let base = self.unary(depth)?;
        if self.is_sym("^") {
            self.next();
            let e = self.power(depth + 1)?;
            return Ok(Expr::Bin('^', Box::new(base), Box::new(e)));
        }
        Ok(base)
    }
    fn unary(&mut self, depth: usize) -> Res<Expr> {
        if depth > 100 {
            return Err(self.error("expression nested too deeply"));
        }
        let t = self.next();
        match &t.tok {
            Tok::Sym("-") => Ok(Expr::Neg(Box::new(self.unary(depth + 1)?))),
            Tok::Sym("+") => self.unary(depth + 1),
            Tok::Sym("(") => {
                let e = self.expr(depth + 1)?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Num(v, _) => Ok(Expr::Num(*v)),
            Tok::Ident(name) => {
                if FUNCTIONS.contains(&name.as_str()) && self.is_sym("(") {
                    self.next();
                    let e = self.expr(depth + 1)?;
                    self.expect_sym(")")?;
                    return Ok(Expr::Call(name.clone(), Box::new(e)));
                }
                Ok(Expr::Var(name.clone()))
            }
            other => Err(self.error_at(
                &t,
                format!(
                    "expected a number, a parameter or `(`, found {}",
                    Self::describe(other)
                ),
            )),
        }
    }

    /// Resolves a top-level call's arguments (with register broadcast) and applies it.
    fn apply_call(&mut self, call: &GateCall, condition: Option<&Condition>) -> Res<()> {
        let at = Token {
            tok: Tok::Eof,
            line: call.line,
            column: call.column,
        };
        let mut resolved: Vec<Vec<usize>> = Vec::new();
        for a in &call.args {
            let (name, index) = match a.split_once('[') {
                Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (a.as_str(), None),
            };
            let Some(reg) = self.circuit.qregs.iter().find(|r| r.name == name) else {
                return Err(self.error_at(&at, format!("unknown quantum register `{name}`")));
            };
            match index {
                Some(i) if i >= reg.size => {
                    return Err(self.error_at(
                        &at,
                        format!("index {i} out of range: `{name}` has {} qubits", reg.size),
                    ));
                }
                Some(i) => resolved.push(vec![reg.start + i]),
                None => resolved.push((reg.start..reg.start + reg.size).collect()),
            }
        }
        let width = resolved
            .iter()
            .map(Vec::len)
            .filter(|&n| n > 1)
            .max()
            .unwrap_or(1);
        if resolved.iter().any(|r| r.len() != 1 && r.len() != width) {
            return Err(self.error_at(&at, "registers of different sizes in one gate application"));
        }
        let env = HashMap::new();
        let params: Vec<f64> = call
            .params
            .iter()
            .map(|e| e.eval(&env).map_err(|m| self.error_at(&at, m)))
            .collect::<Res<_>>()?;
        for k in 0..width {
            let qubits: Vec<usize> = resolved
                .iter()
                .map(|r| if r.len() == 1 { r[0] } else { r[k] })
                .collect();
            let mut ops = Vec::new();
            self.expand(
                &call.modifiers,
                &call.name,
                &params,
                &qubits,
                &at,
                0,
                &mut ops,
            )?;
            for (gate, qubits) in ops {
                self.push(
                    Op::Gate {
                        gate,
                        qubits,
                        condition: condition.cloned(),
                    },
                    &at,
                )?;
            }
        }
        Ok(())
    }

    /// Expands a gate (built in or user defined) with modifiers into primitive gates.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        modifiers: &[Modifier],
        name: &str,
        params: &[f64],
        qubits: &[usize],
        at: &Token,
        depth: usize,
        out: &mut Vec<(Gate, Vec<usize>)>,
    ) -> Res<()> {
        if depth > MAX_GATE_DEPTH {
            return Err(self.error_at(
                at,
                format!("gate `{name}`: definitions nest deeper than {MAX_GATE_DEPTH}"),
            ));
        }
        if let Some((outer, inner)) = modifiers.split_first() {
            let mut body = Vec::new();
            match outer {
                Modifier::Inv => {
                    self.expand(inner, name, params, qubits, at, depth + 1, &mut body)?;
                    out.extend(body.into_iter().rev().map(|(g, q)| (g.inverse(), q)));
                }
                Modifier::Ctrl(n) => {
                    if *n != 1 || qubits.len() < 2 {
                        return Err(
                            self.error_at(at, "`ctrl @` supports exactly one control qubit")
                        );
                    }
                    let control = qubits[0];
                    self.expand(inner, name, params, &qubits[1..], at, depth + 1, &mut body)?;
                    for (g, q) in body {
                        let cg = controlled(&g).ok_or_else(|| self.error_at(at, format!("`ctrl @` on `{}` is not supported (only one-qubit gates, cx and swap)", g.name())))?;
                        let mut cq = vec![control];
                        cq.extend(q);
                        out.push((cg, cq));
                    }
                }
            }
            return Ok(());
        }
        if out.len() > MAX_OPS {
            return Err(self.error_at(
                at,
                format!("the circuit expands to more than {MAX_OPS} operations"),
            ));
        }
        if let Some(def) = self.gates.get(name) {
            if def.params.len() != params.len() || def.qargs.len() != qubits.len() {
                return Err(self.error_at(
                    at,
                    format!(
                        "gate `{name}` takes {} parameter(s) and {} qubit(s), given {} and {}",
                        def.params.len(),
                        def.qargs.len(),
                        params.len(),
                        qubits.len()
                    ),
                ));
            }
            let env: HashMap<String, f64> = def
                .params
                .iter()
                .cloned()
                .zip(params.iter().copied())
                .collect();
            for call in &def.body {
                let inner_at = Token {
                    tok: Tok::Eof,
                    line: call.line,
                    column: call.column,
                };
                let p: Vec<f64> = call
                    .params
                    .iter()
                    .map(|e| e.eval(&env).map_err(|m| self.error_at(&inner_at, m)))
                    .collect::<Res<_>>()?;
                let q: Vec<usize> = call
                    .args
                    .iter()
                    .filter_map(|a| def.qargs.iter().position(|x| x == a).map(|i| qubits[i]))
                    .collect();
                self.expand(
                    &call.modifiers,
                    &call.name,
                    &p,
                    &q,
                    &inner_at,
                    depth + 1,
                    out,
                )?;
            }
            return Ok(());
        }
        let builtin = match name {
            "U" => Some(("u3", 1usize, 3usize)),
            "CX" => Some(("cx", 2, 0)),
            _ => crate::gate::GATE_NAMES
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(n, q, p)| (*n, *q, *p)),
        };
        let Some((canonical, nq, np)) = builtin else {
            return Err(self.error_at(at, format!("unknown gate `{name}`")));
        };
        if np != params.len() || nq != qubits.len() {
            return Err(self.error_at(
                at,
                format!(
                    "gate `{name}` takes {np} parameter(s) and {nq} qubit(s), given {} and {}",
                    params.len(),
                    qubits.len()
                ),
            ));
        }
        for (i, q) in qubits.iter().enumerate() {
            if qubits[..i].contains(q) {
                return Err(self.error_at(at, format!("gate `{name}`: qubit {q} used twice")));
            }
        }
        let gate = Gate::from_name(canonical, params)
            .ok_or_else(|| self.error_at(at, format!("unknown gate `{name}`")))?;
        out.push((gate, qubits.to_vec()));
        Ok(())
    }
}

/// The singly controlled version of `g` (control first), where we have one.
pub fn controlled(g: &Gate) -> Option<Gate> {
    Some(match g {
        Gate::X => Gate::CX,
        Gate::Y => Gate::CY,
        Gate::Z => Gate::CZ,
        Gate::H => Gate::CH,
        Gate::P(a) => Gate::CP(*a),
        Gate::RX(a) => Gate::CRX(*a),
        Gate::RY(a) => Gate::CRY(*a),
        Gate::RZ(a) => Gate::CRZ(*a),
        Gate::CX => Gate::CCX,
        Gate::Swap => Gate::CSwap,
        Gate::I => Gate::Unitary2(Box::new(identity4())),
        g if g.num_qubits() == 1 => {
            let u = g.matrix2();
            let mut m = identity4();
            m[4 + 1] = u[0];
            m[4 + 3] = u[1];
            m[3 * 4 + 1] = u[2];
            m[3 * 4 + 3] = u[3];
            Gate::Unitary2(Box::new(m))
        }
        _ => return None,
    })
}

fn identity4() -> [C64; 16] {
    let mut m = [C64::ZERO; 16];
    for k in 0..4 {
        m[k * 4 + k] = C64::ONE;
    }
    m
}
