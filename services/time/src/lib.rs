//! The TIME dimension.

pub mod calendar;
pub mod classes;
pub mod cqea;
pub mod timers;
pub mod timespan;
