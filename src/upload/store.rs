//! Uploaded files on disk, in `data_dir/uploads`: `<slot>.data` (the bytes), `<slot>.meta`
//! (JSON: name, type, size, uploader, time) and `<slot>.part` while an upload runs.
//!
//! A file becomes visible only when complete: the body is streamed into `.part` with the
//! slot's size as a hard limit, synced, renamed to `.data`, and then the metadata is
//! written (through a temporary file and a rename), so a GET never sees half a file.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// What is kept beside each file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub uploader: String,
    /// Unix time of the upload.
    pub created: u64,
}

/// Why an upload was not stored; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("this slot has already been used")]
    Exists,
    #[error("the body is larger than the slot's size")]
    TooLarge,
    #[error("the body is shorter than the slot's size")]
    Short,
    #[error("the upload was interrupted: {0}")]
    Body(String),
    #[error("the file could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

pub fn path(dir: &Path, id: &str, ext: &str) -> PathBuf {
    dir.join(format!("{id}.{ext}"))
}

/// Read the key that signs upload tokens, making it on first use.
pub fn load_or_create_key(dir: &Path) -> std::io::Result<Vec<u8>> {
    let file = dir.join("secret");
    match std::fs::read(&file) {
        Ok(k) if k.len() >= 32 => return Ok(k),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = crate::sasl::credentials::random_bytes(32);
    let tmp = dir.join("secret.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &file)?;
    Ok(key)
}

/// Bytes stored per uploader, from the metadata files (at start).
pub fn usage(dir: &Path) -> std::io::Result<HashMap<String, u64>> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "meta") {
            if let Some(m) = std::fs::read(&p).ok().and_then(|b| serde_json::from_slice::<Meta>(&b).ok()) {
                *out.entry(m.uploader).or_default() += m.size;
            }
        }
    }
    Ok(out)
}

/// Whether the slot holds a file already.
pub async fn exists(dir: &Path, id: &str) -> bool {
    tokio::fs::try_exists(path(dir, id, "meta")).await.unwrap_or(true)
}

pub async fn read_meta(dir: &Path, id: &str) -> Option<Meta> {
    let bytes = tokio::fs::read(path(dir, id, "meta")).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Stream `body` into the slot's file, refusing more than `meta.size` bytes, and publish
/// it. Nothing is kept on failure.
pub async fn receive(dir: &Path, id: &str, meta: &Meta, body: axum::body::Body) -> Result<(), ReceiveError> {
    if exists(dir, id).await {
        return Err(ReceiveError::Exists);
    }
    let part = path(dir, id, "part");
    let file = match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&part).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(ReceiveError::Exists),
        Err(e) => return Err(e.into()),
    };
    let result = write_body(file, meta.size, body).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    let publish = async {
        tokio::fs::rename(&part, path(dir, id, "data")).await?;
        let tmp = path(dir, id, "meta.tmp");
        tokio::fs::write(&tmp, serde_json::to_vec(meta).map_err(std::io::Error::other)?).await?;
        tokio::fs::rename(&tmp, path(dir, id, "meta")).await
    };
    if let Err(e) = publish.await {
        remove(dir, id).await;
        return Err(e.into());
    }
    Ok(())
}

async fn write_body(mut file: tokio::fs::File, size: u64, mut body: axum::body::Body) -> Result<(), ReceiveError> {
    use axum::body::HttpBody;
    let mut written: u64 = 0;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ReceiveError::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        written += data.len() as u64;
        if written > size {
            return Err(ReceiveError::TooLarge);
        }
        file.write_all(&data).await?;
    }
    if written != size {
        return Err(ReceiveError::Short);
    }
    file.sync_all().await?;
    Ok(())
}

/// Delete a slot's files (whichever exist).
pub async fn remove(dir: &Path, id: &str) {
    for ext in ["meta", "data", "part", "meta.tmp"] {
        let _ = tokio::fs::remove_file(path(dir, id, ext)).await;
    }
}

/// Delete files uploaded before `cutoff` (Unix time) and uploads left half-done for a day.
/// Returns what was freed, per uploader.
pub async fn expire(dir: &Path, cutoff: Option<u64>, now: u64) -> std::io::Result<Vec<(String, u64)>> {
    let mut freed = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let p = entry.path();
        let Some((id, ext)) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.split_once('.')) else {
            continue;
        };
        if !super::slot::valid_id(id) {
            continue;
        }
        match ext {
            "meta" => {
                let Some(meta) = read_meta(dir, id).await else { continue };
                if cutoff.is_some_and(|c| meta.created < c) {
                    remove(dir, id).await;
                    freed.push((meta.uploader, meta.size));
                }
            }
            "part" | "data" | "meta.tmp" => {
                // Interrupted uploads, or data whose metadata never got written.
                let old = entry
                    .metadata()
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|t| t.as_secs() + 86_400 < now);
                if old && !tokio::fs::try_exists(path(dir, id, "meta")).await.unwrap_or(true) {
                    let _ = tokio::fs::remove_file(&p).await;
                }
            }
            _ => {}
        }
    }
    Ok(freed)
}
