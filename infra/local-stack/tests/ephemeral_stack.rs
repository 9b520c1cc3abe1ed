//! `chat-local up --ephemeral` as a test harness uses it: start, read the
//! ready file, talk to PostgREST, close stdin, and find nothing left behind.
//! Uses DATABASE_URL when the environment sets it, else a private cluster.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(120);
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn an_ephemeral_stack_serves_postgrest_and_leaves_nothing_behind() {
    let scratch = Scratch::new();
    let ready_file = scratch.path().join("ready.json");
    let bin_dir = stub_function_binaries(&scratch.path().join("bin"));

    let mut runner = Runner(
        Command::new(env!("CARGO_BIN_EXE_chat-local"))
            .args(["up", "--ephemeral", "--exit-on-stdin-eof", "--ready-file"])
            .arg(&ready_file)
            .arg("--bin-dir")
            .arg(&bin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chat-local starts"),
    );
    let ready = wait_for_ready_file(&mut runner.0, &ready_file);

    for key in [
        "http_url",
        "websocket_url",
        "management_url",
        "postgrest_url",
        "database_url",
        "jwt_secret",
    ] {
        assert!(
            ready[key].as_str().is_some_and(|v| !v.is_empty()),
            "ready file lacks {key}: {ready}"
        );
    }
    for user in ["alice", "bob", "carol", "dave"] {
        assert!(ready["users"][user]["token"].is_string(), "no token for {user}");
    }
    assert_eq!(ready["users"]["alice"]["id"], "00000000-0000-4000-8000-00000000a11c");

    let anon_key = ready["anon_key"].as_str().expect("anon key");
    let response = reqwest::Client::new()
        .post(format!("{}/rpc/health_stats", ready["postgrest_url"].as_str().unwrap()))
        .header("apikey", anon_key)
        .bearer_auth(anon_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("PostgREST answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST /rpc/health_stats as anon: {status} {body}");

    let runner_pid = runner.0.id();
    let descendants = descendants_of(runner_pid);
    assert!(!descendants.is_empty(), "the runner should have child processes");
    let state_dir = PathBuf::from(ready["state_dir"].as_str().expect("state dir"));
    assert!(state_dir.is_dir());

    // Closing stdin is how a harness says "done" (or how its death looks).
    drop(runner.0.stdin.take());
    let status = wait_for_exit(&mut runner.0);
    assert!(status.success(), "chat-local exited with {status}");

    let survivors: Vec<_> = descendants.iter().filter(|pid| is_running(**pid)).collect();
    assert!(survivors.is_empty(), "processes left running: {survivors:?}");
    assert!(!state_dir.exists(), "{} was not removed", state_dir.display());
    assert!(!ready_file.exists(), "the ready file should be removed on exit");
}

/// Kills the runner if the test fails before it exits.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_ready_file(runner: &mut Child, path: &Path) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).expect("the ready file is JSON");
        }
        if let Some(status) = runner.try_wait().unwrap() {
            panic!("chat-local exited before it was ready: {status}");
        }
        assert!(
            started.elapsed() < READY_DEADLINE,
            "not ready within {READY_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_exit(runner: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = runner.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < EXIT_DEADLINE,
            "still running {EXIT_DEADLINE:?} after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every process below `root`, from /proc.
fn descendants_of(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((pid, proc_stat(pid)?.1))
        })
        .collect();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    found.remove(0);
    found
}

/// (state, parent pid) of a process. The command name may contain spaces
/// and parentheses, so fields are counted after its last ')'.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Gone, or a zombie waiting for whoever adopted it to reap it.
fn is_running(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// The emulator needs a file for every function in the template; it starts
/// them only on demand, and this test calls none, so stand-ins suffice and
/// the test does not depend on the functions being built.
fn stub_function_binaries(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let template = std::fs::read_to_string(&template).expect("template.yaml");
    std::fs::create_dir_all(dir).unwrap();
    for line in template.lines() {
        if let Some(name) = line.trim().strip_prefix("Binary:") {
            let path = dir.join(name.trim().trim_matches('"'));
            std::fs::write(&path, "#!/bin/sh\nexit 1\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir.to_path_buf()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("chat-local-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
