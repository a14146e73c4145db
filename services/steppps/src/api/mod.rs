//! The QuantumOS D-Bus API: every bus name, object path and interface, and one proxy per
//! interface. qos-ctl, the manager, the daemons and the tests all use these definitions, so a
//! method renamed here breaks the build everywhere instead of failing at run time.

pub mod dimension;
pub mod event;
pub mod logind;
pub mod manager;
pub mod pixel;
pub mod polkit;
pub mod prompt;
pub mod psychology;
pub mod quantum;
pub mod script;
pub mod space;
pub mod systemd;
pub mod time;

/// The most any reply of ours may carry, in bytes. dbus-daemon disconnects a peer that sends
/// a message over its `max_message_size` (32 MiB on the system bus), and the daemon would go
/// on running with nobody able to reach it. Replies that grow with what callers ask or store
/// (event pages, history exports, job counts, compiled circuits) stop at half of that, which
/// leaves room for D-Bus's own framing and for the estimates of it.
pub const MAX_REPLY_BYTES: usize = 16 << 20;

/// The first of `items` whose sizes (`size`, an estimate of each on the wire) add up to at
/// most `budget` bytes; the first item always, so a reply is never empty for want of room.
pub fn fit_in<T>(
    items: impl IntoIterator<Item = T>,
    budget: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut used = 0;
    let mut out = Vec::new();
    for item in items {
        used += size(&item);
        if used > budget && !out.is_empty() {
            break;
        }
        out.push(item);
    }
    out
}

/// The bytes a string takes on the wire, generously: its length, terminator and padding.
pub fn wire_len(s: &str) -> usize {
    s.len() + 16
}

/// One STEPPPS dimension (or quantumd): where it lives on the bus and in systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimensionId {
    /// Short name used on the command line and in config file names: `space`.
    pub name: &'static str,
    /// Well-known bus name: `org.quantumos.Space1`.
    pub bus_name: &'static str,
    /// Object path serving the dimension's interfaces: `/org/quantumos/Space1`.
    pub path: &'static str,
    /// The dimension's own interface (besides `org.quantumos.Dimension1`).
    pub interface: &'static str,
    /// systemd unit: `steppps-space.service`.
    pub unit: &'static str,
    /// Executable name: `steppps-spaced`.
    pub binary: &'static str,
}

macro_rules! dimension {
    ($name:literal, $iface:literal, $unit:literal, $binary:literal) => {
        DimensionId {
            name: $name,
            bus_name: concat!("org.quantumos.", $iface),
            path: concat!("/org/quantumos/", $iface),
            interface: concat!("org.quantumos.", $iface),
            unit: $unit,
            binary: $binary,
        }
    };
}

pub const SPACE: DimensionId =
    dimension!("space", "Space1", "steppps-space.service", "steppps-spaced");
pub const TIME: DimensionId = dimension!("time", "Time1", "steppps-time.service", "steppps-timed");
pub const EVENT: DimensionId =
    dimension!("event", "Event1", "steppps-event.service", "steppps-eventd");
pub const PSYCHOLOGY: DimensionId = dimension!(
    "psychology",
    "Psychology1",
    "steppps-psychology.service",
    "steppps-psychologyd"
);
pub const PIXEL: DimensionId =
    dimension!("pixel", "Pixel1", "steppps-pixel.service", "steppps-pixeld");
pub const PROMPT: DimensionId = dimension!(
    "prompt",
    "Prompt1",
    "steppps-prompt.service",
    "steppps-promptd"
);
pub const SCRIPT: DimensionId = dimension!(
    "script",
    "Script1",
    "steppps-script.service",
    "steppps-scriptd"
);
pub const QUANTUM: DimensionId = dimension!("quantum", "Quantum1", "quantumd.service", "quantumd");

/// The manager is not a dimension, but it is addressed the same way and serves
/// `org.quantumos.Dimension1` too.
pub const MANAGER: DimensionId =
    dimension!("manager", "Manager1", "steppps-mgr.service", "steppps-mgr");

/// Every service steppps-mgr supervises, in the order `qos-ctl status` shows them.
pub const DIMENSIONS: [DimensionId; 8] = [
    SPACE, TIME, EVENT, PSYCHOLOGY, PIXEL, PROMPT, SCRIPT, QUANTUM,
];

/// The interface every daemon serves next to its own.
pub const DIMENSION_INTERFACE: &str = "org.quantumos.Dimension1";

/// Looks a dimension up by its short name (`space`) or bus name (`org.quantumos.Space1`).
pub fn find_dimension(name: &str) -> Option<&'static DimensionId> {
    DIMENSIONS
        .iter()
        .find(|d| d.name == name || d.bus_name == name)
}

/// The short names of every dimension, for error messages and completions.
pub fn dimension_names() -> Vec<&'static str> {
    DIMENSIONS.iter().map(|d| d.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_takes_what_fits_and_at_least_one() {
        let sizes = [4, 4, 4, 4];
        assert_eq!(fit_in(sizes, 8, |s| *s), [4, 4]);
        assert_eq!(fit_in(sizes, 100, |s| *s).len(), 4);
        assert_eq!(fit_in([50, 1], 8, |s| *s), [50]);
        assert!(fit_in(Vec::<usize>::new(), 8, |s| *s).is_empty());
    }

    #[test]
    fn names_follow_the_convention() {
        for d in DIMENSIONS.iter().chain([&MANAGER]) {
            assert_eq!(d.path, format!("/{}", d.bus_name.replace('.', "/")));
            assert_eq!(d.interface, d.bus_name);
            assert!(d.unit.ends_with(".service"));
        }
        assert_eq!(SPACE.bus_name, "org.quantumos.Space1");
        assert_eq!(QUANTUM.unit, "quantumd.service");
    }

    #[test]
    fn lookup_by_short_or_bus_name() {
        assert_eq!(find_dimension("space"), Some(&SPACE));
        assert_eq!(find_dimension("org.quantumos.Event1"), Some(&EVENT));
        assert_eq!(find_dimension("spaec"), None);
        assert_eq!(
            find_dimension("manager"),
            None,
            "the manager is not a dimension"
        );
    }
}
