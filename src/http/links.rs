//! Invitation links with their keys: the server secret (a file in data_dir, made on first
//! start) and each room's key version (sled tree `invite_keys`).

use std::path::Path;
use std::sync::Arc;

use super::invite::{self, Role};
use crate::server::Server;
use crate::store::{StoreError, Table};

const SECRET_FILE: &str = "invite-secret";
const SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read or create the invitation secret {path}: {source}")]
    Secret { path: String, source: std::io::Error },
    #[error("the invitation secret {path} is damaged (expected {SECRET_LEN} bytes); delete it to make a new one (this revokes every invitation link)")]
    BadSecret { path: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Links {
    secret: Vec<u8>,
    versions: Table,
    store: crate::store::Store,
}

/// A room's two links (paths; the client prefixes its own origin).
#[derive(Debug, serde::Serialize)]
pub struct RoomLinks {
    pub moderator: String,
    pub participant: String,
}

impl Links {
    pub fn open(server: &Arc<Server>) -> Result<Links, LinkError> {
        let secret = load_or_create_secret(&server.config.server.data_dir.join(SECRET_FILE))?;
        Ok(Links { secret, versions: server.store.invite_keys.clone(), store: server.store.clone() })
    }

    fn version(&self, room: &str) -> Result<u64, LinkError> {
        Ok(self.versions.get::<u64>(room.as_bytes())?.unwrap_or(0))
    }

    pub fn for_room(&self, room: &str) -> Result<RoomLinks, LinkError> {
        let v = self.version(room)?;
        Ok(RoomLinks {
            moderator: invite::path(&self.secret, Role::Moderator, room, v),
            participant: invite::path(&self.secret, Role::Participant, room, v),
        })
    }

    /// New links for the room; the old ones stop working once this returns.
    pub async fn regenerate(&self, room: &str) -> Result<RoomLinks, LinkError> {
        let next = self.version(room)?.wrapping_add(1);
        self.versions.put(room.as_bytes(), &next)?;
        self.store.flush().await?;
        self.for_room(room)
    }

    pub fn check(&self, role: Role, room: &str, signature: &str) -> Result<bool, LinkError> {
        Ok(invite::verify(&self.secret, role, room, self.version(room)?, signature))
    }
}

fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, LinkError> {
    let err = |source| LinkError::Secret { path: path.display().to_string(), source };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == SECRET_LEN => Ok(bytes),
        Ok(_) => Err(LinkError::BadSecret { path: path.display().to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = crate::sasl::credentials::random_bytes(SECRET_LEN);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            write_private(path, &secret).map_err(err)?;
            Ok(secret)
        }
        Err(e) => Err(err(e)),
    }
}

/// Write a file only its owner can read; `create_new` so two starts cannot race to
/// different secrets.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SECRET_FILE);
        let a = load_or_create_secret(&p).unwrap();
        let b = load_or_create_secret(&p).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), SECRET_LEN);
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(load_or_create_secret(&p), Err(LinkError::BadSecret { .. })));
    }
}
