//! The directory holding a stack's database cluster, secrets and logs:
//! persistent for development, or a fresh temp dir removed on exit.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use crate::error::{Context, Result};
use crate::random;

const EPHEMERAL_PREFIX: &str = "chat-local-";

pub struct StateDir {
    path: PathBuf,
    ephemeral: bool,
}

impl StateDir {
    pub fn persistent(path: PathBuf) -> Result<Self> {
        if !path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .context(|| format!("creating {}", path.display()))?;
        }
        Ok(Self { path, ephemeral: false })
    }

    /// A new directory under `parent` (default: the system temp dir), named
    /// after this process so leftovers of runners that were killed outright
    /// can be recognised and removed by the next one.
    pub fn ephemeral(parent: Option<&Path>) -> Result<Self> {
        let parent = parent.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&parent).context(|| format!("creating {}", parent.display()))?;
        remove_abandoned(&parent);
        let path = parent.join(format!("{EPHEMERAL_PREFIX}{}-{}", std::process::id(), random::hex(4)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .context(|| format!("creating {}", path.display()))?;
        // Canonical, so children given paths inside it agree with us.
        let path = path
            .canonicalize()
            .context(|| format!("resolving {}", path.display()))?;
        Ok(Self { path, ephemeral: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// Removes an ephemeral directory now (and reports failure); persistent
    /// state is kept.
    pub fn finish(mut self) {
        if self.ephemeral {
            self.ephemeral = false;
            if let Err(error) = remove_tree(&self.path) {
                warn!("could not remove {}: {error}", self.path.display());
            }
        }
    }
}

impl Drop for StateDir {
    /// Error paths and panics still leave no temp state behind.
    fn drop(&mut self) {
        if self.ephemeral {
            let _ = remove_tree(&self.path);
        }
    }
}

/// Like `remove_dir_all`, but first makes directories writable: a cluster
/// owned by another user may carry modes that would stop the removal.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
            std::fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// Deletes ephemeral dirs whose runner process no longer exists.
fn remove_abandoned(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(runner_pid) else {
            continue;
        };
        if !process_exists(pid) {
            debug!("removing {} left by a runner that was killed", entry.path().display());
            let _ = remove_tree(&entry.path());
        }
    }
}

/// `chat-local-<pid>-<hex>` → pid.
fn runner_pid(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(EPHEMERAL_PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    let suffix_ok = suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit());
    suffix_ok.then(|| pid.parse().ok()).flatten()
}

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::TestDir;

    #[test]
    fn ephemeral_dirs_are_removed_when_finished_or_dropped() {
        let parent = TestDir::new("state");
        let finished = StateDir::ephemeral(Some(parent.path())).unwrap();
        let path = finished.path().to_path_buf();
        assert!(path.is_dir());
        finished.finish();
        assert!(!path.exists());

        let dropped = StateDir::ephemeral(Some(parent.path())).unwrap();
        let path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!path.exists());
    }

    #[test]
    fn leftovers_of_dead_runners_are_swept_but_live_ones_kept() {
        let parent = TestDir::new("sweep");
        // pid 0x7ffffffe is beyond any real pid_max.
        let abandoned = parent.path().join("chat-local-2147483646-0a1b2c3d");
        let ours = parent
            .path()
            .join(format!("chat-local-{}-deadbeef", std::process::id()));
        let unrelated = parent.path().join("chat-local-notes");
        for dir in [&abandoned, &ours, &unrelated] {
            std::fs::create_dir(dir).unwrap();
        }
        remove_abandoned(parent.path());
        assert!(!abandoned.exists());
        assert!(ours.exists() && unrelated.exists());
    }

    #[test]
    fn persistent_dirs_survive() {
        let parent = TestDir::new("persist");
        let state = StateDir::persistent(parent.path().join(".local")).unwrap();
        let path = state.path().to_path_buf();
        state.finish();
        assert!(path.is_dir());
    }
}
