//! Per-function figures: cold start, warm handler time and peak memory, from
//! the emulator's counters and the SAM template; and the size of each
//! distinct executable the functions run (one per function, or one for all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apigw_local::{EmulatorStats, FunctionStats, InstanceColdStart};
use serde::Serialize;
use serde_yaml::Value;

use crate::latency::{micros, Samples};

#[derive(Debug, Clone, Serialize)]
pub struct FunctionFigures {
    pub function: String,
    /// Its `Handler` (which function of a shared executable it is), or the
    /// executable's name where each function has its own.
    pub handler: String,
    /// The executable it runs (`Metadata.BuildProperties.Binary`); its size is in `binaries`.
    pub binary: String,
    pub memory_mb: u64,
    pub instances_started: u64,
    pub invocations: u64,
    pub errors: u64,
    /// Process start → its first invocation answered, per instance.
    pub cold_start_p50_ms: Option<f64>,
    pub cold_start_max_ms: Option<f64>,
    /// Process start → the runtime asked for its first invocation (init only).
    pub init_p50_ms: Option<f64>,
    /// That request → the first invocation answered: the handler's first run,
    /// with what it does the first time (its connections, the database
    /// path's first use by a new instance). Cold start is init + this.
    pub first_invocation_p50_ms: Option<f64>,
    /// Cold starts timed one at a time on a warm stack, after the run
    /// (`--cold-rounds`; [`crate::cold`]): how many, and process start →
    /// first invocation answered. The figures above leave them out.
    pub cold_starts_alone: u64,
    pub cold_start_alone_p50_ms: Option<f64>,
    /// Their init alone (process start → first request for work).
    pub init_alone_p50_ms: Option<f64>,
    /// Mean handler time of invocations that were not an instance's first.
    pub warm_handler_mean_ms: Option<f64>,
    pub max_handler_ms: f64,
    /// Largest `VmHWM` of any instance.
    pub peak_rss_kib: Option<u64>,
}

/// One executable, however many functions run it.
#[derive(Debug, Clone, Serialize)]
pub struct BinaryFigures {
    pub binary: String,
    /// Size of the stripped release binary (what the zip would hold).
    pub bytes: Option<u64>,
    pub functions: Vec<String>,
}

/// A function as the template builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TemplateFunction {
    /// `Handler`, or the binary's name where it is the custom runtime's `bootstrap`
    /// (a template of one binary per function, as `--checkout` may measure).
    name: String,
    binary: String,
    memory_mb: u64,
}

/// Each function of the template, by logical id.
#[derive(Debug, Default)]
pub struct TemplateFunctions(BTreeMap<String, TemplateFunction>);

impl TemplateFunctions {
    pub fn read(template: &Path) -> Result<TemplateFunctions, String> {
        let text = std::fs::read_to_string(template).map_err(|e| format!("reading {}: {e}", template.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", template.display()))
    }

    fn parse(text: &str) -> Result<TemplateFunctions, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let default_memory = doc["Globals"]["Function"]["MemorySize"].as_u64().unwrap_or(128);
        let mut found = BTreeMap::new();
        if let Some(resources) = doc["Resources"].as_mapping() {
            for (id, resource) in resources {
                if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                    continue;
                }
                let (Some(id), Some(binary)) =
                    (id.as_str(), resource["Metadata"]["BuildProperties"]["Binary"].as_str())
                else {
                    continue;
                };
                let memory_mb = resource["Properties"]["MemorySize"].as_u64().unwrap_or(default_memory);
                let handler = resource["Properties"]["Handler"]
                    .as_str()
                    .or(doc["Globals"]["Function"]["Handler"].as_str())
                    .filter(|h| *h != "bootstrap");
                let function = TemplateFunction {
                    name: handler.unwrap_or(binary).to_owned(),
                    binary: binary.to_owned(),
                    memory_mb,
                };
                found.insert(id.to_owned(), function);
            }
        }
        Ok(TemplateFunctions(found))
    }

    /// The memory size of the function with this logical id.
    pub fn memory_of(&self, id: &str) -> Option<u64> {
        self.0.get(id).map(|function| function.memory_mb)
    }

    /// The logical id of the function called `name` (its handler), if the template has one.
    pub fn id_of(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(_, function)| function.name == name)
            .map(|(id, _)| id.clone())
    }
}

/// One row per function of the template, invoked or not. `alone_from`: per
/// function, how many of its cold starts came before the one-at-a-time
/// rounds (the rest are theirs); `None` where there were no such rounds.
pub fn figures(
    stats: &EmulatorStats,
    template: &TemplateFunctions,
    alone_from: Option<&BTreeMap<String, usize>>,
) -> Vec<FunctionFigures> {
    template
        .0
        .iter()
        .map(|(id, function)| {
            let TemplateFunction {
                name,
                binary,
                memory_mb,
            } = function;
            let empty = FunctionStats::default();
            let s = stats.functions.get(id).unwrap_or(&empty);
            let during_run = match alone_from {
                Some(counts) => counts.get(id).copied().unwrap_or(0).min(s.cold_starts.len()),
                None => s.cold_starts.len(),
            };
            let (run_starts, alone_starts) = s.cold_starts.split_at(during_run);
            let run = StartSamples::of(run_starts);
            let alone = StartSamples::of(alone_starts);
            // Every instance's first handler run, whichever part it belongs to.
            let (firsts, first_handler_ms) = s
                .cold_starts
                .iter()
                .filter_map(first_invocation_ms)
                .fold((0u64, 0.0), |(n, total), ms| (n + 1, total + ms));
            let warm_invocations = s.invocations.saturating_sub(firsts);
            let warm_handler_mean_ms = (warm_invocations > 0)
                .then(|| (s.total_handler_ms - first_handler_ms).max(0.0) / warm_invocations as f64);
            let cold_summary = run.cold.summary();
            FunctionFigures {
                function: id.clone(),
                handler: name.clone(),
                binary: binary.clone(),
                memory_mb: *memory_mb,
                instances_started: s.instances_started,
                invocations: s.invocations,
                errors: s.errors,
                cold_start_p50_ms: cold_summary.map(|c| c.p50_ms),
                cold_start_max_ms: cold_summary.map(|c| c.max_ms),
                init_p50_ms: run.init.summary().map(|i| i.p50_ms),
                first_invocation_p50_ms: run.first_invocation.summary().map(|f| f.p50_ms),
                cold_starts_alone: alone.cold.len() as u64,
                cold_start_alone_p50_ms: alone.cold.summary().map(|c| c.p50_ms),
                init_alone_p50_ms: alone.init.summary().map(|i| i.p50_ms),
                warm_handler_mean_ms: warm_handler_mean_ms.map(micros),
                max_handler_ms: micros(s.max_handler_ms),
                peak_rss_kib: s.peak_rss_kib,
            }
        })
        .collect()
}

/// Cold starts in milliseconds: whole (process start → first invocation
/// answered, less any time the ready instance waited for work), init, and
/// the first invocation alone (handed over → answered).
#[derive(Default)]
struct StartSamples {
    cold: Samples,
    init: Samples,
    first_invocation: Samples,
}

impl StartSamples {
    fn of(starts: &[InstanceColdStart]) -> StartSamples {
        let mut samples = StartSamples::default();
        for start in starts {
            if let Some(first) = start.first_response_ms {
                samples.cold.push_ms(first - idle_before_first_ms(start));
            }
            if let Some(init_ms) = start.init_ms {
                samples.init.push_ms(init_ms);
            }
            if let Some(first) = first_invocation_ms(start) {
                samples.first_invocation.push_ms(first);
            }
        }
        samples
    }
}

/// How long the instance, ready, waited for its first invocation: when
/// another instance took the one it was started for, it waits for the next
/// to arrive, and that wait is not part of anyone's cold start.
fn idle_before_first_ms(start: &InstanceColdStart) -> f64 {
    match (start.first_started_ms, start.init_ms) {
        (Some(started), Some(init)) => (started - init).max(0.0),
        _ => 0.0,
    }
}

/// The instance's first invocation, from when it was handed over (from init
/// where the emulator does not say) to its answer.
fn first_invocation_ms(start: &InstanceColdStart) -> Option<f64> {
    Some(start.first_response_ms? - start.first_started_ms.or(start.init_ms)?)
}

/// Each distinct executable path once, with the functions that run it.
pub fn binaries(template: &TemplateFunctions, bin_dir: &Path) -> Vec<BinaryFigures> {
    let mut by_path: BTreeMap<PathBuf, BinaryFigures> = BTreeMap::new();
    for (id, TemplateFunction { binary, .. }) in &template.0 {
        let path = bin_dir.join(binary);
        by_path
            .entry(path.clone())
            .or_insert_with(|| BinaryFigures {
                binary: binary.clone(),
                bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
                functions: Vec::new(),
            })
            .functions
            .push(id.clone());
    }
    by_path.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Globals:
  Function:
    MemorySize: 256
Resources:
  PingFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: ws-ping
    Properties:
      Policies:
        - Resource: !Sub "arn:${AWS::Partition}:x"
  BigFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: big
    Properties:
      MemorySize: 1024
  SendFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: chat-functions
    Properties:
      Handler: ws-send-message
  Route:
    Type: AWS::ApiGatewayV2::Route
"#;

    #[test]
    fn template_gives_names_binaries_and_memory() {
        let t = TemplateFunctions::parse(TEMPLATE).unwrap();
        let function = |name: &str, binary: &str, memory_mb| TemplateFunction {
            name: name.into(),
            binary: binary.into(),
            memory_mb,
        };
        assert_eq!(t.0["PingFunction"], function("ws-ping", "ws-ping", 256));
        assert_eq!(t.0["BigFunction"], function("big", "big", 1024));
        // One executable for several functions: the Handler names the function.
        assert_eq!(t.0["SendFunction"], function("ws-send-message", "chat-functions", 256));
        assert_eq!(t.0.len(), 3);
        assert_eq!(t.id_of("ws-ping").as_deref(), Some("PingFunction"));
        assert_eq!(t.id_of("ws-send-message").as_deref(), Some("SendFunction"));
        assert_eq!(t.id_of("chat-functions"), None);
        assert_eq!(t.id_of("notify"), None);
    }

    #[test]
    fn warm_time_leaves_out_each_instance_first_invocation() {
        let t = TemplateFunctions::parse(TEMPLATE).unwrap();
        let mut stats = EmulatorStats::default();
        stats.functions.insert(
            "PingFunction".into(),
            FunctionStats {
                instances_started: 1,
                cold_starts: vec![InstanceColdStart {
                    pid: 1,
                    init_ms: Some(4.0),
                    first_response_ms: Some(14.0),
                    first_started_ms: Some(4.0),
                }],
                invocations: 11,
                // The first took 10 ms, the ten others 2 ms each.
                total_handler_ms: 30.0,
                max_handler_ms: 10.0,
                peak_rss_kib: Some(5000),
                ..FunctionStats::default()
            },
        );
        let rows = figures(&stats, &t, None);
        let ping = rows.iter().find(|r| r.function == "PingFunction").unwrap();
        assert_eq!(ping.warm_handler_mean_ms, Some(2.0));
        assert_eq!(ping.cold_start_p50_ms, Some(14.0));
        assert_eq!(ping.init_p50_ms, Some(4.0));
        assert_eq!(ping.first_invocation_p50_ms, Some(10.0));
        let big = rows.iter().find(|r| r.function == "BigFunction").unwrap();
        assert_eq!(
            (big.invocations, big.warm_handler_mean_ms, big.first_invocation_p50_ms),
            (0, None, None)
        );
    }

    #[test]
    fn a_ready_instance_waiting_for_work_is_not_a_longer_cold_start() {
        let t = TemplateFunctions::parse(TEMPLATE).unwrap();
        let mut stats = EmulatorStats::default();
        stats.functions.insert(
            "PingFunction".into(),
            FunctionStats {
                instances_started: 2,
                cold_starts: vec![
                    // Ready after 5 ms; its invocation went to another
                    // instance, and the next came 600 ms later and took 10.
                    InstanceColdStart {
                        pid: 1,
                        init_ms: Some(5.0),
                        first_started_ms: Some(605.0),
                        first_response_ms: Some(615.0),
                    },
                    // Its invocation waited for it: handed over at init.
                    InstanceColdStart {
                        pid: 2,
                        init_ms: Some(4.0),
                        first_started_ms: Some(4.0),
                        first_response_ms: Some(16.0),
                    },
                ],
                invocations: 4,
                // First invocations 10 + 12 ms, two warm ones of 2 ms.
                total_handler_ms: 26.0,
                ..FunctionStats::default()
            },
        );

        let rows = figures(&stats, &t, None);

        let ping = rows.iter().find(|r| r.function == "PingFunction").unwrap();
        assert_eq!(
            (ping.cold_start_p50_ms, ping.cold_start_max_ms),
            (Some(15.0), Some(16.0))
        );
        assert_eq!(ping.first_invocation_p50_ms, Some(10.0));
        assert_eq!(ping.warm_handler_mean_ms, Some(2.0));
    }

    #[test]
    fn cold_starts_after_the_mark_are_the_one_at_a_time_figures() {
        let t = TemplateFunctions::parse(TEMPLATE).unwrap();
        // From an emulator that did not say when the first invocation was handed over.
        let start = |init_ms, first_response_ms| InstanceColdStart {
            pid: 1,
            init_ms: Some(init_ms),
            first_response_ms: Some(first_response_ms),
            first_started_ms: None,
        };
        let mut stats = EmulatorStats::default();
        stats.functions.insert(
            "PingFunction".into(),
            FunctionStats {
                instances_started: 3,
                // One started by the load (a burst: 40 ms), two alone.
                cold_starts: vec![start(5.0, 40.0), start(3.0, 9.0), start(3.0, 11.0)],
                invocations: 13,
                // First invocations 35 + 6 + 8 ms, ten warm ones of 1 ms.
                total_handler_ms: 59.0,
                ..FunctionStats::default()
            },
        );
        let mark = BTreeMap::from([("PingFunction".to_owned(), 1)]);

        let rows = figures(&stats, &t, Some(&mark));

        let ping = rows.iter().find(|r| r.function == "PingFunction").unwrap();
        assert_eq!(
            (ping.cold_start_p50_ms, ping.init_p50_ms, ping.first_invocation_p50_ms),
            (Some(40.0), Some(5.0), Some(35.0))
        );
        assert_eq!(ping.cold_starts_alone, 2);
        assert_eq!(ping.cold_start_alone_p50_ms, Some(9.0));
        assert_eq!(ping.init_alone_p50_ms, Some(3.0));
        assert_eq!(ping.warm_handler_mean_ms, Some(1.0));
        // A function that had no cold start before the mark: all of its are alone.
        stats
            .functions
            .insert("BigFunction".into(), stats.functions["PingFunction"].clone());
        let big = figures(&stats, &t, Some(&mark))
            .into_iter()
            .find(|r| r.function == "BigFunction")
            .unwrap();
        assert_eq!((big.cold_start_p50_ms, big.cold_starts_alone), (None, 3));
    }

    #[test]
    fn an_executable_run_by_several_functions_is_listed_once() {
        let one_binary = TEMPLATE
            .replace("Binary: big", "Binary: ws-ping")
            .replace("Binary: chat-functions", "Binary: ws-ping");
        let dir = std::env::temp_dir().join(format!("chat-bench-binaries-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ws-ping"), [0u8; 7]).unwrap();
        let shared = binaries(&TemplateFunctions::parse(&one_binary).unwrap(), &dir);
        let separate = binaries(&TemplateFunctions::parse(TEMPLATE).unwrap(), &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].bytes, Some(7));
        assert_eq!(shared[0].functions, ["BigFunction", "PingFunction", "SendFunction"]);
        let sizes: Vec<(&str, Option<u64>)> = separate.iter().map(|b| (b.binary.as_str(), b.bytes)).collect();
        assert_eq!(sizes, [("big", None), ("chat-functions", None), ("ws-ping", Some(7))]);
    }
}
