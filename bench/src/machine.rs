//! Where the figures came from: the machine, its software and the commit.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub rustc: Option<String>,
    pub postgres: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub commit: Option<String>,
    /// Tracked files differ from the commit.
    pub dirty: bool,
}

impl Machine {
    pub fn describe(postgres: Option<String>) -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = ["model name", "Hardware", "cpu model", "Processor"]
            .iter()
            .find_map(|key| field(&cpuinfo, key))
            .unwrap_or_else(|| "unknown CPU".into());
        let memory_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|line| line.strip_prefix("PRETTY_NAME="))
            .map(|name| name.trim_matches('"').to_owned())
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            rustc: output("rustc", &["--version"], None),
            postgres,
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} · {} cores · {} GiB · {} · Linux {} {}",
            self.cpu, self.cores, self.memory_gib, self.os, self.kernel, self.arch
        )
    }
}

impl Commit {
    pub fn of(workspace: &Path) -> Commit {
        let commit = output("git", &["rev-parse", "HEAD"], Some(workspace));
        let dirty = output(
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
            Some(workspace),
        )
        .is_some_and(|changes| !changes.is_empty());
        Commit { commit, dirty }
    }

    pub fn short(&self) -> String {
        let short: String = self.commit.as_deref().unwrap_or("unknown").chars().take(10).collect();
        if self.dirty {
            format!("{short} + uncommitted changes")
        } else {
            short
        }
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `key : value` in /proc files.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

fn output(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n";
        assert_eq!(field(text, "model name").as_deref(), Some("Some CPU @ 2.0GHz"));
        assert_eq!(field(text, "Hardware"), None);
    }
}
