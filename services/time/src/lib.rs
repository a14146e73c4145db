//! The TIME dimension (in progress).
