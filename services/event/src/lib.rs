//! The EVENT dimension.
pub mod chain;
