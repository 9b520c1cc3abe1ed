//! The whole machine's CPU time over the measured window, from the first line
//! of `/proc/stat`, beside what the stack's processes used. On a virtual
//! machine the hypervisor may give the cores to other guests while this one
//! wants them (`steal`): the run then had less of its cores than the window's
//! length, and its latencies and rates were measured on a smaller machine
//! than the table's header says. (The processes' own times do not hold it
//! where the kernel accounts steal, as Linux does for guests with a
//! paravirtual steal clock.)

use serde::Serialize;

/// Cumulative times of all cores, in clock ticks (USER_HZ, as `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTimes {
    /// user + nice + system + irq + softirq (guest time is already in user and nice).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    pub steal: u64,
}

/// The aggregate `cpu` line of `/proc/stat` (proc(5)): user nice system idle
/// iowait irq softirq steal guest guest_nice; kernels older than 2.6.11 stop
/// before steal.
pub fn parse(proc_stat: &str) -> Option<HostTimes> {
    let line = proc_stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|value| value.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 4 {
        return None;
    }
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    Some(HostTimes {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

/// Now, or `None` without `/proc/stat`.
pub fn read() -> Option<HostTimes> {
    parse(&std::fs::read_to_string("/proc/stat").ok()?)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostCpu {
    /// busy + idle + steal: every core's time over the window as the kernel
    /// counted it, a few percent over window × cores when the hypervisor is
    /// busy (seen here: 126 core-seconds in 60 s on 2 cores at 15% steal).
    pub cores_s: f64,
    pub busy_s: f64,
    pub idle_s: f64,
    /// Taken by the hypervisor for other guests while this machine wanted to run.
    pub steal_s: f64,
    /// steal_s / cores_s.
    pub steal_share: f64,
}

/// What the machine did between two readings.
pub fn window(start: HostTimes, end: HostTimes, ticks_per_second: u64) -> HostCpu {
    let seconds = |ticks: u64| round(ticks as f64 / ticks_per_second as f64);
    let busy_s = seconds(end.busy.saturating_sub(start.busy));
    let idle_s = seconds(end.idle.saturating_sub(start.idle));
    let steal_s = seconds(end.steal.saturating_sub(start.steal));
    let cores_s = round(busy_s + idle_s + steal_s);
    HostCpu {
        cores_s,
        busy_s,
        idle_s,
        steal_s,
        steal_share: if cores_s > 0.0 {
            (steal_s / cores_s * 1000.0).round() / 1000.0
        } else {
            0.0
        },
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_busy_idle_and_stolen_time() {
        let text = "cpu  226785 10 31502 172963 1067 0 3867 25018 0 0\n\
                    cpu0 113000 5 15000 86000 500 0 1900 12500 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(
            parse(text),
            Some(HostTimes {
                busy: 226785 + 10 + 31502 + 3867,
                idle: 172963 + 1067,
                steal: 25018,
            })
        );
        // An old kernel's line, without steal.
        assert_eq!(
            parse("cpu 1 2 3 4\n"),
            Some(HostTimes {
                busy: 6,
                idle: 4,
                steal: 0
            })
        );
        assert_eq!(parse("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse("cpu 1 2\n"), None);
        assert_eq!(parse("cpu 1 x 3 4\n"), None);
    }

    #[test]
    fn a_window_says_how_much_the_hypervisor_took() {
        let start = HostTimes {
            busy: 1_000,
            idle: 5_000,
            steal: 100,
        };
        // 2 cores for 10 s at 100 ticks a second: 2,000 ticks.
        let end = HostTimes {
            busy: 2_200,
            idle: 5_500,
            steal: 400,
        };
        let host = window(start, end, 100);
        assert_eq!(
            host,
            HostCpu {
                cores_s: 20.0,
                busy_s: 12.0,
                idle_s: 5.0,
                steal_s: 3.0,
                steal_share: 0.15,
            }
        );
        assert_eq!(window(start, start, 100).steal_share, 0.0);
    }

    #[test]
    fn this_machine_reads_itself() {
        let now = read().expect("/proc/stat");
        assert!(now.busy + now.idle > 0);
    }
}
