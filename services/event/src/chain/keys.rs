//! The ed25519 key that signs block seals: 32 secret bytes in a file only its owner may read,
//! created on first use; the public half is written next to the chain as hex so that a copy
//! of the chain directory can be verified elsewhere.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::record::{hex, unhex};
use super::segment::PUBLIC_KEY_FILE;

/// Loads the signing key at `path`, creating it (mode 0600) when it does not exist. Returns
/// the key and whether it was created. A key file that others may read is refused.
pub fn load_or_create(path: &Path) -> io::Result<(SigningKey, bool)> {
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{}: the signing key is readable by others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    ),
                ));
            }
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: a signing key is 32 bytes, this file has {}",
                        path.display(),
                        bytes.len()
                    ),
                )
            })?;
            Ok((SigningKey::from_bytes(&seed), false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(&seed)?;
            f.sync_all()?;
            Ok((SigningKey::from_bytes(&seed), true))
        }
        Err(e) => Err(e),
    }
}

/// Writes `signing.pub` (hex) into the chain directory.
pub fn write_public_key(dir: &Path, key: &VerifyingKey) -> io::Result<()> {
    let path = dir.join(PUBLIC_KEY_FILE);
    let text = format!("{}\n", hex(key.as_bytes()));
    if fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    fs::write(path, text)
}

/// Reads a public key written by [`write_public_key`] (or any file holding 64 hex digits).
pub fn read_public_key(path: &Path) -> io::Result<VerifyingKey> {
    let text = fs::read_to_string(path)?;
    let bytes: [u8; 32] = unhex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not an ed25519 public key (64 hex digits)",
                    path.display()
                ),
            )
        })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let (k1, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        write_public_key(dir.path(), &k1.verifying_key()).unwrap();
        let public = read_public_key(&dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(public, k1.verifying_key());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
