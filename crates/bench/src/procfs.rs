//! CPU time and memory of processes, and how busy the machine is, from `/proc` (Linux).

use std::fs;

/// `/proc` reports CPU times in USER_HZ ticks, which is 100 on every Linux architecture we
/// run on (the kernel converts from its internal HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes measured: the pids given and their descendants (nginx's workers).
#[derive(Debug, Clone, Default)]
pub(crate) struct Processes {
    pub(crate) pids: Vec<u32>,
}

impl Processes {
    /// The given pids plus every live descendant; pids that do not exist are dropped.
    pub(crate) fn discover(roots: &[u32]) -> Result<Self, String> {
        let mut pids = Vec::new();
        for &root in roots {
            if fs::metadata(format!("/proc/{root}/stat")).is_err() {
                return Err(format!("no process with pid {root}"));
            }
            let mut stack = vec![root];
            while let Some(pid) = stack.pop() {
                if pids.contains(&pid) {
                    continue;
                }
                pids.push(pid);
                stack.extend(children(pid));
            }
        }
        Ok(Processes { pids })
    }

    /// Adds descendants that appeared since (a server forking late).
    pub(crate) fn refresh(&mut self) {
        let known = self.pids.clone();
        for pid in known {
            for child in children(pid) {
                if !self.pids.contains(&child) {
                    self.pids.push(child);
                }
            }
        }
    }

    /// User + system CPU seconds of all of them (all threads; plus children they reaped).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.pids.iter().filter_map(|&pid| cpu_seconds(pid)).sum()
    }

    /// Sum of `VmHWM` (peak resident set since start or since the last reset), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|&pid| status_kib(pid, "VmHWM:"))
            .sum()
    }

    /// Sum of `VmRSS` now, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|&pid| status_kib(pid, "VmRSS:"))
            .sum()
    }

    /// Resets every `VmHWM` to the current RSS (`echo 5 > /proc/PID/clear_refs`). False if
    /// that is not permitted for any of them (then the peak counts since process start).
    pub(crate) fn reset_peak_rss(&self) -> bool {
        !self.pids.is_empty()
            && self
                .pids
                .iter()
                .all(|&pid| fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }
}

/// Direct children of a process (all its threads').
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// utime + stime + cutime + cstime of `/proc/PID/stat`, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    parse_stat_cpu(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's CPU seconds (all threads).
pub(crate) fn own_cpu_seconds() -> Option<f64> {
    parse_stat_cpu(&fs::read_to_string("/proc/self/stat").ok()?)
}

/// The four CPU fields of a `/proc/PID/stat` line. The command name may contain spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of the man page, so utime (14) is index 11.
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    parse_status_kib(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Whole-machine CPU counters from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MachineTicks {
    busy: u64,
    total: u64,
    steal: u64,
    cpus: u32,
}

impl MachineTicks {
    pub(crate) fn now() -> Option<Self> {
        parse_proc_stat(&fs::read_to_string("/proc/stat").ok()?)
    }

    /// (cores busy on average, percent of time stolen by the hypervisor) since `earlier`.
    pub(crate) fn since(&self, earlier: &MachineTicks) -> (f64, f64) {
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let steal = self.steal.saturating_sub(earlier.steal) as f64;
        (busy / total * f64::from(self.cpus), steal / total * 100.0)
    }
}

fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let first = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = first
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    let steal = get(7);
    let total = busy + get(3) + get(4) + steal;
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(MachineTicks {
        busy,
        total,
        steal,
        cpus: u32::try_from(cpus.max(1)).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_fields_counted_from_the_last_parenthesis() {
        let stat =
            "1234 (tus d) (x)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 7 3 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.10));
        assert_eq!(parse_stat_cpu("1 (short) S 1"), None);
    }

    #[test]
    fn status_fields() {
        let status = "Name:\ttusd\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(51200));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn machine_usage() {
        let a = parse_proc_stat("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1\ncpu1 1\nintr 5\n")
            .expect("parses");
        let b =
            parse_proc_stat("cpu  200 0 200 900 0 0 0 100 0 0\ncpu0 1\ncpu1 1\n").expect("parses");
        let (busy, steal) = b.since(&a);
        assert_eq!(a.cpus, 2);
        assert!((busy - 2.0 * 200.0 / 400.0).abs() < 1e-9);
        assert!((steal - 25.0).abs() < 1e-9);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(own_cpu_seconds().is_some());
        let me = Processes::discover(&[std::process::id()]).expect("self exists");
        // RSS first: the peak read after it is at least the RSS of that earlier moment (other
        // tests' threads allocate meanwhile, so the other order raced).
        let rss = me.rss_kib();
        assert!(rss > 0);
        assert!(me.peak_rss_kib() >= rss);
    }
}
