//! Finds the OS's PostgreSQL server programs: Debian and Ubuntu keep each
//! major version in /usr/lib/postgresql/<major>/bin (the newest wins); other
//! systems put them on PATH.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
    pub major_version: Option<u32>,
    /// Where extension libraries live, to know whether pg_stat_statements can be preloaded.
    pub lib_dir: PathBuf,
}

const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

pub fn find() -> Result<Binaries> {
    if let Some((major, bin)) = newest_versioned_bin_dir(Path::new(DEBIAN_ROOT)) {
        return Ok(from_bin_dir(&bin, Some(major)));
    }
    if let Some(bin) = on_path("initdb").and_then(|initdb| initdb.parent().map(Path::to_path_buf)) {
        if bin.join("postgres").exists() {
            return Ok(from_bin_dir(&bin, None));
        }
    }
    Err(Error::Setup(
        "no PostgreSQL server found (looked for initdb and postgres under /usr/lib/postgresql/*/bin \
         and on PATH): run `make setup`, or set DATABASE_URL to use a running server"
            .into(),
    ))
}

fn from_bin_dir(bin: &Path, major_version: Option<u32>) -> Binaries {
    Binaries {
        initdb: bin.join("initdb"),
        postgres: bin.join("postgres"),
        major_version,
        lib_dir: bin.parent().map(|dir| dir.join("lib")).unwrap_or_default(),
    }
}

fn newest_versioned_bin_dir(root: &Path) -> Option<(u32, PathBuf)> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Binaries {
    /// pg_stat_statements is in postgresql-contrib on most systems; preloading
    /// a library that is not installed would stop the server from starting.
    pub fn has_pg_stat_statements(&self) -> bool {
        self.lib_dir.join("pg_stat_statements.so").exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::TestDir;

    #[test]
    fn the_highest_major_version_wins() {
        let root = TestDir::new("pgbin");
        for major in ["9", "15", "13", "latest"] {
            let bin = root.path().join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            std::fs::write(bin.join("postgres"), "").unwrap();
        }
        // A version without the server installed does not count.
        std::fs::create_dir_all(root.path().join("16/bin")).unwrap();
        let (major, bin) = newest_versioned_bin_dir(root.path()).unwrap();
        assert_eq!(major, 15);
        assert_eq!(bin, root.path().join("15/bin"));
    }
}
