//! Any text: the AQO parser returns a circuit or an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let bindings = std::collections::HashMap::from([("theta".to_string(), 0.5)]);
    if let Ok(c) = qsim::aqo::parse(text, &bindings) {
        if c.num_qubits <= 8 && c.ops.len() <= 2000 {
            let _ = qsim::Simulator::with_seed(1).run(&c, 8);
        }
    }
});
