//! Any text deployed gives processes or an error, never a panic; a deployed process can be
//! started and its external tasks completed without a panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steppps_script::engine::{Engine, EngineConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let mut engine = Engine::in_memory(EngineConfig {
        max_steps: 1000,
        ..EngineConfig::default()
    });
    let Ok(deployed) = engine.deploy(xml, 0) else {
        return;
    };
    for (key, _) in deployed {
        let _ = engine.start_instance(&key, Default::default(), 1);
    }
    let tasks = engine.list_tasks("");
    let topics: Vec<String> = tasks.iter().map(|t| t.topic.clone()).collect();
    for t in engine.fetch_and_lock("fuzz", &topics, 100, 1000, 2).unwrap_or_default() {
        let _ = engine.complete(t.id, Default::default(), 3);
    }
    let _ = engine.take_calls(4);
    let _ = engine.tick_timers(i64::MAX / 2);
});
