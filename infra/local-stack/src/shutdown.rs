//! What ends the stack: Ctrl-C, SIGTERM, SIGHUP, or (for test harnesses)
//! stdin reaching end-of-file because the harness closed it or died.

use std::io::Read as _;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::error::{Context, Result};

pub struct Shutdown {
    requests: mpsc::UnboundedReceiver<&'static str>,
}

impl Shutdown {
    /// Listens from now on, so a signal during start-up is not lost.
    pub fn listen(exit_on_stdin_eof: bool) -> Result<Self> {
        let (sender, requests) = mpsc::unbounded_channel();
        for (kind, reason) in [
            (SignalKind::interrupt(), "interrupted"),
            (SignalKind::terminate(), "terminated"),
            (SignalKind::hangup(), "hung up"),
        ] {
            let mut stream = signal(kind).context(|| format!("listening for the `{reason}` signal"))?;
            let sender = sender.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if sender.send(reason).is_err() {
                        break;
                    }
                }
            });
        }
        if exit_on_stdin_eof {
            // A plain thread: a blocking read in tokio's pool would keep the
            // runtime from shutting down.
            std::thread::spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut buffer = [0u8; 256];
                while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
                let _ = sender.send("stdin closed");
            });
        }
        Ok(Self { requests })
    }

    /// Waits for the first request to stop and says what it was.
    pub async fn requested(&mut self) -> &'static str {
        self.requests.recv().await.unwrap_or("no way left to be stopped")
    }

    /// After the first request, a second one means "now": exit at once. The
    /// kernel still kills every child (they die with the runner).
    pub fn exit_on_next_request(mut self) {
        tokio::spawn(async move {
            if let Some(reason) = self.requests.recv().await {
                eprintln!("chat-local: {reason} again; exiting without cleaning up");
                std::process::exit(130);
            }
        });
    }
}
