//! `chat-bench`: the load generator and benchmark of the chat backend.
//! `make bench` builds the release binaries and runs it; `--help` lists the flags.

mod api;
mod client;
mod fleet;
mod floor;
mod functions;
mod latency;
mod machine;
mod options;
mod random;
mod report;
mod results;
mod round_trips;
mod run;
mod stack;
mod table;
mod tokens;
mod topology;
mod users;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let options = options::Options::from_args();
    let report = match run::run(&options).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("chat-bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", table::render(&report));
    if options.save {
        let dir = options
            .results_dir
            .clone()
            .unwrap_or_else(|| stack::workspace_root().join("bench/results"));
        match results::save(&report, &dir) {
            Ok(paths) => {
                for path in paths {
                    run::progress(&format!("wrote {}", path.display()));
                }
            }
            Err(message) => {
                eprintln!("chat-bench: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Errors, losses and duplicates must be zero; the figures are kept either way.
    let registered = report.connect.registered == report.connect.clients as u64;
    if !(registered && report.load.integrity.is_clean() && report.unloaded.integrity.is_clean()) {
        eprintln!("chat-bench: messages were lost, duplicated or refused (see integrity above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
