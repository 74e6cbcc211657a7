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
