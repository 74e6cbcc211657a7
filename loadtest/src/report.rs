//! Human tables and machine-readable JSON.

use crate::stats::Summary;
use crate::util::{fmt_kib, fmt_latency_ns, fmt_rate};
use serde::Serialize;

/// One measured server/workload.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Server or label (`hello`, `pocketbun`, `pocketbase`, or the URL).
    pub name: String,
    /// `GET /api/health`.
    pub request: String,
    pub summary: Summary,
    /// Peak RSS of the server process (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// req/s relative to the reference row (hello), if any.
    pub ratio: Option<f64>,
    /// Share of the machine's CPU that other processes used during the run
    /// (noise indicator; a few % is normal).
    pub other_cpu: Option<f64>,
    /// req/s of every round, ascending (the row itself is the median round).
    pub rounds_rps: Vec<f64>,
}

/// Run-wide facts printed above/with the table.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    pub connections: usize,
    pub threads: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub gen_cpus: Option<String>,
    pub server_cpus: Option<String>,
    pub drivers: Vec<String>,
}

/// Whole report (what `--json` writes).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub meta: Meta,
    pub rows: Vec<Row>,
}

fn us(v: f64) -> String {
    fmt_latency_ns((v * 1e3) as u64)
}

impl Report {
    /// Fills `ratio` relative to the row named `reference`.
    pub fn set_ratios(&mut self, reference: &str) {
        let base = self
            .rows
            .iter()
            .find(|r| r.name == reference)
            .map(|r| r.summary.rps);
        if let Some(base) = base.filter(|b| *b > 0.0) {
            for r in &mut self.rows {
                r.ratio = Some(r.summary.rps / base);
            }
        }
    }

    /// Renders the aligned text table.
    pub fn table(&self) -> String {
        let header = [
            "server",
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "errors",
            "peak RSS",
            "other CPU",
            "vs hello",
        ];
        let mut rows: Vec<[String; 10]> = Vec::new();
        for r in &self.rows {
            let s = &r.summary;
            rows.push([
                r.name.clone(),
                fmt_rate(s.rps),
                us(s.latency_us.p50),
                us(s.latency_us.p90),
                us(s.latency_us.p99),
                us(s.latency_us.max),
                s.errors.total.to_string(),
                r.peak_rss_kib.map(fmt_kib).unwrap_or_else(|| "-".into()),
                r.other_cpu
                    .map(|x| format!("{:.0}%", x * 100.0))
                    .unwrap_or_else(|| "-".into()),
                r.ratio
                    .map(|x| format!("{:.1}%", x * 100.0))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        let show_ratio = self.rows.iter().any(|r| r.ratio.is_some());
        let ncols = if show_ratio { 10 } else { 9 };
        let mut widths = [0usize; 10];
        for (i, h) in header.iter().enumerate() {
            widths[i] = h.chars().count();
        }
        for row in &rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[&str], out: &mut String| {
            for (i, c) in cells.iter().enumerate().take(ncols) {
                let pad = widths[i] - c.chars().count();
                if i == 0 {
                    out.push_str(c);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                }
            }
            out.push('\n');
        };
        line(&header, &mut out);
        let total: usize = widths[..ncols].iter().sum::<usize>() + 2 * (ncols - 1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells, &mut out);
        }
        out
    }

    /// `name: a / b / c req/s` lines when servers were measured more than once.
    pub fn rounds_notes(&self) -> String {
        let mut out = String::new();
        for r in self.rows.iter().filter(|r| r.rounds_rps.len() > 1) {
            let v: Vec<String> = r.rounds_rps.iter().map(|x| fmt_rate(*x)).collect();
            out.push_str(&format!("  {}: {} req/s\n", r.name, v.join(" / ")));
        }
        out
    }

    /// Error breakdown lines for rows that had errors.
    pub fn error_notes(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let e = &r.summary.errors;
            if e.total == 0 && e.unfinished == 0 {
                continue;
            }
            let statuses: Vec<String> = r
                .summary
                .status
                .iter()
                .filter(|(c, _)| !(200..300).contains(*c))
                .map(|(c, n)| format!("{c}×{n}"))
                .collect();
            out.push_str(&format!(
                "  {}: non-2xx {} [{}], connect {}, io {}, parse {}, timeout {}, unfinished {}\n",
                r.name,
                e.non_2xx,
                statuses.join(" "),
                e.connect,
                e.io,
                e.parse,
                e.timeout,
                e.unfinished
            ));
        }
        out
    }
}
