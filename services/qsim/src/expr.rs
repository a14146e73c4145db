//! Angle expressions, as OpenQASM and AQO write them: numbers, `pi`, parameters, `+ - * / ^`,
//! unary minus, and `sin cos tan exp ln sqrt asin acos atan`.

use std::collections::HashMap;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Var(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Call(String, Box<Expr>),
}

/// An expression that could not be parsed or evaluated; `offset` is a byte offset into the
/// text it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

pub const FUNCTIONS: &[&str] = &[
    "sin", "cos", "tan", "exp", "ln", "sqrt", "asin", "acos", "atan",
];

impl Expr {
    /// Evaluates with the named values in `env` (`pi`, `π`, `tau` and `euler` are built in).
    pub fn eval(&self, env: &HashMap<String, f64>) -> Result<f64, String> {
        Ok(match self {
            Expr::Num(v) => *v,
            Expr::Var(name) => match name.as_str() {
                "pi" | "π" => std::f64::consts::PI,
                "tau" | "τ" => std::f64::consts::TAU,
                "euler" | "ℇ" => std::f64::consts::E,
                _ => *env
                    .get(name)
                    .ok_or_else(|| format!("unknown parameter `{name}`"))?,
            },
            Expr::Neg(e) => -e.eval(env)?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(env)?, b.eval(env)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' => a / b,
                    _ => a.powf(b),
                }
            }
            Expr::Call(f, e) => {
                let v = e.eval(env)?;
                match f.as_str() {
                    "sin" => v.sin(),
                    "cos" => v.cos(),
                    "tan" => v.tan(),
                    "exp" => v.exp(),
                    "ln" => v.ln(),
                    "sqrt" => v.sqrt(),
                    "asin" => v.asin(),
                    "acos" => v.acos(),
                    "atan" => v.atan(),
                    other => return Err(format!("unknown function `{other}`")),
                }
            }
        })
    }

    /// Parses a standalone expression (AQO parameters such as `"theta/2"`).
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut p = StrParser {
            chars: text.char_indices().collect(),
            pos: 0,
            len: text.len(),
            depth: 0,
        };
        let e = p.expr()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.error("unexpected text after the expression"));
        }
        Ok(e)
    }
}

/// Parser over a plain string, for AQO; the QASM parser has its own token-based one.
struct StrParser {
    chars: Vec<(usize, char)>,
    pos: usize,
    len: usize,
    depth: usize,
}

impl StrParser {
    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.len, |(o, _)| *o)
    }
    fn error(&self, message: &str) -> ExprError {
        ExprError {
            offset: self.offset(),
            message: message.to_string(),
        }
    }
    fn skip_ws(&mut self) {
        while self
            .chars
            .get(self.pos)
            .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).map(|(_, c)| *c)
    }
    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > 100 {
            return Err(self.error("expression nested too deeply"));
        }
        let mut lhs = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }
    fn term(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.power()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.pos += 1;
            let rhs = self.power()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.unary()?;
        if self.peek() == Some('^') {
            self.pos += 1;
            let exp = self.power()?;
            return Ok(Expr::Bin('^', Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > 100 {
                    return Err(self.error("expression nested too deeply"));
                }
                let e = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Neg(Box::new(e)))
            }
            Some('+') => {
                self.pos += 1;
                self.unary()
            }
            Some('(') => {
                self.pos += 1;
                let e = self.expr()?;
                if self.peek() != Some(')') {
                    return Err(self.error("expected `)`"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.pos;
                while let Some(&(_, c)) = self.chars.get(self.pos) {
                    let exp_sign = (c == '-' || c == '+')
                        && self.pos > start
                        && matches!(self.chars[self.pos - 1].1, 'e' | 'E');
                    if c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || exp_sign {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let text: String = self.chars[start..self.pos].iter().map(|(_, c)| c).collect();
                text.parse().map(Expr::Num).map_err(|_| ExprError {
                    offset: self.chars[start].0,
                    message: format!("`{text}` is not a number"),
                })
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|(_, c)| c.is_alphanumeric() || *c == '_')
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().map(|(_, c)| c).collect();
                if FUNCTIONS.contains(&name.as_str()) && self.peek() == Some('(') {
                    self.pos += 1;
                    let arg = self.expr()?;
                    if self.peek() != Some(')') {
                        return Err(self.error("expected `)`"));
                    }
                    self.pos += 1;
                    return Ok(Expr::Call(name, Box::new(arg)));
                }
                Ok(Expr::Var(name))
            }
            _ => Err(self.error("expected a number, a parameter or `(`")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_with_parameters_and_reports_offsets() {
        let env = HashMap::from([("theta".to_string(), 2.0)]);
        let e = Expr::parse("-pi/2 + theta^2*cos(0)").unwrap();
        assert!((e.eval(&env).unwrap() - (4.0 - std::f64::consts::FRAC_PI_2)).abs() < 1e-12);
        assert_eq!(Expr::parse("1e-3").unwrap().eval(&env).unwrap(), 1e-3);
        assert_eq!(Expr::parse("1 +").unwrap_err().offset, 3);
        assert!(
            Expr::parse("phi")
                .unwrap()
                .eval(&env)
                .unwrap_err()
                .contains("phi")
        );
    }
}
