//! Kernel device events (add, remove, change, bind…) from the uevent netlink socket, through
//! the space dimension's listener.

use std::sync::Arc;

use steppps_space::hotplug::UeventSocket;

use super::clip;
use crate::chain::record::MAX_VALUE;
use crate::chain::{Entry, now_usec};
use crate::{EventLog, Pending};

pub const SOURCE: &str = "udev";

/// Follows device events until the socket fails.
pub async fn follow(log: Arc<EventLog>) {
    let mut socket = match UeventSocket::open() {
        Ok(s) => s,
        Err(e) => {
            log.set_source_state(SOURCE, format!("unavailable: {e}"));
            return;
        }
    };
    log.set_source_state(SOURCE, "on");
    let mut overflows = 0;
    loop {
        let event = match socket.next().await {
            Ok(e) => e,
            Err(e) => {
                log.set_source_state(SOURCE, format!("stopped: {e}"));
                return;
            }
        };
        // The kernel dropped events: say so in the counters, never silently.
        while overflows < socket.overflows() {
            overflows += 1;
            log.count_shed("kernel uevent buffer overflow: udev");
        }
        let mut fields = vec![
            ("subsystem".to_string(), event.subsystem.clone()),
            (
                "devpath".to_string(),
                clip(event.devpath.clone(), MAX_VALUE),
            ),
            ("name".to_string(), event.name.clone()),
        ];
        for key in ["DEVNAME", "DEVTYPE", "DRIVER", "SEQNUM"] {
            if let Some(v) = event.fields.get(key) {
                fields.push((key.to_ascii_lowercase(), clip(v.clone(), MAX_VALUE)));
            }
        }
        fields.sort();
        log.offer(Pending::new(Entry {
            time_usec: now_usec(),
            severity: 6,
            source: SOURCE.into(),
            kind: format!("device.{}", event.action.as_str()),
            fields,
        }));
    }
}
