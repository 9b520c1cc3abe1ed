//! Where the workspace's files are, so the runner works from any directory
//! inside the repository (and from `cargo test`, which runs in the package dir).

use std::path::{Path, PathBuf};

/// The workspace root: the nearest ancestor of the current directory whose
/// Cargo.toml declares a workspace, else the one this crate was built in.
pub fn root() -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|dir| find_workspace_root(&dir))
        .unwrap_or_else(built_in_root)
}

fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|line| line.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

fn built_in_root() -> PathBuf {
    // This package lives at <root>/infra/local-stack.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Persistent dev state: database cluster, secrets.
pub fn default_state_dir(root: &Path) -> PathBuf {
    root.join(".local")
}

pub fn default_template(root: &Path) -> PathBuf {
    root.join("template.yaml")
}

pub fn default_sql_dir(root: &Path) -> PathBuf {
    root.join("sql")
}

/// Where cargo put the function binaries of a debug build: $CARGO_TARGET_DIR
/// when set; else the directory this runner itself was built into, because
/// cargo places every binary of the workspace side by side there (that also
/// follows a target dir set in cargo's config); else <root>/target/debug.
pub fn default_bin_dir(root: &Path) -> PathBuf {
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(target).join("debug");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .map(|dir| {
            // Test binaries run from <profile>/deps; the bins are one up.
            if dir.file_name().is_some_and(|name| name == "deps") {
                dir.parent().map(Path::to_path_buf).unwrap_or(dir)
            } else {
                dir
            }
        })
        .filter(|dir| dir.file_name().is_some_and(|name| name == "debug" || name == "release"))
        .unwrap_or_else(|| root.join("target").join("debug"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_from_inside_a_member() {
        let member = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = find_workspace_root(member).expect("workspace root");
        assert!(root.join("template.yaml").exists(), "{}", root.display());
        assert!(member.starts_with(&root));
    }
}
