//! `chat-local up`: start Postgres, the schema, PostgREST and the API Gateway
//! emulator in that order; announce them; on any way out — a signal, stdin
//! closing, a part failing, a start-up error — stop everything in reverse
//! order and remove ephemeral state.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apigw_local::{Emulator, RunOptions};
use tracing::info;

use crate::cli::{self, UpOptions};
use crate::emulator::{self, EmulatorSettings};
use crate::error::{Error, Result};
use crate::postgres::Database;
use crate::postgrest::{Postgrest, PostgrestSettings};
use crate::ready::{ReadyInfo, UserInfo};
use crate::shutdown::Shutdown;
use crate::state_dir::StateDir;
use crate::tokens::{Subject, TokenMinter, SEED_USERS};
use crate::{schema, secrets, workspace};

/// Tokens in the banner and the ready file.
const USER_TOKEN_TTL: Duration = cli::DEFAULT_TOKEN_TTL;

pub async fn run(options: UpOptions) -> Result<()> {
    // Checked before anything starts: a mistake here is the caller's to fix.
    let faults = options
        .faults
        .or_from_env(|name| std::env::var(name).ok())
        .map_err(Error::Setup)?;
    let run_options = emulator::run_options(&faults);
    run_options
        .validate()
        .map_err(|error| Error::Setup(format!("fault injection: {error}")))?;
    let mut shutdown = Shutdown::listen(options.exit_on_stdin_eof)?;
    let started_at = Instant::now();
    if let Some(path) = &options.ready_file {
        // A leftover from a runner that was killed would announce a dead stack.
        let _ = std::fs::remove_file(path);
    }
    let root = workspace::root();
    let state = if options.ephemeral {
        StateDir::ephemeral(options.state_dir.as_deref())?
    } else {
        let dir = options.state_dir.clone();
        StateDir::persistent(dir.unwrap_or_else(|| workspace::default_state_dir(&root)))?
    };
    let paths = Paths::new(&options, &root);

    let mut stack = Stack::default();
    let started = tokio::select! {
        started = start(&options, run_options, &paths, &state, &mut stack) => Some(started),
        reason = shutdown.requested() => {
            info!("{reason} while starting; stopping");
            None
        }
    };
    let outcome = match started {
        None => Ok(()),
        Some(Err(error)) => Err(error),
        Some(Ok(ready)) => {
            info!(seconds = started_at.elapsed().as_secs_f32(), "ready");
            match announce(&ready, &options, &stack) {
                Ok(()) => tokio::select! {
                    reason = shutdown.requested() => {
                        info!("{reason}; stopping");
                        Ok(())
                    }
                    failure = stack.failed() => Err(Error::Setup(failure)),
                },
                Err(error) => Err(error),
            }
        }
    };
    shutdown.exit_on_next_request();
    stack.stop().await;
    if let Some(path) = &options.ready_file {
        // Stale URLs must not be mistaken for a running stack.
        let _ = std::fs::remove_file(path);
    }
    state.finish();
    info!("stopped");
    outcome
}

struct Paths {
    sql_dir: PathBuf,
    template: PathBuf,
    bin_dir: PathBuf,
}

impl Paths {
    /// As given on the command line, else the workspace's.
    fn new(options: &UpOptions, root: &Path) -> Self {
        let given_or =
            |given: &Option<PathBuf>, default: fn(&Path) -> PathBuf| given.clone().unwrap_or_else(|| default(root));
        Self {
            sql_dir: given_or(&options.sql_dir, workspace::default_sql_dir),
            template: given_or(&options.template, workspace::default_template),
            bin_dir: given_or(&options.bin_dir, workspace::default_bin_dir),
        }
    }
}

/// The running parts, each recorded as soon as it exists so that stopping
/// midway through start-up stops exactly what was started.
#[derive(Default)]
struct Stack {
    database: Option<Database>,
    postgrest: Option<Postgrest>,
    emulator: Option<Emulator>,
    postgres_log: Option<PathBuf>,
}

impl Stack {
    /// Resolves when a part we run dies on its own.
    async fn failed(&mut self) -> String {
        let database = async {
            match self.database.as_mut() {
                Some(database) => database.exited().await,
                None => std::future::pending().await,
            }
        };
        let postgrest = async {
            match self.postgrest.as_mut() {
                Some(postgrest) => postgrest.exited().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            failure = database => failure,
            failure = postgrest => failure,
        }
    }

    /// Reverse order of start: nothing is left talking to a stopped part.
    async fn stop(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
        if let Some(postgrest) = self.postgrest {
            postgrest.stop().await;
        }
        if let Some(database) = self.database {
            database.stop().await;
        }
    }
}

async fn start(
    options: &UpOptions,
    run_options: RunOptions,
    paths: &Paths,
    state: &StateDir,
    stack: &mut Stack,
) -> Result<ReadyInfo> {
    let secrets = secrets::load_or_create(state.path())?;

    let database = stack
        .database
        .insert(Database::start(state.path(), state.is_ephemeral()).await?);
    if matches!(database, Database::Private(_)) {
        stack.postgres_log = Some(state.path().join("postgres.log"));
    }
    let target = database.target().clone();
    let login = database.api_login(&secrets.authenticator_password);
    let client = target.connect().await.map_err(|source| Error::Database {
        context: format!("connecting to {}", target.display_url()),
        source,
    })?;
    schema::prepare(&client, &paths.sql_dir, &login).await?;
    drop(client);

    let postgrest = stack.postgrest.insert(
        Postgrest::start(PostgrestSettings {
            port: options.port(options.postgrest_port, cli::DEV_POSTGREST_PORT),
            database_url: target.url_for(&login.role, Some(&login.password)),
            jwt_secret: &secrets.jwt_secret,
            work_dir: state.path(),
        })
        .await?,
    );
    let postgrest_url = postgrest.url().to_owned();

    let minter = TokenMinter::from_env(&secrets.jwt_secret);
    let anon_key = minter.api_key("anon", secrets.keys_issued_at);
    let service_role_key = minter.api_key("service_role", secrets.keys_issued_at);

    let emulator = stack.emulator.insert(
        emulator::start(EmulatorSettings {
            template_path: paths.template.clone(),
            bin_dir: paths.bin_dir.clone(),
            http_port: options.port(options.http_port, cli::DEV_HTTP_PORT),
            ws_port: options.port(options.ws_port, cli::DEV_WS_PORT),
            postgrest_url: postgrest_url.clone(),
            anon_key: anon_key.clone(),
            service_role_key: service_role_key.clone(),
            jwt_secret: secrets.jwt_secret.clone(),
            credentials: secrets.aws.clone(),
            ws_limits: options.ws_limits.clone(),
            max_instances: options.max_instances,
            run_options,
            vapid: secrets.vapid.clone(),
            notifications: options.notifications.clone(),
        })
        .await?,
    );

    let users: BTreeMap<String, UserInfo> = SEED_USERS
        .iter()
        .map(|seed| {
            let token = minter.access_token(&Subject::from(seed), USER_TOKEN_TTL);
            (
                seed.name.to_owned(),
                UserInfo {
                    id: seed.id.to_string(),
                    token,
                },
            )
        })
        .collect();
    Ok(ReadyInfo {
        http_url: emulator.http_url().to_string(),
        websocket_url: emulator.websocket_url().to_string(),
        management_url: emulator.management_url().to_string(),
        postgrest_url,
        database_url: target.superuser_url(),
        jwt_secret: secrets.jwt_secret,
        anon_key,
        service_role_key,
        aws_region: emulator::REGION.to_owned(),
        aws_access_key_id: secrets.aws.access_key_id,
        aws_secret_access_key: secrets.aws.secret_access_key,
        aws_session_token: secrets.aws.session_token,
        vapid_public_key: secrets.vapid.public_key,
        vapid_private_key: secrets.vapid.private_key,
        users,
        state_dir: state.path().display().to_string(),
        pid: std::process::id(),
    })
}

fn announce(ready: &ReadyInfo, options: &UpOptions, stack: &Stack) -> Result<()> {
    let database = stack
        .database
        .as_ref()
        .map(|db| db.target().display_url())
        .unwrap_or_default();
    // A harness may have closed our stdout; that is no reason to fail.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        ready.banner(&database, stack.postgres_log.as_deref())
    );
    if let Some(path) = &options.ready_file {
        ready.write(path)?;
    }
    Ok(())
}
