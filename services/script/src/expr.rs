//! The expression language of conditions, I/O mappings and correlation keys: a small, safe
//! subset of DMN FEEL over the process variables (JSON values). It has literals, paths
//! (`order.items[1].price`), list filters (`dimensions[item.healthy = false]`), comparisons,
//! `and`/`or`/`not`, arithmetic, `if … then … else …` and a fixed set of functions. Nothing in
//! it can run code, touch files or loop: evaluation is bounded by the size of the expression
//! and of the data.
//!
//! Camunda 7 models write conditions in JUEL (`${amount > 100 && approved}`), Zeebe models in
//! FEEL (`=amount > 100 and approved`). Both wrappers are stripped by [`Expr::parse_modeler`]
//! and the operators they share (`==`, `&&`, `||`, `!`, single-quoted strings) are accepted,
//! so the common conditions modelers write work unchanged.
//!
//! ```
//! use steppps_script::expr::Expr;
//! let e = Expr::parse("if retries > 2 then \"escalate\" else upper case(\"retry\")").unwrap();
//! let vars = serde_json::json!({ "retries": 3 });
//! assert_eq!(e.eval(&vars).unwrap(), serde_json::json!("escalate"));
//! ```

use std::fmt;

use serde_json::{Map, Value};

/// Longest expression accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 8 * 1024;
/// Deepest nesting accepted (parentheses, operators, paths): keeps the parser's recursion and
/// the evaluator's stack small whatever the input.
pub const MAX_DEPTH: usize = 64;

/// A parse or evaluation error, with the column (1-based, in characters) where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub column: Option<usize>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{} (column {c})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ExprError {}

fn err(message: impl Into<String>, column: Option<usize>) -> ExprError {
    ExprError {
        message: message.into(),
        column,
    }
}

/// A parsed expression, with its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    ast: Ast,
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Lit(Value),
    Var(String),
    Field(Box<Ast>, String),
    Index(Box<Ast>, Box<Ast>),
    List(Vec<Ast>),
    Context(Vec<(String, Ast)>),
    Unary(UnOp, Box<Ast>),
    Binary(BinOp, Box<Ast>, Box<Ast>),
    If(Box<Ast>, Box<Ast>, Box<Ast>),
    Call(Func, Vec<Ast>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// The built-in functions, by their FEEL names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    StringLength,
    UpperCase,
    LowerCase,
    Contains,
    StartsWith,
    EndsWith,
    Substring,
    StringJoin,
    String,
    Number,
    Not,
    Count,
    Sum,
    Min,
    Max,
    Abs,
    Floor,
    Ceiling,
    ListContains,
    Append,
    IsDefined,
}

const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("string length", Func::StringLength, 1, 1),
    ("upper case", Func::UpperCase, 1, 1),
    ("lower case", Func::LowerCase, 1, 1),
    ("contains", Func::Contains, 2, 2),
    ("starts with", Func::StartsWith, 2, 2),
    ("ends with", Func::EndsWith, 2, 2),
    ("substring", Func::Substring, 2, 3),
    ("string join", Func::StringJoin, 1, 2),
    ("string", Func::String, 1, 1),
    ("number", Func::Number, 1, 1),
    ("not", Func::Not, 1, 1),
    ("count", Func::Count, 1, 1),
    ("sum", Func::Sum, 1, 1),
    ("min", Func::Min, 1, 1),
    ("max", Func::Max, 1, 1),
    ("abs", Func::Abs, 1, 1),
    ("floor", Func::Floor, 1, 1),
    ("ceiling", Func::Ceiling, 1, 1),
    ("list contains", Func::ListContains, 2, 2),
    ("append", Func::Append, 2, 2),
    ("is defined", Func::IsDefined, 1, 1),
];

impl Expr {
    /// Parses an expression in our FEEL subset.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        if source.len() > MAX_EXPR_LEN {
            return Err(err(
                format!(
                    "expression is {} bytes; the limit is {MAX_EXPR_LEN}",
                    source.len()
                ),
                None,
            ));
        }
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let ast = p.expr()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(err(
                format!("unexpected `{}` after the expression", t.tok),
                Some(t.col),
            ));
        }
        Ok(Expr {
            source: source.to_string(),
            ast,
        })
    }

    /// Parses an expression as a modeler writes it: `${…}`/`#{…}` (Camunda 7, JUEL syntax)
    /// or `=…` (Zeebe, FEEL) around our language, or the bare expression.
    pub fn parse_modeler(text: &str) -> Result<Expr, ExprError> {
        let t = text.trim();
        let inner = if let Some(rest) = t.strip_prefix("${").or_else(|| t.strip_prefix("#{")) {
            rest.strip_suffix('}')
                .ok_or_else(|| err("`${` without its closing `}`", None))?
        } else if let Some(rest) = t.strip_prefix('=') {
            rest
        } else {
            t
        };
        Expr::parse(inner)
    }

    /// The text this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against a context (normally the process variables, a JSON object).
    pub fn eval(&self, context: &Value) -> Result<Value, ExprError> {
        eval(
            &self.ast,
            &Scope {
                vars: context,
                item: None,
            },
        )
    }

    /// Evaluates a condition: true only for `true`; `null` (a missing variable) is false;
    /// anything else is an error, so a typo does not quietly pick a branch.
    pub fn eval_condition(&self, context: &Value) -> Result<bool, ExprError> {
        match self.eval(context)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => Err(err(
                format!(
                    "condition `{}` gave {} ({}), not true or false",
                    self.source,
                    short(&other),
                    type_name(&other)
                ),
                None,
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Ident(s) => f.write_str(s),
            Tok::Op(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    col: usize,
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "=", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", "[",
    "]", "{", "}", ",", ".", ":",
];

fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| err(format!("`{text}` is not a number"), Some(col)))?;
            out.push(Token {
                tok: Tok::Num(n),
                col,
            });
        } else if c == '"' || c == '\'' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err("string without its closing quote", Some(col))),
                    Some(&q) if q == quote => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let escaped = match chars.get(i + 1) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some(&other) => other,
                            None => return Err(err("string ends in `\\`", Some(i + 1))),
                        };
                        s.push(escaped);
                        i += 2;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                col,
            });
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                col,
            });
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| err(format!("unexpected character `{c}`"), Some(col)))?;
            i += op.chars().count();
            out.push(Token {
                tok: Tok::Op(op),
                col,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser: precedence climbing, one function per level.

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "if", "then", "else", "true", "false", "null", "not",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn col(&self) -> Option<usize> {
        self.tokens
            .get(self.pos)
            .map(|t| t.col)
            .or_else(|| self.tokens.last().map(|t| t.col + 1))
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i == w)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ExprError> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{op}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> ExprError {
        match self.tokens.get(self.pos) {
            Some(t) => err(format!("expected {wanted}, found `{}`", t.tok), Some(t.col)),
            None => err(format!("expected {wanted}, found the end"), self.col()),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                format!("expression nested more than {MAX_DEPTH} deep"),
                self.col(),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, ExprError> {
        self.enter()?;
        let r = if self.is_word("if") {
            self.pos += 1;
            let c = self.expr()?;
            if !self.is_word("then") {
                return Err(self.unexpected("`then`"));
            }
            self.pos += 1;
            let a = self.expr()?;
            if !self.is_word("else") {
                return Err(self.unexpected("`else`"));
            }
            self.pos += 1;
            let b = self.expr()?;
            Ok(Ast::If(Box::new(c), Box::new(a), Box::new(b)))
        } else {
            self.or()
        };
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.and()?;
        while self.is_word("or") || self.is_op("||") {
            self.pos += 1;
            let right = self.and()?;
            left = Ast::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.cmp()?;
        while self.is_word("and") || self.is_op("&&") {
            self.pos += 1;
            let right = self.cmp()?;
            left = Ast::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Ast, ExprError> {
        let left = self.add()?;
        let op = match self.peek() {
            Some(Tok::Op("=" | "==")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.add()?;
        Ok(Ast::Binary(op, Box::new(left), Box::new(right)))
    }

    fn add(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.mul()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.mul()?;
            left = Ast::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn mul(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("%")) => BinOp::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Ast::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        self.enter()?;
        let r = if self.is_op("-") {
            self.pos += 1;
            self.unary().map(|a| Ast::Unary(UnOp::Neg, Box::new(a)))
        } else if self.is_op("!") {
            self.pos += 1;
            self.unary().map(|a| Ast::Unary(UnOp::Not, Box::new(a)))
        } else {
            self.postfix()
        };
        self.depth -= 1;
        r
    }

    fn postfix(&mut self) -> Result<Ast, ExprError> {
        let mut base = self.primary()?;
        loop {
            if self.is_op(".") {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Ident(name)) => {
                        self.pos += 1;
                        base = Ast::Field(Box::new(base), name);
                    }
                    _ => return Err(self.unexpected("a field name after `.`")),
                }
            } else if self.is_op("[") {
                self.pos += 1;
                let index = self.expr()?;
                self.expect_op("]")?;
                base = Ast::Index(Box::new(base), Box::new(index));
            } else {
                return Ok(base);
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, ExprError> {
        let col = self.col();
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Ast::Lit(number(n)))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Ast::Lit(Value::String(s)))
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Tok::Op("[")) => {
                self.pos += 1;
                let items = self.items("]")?;
                Ok(Ast::List(items))
            }
            Some(Tok::Op("{")) => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.is_op("}") {
                    let key = match self.peek().cloned() {
                        Some(Tok::Ident(k) | Tok::Str(k)) => k,
                        _ => return Err(self.unexpected("a key")),
                    };
                    self.pos += 1;
                    self.expect_op(":")?;
                    entries.push((key, self.expr()?));
                    if !self.is_op("}") {
                        self.expect_op(",")?;
                    }
                }
                self.pos += 1;
                Ok(Ast::Context(entries))
            }
            Some(Tok::Ident(word)) => {
                self.pos += 1;
                match word.as_str() {
                    "true" => return Ok(Ast::Lit(Value::Bool(true))),
                    "false" => return Ok(Ast::Lit(Value::Bool(false))),
                    "null" => return Ok(Ast::Lit(Value::Null)),
                    _ => {}
                }
                // FEEL function names contain spaces (`string length`): join the words that
                // follow while they lead to a `(`.
                let mut name = word.clone();
                let mut look = self.pos;
                while let Some(Token {
                    tok: Tok::Ident(next),
                    ..
                }) = self.tokens.get(look)
                {
                    if KEYWORDS.contains(&next.as_str()) {
                        break;
                    }
                    name.push(' ');
                    name.push_str(next);
                    look += 1;
                }
                let call_at = |p: &Parser, at: usize| {
                    matches!(p.tokens.get(at).map(|t| &t.tok), Some(Tok::Op("(")))
                };
                if look > self.pos && call_at(self, look) {
                    self.pos = look + 1;
                    return self.call(&name, col);
                }
                if call_at(self, self.pos) {
                    self.pos += 1;
                    return self.call(&word, col);
                }
                if KEYWORDS.contains(&word.as_str()) {
                    return Err(err(format!("unexpected `{word}`"), col));
                }
                Ok(Ast::Var(word))
            }
            _ => Err(self.unexpected("a value, a variable or `(`")),
        }
    }

    fn items(&mut self, close: &str) -> Result<Vec<Ast>, ExprError> {
        let mut items = Vec::new();
        while !self.is_op(close) {
            items.push(self.expr()?);
            if !self.is_op(close) {
                self.expect_op(",")?;
            }
        }
        self.pos += 1;
        Ok(items)
    }

    fn call(&mut self, name: &str, col: Option<usize>) -> Result<Ast, ExprError> {
        let &(_, func, min, max) =
            FUNCTIONS.iter().find(|(n, ..)| *n == name).ok_or_else(|| {
                err(
                    format!(
                        "unknown function `{name}`; known: {}",
                        FUNCTIONS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                    ),
                    col,
                )
            })?;
        let args = self.items(")")?;
        if args.len() < min || args.len() > max {
            return Err(err(
                format!(
                    "`{name}` takes {}, not {}",
                    if min == max {
                        format!("{min} argument(s)")
                    } else {
                        format!("{min} to {max} arguments")
                    },
                    args.len()
                ),
                col,
            ));
        }
        Ok(Ast::Call(func, args))
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

struct Scope<'a> {
    vars: &'a Value,
    /// The element a list filter is looking at (`item`, and its fields by name).
    item: Option<&'a Value>,
}

/// A JSON number from an f64, as an integer when it is one (so `2 + 1` prints `3`).
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "context",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn lookup<'a>(scope: &Scope<'a>, name: &str) -> Value {
    if let Some(item) = scope.item {
        if name == "item" {
            return item.clone();
        }
        if let Some(v) = item.get(name) {
            return v.clone();
        }
    }
    scope.vars.get(name).cloned().unwrap_or(Value::Null)
}

fn eval(ast: &Ast, scope: &Scope<'_>) -> Result<Value, ExprError> {
    Ok(match ast {
        Ast::Lit(v) => v.clone(),
        Ast::Var(name) => lookup(scope, name),
        Ast::Field(base, name) => match eval(base, scope)? {
            Value::Object(map) => map.get(name).cloned().unwrap_or(Value::Null),
            // A path into a list maps over it, as in FEEL (`items.price`).
            Value::Array(list) => Value::Array(
                list.iter()
                    .map(|v| v.get(name).cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            _ => Value::Null,
        },
        Ast::Index(base, index) => {
            let base = eval(base, scope)?;
            let Value::Array(list) = base else {
                return Ok(Value::Null);
            };
            // FEEL: a number selects (1-based, negative from the end); anything else is a
            // filter evaluated with each element as `item`.
            match eval(index, scope) {
                Ok(Value::Number(n)) => {
                    let i = n.as_f64().unwrap_or(0.0) as i64;
                    let len = list.len() as i64;
                    let at = if i > 0 { i - 1 } else { len + i };
                    if (0..len).contains(&at) {
                        list[at as usize].clone()
                    } else {
                        Value::Null
                    }
                }
                _ => {
                    let mut out = Vec::new();
                    for element in &list {
                        let inner = Scope {
                            vars: scope.vars,
                            item: Some(element),
                        };
                        if eval(index, &inner)? == Value::Bool(true) {
                            out.push(element.clone());
                        }
                    }
                    Value::Array(out)
                }
            }
        }
        Ast::List(items) => Value::Array(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Context(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(k.clone(), eval(v, scope)?);
            }
            Value::Object(map)
        }
        Ast::Unary(UnOp::Neg, a) => match eval(a, scope)? {
            Value::Number(n) => number(-n.as_f64().unwrap_or(0.0)),
            _ => Value::Null,
        },
        Ast::Unary(UnOp::Not, a) => match eval(a, scope)? {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Ast::If(c, a, b) => {
            if eval(c, scope)? == Value::Bool(true) {
                eval(a, scope)?
            } else {
                eval(b, scope)?
            }
        }
        Ast::Binary(op, a, b) => binary(*op, a, b, scope)?,
        Ast::Call(func, args) => {
            let args: Vec<Value> = args
                .iter()
                .map(|a| eval(a, scope))
                .collect::<Result<_, _>>()?;
            call(*func, &args)
        }
    })
}

fn binary(op: BinOp, a: &Ast, b: &Ast, scope: &Scope<'_>) -> Result<Value, ExprError> {
    // Ternary logic as in FEEL: `false and null` is false, `true or null` is true.
    match op {
        BinOp::And => {
            let l = eval(a, scope)?;
            if l == Value::Bool(false) {
                return Ok(l);
            }
            let r = eval(b, scope)?;
            return Ok(match (l, r) {
                (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            });
        }
        BinOp::Or => {
            let l = eval(a, scope)?;
            if l == Value::Bool(true) {
                return Ok(l);
            }
            let r = eval(b, scope)?;
            return Ok(match (l, r) {
                (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            });
        }
        _ => {}
    }
    let l = eval(a, scope)?;
    let r = eval(b, scope)?;
    Ok(match op {
        BinOp::Eq => Value::Bool(equal(&l, &r)),
        BinOp::Ne => Value::Bool(!equal(&l, &r)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&l, &r) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    .partial_cmp(&y.as_f64().unwrap_or(f64::NAN)),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => None,
            };
            match ord {
                None => Value::Null,
                Some(o) => Value::Bool(match op {
                    BinOp::Lt => o.is_lt(),
                    BinOp::Le => o.is_le(),
                    BinOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                }),
            }
        }
        BinOp::Add => match (&l, &r) {
            (Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}")),
            (Value::String(x), y) if !y.is_null() => Value::String(format!("{x}{}", display(y))),
            (x, Value::String(y)) if !x.is_null() => Value::String(format!("{}{y}", display(x))),
            _ => arith(&l, &r, |x, y| Some(x + y)),
        },
        BinOp::Sub => arith(&l, &r, |x, y| Some(x - y)),
        BinOp::Mul => arith(&l, &r, |x, y| Some(x * y)),
        BinOp::Div => arith(&l, &r, |x, y| (y != 0.0).then(|| x / y)),
        BinOp::Rem => arith(&l, &r, |x, y| (y != 0.0).then(|| x % y)),
        BinOp::And | BinOp::Or => Value::Null,
    })
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn arith(l: &Value, r: &Value, f: impl Fn(f64, f64) -> Option<f64>) -> Value {
    match (l.as_f64(), r.as_f64()) {
        (Some(x), Some(y)) => f(x, y)
            .filter(|v| v.is_finite())
            .map_or(Value::Null, number),
        _ => Value::Null,
    }
}

/// A value as text: strings without quotes, the rest as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn numbers(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(Value::as_f64).collect()
}

fn call(func: Func, args: &[Value]) -> Value {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    let s = |i: usize| arg(i).as_str();
    match func {
        Func::StringLength => s(0).map_or(Value::Null, |s| Value::from(s.chars().count())),
        Func::UpperCase => s(0).map_or(Value::Null, |s| Value::from(s.to_uppercase())),
        Func::LowerCase => s(0).map_or(Value::Null, |s| Value::from(s.to_lowercase())),
        Func::Contains => match (s(0), s(1)) {
            (Some(a), Some(b)) => Value::Bool(a.contains(b)),
            _ => Value::Null,
        },
        Func::StartsWith => match (s(0), s(1)) {
            (Some(a), Some(b)) => Value::Bool(a.starts_with(b)),
            _ => Value::Null,
        },
        Func::EndsWith => match (s(0), s(1)) {
            (Some(a), Some(b)) => Value::Bool(a.ends_with(b)),
            _ => Value::Null,
        },
        Func::Substring => {
            let (Some(text), Some(start)) = (s(0), arg(1).as_f64()) else {
                return Value::Null;
            };
            let chars: Vec<char> = text.chars().collect();
            let len = chars.len() as i64;
            let start = start as i64;
            let from = if start > 0 { start - 1 } else { len + start }.clamp(0, len);
            let count = arg(2).as_f64().map_or(len, |n| n.max(0.0) as i64);
            let to = from.saturating_add(count).min(len);
            Value::from(chars[from as usize..to as usize].iter().collect::<String>())
        }
        Func::StringJoin => match arg(0).as_array() {
            Some(list) => Value::from(
                list.iter()
                    .filter(|v| !v.is_null())
                    .map(display)
                    .collect::<Vec<_>>()
                    .join(s(1).unwrap_or("")),
            ),
            None => Value::Null,
        },
        Func::String => match arg(0) {
            Value::Null => Value::Null,
            v => Value::from(display(v)),
        },
        Func::Number => match arg(0) {
            Value::Number(_) => arg(0).clone(),
            Value::String(t) => t.trim().parse::<f64>().map_or(Value::Null, number),
            _ => Value::Null,
        },
        Func::Not => match arg(0) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        Func::Count => arg(0)
            .as_array()
            .map_or(Value::Null, |l| Value::from(l.len())),
        Func::Sum => numbers(arg(0)).map_or(Value::Null, |n| number(n.iter().sum())),
        Func::Min => numbers(arg(0))
            .and_then(|n| n.into_iter().reduce(f64::min))
            .map_or(Value::Null, number),
        Func::Max => numbers(arg(0))
            .and_then(|n| n.into_iter().reduce(f64::max))
            .map_or(Value::Null, number),
        Func::Abs => arg(0).as_f64().map_or(Value::Null, |n| number(n.abs())),
        Func::Floor => arg(0).as_f64().map_or(Value::Null, |n| number(n.floor())),
        Func::Ceiling => arg(0).as_f64().map_or(Value::Null, |n| number(n.ceil())),
        Func::ListContains => match arg(0).as_array() {
            Some(l) => Value::Bool(l.iter().any(|v| equal(v, arg(1)))),
            None => Value::Null,
        },
        Func::Append => match arg(0).as_array() {
            Some(l) => {
                let mut l = l.clone();
                l.push(arg(1).clone());
                Value::Array(l)
            }
            None => Value::Null,
        },
        Func::IsDefined => Value::Bool(!arg(0).is_null()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(src: &str, vars: Value) -> Value {
        Expr::parse(src).unwrap().eval(&vars).unwrap()
    }

    #[test]
    fn comparisons_logic_and_arithmetic() {
        let v = json!({"a": 5, "b": 2.5, "name": "space", "ok": true});
        assert_eq!(ev("a > 3 and ok", v.clone()), json!(true));
        assert_eq!(ev("a * 2 + b", v.clone()), json!(12.5));
        assert_eq!(ev("a / 0", v.clone()), Value::Null);
        assert_eq!(ev("name = \"space\" or missing", v.clone()), json!(true));
        assert_eq!(ev("not(ok) or a != 5", v.clone()), json!(false));
        assert_eq!(ev("-a + 10 % 4", v.clone()), json!(-3));
        assert_eq!(ev("if a >= 5 then \"big\" else \"small\"", v), json!("big"));
    }

    #[test]
    fn juel_and_zeebe_wrappers() {
        let v = json!({"amount": 150, "approved": true, "kind": "x"});
        for text in [
            "${amount > 100 && approved}",
            "=amount > 100 and approved",
            "#{amount >= 150 && kind == 'x'}",
            "!(amount < 100) || false",
        ] {
            let e = Expr::parse_modeler(text).unwrap();
            assert!(e.eval_condition(&v).unwrap(), "{text}");
        }
    }

    #[test]
    fn paths_indexes_and_filters() {
        let v = json!({
            "status": {"overall": "degraded"},
            "dims": [
                {"name": "space", "healthy": true},
                {"name": "time", "healthy": false},
            ],
            "rows": [["space", true], ["time", false]],
        });
        assert_eq!(ev("status.overall", v.clone()), json!("degraded"));
        assert_eq!(ev("dims[2].name", v.clone()), json!("time"));
        assert_eq!(ev("dims[-1].name", v.clone()), json!("time"));
        assert_eq!(ev("dims[healthy = false].name", v.clone()), json!(["time"]));
        assert_eq!(ev("rows[item[2] = false][1][1]", v.clone()), json!("time"));
        assert_eq!(ev("count(dims[item.healthy])", v.clone()), json!(1));
        assert_eq!(ev("dims.name", v.clone()), json!(["space", "time"]));
        assert_eq!(ev("missing.deeper[3]", v), Value::Null);
    }

    #[test]
    fn functions_with_spaces_in_their_names() {
        let v = json!({"s": "QuantumOS", "l": [3, 1, 2]});
        assert_eq!(ev("string length(s)", v.clone()), json!(9));
        assert_eq!(ev("upper case(s) + \"!\"", v.clone()), json!("QUANTUMOS!"));
        assert_eq!(ev("starts with(s, \"Quant\")", v.clone()), json!(true));
        assert_eq!(ev("substring(s, 1, 7)", v.clone()), json!("Quantum"));
        assert_eq!(ev("substring(s, -2)", v.clone()), json!("OS"));
        assert_eq!(ev("sum(l) + max(l)", v.clone()), json!(9));
        assert_eq!(ev("list contains(l, 2)", v.clone()), json!(true));
        assert_eq!(
            ev("string join([\"a\", \"b\"], \"-\")", v.clone()),
            json!("a-b")
        );
        assert_eq!(
            ev("{x: 1, \"y z\": s}", v),
            json!({"x": 1, "y z": "QuantumOS"})
        );
    }

    #[test]
    fn parse_errors_name_what_and_where() {
        let e = Expr::parse("a >").unwrap_err();
        assert!(e.to_string().contains("found the end"), "{e}");
        let e = Expr::parse("a > 1 b").unwrap_err();
        assert_eq!(e.column, Some(7));
        let e = Expr::parse("frobnicate(1)").unwrap_err();
        assert!(e.message.contains("unknown function `frobnicate`"), "{e}");
        assert!(Expr::parse("\"open").is_err());
        assert!(Expr::parse("a ; b").is_err());
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(Expr::parse(&deep).unwrap_err().message.contains("nested"));
        assert!(Expr::parse_modeler("${a > 1").is_err());
    }

    #[test]
    fn conditions_reject_non_booleans() {
        let e = Expr::parse("amount").unwrap();
        assert!(e.eval_condition(&json!({"amount": 3})).is_err());
        assert!(!e.eval_condition(&json!({})).unwrap());
    }
}
