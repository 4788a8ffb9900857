//! What the tool reads about processes from /proc (CPU time, resident memory, file limits), and
//! raising its own file-descriptor limit.

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};

/// Clock ticks per second of `utime`/`stime` in /proc/PID/stat (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// utime + stime of `pid` (all threads), or of this process, in milliseconds.
pub(crate) fn cpu_ms(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<f64> {
        let v: u64 = fields.get(i).context("short stat")?.parse()?;
        #[allow(clippy::cast_precision_loss)]
        Ok(v as f64)
    };
    Ok((tick(11)? + tick(12)?) * 1000.0 / CLK_TCK)
}

/// A field of /proc/PID/status in KiB (e.g. `VmRSS`).
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kib = v.trim().trim_end_matches("kB").trim();
            return Ok(kib.parse()?);
        }
    }
    bail!("{path}: no {field}")
}

/// Resident memory of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// The soft "Max open files" limit of `pid`.
pub(crate) fn max_open_files(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raise this process's RLIMIT_NOFILE soft limit to at least `want` if possible (raising the
/// hard limit too when privileged, up to the kernel's nr_open). Returns the soft limit reached.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use rlimit::Resource;
    let Ok((soft, hard)) = Resource::NOFILE.get() else {
        return 0;
    };
    if soft >= want {
        return soft;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let target = want.min(nr_open.max(hard));
    if target > hard && Resource::NOFILE.set(target, target).is_ok() {
        return target;
    }
    let _ = Resource::NOFILE.set(target.min(hard), hard);
    Resource::NOFILE.get().map_or(soft, |(s, _)| s)
}

/// CPU time of the server (if its pid is known) and of the tool over a measured phase.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    server: Option<(u32, f64)>,
    tool: f64,
}

impl CpuMeter {
    pub(crate) fn start(server_pid: Option<u32>) -> anyhow::Result<Self> {
        let server = match server_pid {
            Some(pid) => Some((pid, cpu_ms(Some(pid))?)),
            None => None,
        };
        Ok(Self {
            server,
            tool: cpu_ms(None)?,
        })
    }

    /// Report fields: CPU milliseconds of server and tool, in total and per `per` operation.
    pub(crate) fn finish(&self, per: u64, what: &str) -> Map<String, Value> {
        let mut out = Map::new();
        #[allow(clippy::cast_precision_loss)]
        let n = per.max(1) as f64;
        if let Some((pid, before)) = self.server {
            if let Ok(after) = cpu_ms(Some(pid)) {
                out.insert("server_pid".into(), json!(pid));
                out.insert("server_cpu_ms".into(), json!(round(after - before)));
                out.insert(
                    format!("server_cpu_ms_per_{what}"),
                    json!(round((after - before) / n)),
                );
            }
        }
        if let Ok(after) = cpu_ms(None) {
            out.insert("tool_cpu_ms".into(), json!(round(after - self.tool)));
            out.insert(
                format!("tool_cpu_ms_per_{what}"),
                json!(round((after - self.tool) / n)),
            );
        }
        out
    }
}

/// Three decimals, for the report.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
