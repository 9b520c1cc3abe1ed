use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot read template {path}: {source}")]
    ReadTemplate { path: PathBuf, source: std::io::Error },
    #[error("invalid template: {0}")]
    Template(String),
    #[error("function {function}: binary not found at {path}")]
    MissingBinary { function: String, path: PathBuf },
    #[error("invalid run options: {0}")]
    RunOptions(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}
