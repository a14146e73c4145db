//! Any text: the OpenQASM parser returns a circuit or a located error, never panics; a small
//! parsed circuit also simulates and round-trips through AQO.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = qsim::qasm::parse(text) {
        if c.num_qubits <= 8 && c.ops.len() <= 2000 {
            let _ = qsim::Simulator::with_seed(1).run(&c, 8);
            let aqo = qsim::aqo::write(&c);
            let back = qsim::aqo::parse(&aqo, &Default::default()).expect("AQO round trip");
            assert_eq!(back.ops, c.ops);
        }
    }
});
