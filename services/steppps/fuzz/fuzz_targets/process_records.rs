//! Any bytes given to the record parser give records or errors, never a panic; a record that
//! parses re-encodes to bytes that parse to a record with the same numbers (its strings may
//! be cut: the encoder keeps a NUL at the end of each field).
#![no_main]

use libfuzzer_sys::fuzz_target;
use steppps::process_events::{encode_record, parse_record, parse_records};

fuzz_target!(|data: &[u8]| {
    let Ok(records) = parse_records(data) else {
        return;
    };
    for record in records.into_iter().flatten() {
        let again = parse_record(&encode_record(&record)).expect("a parsed record re-encodes");
        assert_eq!(again.kind, record.kind);
        assert_eq!(
            (again.seq, again.time_ns, again.pid, again.tid, again.cgroup_id),
            (record.seq, record.time_ns, record.pid, record.tid, record.cgroup_id)
        );
        assert_eq!((again.exit_code, again.flags), (record.exit_code, record.flags));
    }
});
