//! Any text given to the rules parser gives rules or an error naming the file, never a panic;
//! parsed rules can be fed records.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use steppps_event::chain::Record;
use steppps_event::rules::{RuleEngine, parse_rules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rules(Path::new("fuzz.toml"), text) {
        Ok(rules) => {
            let mut engine = RuleEngine::new(rules, "fuzz".into());
            let record = Record {
                seq: 1,
                time_usec: 1,
                severity: 3,
                source: "units".into(),
                kind: "unit.failed".into(),
                fields: vec![("unit".into(), "steppps-space.service".into())],
                prev_hash: [0; 32],
                hash: [0; 32],
            };
            for _ in 0..3 {
                let _ = engine.observe(&record);
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml")),
    }
});
