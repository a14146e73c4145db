//! The TIME dimension.

pub mod calendar;
pub mod timers;
pub mod timespan;
