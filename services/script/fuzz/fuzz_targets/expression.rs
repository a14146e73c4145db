//! Any expression parses or is refused, and evaluates over any variables, without a panic.
//! Input: the expression, a NUL byte, then the variables as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steppps_script::expr::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, vars) = text.split_once('\0').unwrap_or((text, "{}"));
    let vars = serde_json::from_str(vars).unwrap_or(serde_json::Value::Null);
    if let Ok(e) = Expr::parse_modeler(source) {
        let _ = e.eval(&vars);
        let _ = e.eval_condition(&vars);
    }
});
