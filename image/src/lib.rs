//! qos-image: turns this workspace into a bootable QuantumOS ISO and boots it.
//!
//! The pipeline is `host` (the tools a build needs) → `stage` (our binaries, built for the
//! target and laid out as a file-system tree) → `mkosi` (the Debian system from `recipes/`,
//! plus the live initrd and unified kernel image) → `iso` (squashfs root, EFI image, hybrid
//! ISO) → `manifest`. `qemu` boots the result; `selftest` reads the verdict the test
//! profile's in-guest check prints on the serial console.

pub mod bench;
pub mod boottest;
pub mod build;
pub mod host;
pub mod iso;
pub mod manifest;
pub mod mkosi;
pub mod platform;
pub mod qemu;
pub mod run;
pub mod selftest;
pub mod stage;
pub mod workspace;

pub use platform::{Arch, Profile};
pub use workspace::Workspace;
