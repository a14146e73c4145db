//! Any bytes given to the proc connector's datagram parser give records, never a panic, and
//! only of the kinds the connector can report, with nothing it cannot know filled in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steppps::proc_connector::{UNKNOWN_UID, parse_datagram};
use steppps::process_events::Kind;

fuzz_target!(|data: &[u8]| {
    for record in parse_datagram(data) {
        assert!(matches!(record.kind, Kind::Fork | Kind::Exec | Kind::Exit));
        assert_eq!((record.uid, record.cgroup_id), (UNKNOWN_UID, 0));
        assert!(record.comm.is_empty() && record.filename.is_empty());
    }
});
