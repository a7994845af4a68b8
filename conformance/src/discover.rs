//! Finding scenario files and naming them for reports.
//!
//! A directory argument is searched recursively for `*.scs`; each scenario is named by its path
//! relative to that directory (`rfc6121/roster-get.scs`), a file argument by its parent directory
//! and file name, so the names in tables and expectations are the same however the suite is run.

use std::path::{Path, PathBuf};

use crate::scenario::Scenario;

/// A scenario file with the name used in reports (`rfc6121/roster-get.scs`).
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
}

fn collect_dir(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            collect_dir(root, &path, out)?;
        } else if path.extension().is_some_and(|x| x == "scs") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push(Entry { name, path });
        }
    }
    Ok(())
}

pub fn discover(paths: &[PathBuf]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_dir(p, p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else if p.is_file() {
            let file = p.file_name().map(|f| f.to_string_lossy().to_string());
            let parent = p.parent().and_then(|d| d.file_name()).map(|d| d.to_string_lossy().to_string());
            let name = match (parent, file) {
                (Some(d), Some(f)) => format!("{d}/{f}"),
                (None, Some(f)) => f,
                _ => p.display().to_string(),
            };
            out.push(Entry { name, path: p.clone() });
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    if out.is_empty() {
        return Err("no .scs scenario found".into());
    }
    Ok(out)
}

pub fn load(entry: &Entry) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(&entry.path).map_err(|e| format!("{}: {e}", entry.path.display()))?;
    Scenario::parse(&text).map_err(|e| format!("{}: {e}", entry.path.display()))
}
