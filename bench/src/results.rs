//! Writing a run's figures: a timestamped JSON file and `latest.json`, each
//! written whole or not at all (temp file, then rename).

use std::path::{Path, PathBuf};

use crate::report::Report;

pub fn save(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| format!("serializing the results: {e}"))?;
    let commit: String = report
        .git
        .commit
        .as_deref()
        .unwrap_or("unknown")
        .chars()
        .take(10)
        .collect();
    let stamped = dir.join(format!("{}-{commit}.json", report.started_at.format("%Y%m%dT%H%M%SZ")));
    let latest = dir.join("latest.json");
    for path in [&stamped, &latest] {
        write_atomically(path, &json)?;
    }
    Ok(vec![stamped, latest])
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let temp = path.with_extension("json.tmp");
    let mut text = bytes.to_vec();
    text.push(b'\n');
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
