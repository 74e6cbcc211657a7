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

/// Renders an aligned text table: the first `left` columns left-aligned, the
/// rest right-aligned; `None` rows are separator lines.
pub fn render_table(header: &[&str], rows: &[Option<Vec<String>>], left: usize) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter().flatten() {
        for (i, c) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let total: usize = widths.iter().sum::<usize>() + 2 * (n - 1);
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            let pad = " ".repeat(widths[i] - c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if i < left {
                l.push_str(c);
                l.push_str(&pad);
            } else {
                l.push_str(&pad);
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header, &mut out);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        match row {
            Some(r) => {
                let cells: Vec<&str> = r.iter().map(String::as_str).collect();
                line(&cells, &mut out);
            }
            None => {
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
    }
    out
}

/// One server's result for one workload in `loadtest compare`.
#[derive(Clone, Debug, Serialize)]
pub struct CompareCell {
    pub server: String,
    /// Median round (by req/s); `None` when the workload could not run.
    pub summary: Option<Summary>,
    /// Peak RSS during the workload (VmHWM reset before it), KiB.
    pub peak_rss_kib: Option<u64>,
    pub other_cpu: Option<f64>,
    pub rounds_rps: Vec<f64>,
    /// Why the workload did not run on this server.
    pub skipped: Option<String>,
}

/// One workload on every server.
#[derive(Clone, Debug, Serialize)]
pub struct CompareRow {
    /// Request logging was on (both servers) for this row.
    pub logs: bool,
    pub workload: String,
    pub request: String,
    pub cells: Vec<CompareCell>,
}

/// The whole `loadtest compare` report.
#[derive(Clone, Debug, Serialize)]
pub struct CompareReport {
    pub meta: Meta,
    pub mode: String,
    /// Server name → version / binary.
    pub servers: Vec<(String, String)>,
    pub rows: Vec<CompareRow>,
    /// Seeding notes per server.
    pub notes: Vec<String>,
}

impl CompareReport {
    /// req/s of the first server over the second, for one row (for `realtime`:
    /// the second's p99 delivery latency over the first's).
    pub fn ratio(row: &CompareRow) -> Option<f64> {
        let a = row.cells.first()?.summary.as_ref()?;
        let b = row.cells.get(1)?.summary.as_ref()?;
        if row.workload == "realtime" {
            // Delivery rate is set by the publisher: compare p99 latency (higher = first is faster).
            let (pa, pb) = (a.latency_us.p99, b.latency_us.p99);
            return (pa > 0.0 && a.responses > 0 && b.responses > 0).then(|| pb / pa);
        }
        (b.rps > 0.0).then(|| a.rps / b.rps)
    }

    /// The comparison table for one logging mode: two lines per workload
    /// (the first server carries the ratio).
    pub fn table(&self, logs: bool) -> String {
        let header = [
            "workload",
            "server",
            "req/s",
            "p50",
            "p90",
            "p99",
            "errors",
            "peak RSS",
            "other CPU",
            "ratio",
        ];
        let mut rows = Vec::new();
        for (k, r) in self.rows.iter().filter(|r| r.logs == logs).enumerate() {
            if k > 0 {
                rows.push(None);
            }
            let ratio = Self::ratio(r);
            for (i, c) in r.cells.iter().enumerate() {
                let name = if i == 0 {
                    r.workload.clone()
                } else {
                    String::new()
                };
                let ratio_s = match (i, ratio) {
                    (0, Some(x)) => format!("{x:.2}x"),
                    _ => String::new(),
                };
                let pct = |x: Option<f64>| {
                    x.map(|x| format!("{:.0}%", x * 100.0))
                        .unwrap_or_else(|| "-".into())
                };
                match &c.summary {
                    Some(s) => rows.push(Some(vec![
                        name,
                        c.server.clone(),
                        fmt_rate(s.rps),
                        us(s.latency_us.p50),
                        us(s.latency_us.p90),
                        us(s.latency_us.p99),
                        s.errors.total.to_string(),
                        c.peak_rss_kib.map(fmt_kib).unwrap_or_else(|| "-".into()),
                        pct(c.other_cpu),
                        ratio_s,
                    ])),
                    None => rows.push(Some(vec![
                        name,
                        c.server.clone(),
                        "not run".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        String::new(),
                    ])),
                }
            }
        }
        render_table(&header, &rows, 2)
    }

    /// Skips, error breakdowns and per-round req/s, below the table.
    pub fn notes_text(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            for c in &r.cells {
                let who = format!(
                    "{} / {}{}",
                    r.workload,
                    c.server,
                    if r.logs { "" } else { " (no logs)" }
                );
                if let Some(why) = &c.skipped {
                    out.push_str(&format!("  {who}: not run: {why}\n"));
                }
                if let Some(s) = &c.summary {
                    let e = &s.errors;
                    if e.total > 0 || e.unfinished > 0 {
                        let statuses: Vec<String> = s
                            .status
                            .iter()
                            .filter(|(c, _)| !(200..300).contains(*c))
                            .map(|(c, n)| format!("{c}×{n}"))
                            .collect();
                        out.push_str(&format!(
                            "  {who}: errors: non-2xx {} [{}], connect {}, io {}, parse {}, timeout {}, unfinished {}\n",
                            e.non_2xx, statuses.join(" "), e.connect, e.io, e.parse, e.timeout, e.unfinished
                        ));
                    }
                }
                if c.rounds_rps.len() > 1 {
                    let v: Vec<String> = c.rounds_rps.iter().map(|x| fmt_rate(*x)).collect();
                    out.push_str(&format!("  {who}: rounds {} req/s\n", v.join(" / ")));
                }
            }
        }
        out
    }
}
