//! The shared QuantumOS daemon library.
//!
//! Everything a STEPPPS daemon needs, written once: the bus connection and name ownership,
//! systemd notification and watchdog ([`daemon`], [`notify`]), logging ([`logging`]),
//! configuration ([`config`]), the common `org.quantumos.Dimension1` interface
//! ([`daemon::DimensionInterface`]), the `org.quantumos.Error.*` errors ([`error`]), polkit
//! checks ([`auth`]), and the D-Bus API ([`api`]) of every dimension with one proxy per
//! interface. [`process_events`] reads the `steppps` kernel module's process events. With the
//! `testing` feature, [`testing`] starts a private bus for tests.

pub mod api;
pub mod auth;
pub mod config;
pub mod daemon;
pub mod error;
pub mod exec_watch;
pub mod logging;
pub mod notify;
pub mod proc_connector;
pub mod process_events;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timespan;

pub use error::{Error, Result};
