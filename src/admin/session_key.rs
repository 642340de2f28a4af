//! The key that signs and encrypts admin cookies. It is never in the
//! database: whoever can read the database alone must not be able to forge
//! an admin session. `SESSION_KEY` when set (the same on every replica),
//! otherwise a key generated once into `SESSION_KEY_FILE` with mode 0600.

use crate::config::{DatabaseUrl, Settings};
use crate::runtime::SettingName;
use crate::store::Store;
use anyhow::Context;
use base64::Engine;
use rand::Rng;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Where earlier versions kept the key, in plaintext.
const LEGACY_SETTING: &str = SettingName::LegacySessionKey.as_str();
const KEY_BYTES: usize = 64;

pub async fn load(settings: &Settings, store: &dyn Store) -> anyhow::Result<Vec<u8>> {
    forget_legacy_key(store).await?;
    if let Some(key) = &settings.session_key {
        return Ok(key.expose().clone());
    }
    if matches!(settings.database_url, DatabaseUrl::Postgres { .. }) {
        log::warn!(
            "SESSION_KEY is not set: this replica keeps its own key in {}; set the same SESSION_KEY \
             on every replica, or an admin session works only on the replica that issued it",
            settings.session_key_file.display()
        );
    }
    from_file(&settings.session_key_file)
}

/// A key stored in the database by an earlier version is known to anyone who
/// read the database, so it is wiped, never used again; sessions signed with
/// it end (the admin logs in once more).
async fn forget_legacy_key(store: &dyn Store) -> anyhow::Result<()> {
    if store.get_setting(LEGACY_SETTING).await?.is_some_and(|v| !v.is_empty()) {
        store.put_setting(LEGACY_SETTING, "").await?;
        log::warn!(
            "removed the admin session key kept in the database by an earlier version; admins log in again"
        );
    }
    Ok(())
}

fn decode(text: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .with_context(|| format!("invalid SESSION_KEY_FILE: {} is not base64", path.display()))?;
    if bytes.len() < KEY_BYTES {
        anyhow::bail!(
            "invalid SESSION_KEY_FILE: {} holds {} bytes, needs {KEY_BYTES}",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Reads the key file, or creates it. `create_new` makes two processes
/// starting at once agree: the loser reads the winner's key.
pub fn from_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("invalid SESSION_KEY_FILE: cannot create {}", dir.display()))?;
    }
    let fresh: Vec<u8> = (0..KEY_BYTES).map(|_| rand::thread_rng().gen()).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&fresh);
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("invalid SESSION_KEY_FILE: cannot write {}", path.display()))?;
            log::info!("generated the admin session key in {}", path.display());
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("invalid SESSION_KEY_FILE: cannot read {}", path.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                log::warn!(
                    "{} can be read by other users; it signs admin sessions (chmod 600 it)",
                    path.display()
                );
            }
            let mut text = std::fs::read_to_string(path)
                .with_context(|| format!("invalid SESSION_KEY_FILE: cannot read {}", path.display()))?;
            // A file just created by another process may not be written yet.
            for _ in 0..50 {
                if !text.trim().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                text = std::fs::read_to_string(path).unwrap_or_default();
            }
            decode(&text, path)
        }
        Err(e) => Err(anyhow::anyhow!("invalid SESSION_KEY_FILE: cannot create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("session.key");
        let first = from_file(&path).unwrap();
        assert_eq!(first.len(), KEY_BYTES);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(from_file(&path).unwrap(), first, "the same key on the next start");
        std::fs::write(&path, "c2hvcnQ=").unwrap();
        assert!(from_file(&path).unwrap_err().to_string().contains("SESSION_KEY_FILE"));
    }
}
