//! Writing a run's figures: a timestamped JSON file and `latest.json`, each
//! written whole or not at all (temp file, then rename).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::chaos::ChaosReport;
use crate::machine::Commit;
use crate::report::Report;

pub fn save(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    save_as(report, report.started_at, &report.git, dir, "")
}

/// A chaos run's figures: `<time>-<commit>-chaos.json` and `latest-chaos.json`,
/// beside (never over) the measurements'.
pub fn save_chaos(report: &ChaosReport, dir: &Path) -> Result<Vec<PathBuf>, String> {
    save_as(report, report.started_at, &report.git, dir, "-chaos")
}

fn save_as(
    report: &impl Serialize,
    started_at: DateTime<Utc>,
    git: &Commit,
    dir: &Path,
    suffix: &str,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| format!("serializing the results: {e}"))?;
    let commit: String = git.commit.as_deref().unwrap_or("unknown").chars().take(10).collect();
    let stamped = dir.join(format!("{}-{commit}{suffix}.json", started_at.format("%Y%m%dT%H%M%SZ")));
    let latest = dir.join(format!("latest{suffix}.json"));
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
