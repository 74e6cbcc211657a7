//! Small helpers: duration parsing, human formatting.

use std::time::Duration;

/// Parses `10s`, `500ms`, `2m`, `1.5s`, `250us`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use e.g. 10s, 500ms, 1m)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats nanoseconds as `123µs` / `1.23ms` / `1.2s` with 3 significant digits.
pub fn fmt_latency_ns(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        sig3(ns / 1e3, "µs")
    } else if ns < 1e9 {
        sig3(ns / 1e6, "ms")
    } else {
        sig3(ns / 1e9, "s")
    }
}

fn sig3(v: f64, unit: &str) -> String {
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.2}{unit}")
    }
}

/// Formats a kB count as MiB with one decimal.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Formats a rate with thousands separators: `145,321`.
pub fn fmt_rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Aggregate CPU counters from the first line of `/proc/stat`: (busy, total).
fn proc_stat_cpu() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest* already in user)
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

/// Fraction (0..=1) of all CPUs that was busy over `window` (None off Linux).
pub fn machine_busy(window: Duration) -> Option<f64> {
    let (b0, t0) = proc_stat_cpu()?;
    std::thread::sleep(window);
    let (b1, t1) = proc_stat_cpu()?;
    let dt = t1.saturating_sub(t0);
    (dt > 0).then(|| b1.saturating_sub(b0) as f64 / dt as f64)
}

/// Waits (up to `max_wait`) until the machine is below `threshold` busy over a
/// 1 s window. Returns the last busy fraction seen.
pub fn wait_until_quiet(
    threshold: f64,
    max_wait: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<f64> {
    let t0 = std::time::Instant::now();
    loop {
        let busy = machine_busy(Duration::from_secs(1))?;
        if busy < threshold
            || t0.elapsed() >= max_wait
            || stop.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Some(busy);
        }
    }
}

/// CPU ticks (utime + stime, all threads) of process `pid`.
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command name start at field 3 (state): utime = 14, stime = 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Waits (up to `max_wait`) until process `pid` uses less than `threshold` of
/// one CPU over 250 ms windows — e.g. a server still working off requests
/// queued by the previous run. Returns whether it settled.
pub fn wait_process_idle(
    pid: u32,
    threshold: f64,
    max_wait: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> bool {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let window = Duration::from_millis(250);
    let t0 = std::time::Instant::now();
    let Some(mut last) = process_cpu_ticks(pid) else {
        return false;
    };
    loop {
        std::thread::sleep(window);
        let Some(now) = process_cpu_ticks(pid) else {
            return false;
        };
        let used = (now - last) as f64 / hz / window.as_secs_f64();
        if used < threshold {
            return true;
        }
        if t0.elapsed() >= max_wait || stop.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        last = now;
    }
}

/// Snapshot for measuring how much CPU *other* processes used during a run.
#[derive(Clone, Debug)]
pub struct NoiseProbe {
    pids: Vec<u32>,
    proc_ticks: u64,
    stat: [u64; 8],
}

fn proc_stat_fields() -> Option<[u64; 8]> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let mut out = [0u64; 8];
    for (o, v) in out.iter_mut().zip(line.split_whitespace()) {
        *o = v.parse().ok()?;
    }
    Some(out)
}

impl NoiseProbe {
    /// Starts measuring; `pids` are the processes that belong to the test
    /// (this process is always included).
    pub fn start(pids: &[u32]) -> Option<NoiseProbe> {
        let mut pids = pids.to_vec();
        pids.push(std::process::id());
        let proc_ticks = pids.iter().filter_map(|&p| process_cpu_ticks(p)).sum();
        Some(NoiseProbe {
            pids,
            proc_ticks,
            stat: proc_stat_fields()?,
        })
    }

    /// Fraction of the machine's CPU time used by other processes (plus
    /// hypervisor steal) since `start`. Interrupt/softirq time is attributed
    /// to the test, since loopback TCP is most of it.
    pub fn finish(&self) -> Option<f64> {
        let now = proc_stat_fields()?;
        let d: Vec<u64> = now
            .iter()
            .zip(&self.stat)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let total: u64 = d.iter().sum();
        let task_time = d[0] + d[1] + d[2]; // user nice system
        let steal = d[7];
        let ours: u64 = self
            .pids
            .iter()
            .filter_map(|&p| process_cpu_ticks(p))
            .sum::<u64>()
            .saturating_sub(self.proc_ticks);
        (total > 0).then(|| (task_time.saturating_sub(ours) + steal) as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_rate(145321.4), "145,321");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_latency_ns(1_234_000), "1.23ms");
        assert_eq!(fmt_latency_ns(412_000), "412µs");
    }
}
