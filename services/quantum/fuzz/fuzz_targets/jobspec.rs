//! Any text: JobSpec parsing and validation return specs or a field-named error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(specs) = quantumd::jobspec::parse_documents(text) {
        for s in specs {
            let _ = s.shots();
        }
    }
});
