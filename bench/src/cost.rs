//! What each function would cost on Lambda at other memory sizes, modelled
//! from what this run measured locally: its CPU time per invocation (from
//! `/proc`) and its handler's wall time per invocation (from the emulator).
//!
//! Lambda gives a function a share of one vCPU proportional to its memory, a
//! full vCPU at 1,769 MB. Below that the CPU part of an invocation stretches
//! by 1769/M; the waiting part (the database, `@connections`) does not:
//! duration(M) = (wall − cpu) + cpu × max(1, 1769/M). A model, not a Lambda
//! measurement: the local machine's CPU is not Lambda's, and a local instance
//! has a whole core whenever it runs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cpu::KindCpu;

/// The memory sizes priced.
pub const MEMORY_MB: [u64; 4] = [128, 256, 512, 1024];
/// The memory size at which a Lambda function has one full vCPU.
pub const FULL_VCPU_MB: f64 = 1769.0;
/// Besides the send and connect paths, functions invoked at least this often
/// in the run are priced (fewer, and their instances' start-up dominates).
pub const OFTEN: u64 = 50;

/// The send path: one invocation per `sendMessage`.
pub const SEND_PATH: &[&str] = &["WsSendMessageFunction"];
/// The connect path: one authorizer and one `$connect` invocation per connection.
pub const CONNECT_PATH: &[&str] = &["WsAuthorizerFunction", "WsConnectFunction"];

/// Billed duration of one invocation with `wall_ms` of handler time, of
/// which `cpu_ms` on the CPU, at `memory_mb`. The waiting part is never
/// negative (CPU outside the handler, such as the instance's start-up, can
/// exceed the handler time).
pub fn duration_ms(wall_ms: f64, cpu_ms: f64, memory_mb: u64) -> f64 {
    let stretch = (FULL_VCPU_MB / memory_mb as f64).max(1.0);
    (wall_ms - cpu_ms).max(0.0) + cpu_ms * stretch
}

/// GB-seconds of a million invocations of `duration_ms` each at `memory_mb`.
pub fn gb_seconds_per_million(memory_mb: u64, duration_ms: f64) -> f64 {
    memory_mb as f64 / 1024.0 * (duration_ms / 1000.0) * 1e6
}

/// One function's measured figures over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub invocations: u64,
    pub cpu_s: f64,
    pub handler_ms: f64,
    /// The template's memory size.
    pub memory_mb: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostFigures {
    pub model: &'static str,
    pub full_vcpu_mb: f64,
    pub rows: Vec<CostRow>,
}

/// A path (its functions' invocations added, one of each per operation) or one function.
#[derive(Debug, Clone, Serialize)]
pub struct CostRow {
    pub name: String,
    pub functions: Vec<String>,
    /// Invocations of the first function (for a path: operations).
    pub invocations: u64,
    /// The template's memory size, when the functions share one.
    pub template_memory_mb: Option<u64>,
    pub cpu_us_per_invocation: f64,
    pub wall_ms_per_invocation: f64,
    pub at: Vec<AtMemory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AtMemory {
    pub memory_mb: u64,
    pub duration_ms: f64,
    pub gb_s_per_million: f64,
}

pub const MODEL: &str = "duration(M) = (wall - cpu) + cpu * max(1, 1769/M); GB-s per million = M/1024 * duration(M) s \
                         * 1e6; modelled from the local CPU and wall time per invocation, not measured on Lambda";

/// The send path, the connect path (and its two functions), then every
/// other function invoked at least [`OFTEN`] times, most invoked first.
pub fn figures(measured: &BTreeMap<String, Measured>) -> CostFigures {
    let mut rows = Vec::new();
    let mut priced: Vec<&str> = Vec::new();
    for (name, path) in [("send", SEND_PATH), ("connect", CONNECT_PATH)] {
        let parts: Vec<(&str, &Measured)> = path
            .iter()
            .filter_map(|id| Some((*id, measured.get(*id).filter(|m| m.invocations > 0)?)))
            .collect();
        if parts.len() != path.len() {
            continue;
        }
        rows.push(row(&format!("{name} path"), &parts));
        if parts.len() > 1 {
            rows.extend(parts.iter().map(|part| row(&format!("  {}", part.0), &[*part])));
        }
        priced.extend(path);
    }
    let mut others: Vec<(&str, &Measured)> = measured
        .iter()
        .filter(|(id, m)| m.invocations >= OFTEN && !priced.contains(&id.as_str()))
        .map(|(id, m)| (id.as_str(), m))
        .collect();
    others.sort_by(|a, b| b.1.invocations.cmp(&a.1.invocations).then(a.0.cmp(b.0)));
    rows.extend(others.iter().map(|part| row(part.0, &[*part])));
    CostFigures {
        model: MODEL,
        full_vcpu_mb: FULL_VCPU_MB,
        rows,
    }
}

/// `parts`: every function invoked once per operation of the row.
fn row(name: &str, parts: &[(&str, &Measured)]) -> CostRow {
    let per_invocation: Vec<(f64, f64)> = parts
        .iter()
        .map(|(_, m)| {
            let n = m.invocations as f64;
            (m.cpu_s * 1000.0 / n, m.handler_ms / n)
        })
        .collect();
    let at = MEMORY_MB
        .iter()
        .map(|&memory_mb| {
            let duration: f64 = per_invocation
                .iter()
                .map(|&(cpu_ms, wall_ms)| duration_ms(wall_ms, cpu_ms, memory_mb))
                .sum();
            AtMemory {
                memory_mb,
                duration_ms: round(duration, 3),
                gb_s_per_million: round(gb_seconds_per_million(memory_mb, duration), 1),
            }
        })
        .collect();
    let memory = parts[0].1.memory_mb;
    CostRow {
        name: name.to_owned(),
        functions: parts.iter().map(|(id, _)| (*id).to_owned()).collect(),
        invocations: parts[0].1.invocations,
        template_memory_mb: parts.iter().all(|(_, m)| m.memory_mb == memory).then_some(memory),
        cpu_us_per_invocation: round(per_invocation.iter().map(|p| p.0).sum::<f64>() * 1000.0, 1),
        wall_ms_per_invocation: round(per_invocation.iter().map(|p| p.1).sum(), 3),
        at,
    }
}

/// Measured figures by function: CPU from `cpu_by_function` (rows named by
/// logical id), invocations and handler time from the emulator's counters
/// at the start and the end of the same span.
pub fn measured(
    cpu_by_function: &[KindCpu],
    before: &apigw_local::EmulatorStats,
    after: &apigw_local::EmulatorStats,
    memory_of: impl Fn(&str) -> Option<u64>,
) -> BTreeMap<String, Measured> {
    cpu_by_function
        .iter()
        .filter_map(|cpu| {
            let now = after.functions.get(&cpu.kind)?;
            let then = before.functions.get(&cpu.kind);
            let invocations = now.invocations.saturating_sub(then.map_or(0, |f| f.invocations));
            let handler_ms = now.total_handler_ms - then.map_or(0.0, |f| f.total_handler_ms);
            let memory_mb = memory_of(&cpu.kind)?;
            Some((
                cpu.kind.clone(),
                Measured {
                    invocations,
                    cpu_s: cpu.cpu_s,
                    handler_ms: handler_ms.max(0.0),
                    memory_mb,
                },
            ))
        })
        .collect()
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_part_stretches_below_a_full_vcpu_and_the_waiting_part_does_not() {
        // 3 ms of handler time, 1 ms of it on the CPU.
        // 128 MB: 2 + 1 × 1769/128 = 2 + 13.8203125
        assert_eq!(duration_ms(3.0, 1.0, 128), 15.8203125);
        // 256 MB: 2 + 6.91015625; 1024 MB: 2 + 1.7275390625
        assert_eq!(duration_ms(3.0, 1.0, 256), 8.91015625);
        assert_eq!(duration_ms(3.0, 1.0, 1024), 3.7275390625);
        // From 1,769 MB on, a full vCPU: the wall time itself.
        assert_eq!(duration_ms(3.0, 1.0, 2048), 3.0);
        // CPU beyond the handler's time: nothing waits.
        assert_eq!(duration_ms(1.0, 2.0, 1769), 2.0);
    }

    #[test]
    fn gb_seconds_per_million_invocations() {
        // 0.125 GB × 0.0158203125 s × 1e6
        assert_eq!(gb_seconds_per_million(128, 15.8203125), 1977.5390625);
        // 0.25 GB × 0.00891015625 s × 1e6
        assert_eq!(gb_seconds_per_million(256, 8.91015625), 2227.5390625);
        assert_eq!(gb_seconds_per_million(1024, 3.7275390625), 3727.5390625);
    }

    fn function(invocations: u64, cpu_s: f64, handler_ms: f64) -> Measured {
        Measured {
            invocations,
            cpu_s,
            handler_ms,
            memory_mb: 256,
        }
    }

    #[test]
    fn paths_add_their_functions_and_other_functions_need_to_be_invoked_often() {
        let measured = BTreeMap::from([
            // 1 ms of CPU in 3 ms of handler time, per invocation.
            ("WsSendMessageFunction".to_owned(), function(1000, 1.0, 3000.0)),
            ("WsAuthorizerFunction".to_owned(), function(200, 0.2, 600.0)),
            ("WsConnectFunction".to_owned(), function(200, 0.2, 600.0)),
            ("ListMessagesFunction".to_owned(), function(OFTEN, 0.05, 100.0)),
            ("HealthFunction".to_owned(), function(1, 0.01, 5.0)),
        ]);
        let figures = figures(&measured);
        let names: Vec<&str> = figures.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "send path",
                "connect path",
                "  WsAuthorizerFunction",
                "  WsConnectFunction",
                "ListMessagesFunction"
            ]
        );
        let send = &figures.rows[0];
        assert_eq!((send.cpu_us_per_invocation, send.wall_ms_per_invocation), (1000.0, 3.0));
        assert_eq!(send.template_memory_mb, Some(256));
        let at_256 = send.at.iter().find(|a| a.memory_mb == 256).unwrap();
        assert_eq!((at_256.duration_ms, at_256.gb_s_per_million), (8.91, 2227.5));
        // One connect: one invocation of each, so twice one function's cost.
        let connect = &figures.rows[1];
        assert_eq!(connect.functions, ["WsAuthorizerFunction", "WsConnectFunction"]);
        assert_eq!((connect.invocations, connect.cpu_us_per_invocation), (200, 2000.0));
        // 2 × 2227.5390625, rounded to a tenth.
        assert_eq!(connect.at[1].gb_s_per_million, 4455.1);
    }

    #[test]
    fn a_path_not_invoked_is_left_out() {
        let measured = BTreeMap::from([("WsSendMessageFunction".to_owned(), function(10, 0.01, 30.0))]);
        let names: Vec<String> = figures(&measured).rows.into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["send path"]);
    }
}
