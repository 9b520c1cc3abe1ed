//! Where a private cluster's files go: `<state>/pgdata` and `<state>/pgrun`,
//! unless the server's OS user cannot reach the state dir.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::os_user::ServerUser;
use crate::error::{Context, Result};
use crate::random;

/// Where the cluster's files go.
pub struct Layout {
    /// Holds `pgdata/` (the cluster) and `pgrun/` (its socket).
    pub root: PathBuf,
    /// `root` is a fallback outside the state dir.
    pub outside_state_dir: bool,
}

impl Layout {
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("pgdata")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("pgrun")
    }
}

pub fn choose(state_dir: &Path, owner: Option<&ServerUser>, ephemeral: bool) -> Result<Layout> {
    let in_state_dir = Layout {
        root: state_dir.to_path_buf(),
        outside_state_dir: false,
    };
    let Some(owner) = owner else {
        return Ok(in_state_dir);
    };
    // The server user needs to pass through the state dir, not to list it.
    let mode = std::fs::metadata(state_dir)
        .context(|| format!("reading {}", state_dir.display()))?
        .permissions()
        .mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(mode | 0o001))
            .context(|| format!("letting user {} through {}", owner.name, state_dir.display()))?;
    }
    if owner.can_reach(&in_state_dir.data_dir()) {
        return Ok(in_state_dir);
    }
    // e.g. a checkout inside root's home (mode 0700): the server user cannot get there.
    let name = if ephemeral {
        format!("chat-local-pg-{}", random::hex(6))
    } else {
        format!("chat-local-pg-{}", stable_name_for(state_dir))
    };
    let root = std::env::temp_dir().join(name);
    warn!(
        "user {} cannot reach {}; keeping the database cluster in {} instead",
        owner.name,
        state_dir.display(),
        root.display()
    );
    std::fs::create_dir_all(&root).context(|| format!("creating {}", root.display()))?;
    Ok(Layout {
        root,
        outside_state_dir: true,
    })
}

/// A name derived from the state dir's path, so a restart finds its cluster.
fn stable_name_for(state_dir: &Path) -> String {
    // FNV-1a: tiny, stable across builds and platforms.
    let hash = state_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

pub fn make_owned_dir(dir: &Path, owner: Option<&ServerUser>) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .context(|| format!("restricting {}", dir.display()))?;
    if let Some(owner) = owner {
        owner.chown(dir)?;
    }
    Ok(())
}

/// A Unix socket path is limited to 107 bytes; with a deeper directory the
/// server would not start, so it then listens on TCP only (all we use).
pub fn socket_directory_setting(socket_dir: &Path) -> String {
    const LONGEST_SOCKET_DIR: usize = 107 - "/.s.PGSQL.65535.lock".len();
    let dir = socket_dir.display().to_string();
    if dir.len() <= LONGEST_SOCKET_DIR {
        dir
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_directories_fall_back_to_tcp_only() {
        assert_eq!(socket_directory_setting(Path::new("/tmp/x/pgrun")), "/tmp/x/pgrun");
        let deep = PathBuf::from(format!("/{}", "d".repeat(100)));
        assert_eq!(socket_directory_setting(&deep), "");
    }

    #[test]
    fn the_fallback_name_is_stable_per_state_dir() {
        assert_eq!(
            stable_name_for(Path::new("/a/.local")),
            stable_name_for(Path::new("/a/.local"))
        );
        assert_ne!(
            stable_name_for(Path::new("/a/.local")),
            stable_name_for(Path::new("/b/.local"))
        );
    }
}
