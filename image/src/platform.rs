//! The architectures and profiles an image is built for, and what each implies for cargo,
//! mkosi, the EFI boot path and qemu.

use std::fmt;

/// A target architecture of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64", alias = "amd64", alias = "x86-64")]
    X86_64,
    #[value(name = "arm64", alias = "aarch64")]
    Arm64,
}

impl Arch {
    /// The name used in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Rust's target triple.
    pub fn rust_triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// mkosi's `Architecture=` value.
    pub fn mkosi(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The removable-media boot path the firmware looks for.
    pub fn efi_boot_file(self) -> &'static str {
        match self {
            Arch::X86_64 => "BOOTX64.EFI",
            Arch::Arm64 => "BOOTAA64.EFI",
        }
    }

    /// The serial console the image's kernel command line uses.
    pub fn serial_console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }

    /// The architecture of the machine running qos-image, if it is one we build for.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// True when binaries for this architecture run natively here.
    pub fn is_host(self) -> bool {
        Arch::host() == Some(self)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A variant of the image (`recipes/mkosi.profiles/<name>/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The product: the base system with the QuantumOS daemons, units and policy.
    Live,
    /// The same system without QuantumOS services (the boot benchmark's reference).
    Baseline,
    /// Live plus an in-guest check that prints one QOS-TEST-RESULT line on the console.
    Test,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Live => "live",
            Profile::Baseline => "baseline",
            Profile::Test => "test",
        }
    }

    /// True when the profile carries the QuantumOS payload (binaries, units, policy).
    pub fn has_payload(self) -> bool {
        !matches!(self, Profile::Baseline)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn arch_names_parse_with_aliases() {
        assert_eq!(Arch::from_str("x86_64", false), Ok(Arch::X86_64));
        assert_eq!(Arch::from_str("amd64", false), Ok(Arch::X86_64));
        assert_eq!(Arch::from_str("aarch64", false), Ok(Arch::Arm64));
        assert!(Arch::from_str("riscv64", false).is_err());
    }

    #[test]
    fn only_baseline_lacks_the_payload() {
        assert!(Profile::Live.has_payload());
        assert!(Profile::Test.has_payload());
        assert!(!Profile::Baseline.has_payload());
    }
}
