//! CPU time per process kind over the load's measured window, read from the
//! OS (`/proc/<pid>/stat`, user + system time): the functions (the runner's
//! children that are function instances), the emulator (the runner,
//! `chat-local`, itself), the PostgREST server (`postrust`), Postgres (the
//! postmaster and every backend and worker it forked) and the load generator.
//!
//! A process's time is its own while it lives; once it exits and its parent
//! reaps it, the kernel adds it to the parent's `cutime`/`cstime`. A tree's
//! total (each member's own time plus what it reaped) therefore only grows,
//! and a backend or instance that ends inside the window is still counted.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;

use crate::host_cpu::{self, HostCpu, HostTimes};

/// What Linux reports times in when the auxiliary vector does not say (USER_HZ).
const DEFAULT_TICKS_PER_SECOND: u64 = 100;
/// `AT_CLKTCK` in the auxiliary vector.
const AT_CLKTCK: u64 = 17;
/// The PostgREST server's process name.
const POSTGREST_SERVER: &str = "postrust";
/// Postgres's processes are all called this (the postmaster and what it forks).
const POSTGRES: &str = "postgres";

/// The fields of one `/proc/<pid>/stat` line used here; times in clock ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    /// The executable's name, cut to 15 bytes by the kernel.
    pub comm: String,
    pub ppid: u32,
    /// Ticks after boot: with the pid, tells a process from a later one that reused its pid.
    pub start_time: u64,
    /// utime + stime.
    pub own: u64,
    /// cutime + cstime: the children it waited for, with theirs.
    pub reaped: u64,
}

/// Parses a `/proc/<pid>/stat` line (proc(5)). The name is in parentheses
/// and may itself hold spaces and parentheses, so the fields are counted from
/// the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line.get(..open)?.trim().parse().ok()?;
    let comm = line.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // Field n of proc(5) (1-based; 3 is the state, the first after the name).
    let field = |n: usize| -> Option<u64> {
        let text = fields.get(n - 3)?;
        // cutime and cstime are signed in the kernel's format; never negative in practice.
        text.parse::<u64>()
            .ok()
            .or_else(|| text.parse::<i64>().ok().map(|v| v.max(0) as u64))
    };
    Some(ProcStat {
        pid,
        comm,
        ppid: u32::try_from(field(4)?).ok()?,
        start_time: field(22)?,
        own: field(14)? + field(15)?,
        reaped: field(16)? + field(17)?,
    })
}

/// Clock ticks per second of the times in `/proc/<pid>/stat`: `AT_CLKTCK`
/// of the auxiliary vector (pairs of native words), else USER_HZ.
pub fn ticks_per_second() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| clock_ticks_in_auxv(&auxv))
        .unwrap_or(DEFAULT_TICKS_PER_SECOND)
}

fn clock_ticks_in_auxv(auxv: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |bytes: &[u8]| -> u64 {
        let mut buffer = [0u8; WORD];
        buffer.copy_from_slice(bytes);
        usize::from_ne_bytes(buffer) as u64
    };
    auxv.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .take_while(|(key, _)| *key != 0)
        .find(|(key, _)| *key == AT_CLKTCK)
        .map(|(_, value)| value)
        .filter(|&ticks| ticks > 0)
}

/// Every process's times at one moment, and the machine's.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken: Instant,
    processes: HashMap<u32, ProcStat>,
    host: Option<HostTimes>,
}

impl Snapshot {
    /// Reads every `/proc/<pid>/stat` (a process that ends meanwhile is skipped).
    pub fn take() -> Snapshot {
        let taken = Instant::now();
        let processes = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
            .filter_map(|line| parse_stat(&line))
            .map(|stat| (stat.pid, stat))
            .collect();
        Snapshot {
            taken,
            processes,
            host: host_cpu::read(),
        }
    }

    #[cfg(test)]
    fn of(processes: Vec<ProcStat>) -> Snapshot {
        Snapshot {
            taken: Instant::now(),
            processes: processes.into_iter().map(|p| (p.pid, p)).collect(),
            host: None,
        }
    }

    /// The stack's processes by kind, as of this snapshot; `None` when the
    /// runner is gone.
    pub fn tally(&self, runner: u32, load_generator: u32) -> Option<Tally> {
        let root = self.processes.get(&runner)?;
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for process in self.processes.values() {
            children.entry(process.ppid).or_default().push(process.pid);
        }
        // Own time plus what it reaped, of a process and everything below it.
        let tree = |pid: u32| -> (u64, usize) {
            let (mut ticks, mut count) = (0, 0);
            let mut stack = vec![pid];
            while let Some(pid) = stack.pop() {
                if let Some(process) = self.processes.get(&pid) {
                    ticks += process.own + process.reaped;
                    count += 1;
                    stack.extend(children.get(&pid).into_iter().flatten().copied());
                }
            }
            (ticks, count)
        };
        let mut tally = Tally {
            emulator: root.own,
            ended_instances: root.reaped,
            instances: HashMap::new(),
            postgrest_server: None,
            postgres: None,
            load_generator: self.processes.get(&load_generator).map_or(0, |p| p.own),
            host: self.host,
        };
        for &child in children.get(&runner).into_iter().flatten() {
            let process = &self.processes[&child];
            let (ticks, count) = tree(child);
            let kind = match process.comm.as_str() {
                POSTGRES => &mut tally.postgres,
                POSTGREST_SERVER => &mut tally.postgrest_server,
                _ => {
                    tally.instances.insert((child, process.start_time), ticks);
                    continue;
                }
            };
            let sum = kind.get_or_insert(Counted::default());
            sum.ticks += ticks;
            sum.processes += count;
        }
        Some(tally)
    }
}

/// Ticks and processes of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub ticks: u64,
    pub processes: usize,
}

/// The stack's CPU so far, by kind, in ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The runner's own time: the emulator, with the rest of `chat-local`.
    pub emulator: u64,
    /// What the runner reaped: function instances that ended (the other
    /// children end only when the stack stops).
    pub ended_instances: u64,
    /// Live function instances (the runner's other children), by (pid, start time).
    pub instances: HashMap<(u32, u64), u64>,
    /// `None`: not a child of the runner (a server the stack did not start).
    pub postgrest_server: Option<Counted>,
    pub postgres: Option<Counted>,
    pub load_generator: u64,
    /// The whole machine's times; `None` without `/proc/stat`.
    pub host: Option<HostTimes>,
}

impl Tally {
    fn functions(&self) -> u64 {
        self.ended_instances + self.instances.values().sum::<u64>()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuFigures {
    /// From the end of the warm-up until the load settled and its notifications ran.
    pub window_s: f64,
    /// The divisors: the load's measured sends and deliveries.
    pub sends: u64,
    pub deliveries: u64,
    pub ticks_per_second: u64,
    pub kinds: Vec<KindCpu>,
    /// The functions' share by function (logical id): instances alive at the
    /// end of the window; `ended instances` for those that ended inside it.
    pub functions: Vec<KindCpu>,
    /// The whole machine over the window: how much of it the hypervisor took.
    pub host: Option<HostCpu>,
}

/// CPU of one kind (or one function) over the window.
#[derive(Debug, Clone, Serialize)]
pub struct KindCpu {
    pub kind: String,
    /// Processes at the end of the window.
    pub processes: usize,
    pub cpu_s: f64,
    pub us_per_send: Option<f64>,
    pub us_per_delivery: Option<f64>,
}

/// The kinds, in the order the table shows them.
pub const FUNCTIONS: &str = "functions";
pub const EMULATOR: &str = "emulator (chat-local)";
pub const POSTGREST: &str = "PostgREST server (postrust)";
pub const POSTGRES_KIND: &str = "Postgres (all its processes)";
pub const LOAD_GENERATOR: &str = "load generator (chat-bench)";

/// The figures between two tallies. `instance_names`: pid → the function it
/// is an instance of (the emulator's cold starts).
pub fn window(
    (start, started): (&Tally, Instant),
    (end, ended): (&Tally, Instant),
    instance_names: &HashMap<u32, String>,
    ticks_per_second: u64,
    sends: u64,
    deliveries: u64,
) -> CpuFigures {
    let seconds = |ticks: u64| ticks as f64 / ticks_per_second as f64;
    let row = |kind: &str, processes: usize, ticks: u64| {
        let per = |count: u64| (count > 0).then(|| round(seconds(ticks) * 1e6 / count as f64, 1));
        KindCpu {
            kind: kind.to_owned(),
            processes,
            cpu_s: round(seconds(ticks), 3),
            us_per_send: per(sends),
            us_per_delivery: per(deliveries),
        }
    };
    let mut kinds = vec![
        row(
            FUNCTIONS,
            end.instances.len(),
            end.functions().saturating_sub(start.functions()),
        ),
        row(EMULATOR, 1, end.emulator.saturating_sub(start.emulator)),
    ];
    for (name, counted) in [
        (POSTGREST, (start.postgrest_server, end.postgrest_server)),
        (POSTGRES_KIND, (start.postgres, end.postgres)),
    ] {
        if let (Some(before), Some(after)) = counted {
            kinds.push(row(name, after.processes, after.ticks.saturating_sub(before.ticks)));
        }
    }
    kinds.push(row(
        LOAD_GENERATOR,
        1,
        end.load_generator.saturating_sub(start.load_generator),
    ));

    let mut by_function: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut attributed = 0;
    for (&(pid, start_time), &ticks) in &end.instances {
        let before = start.instances.get(&(pid, start_time)).copied().unwrap_or(0);
        let used = ticks.saturating_sub(before);
        let name = instance_names
            .get(&pid)
            .map_or("(not a known instance)", String::as_str);
        let entry = by_function.entry(name).or_default();
        entry.0 += 1;
        entry.1 += used;
        attributed += used;
    }
    let mut functions: Vec<KindCpu> = by_function
        .into_iter()
        .map(|(name, (processes, ticks))| row(name, processes, ticks))
        .collect();
    functions.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then_with(|| a.kind.cmp(&b.kind)));
    let ended_instances = end
        .functions()
        .saturating_sub(start.functions())
        .saturating_sub(attributed);
    if ended_instances > 0 {
        functions.push(row("ended instances", 0, ended_instances));
    }
    let host = start
        .host
        .zip(end.host)
        .map(|(from, to)| host_cpu::window(from, to, ticks_per_second));
    CpuFigures {
        window_s: round(ended.duration_since(started).as_secs_f64(), 2),
        sends,
        deliveries,
        ticks_per_second,
        kinds,
        functions,
        host,
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stat(pid: u32, comm: &str, ppid: u32, own: u64, reaped: u64) -> ProcStat {
        ProcStat {
            pid,
            comm: comm.into(),
            ppid,
            start_time: u64::from(pid) * 10,
            own,
            reaped,
        }
    }

    #[test]
    fn a_stat_line_gives_times_parent_and_start() {
        // A name with a space and a parenthesis, as a process may call itself.
        let line = "4242 (ws-send (x) y) S 4200 4242 4200 0 -1 4194560 1030 0 0 0 \
                    157 43 12 3 20 0 5 0 889911 100000000 2000 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0\n";
        let parsed = parse_stat(line).unwrap();
        assert_eq!(
            parsed,
            ProcStat {
                pid: 4242,
                comm: "ws-send (x) y".into(),
                ppid: 4200,
                start_time: 889911,
                own: 157 + 43,
                reaped: 12 + 3,
            }
        );
        // Negative child times (a kernel format of signed longs) read as 0.
        let negative = line.replacen(" 12 3 ", " -1 3 ", 1);
        assert_eq!(parse_stat(&negative).unwrap().reaped, 3);
        assert_eq!(parse_stat("4242 (short) S 1 2 3"), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn this_process_reads_itself() {
        let snapshot = Snapshot::take();
        let me = &snapshot.processes[&std::process::id()];
        assert!(
            me.comm.starts_with("chat_bench") || me.comm.starts_with("chat-bench"),
            "{}",
            me.comm
        );
        assert!(me.start_time > 0);
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn the_clock_tick_rate_comes_from_the_auxiliary_vector() {
        let words = |pairs: &[(u64, u64)]| -> Vec<u8> {
            pairs
                .iter()
                .flat_map(|&(k, v)| [k as usize, v as usize])
                .flat_map(usize::to_ne_bytes)
                .collect()
        };
        assert_eq!(clock_ticks_in_auxv(&words(&[(6, 4096), (17, 250), (0, 0)])), Some(250));
        // After AT_NULL nothing counts; a missing or zero rate gives none.
        assert_eq!(clock_ticks_in_auxv(&words(&[(6, 4096), (0, 0), (17, 250)])), None);
        assert_eq!(clock_ticks_in_auxv(&words(&[(17, 0)])), None);
        assert_eq!(clock_ticks_in_auxv(&[1, 2, 3]), None);
    }

    /// The runner (10) with Postgres (20, a backend 21 and its child 22),
    /// postrust (30) and two function instances (40, 41); the bench is 1;
    /// an unrelated process (50) is left out.
    fn stack(extra: &[ProcStat]) -> Snapshot {
        let mut processes = vec![
            stat(1, "chat-bench", 0, 7, 0),
            stat(10, "chat-local", 1, 100, 5),
            stat(20, "postgres", 10, 10, 2),
            stat(21, "postgres", 20, 30, 0),
            stat(22, "postgres", 21, 1, 0),
            stat(30, "postrust", 10, 40, 0),
            stat(40, "ws-send-message", 10, 50, 0),
            stat(41, "notify", 10, 8, 0),
            stat(50, "postgres", 49, 1000, 0),
        ];
        processes.extend_from_slice(extra);
        Snapshot::of(processes)
    }

    #[test]
    fn the_runner_s_children_are_sorted_into_kinds() {
        let tally = stack(&[]).tally(10, 1).unwrap();
        assert_eq!(
            (tally.emulator, tally.ended_instances, tally.load_generator),
            (100, 5, 7)
        );
        assert_eq!(
            tally.postgres,
            Some(Counted {
                ticks: 43,
                processes: 3
            })
        );
        assert_eq!(
            tally.postgrest_server,
            Some(Counted {
                ticks: 40,
                processes: 1
            })
        );
        assert_eq!(tally.instances, HashMap::from([((40, 400), 50), ((41, 410), 8)]));
        assert_eq!(tally.functions(), 63);
        assert!(stack(&[]).tally(99, 1).is_none());
        // A stack on another database server: no Postgres of its own.
        let alone = Snapshot::of(vec![stat(10, "chat-local", 1, 1, 0)])
            .tally(10, 1)
            .unwrap();
        assert_eq!((alone.postgres, alone.postgrest_server), (None, None));
    }

    #[test]
    fn a_window_counts_what_ended_inside_it_and_divides_by_sends_and_deliveries() {
        let start = stack(&[]).tally(10, 1).unwrap();
        // A second later: the backend 21 ended (its 30 + 6 more ticks went to
        // the postmaster), instance 41 ended (8 + 2 to the runner), a new
        // instance 42 started, and 40's pid is … still 40.
        let later = Snapshot::of(vec![
            stat(1, "chat-bench", 0, 9, 0),
            stat(10, "chat-local", 1, 150, 5 + 10),
            stat(20, "postgres", 10, 12, 2 + 36 + 1),
            stat(30, "postrust", 10, 60, 0),
            stat(40, "ws-send-message", 10, 90, 0),
            stat(42, "ws-send-message", 10, 20, 0),
        ]);
        let end = later.tally(10, 1).unwrap();
        let names = HashMap::from([
            (40, "WsSendMessageFunction".to_owned()),
            (41, "NotifyFunction".to_owned()),
            (42, "WsSendMessageFunction".to_owned()),
        ]);
        let t0 = Instant::now();
        let mut figures = window((&start, t0), (&end, t0 + Duration::from_secs(2)), &names, 100, 4, 10);
        // Fake processes on a real machine: its readings are not these.
        assert_eq!(figures.host.take(), None);
        let kind = |name: &str| figures.kinds.iter().find(|k| k.kind == name).unwrap().clone();
        // Functions: 15 reaped + 90 + 20 now, 5 + 50 + 8 before.
        let functions = kind(FUNCTIONS);
        assert_eq!((functions.cpu_s, functions.processes), (0.62, 2));
        assert_eq!(
            (functions.us_per_send, functions.us_per_delivery),
            (Some(155000.0), Some(62000.0))
        );
        assert_eq!(kind(EMULATOR).cpu_s, 0.5);
        // Postgres: 12 + 39 now, 43 before.
        assert_eq!((kind(POSTGRES_KIND).cpu_s, kind(POSTGRES_KIND).processes), (0.08, 1));
        assert_eq!(kind(POSTGREST).cpu_s, 0.2);
        assert_eq!(kind(LOAD_GENERATOR).cpu_s, 0.02);
        // By function: 40 used 40, 42 used 20; what 41 used is the rest.
        let by_name: Vec<(&str, f64, usize)> = figures
            .functions
            .iter()
            .map(|f| (f.kind.as_str(), f.cpu_s, f.processes))
            .collect();
        assert_eq!(
            by_name,
            vec![("WsSendMessageFunction", 0.6, 2), ("ended instances", 0.02, 0)]
        );
        assert_eq!((figures.window_s, figures.sends, figures.deliveries), (2.0, 4, 10));
        // Nothing sent: no per-send figure rather than a made-up one.
        let idle = window((&start, t0), (&end, t0), &names, 100, 0, 0);
        assert_eq!(idle.kinds[0].us_per_send, None);

        // The machine: 2 cores for 2 s are 400 ticks.
        let (mut start, mut end) = (start, end);
        start.host = Some(HostTimes {
            busy: 1_000,
            idle: 1_000,
            steal: 0,
        });
        end.host = Some(HostTimes {
            busy: 1_160,
            idle: 1_200,
            steal: 40,
        });
        let host = window((&start, t0), (&end, t0), &names, 100, 4, 10).host.unwrap();
        assert_eq!((host.cores_s, host.busy_s, host.steal_share), (4.0, 1.6, 0.1));
    }
}
