//! qos-install: puts the running QuantumOS live system on a disk.
//!
//! [`disks`] finds the candidates and what is on them, [`plan`] decides what will happen and
//! refuses what must not (the live medium, mounted or too small disks, data without
//! `--force`), [`install`] carries the plan out with systemd-repart, Btrfs, dracut and
//! systemd-boot, copying the system with [`copy`] (progress shown). See docs/install.md.

pub mod copy;
pub mod disks;
pub mod install;
pub mod plan;
