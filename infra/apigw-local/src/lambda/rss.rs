//! Peak resident memory of a function process, as Linux reports it: the
//! `VmHWM` ("high water mark") line of `/proc/<pid>/status`. It only grows,
//! so a sample taken late in an instance's life is its peak so far.

/// The process's peak resident set size in KiB; `None` once it is gone or
/// where `/proc` does not exist.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line["VmHWM:".len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark_in_kib() {
        let status = "Name:\tws-ping\nVmPeak:\t  12000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t    4000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(4321));
        assert_eq!(parse_vm_hwm("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn our_own_process_has_a_peak() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
        }
    }
}
