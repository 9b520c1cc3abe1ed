//! Creating the cluster (initdb) the first time, and recognising one made by
//! another major version.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;
use tracing::info;

use super::binaries::Binaries;
use super::layout::make_owned_dir;
use super::os_user::{run_as, ServerUser};
use crate::error::{Context, Error, Result};
use crate::process;

/// Superuser created by initdb; trust auth on loopback, as Supabase's CLI.
pub const SUPERUSER: &str = "postgres";

pub async fn initialize_if_needed(
    binaries: &Binaries,
    data_dir: &Path,
    owner: Option<&ServerUser>,
    ephemeral: bool,
) -> Result<()> {
    match std::fs::read_to_string(data_dir.join("PG_VERSION")) {
        Ok(version) => return check_version(version.trim(), binaries, data_dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context(|| format!("reading {}/PG_VERSION", data_dir.display())),
    }
    let is_empty = std::fs::read_dir(data_dir).map(|mut entries| entries.next().is_none());
    if matches!(is_empty, Ok(false)) {
        return Err(Error::Setup(format!(
            "{} exists but holds no database cluster; remove it and start again",
            data_dir.display()
        )));
    }
    make_owned_dir(data_dir, owner)?;
    info!(data_dir = %data_dir.display(), "creating the database cluster (initdb)");
    let mut command = Command::new(&binaries.initdb);
    command
        .arg("--pgdata")
        .arg(data_dir)
        .args(["--username", SUPERUSER, "--auth", "trust", "--encoding", "UTF8"])
        .arg(locale_argument())
        .stdin(Stdio::null());
    if ephemeral {
        command.arg("--no-sync");
    }
    run_as(&mut command, owner);
    let output = process::supervise(&mut command)
        .output()
        .await
        .context(|| format!("running {}", binaries.initdb.display()))?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// C.UTF-8 sorts like C but knows the case of every letter; fall back to
/// plain C where the OS lacks it.
fn locale_argument() -> &'static str {
    if Path::new("/usr/lib/locale/C.utf8").exists() {
        "--locale=C.UTF-8"
    } else {
        "--no-locale"
    }
}

fn check_version(found: &str, binaries: &Binaries, data_dir: &Path) -> Result<()> {
    match binaries.major_version {
        Some(major) if found != major.to_string() => Err(Error::Setup(format!(
            "{} was created by PostgreSQL {found} but the server found is {major}; \
             remove that directory to start over (its data is lost)",
            data_dir.display()
        ))),
        _ => Ok(()),
    }
}
