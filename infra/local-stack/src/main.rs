//! `chat-local`: the whole chat backend on one machine, without Docker or a
//! cloud account. See `chat-local --help`.

mod cli;
mod emulator;
mod error;
mod files;
mod migrations;
mod ports;
mod postgres;
mod postgrest;
mod process;
mod random;
mod ready;
mod schema;
mod secrets;
mod shutdown;
mod state_dir;
mod tokens;
mod up;
mod workspace;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use cli::{Cli, Command, TokenOptions};
use error::{Context as _, Result};

/// The emulator answers every post to a connection and writes it to a
/// socket: small allocations by the hundred per message, cheaper here than
/// with glibc's malloc (as in the functions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A bad command line prints the usage and exits with 2 here.
    let cli = Cli::parse();
    init_logging();
    let threads = match &cli.command {
        Some(Command::Up(options)) => options.threads.unwrap_or(1),
        _ => 1,
    };
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.into())
            .enable_all()
            .build(),
    };
    let outcome = match runtime {
        Err(e) => Err(error::Error::Setup(format!("starting the async runtime: {e}"))),
        Ok(runtime) => runtime.block_on(async {
            match cli.command {
                None => Cli::command().print_help().context(|| "printing the help".into()),
                Some(Command::Up(options)) => up::run(options).await,
                Some(Command::Token(options)) => print_token(options),
                Some(Command::DbPush(options)) => migrations::push_command(options).await,
            }
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-local: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// `chat-local token`: a user's access token, signed with the secret the
/// stack of that state dir uses.
fn print_token(options: TokenOptions) -> Result<()> {
    let root = workspace::root();
    let state_dir = (options.state_dir.clone()).unwrap_or_else(|| workspace::default_state_dir(&root));
    let state = state_dir::StateDir::persistent(state_dir)?;
    let secrets = secrets::load_or_create(state.path())?;
    let minter = tokens::TokenMinter::from_env(&secrets.jwt_secret);
    println!("{}", minter.access_token(&options.user, options.lifetime()));
    Ok(())
}
