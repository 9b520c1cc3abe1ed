//! The report as one readable plain-text table (also pasted into the README).

use std::fmt::Write as _;

use crate::cost::CostFigures;
use crate::latency::Summary;
use crate::report::{Integrity, Report};
use crate::round_trips::RoundTrips;
use crate::steps::StepFigures;

/// Statements listed under each operation's round-trip count.
const STATEMENTS_SHOWN: usize = 6;
/// Error texts shown under a step not held.
const STEP_ERRORS_SHOWN: usize = 3;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    if let Some(figures) = &report.steps {
        steps(&mut out, figures);
    }
    latency(&mut out, report);
    throughput(&mut out, report);
    round_trips(&mut out, report);
    cpu(&mut out, report);
    functions(&mut out, report);
    if let Some(figures) = &report.cost {
        cost(&mut out, figures);
    }
    out
}

fn header(out: &mut String, r: &Report) {
    let s = &r.settings;
    let m = &r.machine;
    let _ = writeln!(
        out,
        "chat-bench · {} · commit {}",
        r.started_at.format("%Y-%m-%d %H:%M UTC"),
        r.git.short()
    );
    if let Some(bench) = &r.bench_git {
        let _ = writeln!(out, "          (measured by chat-bench of commit {})", bench.short());
    }
    let _ = writeln!(out, "machine   {}", m.one_line());
    let _ = writeln!(
        out,
        "software  {} · PostgreSQL {}",
        m.rustc.as_deref().unwrap_or("rustc ?"),
        m.postgres.as_deref().unwrap_or("?")
    );
    let room = if s.fan_out_heavy {
        format!(", all {} in one room", s.room_size)
    } else if s.room_size > 0 {
        format!(", a room of {}", s.room_size)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "load      {} clients: {} in {} direct pairs, {} in {} groups of ≤{}{room}",
        s.clients,
        s.clients_in_direct,
        s.direct_conversations,
        s.clients_in_groups,
        s.group_conversations,
        s.group_size
    );
    let room_rate = if s.fan_out_heavy {
        format!(
            " and {} msg/s each into the room (fan-out-heavy)",
            s.room_rate_per_member
        )
    } else if s.room_size > 0 {
        format!(", {} msg/s each into the room", s.room_rate_per_member)
    } else {
        String::new()
    };
    let measured = match &r.steps {
        Some(steps) => format!(
            "{} s warm-up, then steps of {} s, every rate ×{} after each step held",
            s.warmup_s, steps.settings.step_s, steps.settings.factor
        ),
        None => format!("{} s measured after {} s warm-up", s.duration_s, s.warmup_s),
    };
    let instances = s
        .max_instances
        .map_or("the stack's default".to_owned(), |n| n.to_string());
    let _ = writeln!(
        out,
        "          {} msg/s each{room_rate}; {measured}; instances per function: {instances}; stack ready in {:.1} s",
        s.rate_per_client, r.stack_ready_s
    );
    if s.offline_users > 0 {
        let _ = writeln!(
            out,
            "          + {} members who never connect ({} of each group's and the room's members)",
            s.offline_users, s.offline_share
        );
    }
    out.push('\n');
}

fn steps(out: &mut String, figures: &StepFigures) {
    let settings = &figures.settings;
    let _ = writeln!(
        out,
        "steps: held while send → deliver p99 ≤ {} ms and every send is acknowledged within {} s, nothing lost or refused",
        settings.p99_bound_ms, settings.ack_timeout_s
    );
    let _ = writeln!(
        out,
        "{:>6}{:>14}{:>12}{:>10}{:>14}{:>9}{:>9}{:>9}",
        "step", "msg/s/client", "room msg/s", "sends/s", "deliveries/s", "p50 ms", "p99 ms", "unacked"
    );
    for (index, step) in figures.steps.iter().enumerate() {
        let verdict = if step.held() {
            "held".to_owned()
        } else {
            step.failed_because.join(", ")
        };
        let _ = writeln!(
            out,
            "{:>6}{:>14.3}{:>12.3}{:>10.1}{:>14.1}{:>9}{:>9}{:>9}  {verdict}",
            index + 1,
            step.rate_per_client,
            step.room_rate_per_member,
            step.sends_per_s,
            step.deliveries_per_s,
            opt_ms(step.deliver.map(|d| d.p50_ms)),
            opt_ms(step.deliver.map(|d| d.p99_ms)),
            step.unacked
        );
        if !step.held() {
            for sample in step.integrity.error_samples.iter().take(STEP_ERRORS_SHOWN) {
                let _ = writeln!(out, "{:>6}  error: {sample}", "");
            }
        }
    }
    match (figures.highest_held, figures.highest()) {
        (Some(index), Some(step)) => {
            let _ = writeln!(
                out,
                "highest held: step {} · {:.1} deliveries/s · {:.1} sends/s ({:.3} msg/s per client); the figures below are its",
                index + 1,
                step.deliveries_per_s,
                step.sends_per_s,
                step.rate_per_client
            );
        }
        _ => {
            let _ = writeln!(out, "no step held; the figures below are the first step's");
        }
    }
    let _ = writeln!(out, "stopped: {}\n", figures.stopped_because);
}

fn latency(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "{:<46}{:>8}{:>9}{:>9}{:>9}{:>9}",
        "latency (ms)", "count", "p50", "p95", "p99", "max"
    );
    let mut row = |label: &str, summary: Option<&Summary>| match summary {
        Some(s) => {
            let _ = writeln!(
                out,
                "{label:<46}{:>8}{:>9}{:>9}{:>9}{:>9}",
                s.count,
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            );
        }
        None => {
            let _ = writeln!(out, "{label:<46}{:>8}", "—");
        }
    };
    let load = &r.load;
    row("send → deliver, every recipient", load.deliver.as_ref());
    for (kind, summary) in &load.deliver_by_kind {
        row(&format!("  in {kind} conversations"), Some(summary));
    }
    row("send → ack, sender", load.ack.as_ref());
    row("send → deliver, one send at a time", r.unloaded.deliver.as_ref());
    row("send → ack, one send at a time", r.unloaded.ack.as_ref());
    row("WebSocket connect (authorizer+$connect)", r.connect.handshake.as_ref());
    for rest in &r.rest {
        row(&rest.operation, rest.latency.as_ref());
    }
    row("floor: INSERT (tokio-postgres)", Some(&r.floor.insert));
    row("floor: WebSocket push (loopback)", Some(&r.floor.push));
    row("floor: INSERT + push", Some(&r.floor.insert_and_push));
    let ratio = |ratio: Option<&crate::floor::Ratio>| {
        ratio.map_or("—".to_owned(), |x| format!("p50 ×{:.1}, p99 ×{:.1}", x.p50, x.p99))
    };
    let _ = writeln!(
        out,
        "{:<46}deliver {} · ack {}",
        "ours over the floor (INSERT + push)",
        ratio(r.vs_floor.deliver.as_ref()),
        ratio(r.vs_floor.ack.as_ref())
    );
    out.push('\n');
}

fn throughput(out: &mut String, r: &Report) {
    let load = &r.load;
    let drained = load.drained_after_s.map_or("the drain timed out".to_owned(), |s| {
        format!("settled {s:.2} s after sending stopped")
    });
    let _ = writeln!(
        out,
        "throughput  {:.1} sends/s, {:.1} deliveries/s ({} sends, {} deliveries measured over {:.1} s; {drained})",
        load.sends_per_s, load.deliveries_per_s, load.sent_measured, load.deliveries_measured, load.measured_s
    );
    let n = &load.notifications;
    if n.expected + n.handed_off > 0 {
        let notify = match (n.notify_invocations, n.notify_errors) {
            (Some(calls), Some(errors)) => format!("notification function {calls} invocations, {errors} failed"),
            _ => "no notification function in the template".to_owned(),
        };
        let _ = writeln!(
            out,
            "notified    {} of {} sends to offline members handed off ({} users to tell) · {notify} · \
             succeeded {} · retried {} · failed for good {}",
            n.handed_off, n.expected, n.users_to_notify, n.succeeded, n.retries, n.failed
        );
    }
    integrity(out, "integrity   load:", &load.integrity);
    integrity(out, "            one at a time:", &r.unloaded.integrity);
    let failures: u64 = r.rest.iter().map(|rest| rest.failures).sum();
    let _ = writeln!(
        out,
        "            connections registered {}/{} · REST failures {failures} · sockets closed by the server {}/{}",
        r.connect.registered, r.connect.clients, r.disconnect.closed, r.disconnect.clients
    );
    for sample in load
        .integrity
        .error_samples
        .iter()
        .chain(&r.unloaded.integrity.error_samples)
    {
        let _ = writeln!(out, "            error: {sample}");
    }
    out.push('\n');
}

fn integrity(out: &mut String, label: &str, i: &Integrity) {
    let _ = writeln!(
        out,
        "{label} errors {} · lost {} · duplicates {} · acks missing {} · duplicate acks {} · strays {} · dropped sockets {}",
        i.errors, i.lost, i.duplicates, i.acks_missing, i.ack_duplicates, i.strays, i.dropped_sockets
    );
}

fn round_trips(out: &mut String, r: &Report) {
    let _ = writeln!(out, "database round trips per operation (pg_stat_statements calls)");
    let mut row = |label: &str, trips: Option<&RoundTrips>| {
        let Some(trips) = trips else {
            let _ = writeln!(out, "  {label:<46}{:>7}", "—");
            return;
        };
        let _ = writeln!(
            out,
            "  {label:<46}{:>6.2} statements · {:.2} transactions · {:.2} RPC calls (over {})",
            trips.per_operation, trips.transactions_per_operation, trips.rpc_calls_per_operation, trips.operations
        );
        if trips.handed_off_rpc_calls_per_operation > 0.0 {
            let _ = writeln!(
                out,
                "      of which handed off: {:.2} calls of the notification function, each a transaction of its own",
                trips.handed_off_rpc_calls_per_operation
            );
        }
        for statement in trips.statements.iter().take(STATEMENTS_SHOWN) {
            let _ = writeln!(out, "      {:>6.2}  {}", statement.per_operation, statement.statement);
        }
        if trips.statements.len() > STATEMENTS_SHOWN {
            let _ = writeln!(
                out,
                "              … {} more statements",
                trips.statements.len() - STATEMENTS_SHOWN
            );
        }
    };
    row("sendMessage (WebSocket)", r.unloaded.round_trips.as_ref());
    row("connect (authorizer + $connect)", r.connect.round_trips.as_ref());
    row("disconnect ($disconnect)", r.disconnect.round_trips.as_ref());
    for rest in &r.rest {
        row(&rest.operation, rest.round_trips.as_ref());
    }
    out.push('\n');
}

fn cpu(out: &mut String, r: &Report) {
    let Some(cpu) = &r.cpu else {
        let _ = writeln!(out, "CPU by process: not measured (no /proc)\n");
        return;
    };
    let title = format!("CPU by process over {:.1} s (/proc user+system)", cpu.window_s);
    cpu_rows(out, cpu, &title, ["µs/send", "µs/delivery"]);
    let _ = writeln!(
        out,
        "over the load's {} measured sends and {} deliveries; the window runs from the end of the warm-up until the load \
         settled and its notifications ran",
        cpu.sends, cpu.deliveries
    );
    if let Some(host) = &cpu.host {
        host_cpu(out, host);
    }
    out.push('\n');
    if let Some(connect) = &r.connect.cpu {
        let title = format!("CPU by process while connecting ({:.1} s)", connect.window_s);
        cpu_rows(out, connect, &title, ["µs/connect", ""]);
        let _ = writeln!(
            out,
            "over {} WebSocket connections ({} handshakes at a time) and the second after them",
            connect.sends, r.settings.connect_concurrency
        );
        out.push('\n');
    }
}

/// A row per process kind, and under the functions one per function that
/// used any CPU: `per` names the figures' two divisors.
fn cpu_rows(out: &mut String, cpu: &crate::cpu::CpuFigures, title: &str, per: [&str; 2]) {
    let _ = writeln!(
        out,
        "{title:<46}{:>8}{:>9}{:>11}{:>13}",
        "procs", "CPU s", per[0], per[1]
    );
    let row = |out: &mut String, label: &str, k: &crate::cpu::KindCpu| {
        let per = |value: Option<f64>| value.map_or("—".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "{label:<46}{:>8}{:>9.2}{:>11}{:>13}",
            k.processes,
            k.cpu_s,
            per(k.us_per_send),
            per(k.us_per_delivery)
        );
    };
    for kind in &cpu.kinds {
        row(out, &format!("  {}", kind.kind), kind);
        if kind.kind == crate::cpu::FUNCTIONS {
            // Instances that used no CPU in the window are in the JSON only.
            for function in cpu.functions.iter().filter(|f| f.cpu_s > 0.0) {
                row(out, &format!("    {}", function.kind), function);
            }
        }
    }
}

/// The whole machine over the same window, and a warning when the hypervisor
/// took enough of it to make the run incomparable with one where it did not.
fn host_cpu(out: &mut String, host: &crate::host_cpu::HostCpu) {
    /// Below this, steal is within what runs on one machine differ by anyway.
    const NOTICEABLE_STEAL: f64 = 0.05;
    let _ = writeln!(
        out,
        "machine (/proc/stat, core-seconds): busy {:.1} · idle {:.1} · stolen by the hypervisor {:.1} ({:.1}% of all three)",
        host.busy_s,
        host.idle_s,
        host.steal_s,
        host.steal_share * 100.0
    );
    if host.steal_share >= NOTICEABLE_STEAL {
        let _ = writeln!(
            out,
            "  the hypervisor ran other guests on these cores for {:.0}% of the time: this run had less machine than the \
             header says; compare its latencies and rates only with runs that lost as much",
            host.steal_share * 100.0
        );
    }
}

fn functions(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "{:<34}{:>9}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}{:>8}{:>7}{:>6}{:>9}",
        "function",
        "cold p50",
        "cold max",
        "init",
        "first",
        "alone",
        "warm",
        "max",
        "calls",
        "errors",
        "inst",
        "peak RSS"
    );
    let _ = writeln!(
        out,
        "{:<34}{:>9}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}{:>8}{:>7}{:>6}{:>9}",
        "", "ms", "ms", "ms", "ms", "p50 ms", "mean ms", "ms", "", "", "", "MiB"
    );
    for f in &r.functions {
        let _ = writeln!(
            out,
            "{:<34}{:>9}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}{:>8}{:>7}{:>6}{:>9}",
            f.function,
            opt_ms(f.cold_start_p50_ms),
            opt_ms(f.cold_start_max_ms),
            opt_ms(f.init_p50_ms),
            opt_ms(f.first_invocation_p50_ms),
            opt_ms(f.cold_start_alone_p50_ms),
            opt_ms(f.warm_handler_mean_ms),
            if f.invocations > 0 {
                ms(f.max_handler_ms)
            } else {
                "—".into()
            },
            f.invocations,
            f.errors,
            f.instances_started,
            f.peak_rss_kib
                .map_or("—".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        );
    }
    let _ = writeln!(
        out,
        "cold: process start → first invocation answered, less any wait for work once ready, as the run started \
         instances (some in bursts) · init: → first request for work · first: first invocation handed over → answered \
         (p50; the first use of the instance's \
         connections and of the database path) · alone: cold, one instance starting at a time on the warm stack after \
         the run (--cold-rounds; calls and inst count them too) · warm: handler time of later invocations"
    );
    binaries(out, r);
}

/// Each executable once, however many functions run it.
fn binaries(out: &mut String, r: &Report) {
    let sizes: Vec<String> = r
        .binaries
        .iter()
        .map(|b| {
            let size = b
                .bytes
                .map_or("missing".into(), |bytes| format!("{:.1}", bytes as f64 / MIB));
            match b.functions.len() {
                1 => format!("{} {size}", b.binary),
                n => format!("{} {size} ({n} functions)", b.binary),
            }
        })
        .collect();
    let mut lines = vec![format!("binaries (MiB on disk; {} executables):", sizes.len())];
    for size in sizes {
        let line = lines.last_mut().expect("the first line");
        if line.chars().count() + size.chars().count() + 3 > LINE_WIDTH {
            lines.push(format!("{:10}{size}", ""));
        } else {
            line.push_str(if line.ends_with(':') { " " } else { " · " });
            line.push_str(&size);
        }
    }
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

fn cost(out: &mut String, figures: &CostFigures) {
    out.push('\n');
    let _ = writeln!(
        out,
        "Lambda cost by memory size, a MODEL from the CPU (/proc) and handler wall time (emulator) per invocation measured \
         here over the whole run, not a Lambda measurement"
    );
    let mut header = format!("{:<34}{:>8}{:>9}{:>9}", "", "calls", "CPU µs", "wall ms");
    for memory in crate::cost::MEMORY_MB {
        let _ = write!(header, "{:>11}{:>9}", format!("{memory} MB ms"), "GB-s/1M");
    }
    let _ = writeln!(out, "{header}");
    for row in &figures.rows {
        let _ = write!(
            out,
            "{:<34}{:>8}{:>9.0}{:>9}",
            row.name,
            row.invocations,
            row.cpu_us_per_invocation,
            ms(row.wall_ms_per_invocation)
        );
        for at in &row.at {
            let mark = if row.template_memory_mb == Some(at.memory_mb) {
                "*"
            } else {
                ""
            };
            let _ = write!(
                out,
                "{:>11}{:>9}",
                ms(at.duration_ms),
                format!("{:.0}{mark}", at.gb_s_per_million)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "duration(M) = (wall − cpu) + cpu × max(1, {}/M): below a full vCPU the CPU part stretches, the waiting part does not\n\
         GB-s/1M = M/1024 × duration(M) s × 1e6 · * the template's memory size · a path adds one invocation of each of its \
         functions · CPU includes the instances' start-up, spread over their invocations",
        figures.full_vcpu_mb
    );
}

const MIB: f64 = 1024.0 * 1024.0;
/// Where a list of short entries wraps.
const LINE_WIDTH: usize = 120;

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or("—".into(), ms)
}
