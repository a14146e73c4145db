//! Any bytes given to the frame decoder give a frame or an error, never a panic; a decoded
//! record re-encodes to the same bytes and hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steppps_event::chain::record::{Entry, Frame, decode_frame, encode_record};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((frame, used)) = decode_frame(rest) {
        if let Frame::Record(r) = &frame {
            let entry = Entry {
                time_usec: r.time_usec,
                severity: r.severity,
                source: r.source.clone(),
                kind: r.kind.clone(),
                fields: r.fields.clone(),
            };
            let mut again = Vec::new();
            let hash = encode_record(&mut again, r.seq, &entry, &r.prev_hash);
            assert_eq!(hash, r.hash);
            assert_eq!(again.as_slice(), &rest[..used]);
        }
        rest = &rest[used..];
    }
});
