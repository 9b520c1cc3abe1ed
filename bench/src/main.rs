//! `chat-bench`: the load generator and benchmark of the chat backend.
//! `make bench` builds the release binaries and runs it; `--help` lists the flags.

mod api;
mod chaos;
mod client;
mod cold;
mod cost;
mod cpu;
mod fleet;
mod floor;
mod functions;
mod host_cpu;
mod latency;
mod machine;
mod options;
mod random;
mod report;
mod results;
mod round_trips;
mod run;
mod stack;
mod steps;
mod table;
mod tokens;
mod topology;
mod users;

use std::process::ExitCode;

/// The load generator shares the machine with what it measures: the less
/// CPU its own allocations take, the more is left for the stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let options = options::Options::from_args();
    if options.chaos {
        return chaos_run(&options).await;
    }
    let report = match run::run(&options).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("chat-bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", table::render(&report));
    if options.save {
        match results::save(&report, &results_dir(&options)) {
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
    // Stepping ends on a step that lost, refused or left messages unacknowledged
    // by design; the step held must be clean, and no step may have duplicates.
    if let Some(steps) = &report.steps {
        if steps.highest_held.is_none() {
            eprintln!(
                "chat-bench: not even the first step was held ({})",
                steps.stopped_because
            );
            return ExitCode::FAILURE;
        }
        if !steps.steps.iter().all(|step| step.integrity.is_correct()) {
            eprintln!("chat-bench: a step received messages twice or where they do not belong (see the steps above)");
            return ExitCode::FAILURE;
        }
    }
    let registered = report.connect.registered == report.connect.clients as u64;
    if !(registered && report.load.integrity.is_clean() && report.unloaded.integrity.is_clean()) {
        eprintln!("chat-bench: messages were lost, duplicated or refused (see integrity above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `--chaos`: the table's few lines, the JSON, and the verdict: status 1
/// unless every message reached every member exactly once, in order.
async fn chaos_run(options: &options::Options) -> ExitCode {
    let report = match chaos::run(options).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("chat-bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", chaos::render(&report));
    if options.save {
        match results::save_chaos(&report, &results_dir(options)) {
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
    if !report.is_clean() {
        eprintln!("chat-bench: messages were lost, duplicated, reordered, left unacknowledged or refused (see integrity above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn results_dir(options: &options::Options) -> std::path::PathBuf {
    options
        .results_dir
        .clone()
        .unwrap_or_else(|| stack::workspace_root().join("bench/results"))
}
