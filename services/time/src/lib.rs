//! The TIME dimension.

pub mod calendar;
