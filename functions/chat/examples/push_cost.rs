//! The CPU one `PostToConnection` costs the sending function, measured
//! repeatably: [`ManagementApi`] drives [`fan_out`] against a minimal local
//! `@connections` endpoint (a child process of this program, so that its work
//! is not counted), room-sized fan-outs until `POSTS` posts were delivered.
//!
//! ```text
//! cargo run --release -p chat --example push_cost -- [POSTS] [FAN_OUT_SIZE] [current-thread|multi-thread]
//! ```
//!
//! It prints the process's CPU time (user and system, from `/proc/self/stat`)
//! over the measured posts, per post. The functions run on tokio's
//! current-thread runtime (the default here); `multi-thread` shows what the
//! wake-ups between worker threads add. For an instruction count that does not
//! depend on how busy the machine is, run it under
//! `valgrind --tool=callgrind` twice, with a large and a small `POSTS`: the
//! difference of the two totals over the difference of the posts is the cost
//! of one post, setup excluded. Valgrind does not run the CPU's SHA
//! instructions: under it `sha2` takes its portable path, so SigV4's hashing
//! counts for far more instructions than it costs in CPU time.

use std::process::{Command, Stdio};
use std::time::Instant;

use chat::push::{fan_out, FanOutPolicy, ManagementApi};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const SERVE: &str = "serve";

/// The functions' allocator (functions/lambdas/src/main.rs), so that a post
/// costs here what it costs them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runtime = match args.get(2).map(String::as_str) {
        None | Some("current-thread") => tokio::runtime::Builder::new_current_thread(),
        Some("multi-thread") => tokio::runtime::Builder::new_multi_thread(),
        Some(other) => exit_with(&format!("RUNTIME is current-thread or multi-thread, not {other:?}")),
    };
    let runtime = runtime
        .enable_all()
        .build()
        .unwrap_or_else(|e| exit_with(&format!("runtime: {e}")));
    if args.first().map(String::as_str) == Some(SERVE) {
        return runtime.block_on(serve());
    }
    let posts: u64 = parse_arg(&args, 0, 2_000);
    let fan_out_size: u64 = parse_arg(&args, 1, 100);
    if posts == 0 || fan_out_size == 0 {
        exit_with("POSTS and FAN_OUT_SIZE must be positive");
    }
    runtime.block_on(measure(posts, fan_out_size));
}

async fn measure(posts: u64, fan_out_size: u64) {
    let mut endpoint = Command::new(std::env::current_exe().unwrap_or_else(|e| exit_with(&e.to_string())))
        .arg(SERVE)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| exit_with(&format!("cannot start the endpoint: {e}")));
    let mut port_line = String::new();
    let stdout = endpoint
        .stdout
        .take()
        .unwrap_or_else(|| exit_with("the endpoint has no stdout"));
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut port_line)
        .unwrap_or_else(|e| exit_with(&format!("the endpoint did not say its port: {e}")));
    let url = url::Url::parse(&format!("http://127.0.0.1:{}", port_line.trim()))
        .unwrap_or_else(|e| exit_with(&format!("the endpoint's port: {e}")));

    // The variables Lambda gives the function, with dummy values.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    std::env::set_var("AWS_SESSION_TOKEN", "session-token");
    std::env::set_var("AWS_REGION", "eu-west-1");
    let api = ManagementApi::from_env(&url);
    let payload = br#"{"type":"message.new","message":{"id":"0b8e1c3a-6a0e-4f7e-9a51-3f0f6a2d9c11","conversation_id":"5d2b2f7e-1c1a-4a55-8f5e-2d1e4b7c9a00","sender_id":"c4a7f0a2-8e3b-4b9e-bd7a-6f3e1d2c0b99","body":"hello, room","created_at":"2026-11-30T23:00:00.000000+00:00"}}"#;
    let connection_ids = |round: u64, size: u64| {
        (0..size)
            .map(move |i| format!("Zx{round:05}{i:04}Abc="))
            .collect::<Vec<_>>()
    };

    // Opens the pooled connections, as the function's first fan-out does.
    let warm = fan_out(&api, connection_ids(0, fan_out_size), payload, FanOutPolicy::default()).await;
    check_delivered(warm.delivered as u64, fan_out_size, &warm);

    let (user_before, system_before) = process_cpu_seconds();
    let started = Instant::now();
    let mut delivered = 0;
    let mut round = 1;
    while delivered < posts {
        let size = fan_out_size.min(posts - delivered);
        let report = fan_out(&api, connection_ids(round, size), payload, FanOutPolicy::default()).await;
        check_delivered(report.delivered as u64, size, &report);
        delivered += size;
        round += 1;
    }
    let wall = started.elapsed();
    let (user_after, system_after) = process_cpu_seconds();
    let (user, system) = (user_after - user_before, system_after - system_before);
    let _ = endpoint.kill();
    let _ = endpoint.wait();
    println!(
        "posts {posts}  fan-out size {fan_out_size}  cpu {:.1} us/post (user {:.1} + system {:.1})  \
         wall {:.3} s ({:.0} posts/s)",
        (user + system) * 1e6 / posts as f64,
        user * 1e6 / posts as f64,
        system * 1e6 / posts as f64,
        wall.as_secs_f64(),
        posts as f64 / wall.as_secs_f64()
    );
}

fn parse_arg(args: &[String], index: usize, default: u64) -> u64 {
    match args.get(index) {
        None => default,
        Some(value) => value
            .parse()
            .unwrap_or_else(|_| exit_with(&format!("not a count: {value:?}"))),
    }
}

fn check_delivered(delivered: u64, expected: u64, report: &chat::push::FanOutReport) {
    if delivered != expected {
        exit_with(&format!("{delivered} of {expected} delivered: {report:?}"));
    }
}

fn exit_with(message: &str) -> ! {
    eprintln!("push_cost: {message}");
    std::process::exit(1)
}

/// User and system time of this process (all its threads), from `/proc/self/stat`.
fn process_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_else(|e| exit_with(&e.to_string()));
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
    (
        ticks(11) as f64 / CLOCK_TICKS_PER_SECOND,
        ticks(12) as f64 / CLOCK_TICKS_PER_SECOND,
    )
}

/// The endpoint: `200` with an empty body to every request, keep-alive, as
/// API Gateway answers a `PostToConnection` to a live connection.
async fn serve() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| exit_with(&format!("bind: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("{port}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = answer_each_request(stream).await;
        });
    }
}

async fn answer_each_request(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut content_length = 0usize;
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if !line.starts_with("POST ") && !line.starts_with("GET ") && !line.starts_with("DELETE ") {
            return Err(std::io::Error::other(format!("not a request line: {line:?}")));
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(content_length, 0);
        reader.read_exact(&mut body).await?;
        write
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncontent-type: application/json\r\n\r\n")
            .await?;
    }
}
