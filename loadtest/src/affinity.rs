//! CPU pinning: parse `0`, `0,1`, `0-3,6` lists; pin threads; restrict children.

/// Parses a CPU list such as `1`, `0,2` or `0-3,6`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| format!("bad cpu {a:?}"))?;
            let b: usize = b.trim().parse().map_err(|_| format!("bad cpu {b:?}"))?;
            if b < a {
                return Err(format!("bad cpu range {part:?}"));
            }
            cpus.extend(a..=b);
        } else {
            cpus.push(part.parse().map_err(|_| format!("bad cpu {part:?}"))?);
        }
    }
    if cpus.is_empty() {
        return Err("empty cpu list".into());
    }
    let max = libc::CPU_SETSIZE as usize;
    if let Some(bad) = cpus.iter().find(|&&c| c >= max) {
        return Err(format!("cpu {bad} out of range"));
    }
    Ok(cpus)
}

/// A parsed CPU list, usable directly as a clap argument type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl std::str::FromStr for CpuList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_cpu_list(s).map(CpuList)
    }
}

/// Formats a CPU list back (`0,1`).
pub fn fmt_cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bitmask; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `c` was bounds-checked against CPU_SETSIZE by parse_cpu_list
        // (and CPU_SET itself ignores out-of-range values).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    set
}

/// Restricts the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    set_affinity_raw(cpus)
}

/// Async-signal-safe variant used between `fork` and `exec` (no allocation).
pub fn set_affinity_raw(cpus: &[usize]) -> std::io::Result<()> {
    let set = cpu_set(cpus);
    // SAFETY: pid 0 = calling thread; `set` is a valid cpu_set_t.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Number of CPUs the calling thread may run on (respects affinity masks).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0,2").unwrap(), vec![0, 2]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert_eq!(fmt_cpu_list(&[0, 1]), "0,1");
    }
}
