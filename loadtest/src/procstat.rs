//! CPU time and memory of this process, from `/proc/self` (Linux).

/// CPU time (user + system) of the process so far, in seconds; `None` off Linux.
///
/// `/proc/self/stat` counts clock ticks; Linux reports them at `USER_HZ`, which is 100 on
/// every mainstream architecture.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; the fields after it are space-separated.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident memory (VmHWM) in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_kib("VmHWM:").map(|k| k as f64 / 1024.0)
}

/// Resident memory now (VmRSS) in MiB.
pub fn rss_mib() -> Option<f64> {
    status_kib("VmRSS:").map(|k| k as f64 / 1024.0)
}

/// Resets the peak to the current resident size (writes 5 to `/proc/self/clear_refs`), so
/// each run's peak is its own. Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let cpu = cpu_seconds().expect("cpu time");
        assert!(cpu >= 0.0);
        let peak = peak_rss_mib().expect("peak rss");
        let now = rss_mib().expect("rss");
        assert!(peak > 0.0 && now > 0.0 && peak >= now * 0.5);
    }
}
