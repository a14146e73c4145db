//! The shared QuantumOS daemon library.
//!
//! Everything a STEPPPS daemon needs, written once: the bus connection and name ownership,
//! systemd notification and watchdog, logging, configuration, the common
//! `org.quantumos.Dimension1` interface, the `org.quantumos.Error.*` errors, polkit checks,
//! and the D-Bus API ([`api`]) of every dimension with one proxy per interface.

pub mod api;
