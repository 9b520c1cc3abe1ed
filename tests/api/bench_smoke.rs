//! `make bench` speaks the same protocol as the functions: a tiny run of the
//! load generator on the debug binaries, against a stack of its own, must end
//! with no error, loss, duplicate or stray frame (it exits 1 otherwise). What
//! it measures is not asserted here; speed is `make bench`'s business.

use std::process::Command;

use crate::helpers::stack::{binaries_dir, workspace_root};

#[test]
fn a_tiny_bench_run_ends_clean() {
    let bin_dir = binaries_dir();
    let output = Command::new(bin_dir.join("chat-bench"))
        .current_dir(workspace_root())
        .args(["--bin-dir", bin_dir.to_str().unwrap()])
        .args(["--clients", "12", "--room-size", "6", "--group-size", "3"])
        .args(["--duration", "2", "--warmup", "1", "--drain", "10"])
        .args([
            "--rest-requests",
            "5",
            "--sequential-sends",
            "3",
            "--floor-samples",
            "20",
        ])
        .arg("--no-save")
        .env("RUST_LOG", "error")
        .output()
        .expect("run chat-bench (cargo build --workspace --bins --examples first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chat-bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("errors 0 · lost 0 · duplicates 0 · acks missing 0 · duplicate acks 0 · strays 0"),
        "{stdout}"
    );
}
