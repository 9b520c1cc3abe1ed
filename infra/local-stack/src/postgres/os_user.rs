//! PostgreSQL refuses to run as root. When the runner is root (containers,
//! CI), the cluster belongs to an unprivileged user instead: `postgres` when
//! the system has one, else a system user created for the purpose.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use tracing::info;

use crate::error::{Context, Error, Result};

#[derive(Clone, Debug)]
pub struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

const PREFERRED: &str = "postgres";
const CREATED: &str = "chat-local-pg";

/// `None` when the runner is not root: the server then runs as the runner.
pub async fn for_server() -> Result<Option<ServerUser>> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in [PREFERRED, CREATED] {
        if let Some(user) = lookup(name) {
            return Ok(Some(user));
        }
    }
    create_system_user(CREATED).await?;
    lookup(CREATED)
        .map(Some)
        .ok_or_else(|| Error::Setup(format!("user {CREATED} was created but cannot be found")))
}

fn lookup(name: &str) -> Option<ServerUser> {
    let c_name = CString::new(name).ok()?;
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage.
    let status = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if status != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points into `buffer`, NUL-terminated.
    let name = unsafe { CStr::from_ptr(entry.pw_name) }.to_string_lossy().into_owned();
    Some(ServerUser {
        name,
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

async fn create_system_user(name: &str) -> Result<()> {
    info!("creating system user {name} to own the local Postgres cluster (it refuses to run as root)");
    let output = tokio::process::Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
        ])
        .args(["--shell", "/usr/sbin/nologin", name])
        .output()
        .await
        .context(|| "running useradd".into())?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Makes `command` run as `owner` (when the runner is root).
pub fn run_as(command: &mut tokio::process::Command, owner: Option<&ServerUser>) {
    if let Some(owner) = owner {
        // The runner's working directory may be out of that user's reach.
        command.uid(owner.uid).gid(owner.gid).current_dir("/");
    }
}

impl ServerUser {
    /// Whether this user can walk down to `path` (search permission on every
    /// ancestor). The data directory must be reachable for the server to start.
    pub fn can_reach(&self, path: &Path) -> bool {
        path.ancestors().skip(1).all(|dir| {
            let Ok(meta) = std::fs::metadata(dir) else {
                return false;
            };
            let mode = meta.mode();
            (meta.uid() == self.uid && mode & 0o100 != 0)
                || (meta.gid() == self.gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        })
    }

    pub fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .context(|| format!("giving {} to user {}", path.display(), self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_can_be_looked_up() {
        let root = lookup("root").expect("every system has root");
        assert_eq!(root.uid, 0);
        assert!(lookup("no-such-user-here").is_none());
    }

    #[test]
    fn reachability_follows_search_permissions() {
        let nobody = ServerUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
        };
        assert!(nobody.can_reach(Path::new("/tmp/anything")));
        let dir = crate::files::TestDir::new("reach");
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        let owner = std::fs::metadata(&locked).unwrap().uid();
        if owner != nobody.uid {
            assert!(!nobody.can_reach(&locked.join("pgdata")));
        }
    }
}
