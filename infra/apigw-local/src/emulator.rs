use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::async_invoke::AsyncInvoker;
use crate::config::{EmulatorConfig, RunOptions};
use crate::error::EmulatorError;
use crate::faults::FaultInjector;
use crate::http_api::{self, HttpApi};
use crate::invoke_api::{self, InvokeApi};
use crate::lambda::session::InstanceTokens;
use crate::lambda::stats::EmulatorStats;
use crate::lambda::{FunctionPool, FunctionSet, InvokeError, LaunchConfig, PoolSettings};
use crate::template::{FunctionSpec, Template, WebSocketSpec};
use crate::websocket::{self, WsApi};
use crate::{ids, schedule};

/// How long shutdown waits for servers to finish their last requests.
const SERVER_STOP_WAIT: Duration = Duration::from_secs(5);

/// A running emulator. Dropping it kills the function processes; `shutdown`
/// also closes the sockets (running `$disconnect`) and waits for everything.
pub struct Emulator {
    http_addr: SocketAddr,
    ws_addr: SocketAddr,
    stage: String,
    functions: Arc<FunctionSet>,
    ws_api: Arc<WsApi>,
    /// Longest function timeout plus slack: the bound on `$disconnect` at shutdown.
    disconnect_wait: Duration,
    stop_servers: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    /// One per running schedule.
    schedules: Vec<JoinHandle<()>>,
}

impl Emulator {
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        Emulator::start_with(config, RunOptions::default()).await
    }

    /// Starts the emulator with what `options` adds to the template: injected
    /// faults, one interval for every schedule.
    pub async fn start_with(config: EmulatorConfig, options: RunOptions) -> Result<Emulator, EmulatorError> {
        options.validate().map_err(EmulatorError::RunOptions)?;
        let text = tokio::fs::read_to_string(&config.template_path)
            .await
            .map_err(|source| EmulatorError::ReadTemplate {
                path: config.template_path.clone(),
                source,
            })?;
        let template = Template::parse(&text, &config.parameter_overrides, &config.region)?;
        let kill_after_commit = kill_after_commit_shares(&options.faults.kill_after_commit, &template.functions)
            .map_err(EmulatorError::RunOptions)?;
        let faults = Arc::new(FaultInjector::new(options.faults.clone()));
        if options.faults.is_enabled() {
            tracing::info!(faults = ?options.faults, seed = faults.seed(), "fault injection on");
        }
        let tokens = Arc::new(InstanceTokens::new(config.credentials.clone()));

        let default_max = config.default_max_instances.max(1);
        let mut pools = Vec::new();
        for spec in template.functions.values() {
            let launch = LaunchConfig::new(
                spec,
                &config.bin_dir,
                &config.function_env,
                &config.region,
                &config.credentials,
            );
            if !launch.executable.is_file() {
                return Err(EmulatorError::MissingBinary {
                    function: spec.logical_id.clone(),
                    path: launch.executable,
                });
            }
            let settings = PoolSettings {
                max_instances: spec.reserved_concurrency.unwrap_or(default_max),
                faults: Arc::clone(&faults),
                kill_after_commit: kill_after_commit.get(&spec.logical_id).copied().unwrap_or(0.0),
                tokens: Arc::clone(&tokens),
            };
            pools.push(FunctionPool::new(spec.clone(), launch, &config.region, settings));
        }
        let functions = Arc::new(FunctionSet::new(pools, faults, tokens));
        let longest_timeout = template.functions.values().map(|f| f.timeout).max().unwrap_or_default();

        let http_listener = bind(config.http_addr).await?;
        let ws_listener = bind(config.ws_addr).await?;
        let http_addr = local_addr(&http_listener, config.http_addr)?;
        let ws_addr = local_addr(&ws_listener, config.ws_addr)?;

        let ws_spec = template.websocket.clone().unwrap_or_else(|| WebSocketSpec {
            logical_id: "WebSocketApi".into(),
            route_selection_expression: "$request.body.action".into(),
            stage: "$default".into(),
            routes: BTreeMap::new(),
            throttling: Default::default(),
        });
        let stage = ws_spec.stage.clone();
        let ws_api = Arc::new(WsApi::new(
            ws_spec.clone(),
            ids::api_id(&ws_spec.logical_id),
            config.region.clone(),
            config.credentials.clone(),
            config.ws_limits,
            ws_addr.port(),
            Arc::clone(&functions),
        ));
        let http_api = Arc::new(HttpApi::new(
            &template.http_routes,
            template.http_cors.clone(),
            template.http_throttling.clone(),
            Arc::clone(&functions),
            ids::api_id(&template.http_api_logical_id),
            http_addr.port(),
        ));

        // Lambda's Invoke API, for functions that invoke others, on the port
        // the functions already call AWS on (`Emulator::lambda_url`).
        let invoke_api = Arc::new(InvokeApi {
            invoker: Arc::new(AsyncInvoker::new(
                Arc::clone(&functions),
                config.region.clone(),
                config.async_retry_delay,
            )),
            functions: Arc::clone(&functions),
            credentials: config.credentials.clone(),
            region: config.region.clone(),
        });

        let (stop_servers, stopped) = watch::channel(false);
        let servers = vec![
            serve(http_listener, http_api::router(http_api), stopped.clone()),
            serve(
                ws_listener,
                websocket::router(Arc::clone(&ws_api)).merge(invoke_api::router(invoke_api)),
                stopped,
            ),
        ];
        let schedules = schedule::start(
            &template.schedules,
            options.schedule_every,
            &config.region,
            Arc::clone(&functions),
            functions.schedule_runs(),
        );
        let emulator = Emulator {
            http_addr,
            ws_addr,
            stage,
            functions,
            ws_api,
            disconnect_wait: longest_timeout + Duration::from_secs(5),
            stop_servers,
            servers,
            schedules,
        };
        tracing::info!(
            http = %emulator.http_url(),
            websocket = %emulator.websocket_url(),
            functions = template.functions.len(),
            http_routes = template.http_routes.len(),
            schedules = emulator.schedules.len(),
            "API Gateway emulator listening"
        );
        Ok(emulator)
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://{}", host_port(self.http_addr))
    }

    /// `ws://127.0.0.1:PORT/<stage>`
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", host_port(self.ws_addr), self.stage)
    }

    /// `http://127.0.0.1:PORT/<stage>`: the Management API's `endpoint_url`.
    pub fn management_url(&self) -> String {
        format!("http://{}/{}", host_port(self.ws_addr), self.stage)
    }

    /// `http://127.0.0.1:PORT`: Lambda's Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
    pub fn lambda_url(&self) -> String {
        format!("http://{}", host_port(self.ws_addr))
    }

    pub fn stats(&self) -> EmulatorStats {
        self.functions.stats()
    }

    /// Runs a function of the template on a raw event, as Lambda's `Invoke`
    /// API (and `sam local invoke -e`) does: a warm instance or a new process
    /// of its binary gets it through the Runtime API, like an API event.
    /// Returns what the handler answered, or why there is no answer.
    pub async fn invoke(&self, logical_id: &str, event: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        self.functions
            .invoke(logical_id, event)
            .await
            .map(|answer| answer.to_vec())
    }

    /// Closes every socket (running `$disconnect`), stops every function
    /// process and waits for them.
    pub async fn shutdown(mut self) {
        for schedule in self.schedules.drain(..) {
            schedule.abort();
        }
        let _ = self.stop_servers.send(true);
        self.ws_api.close_all(self.disconnect_wait).await;
        self.functions.stop_all().await;
        for server in self.servers.drain(..) {
            let abort = server.abort_handle();
            if tokio::time::timeout(SERVER_STOP_WAIT, server).await.is_err() {
                abort.abort();
            }
        }
        tracing::info!("API Gateway emulator stopped");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for schedule in &self.schedules {
            schedule.abort();
        }
        let _ = self.stop_servers.send(true);
        self.functions.kill_all();
        for server in &self.servers {
            server.abort();
        }
    }
}

/// `--fault-kill-after-commit` names (a logical id, a handler, or a binary
/// name standing for every function that runs it) -> share by logical id;
/// where several names match one function, the most specific wins: its
/// logical id, then its handler, then its binary.
fn kill_after_commit_shares(
    by_name: &BTreeMap<String, f64>,
    functions: &BTreeMap<String, FunctionSpec>,
) -> Result<BTreeMap<String, f64>, String> {
    // Logical id -> (how specific the name was, lower is more; share).
    let mut chosen: BTreeMap<String, (u8, f64)> = BTreeMap::new();
    for (name, share) in by_name {
        let matching: Vec<&FunctionSpec> = functions.values().filter(|f| f.is_called(name)).collect();
        if matching.is_empty() {
            let known: Vec<String> = functions
                .values()
                .map(|f| format!("{} ({})", f.logical_id, f.short_name()))
                .collect();
            return Err(format!(
                "kill after commit: no function has the logical id, handler or binary {name:?}; the template has {}",
                known.join(", ")
            ));
        }
        for function in matching {
            let specificity = if function.logical_id == *name {
                0
            } else if function.handler == *name {
                1
            } else {
                2
            };
            let entry = chosen
                .entry(function.logical_id.clone())
                .or_insert((specificity, *share));
            if specificity < entry.0 {
                *entry = (specificity, *share);
            }
        }
    }
    Ok(chosen.into_iter().map(|(id, (_, share))| (id, share)).collect())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, EmulatorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr, EmulatorError> {
    listener.local_addr().map_err(|source| EmulatorError::Bind {
        addr: requested,
        source,
    })
}

fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(crate::no_delay(listener), service)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "server failed");
        }
    })
}

/// Where clients reach a listener: loopback when it listens on every address.
fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        _ => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(logical_id: &str, handler: &str, binary: &str) -> (String, FunctionSpec) {
        let spec = FunctionSpec {
            logical_id: logical_id.into(),
            function_name: logical_id.into(),
            binary: binary.into(),
            handler: handler.into(),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            reserved_concurrency: None,
            log_format: None,
            event_invoke: Default::default(),
        };
        (logical_id.to_string(), spec)
    }

    #[test]
    fn kill_after_commit_takes_logical_ids_handlers_and_binary_names() {
        let functions = BTreeMap::from([
            function("WsSendMessageFunction", "ws-send-message", "chat-functions"),
            function("SendMessageFunction", "http-send-message", "chat-functions"),
            function("AuthorizerFunction", "authorizer", "chat-functions"),
            function("EchoA", "bootstrap", "echo"),
            function("EchoB", "bootstrap", "echo"),
        ]);
        let shares = |names: &[(&str, f64)]| {
            let by_name = names.iter().map(|(n, s)| (n.to_string(), *s)).collect();
            kill_after_commit_shares(&by_name, &functions)
        };
        assert_eq!(
            shares(&[("ws-send-message", 0.5)]).unwrap(),
            BTreeMap::from([("WsSendMessageFunction".to_string(), 0.5)])
        );
        assert_eq!(
            shares(&[("SendMessageFunction", 1.0)]).unwrap(),
            BTreeMap::from([("SendMessageFunction".to_string(), 1.0)])
        );
        // A binary shared by two functions stands for both; a logical id wins over it.
        assert_eq!(
            shares(&[("echo", 0.25), ("EchoB", 1.0)]).unwrap(),
            BTreeMap::from([("EchoA".to_string(), 0.25), ("EchoB".to_string(), 1.0)])
        );
        // A handler wins over the binary that runs it, whether it sorts
        // before the binary's name (authorizer) or after (http-send-message).
        assert_eq!(
            shares(&[("authorizer", 0.0), ("chat-functions", 0.5), ("http-send-message", 1.0)]).unwrap(),
            BTreeMap::from([
                ("AuthorizerFunction".to_string(), 0.0),
                ("SendMessageFunction".to_string(), 1.0),
                ("WsSendMessageFunction".to_string(), 0.5)
            ])
        );
        let error = shares(&[("ws-send", 1.0)]).unwrap_err();
        assert!(
            error.contains("\"ws-send\"") && error.contains("WsSendMessageFunction (ws-send-message)"),
            "{error}"
        );
    }

    #[test]
    fn urls_use_loopback_for_wildcard_listeners() {
        assert_eq!(host_port("0.0.0.0:3000".parse().unwrap()), "127.0.0.1:3000");
        assert_eq!(host_port("127.0.0.1:3001".parse().unwrap()), "127.0.0.1:3001");
        assert_eq!(host_port("[::]:3002".parse().unwrap()), "[::1]:3002");
    }
}
