//! The result of a run: one JSON object for scripts, a table for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::procfs::Processes;
use super::stats::LatencySummary;
use super::units::{GIB, MIB, format_bytes};
use super::{Phase, Plan, Workload};

/// Most verification failures listed (the count is always complete).
const MAX_FAILURES_LISTED: usize = 10;

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) label: Option<String>,
    pub(crate) workload: Workload,
    /// The first URL.
    pub(crate) url: String,
    /// Every URL, in the order they take turns.
    pub(crate) urls: Vec<String>,
    /// How requests were spread over several URLs (`null` with one).
    pub(crate) spread: Option<&'static str>,
    /// Bytes per upload (uploads only).
    pub(crate) size: Option<u64>,
    /// Bytes per PATCH (uploads only).
    pub(crate) chunk: Option<u64>,
    /// Operations planned; `null` when bounded by `duration_limit_s` only.
    pub(crate) count: Option<u64>,
    pub(crate) concurrency: usize,
    pub(crate) create: Option<&'static str>,
    pub(crate) rate_bytes_per_s: Option<u64>,
    pub(crate) warmup: u64,
    pub(crate) duration_limit_s: Option<f64>,
    /// What one latency sample measures.
    pub(crate) latency_of: &'static str,
    /// The timed window.
    pub(crate) duration_s: f64,
    /// Payload bytes moved in the window.
    pub(crate) bytes: u64,
    pub(crate) mib_per_s: f64,
    pub(crate) gb_per_s: f64,
    pub(crate) uploads: Option<u64>,
    pub(crate) uploads_per_s: Option<f64>,
    pub(crate) operations: u64,
    pub(crate) operations_per_s: f64,
    pub(crate) requests: u64,
    pub(crate) requests_per_s: f64,
    pub(crate) errors: u64,
    pub(crate) error_kinds: BTreeMap<String, u64>,
    pub(crate) latency_ms: Option<LatencySummary>,
    pub(crate) server: Option<ServerUsage>,
    /// The `--backend-pid` processes (e.g. the S3 server), measured apart from the server.
    pub(crate) backend: Option<ServerUsage>,
    pub(crate) client: ClientUsage,
    pub(crate) machine: Option<MachineUsage>,
    pub(crate) verify: Verification,
    /// No errors and nothing failed verification.
    pub(crate) ok: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct ServerUsage {
    pub(crate) pids: Vec<u32>,
    pub(crate) cpu_s: f64,
    pub(crate) cpu_s_per_gib: Option<f64>,
    pub(crate) cpu_ms_per_upload: Option<f64>,
    pub(crate) cpu_us_per_request: Option<f64>,
    /// CPU seconds per wall second.
    pub(crate) cores: f64,
    /// `VmHWM` at the end (summed over the processes).
    pub(crate) peak_rss_mib: f64,
    /// Whether `VmHWM` was reset before the run; if not, the peak counts since start-up.
    pub(crate) peak_rss_reset: bool,
    /// Highest `VmRSS` seen by sampling every 100 ms (not sampled for the backend).
    pub(crate) sampled_peak_rss_mib: Option<f64>,
    pub(crate) rss_before_mib: f64,
    /// Each `--pid` (with its descendants) on its own, in the order given.
    pub(crate) processes: Vec<ProcessUsage>,
}

/// One of several measured server processes.
#[derive(Debug, Serialize)]
pub(crate) struct ProcessUsage {
    pub(crate) pid: u32,
    pub(crate) cpu_s: f64,
    /// Its CPU over all the bytes of the run (not only those it handled).
    pub(crate) cpu_s_per_gib: Option<f64>,
    pub(crate) peak_rss_mib: f64,
}

impl ProcessUsage {
    pub(crate) fn new(pid: u32, cpu_s: f64, bytes: u64, peak_kib: u64) -> Self {
        ProcessUsage {
            pid,
            cpu_s,
            cpu_s_per_gib: per_gib(cpu_s, bytes),
            peak_rss_mib: peak_kib as f64 / 1024.0,
        }
    }
}

impl ServerUsage {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        processes: &Processes,
        cpu_s: f64,
        elapsed: Duration,
        bytes: u64,
        uploads: Option<u64>,
        requests: u64,
        peak_kib: u64,
        peak_reset: bool,
        sampled_peak_kib: u64,
        before_kib: u64,
    ) -> Self {
        ServerUsage {
            pids: processes.pids.clone(),
            cpu_s,
            cpu_s_per_gib: per_gib(cpu_s, bytes),
            cpu_ms_per_upload: uploads
                .filter(|&u| u >= MIN_OPS_PER_OP_CPU)
                .map(|u| cpu_s * 1e3 / u as f64),
            cpu_us_per_request: (requests >= MIN_OPS_PER_OP_CPU)
                .then(|| cpu_s * 1e6 / requests as f64),
            cores: cpu_s / elapsed.as_secs_f64().max(1e-9),
            peak_rss_mib: peak_kib as f64 / 1024.0,
            peak_rss_reset: peak_reset,
            sampled_peak_rss_mib: (sampled_peak_kib > 0).then(|| sampled_peak_kib as f64 / 1024.0),
            rss_before_mib: before_kib as f64 / 1024.0,
            processes: Vec::new(),
        }
    }
}

/// The load generator's own cost.
#[derive(Debug, Serialize)]
pub(crate) struct ClientUsage {
    pub(crate) threads: usize,
    pub(crate) cpu_s: Option<f64>,
    pub(crate) cpu_s_per_gib: Option<f64>,
    pub(crate) cpu_us_per_operation: Option<f64>,
}

impl ClientUsage {
    pub(crate) fn new(cpu_s: Option<f64>, threads: usize, bytes: u64, operations: u64) -> Self {
        ClientUsage {
            threads,
            cpu_s,
            cpu_s_per_gib: cpu_s.and_then(|c| per_gib(c, bytes)),
            cpu_us_per_operation: cpu_s
                .filter(|_| operations >= MIN_OPS_PER_OP_CPU)
                .map(|c| c * 1e6 / operations as f64),
        }
    }
}

/// CPU per operation is shown from this many operations on (CPU time comes in 10 ms ticks).
const MIN_OPS_PER_OP_CPU: u64 = 100;

/// CPU seconds per GiB, when at least 64 MiB moved (below that it is mostly noise).
fn per_gib(cpu_s: f64, bytes: u64) -> Option<f64> {
    (bytes >= 64 * MIB).then(|| cpu_s / (bytes as f64 / GIB as f64))
}

#[derive(Debug, Serialize)]
pub(crate) struct MachineUsage {
    /// Cores busy on average over the window, everything on the machine included.
    pub(crate) busy_cores: f64,
    pub(crate) steal_pct: f64,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Verification {
    pub(crate) performed: bool,
    pub(crate) head_checked: u64,
    pub(crate) head_ok: u64,
    pub(crate) sha256_checked: u64,
    pub(crate) sha256_ok: u64,
    /// Why sha256 was not checked (`null` if it was).
    pub(crate) sha256_skipped: Option<String>,
    pub(crate) failures: u64,
    pub(crate) failure_samples: Vec<String>,
}

impl Verification {
    pub(crate) fn skipped() -> Self {
        Verification {
            performed: false,
            sha256_skipped: Some("verification off".into()),
            ..Verification::default()
        }
    }

    pub(crate) fn add_failures(&mut self, failures: Vec<String>) {
        self.performed = true;
        self.failures += failures.len() as u64;
        for failure in failures {
            if self.failure_samples.len() < MAX_FAILURES_LISTED {
                self.failure_samples.push(failure);
            }
        }
    }
}

impl Report {
    pub(crate) fn new(
        plan: &Plan,
        phase: &Phase,
        latency: Option<LatencySummary>,
        server: Option<ServerUsage>,
        client: ClientUsage,
        machine: Option<MachineUsage>,
        mut verify: Verification,
    ) -> Self {
        let tally = &phase.tally;
        let secs = phase.elapsed.as_secs_f64().max(1e-9);
        let upload = plan.is_upload();
        let uploads = phase.uploads(plan);
        if plan.verify {
            verify.performed = true;
        }
        let ok = tally.errors == 0 && verify.failures == 0;
        Report {
            tool: "tusgate bench",
            version: env!("CARGO_PKG_VERSION"),
            label: plan.label.clone(),
            workload: plan.workload,
            url: plan.urls.first().cloned().unwrap_or_default(),
            urls: plan.urls.clone(),
            spread: (plan.urls.len() > 1).then(|| plan.spread.name()),
            size: upload.then_some(plan.size),
            chunk: upload.then_some(plan.chunk),
            count: (plan.count != u64::MAX).then_some(plan.count),
            concurrency: plan.concurrency,
            create: upload.then(|| plan.create.name()),
            rate_bytes_per_s: plan.rate,
            warmup: plan.warmup,
            duration_limit_s: plan.duration.map(|d| d.as_secs_f64()),
            latency_of: plan.latency_of(),
            duration_s: secs,
            bytes: tally.bytes,
            mib_per_s: tally.bytes as f64 / MIB as f64 / secs,
            gb_per_s: tally.bytes as f64 / 1e9 / secs,
            uploads,
            uploads_per_s: uploads.map(|u| u as f64 / secs),
            operations: tally.operations,
            operations_per_s: tally.operations as f64 / secs,
            requests: tally.requests,
            requests_per_s: tally.requests as f64 / secs,
            errors: tally.errors,
            error_kinds: tally.error_kinds.clone(),
            latency_ms: latency,
            server,
            backend: None,
            client,
            machine,
            verify,
            ok,
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let title = match &self.label {
            Some(label) => format!("{label}: "),
            None => String::new(),
        };
        let shape = match (self.size, self.chunk) {
            (Some(size), Some(chunk)) => {
                let patches = if chunk >= size {
                    "one PATCH".to_owned()
                } else {
                    format!("PATCHes of {}", format_bytes(chunk))
                };
                let count = self
                    .count
                    .map_or_else(|| "uploads".to_owned(), |n| format!("{n} ×"));
                let mut text = format!("{count} {} in {patches}", format_bytes(size));
                match self.create {
                    Some("before-clock") => text.push_str(", created before the clock"),
                    Some("timed") => text.push_str(", POST timed"),
                    Some(other) => text.push_str(&format!(", {other}")),
                    None => {}
                }
                if let Some(rate) = self.rate_bytes_per_s {
                    text.push_str(&format!(", paced at {}/s", format_bytes(rate)));
                }
                text
            }
            _ => match self.count {
                Some(n) => format!("{n} × GET"),
                None => "GET".to_owned(),
            },
        };
        let mut head = format!(
            "{title}{} — {shape}, concurrency {}, {} client thread(s)",
            self.workload.name(),
            self.concurrency,
            self.client.threads
        );
        if let Some(limit) = self.duration_limit_s {
            head.push_str(&format!(", for {limit} s"));
        }
        if self.warmup > 0 {
            head.push_str(&format!(", after {} warm-up operations", self.warmup));
        }
        let _ = writeln!(out, "{head}");
        for url in &self.urls {
            let _ = writeln!(out, "  {url}");
        }
        if let Some(spread) = self.spread {
            let _ = writeln!(out, "  (round-robin per {spread})");
        }
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<14} {value}");
        };
        row(
            "result",
            if self.ok {
                "ok".into()
            } else {
                "FAILED".into()
            },
        );
        row(
            "time",
            format!(
                "{:.3} s, {} moved",
                self.duration_s,
                format_bytes(self.bytes)
            ),
        );
        row(
            "throughput",
            format!("{:.1} MiB/s ({:.3} GB/s)", self.mib_per_s, self.gb_per_s),
        );
        if let Some(per_s) = self.uploads_per_s {
            row(
                "uploads",
                format!("{} ({per_s:.1}/s)", self.uploads.unwrap_or(0)),
            );
        } else {
            row(
                "operations",
                format!("{} ({:.1}/s)", self.operations, self.operations_per_s),
            );
        }
        row(
            "requests",
            format!(
                "{} ({:.1}/s), errors {}",
                self.requests, self.requests_per_s, self.errors
            ),
        );
        for (error, n) in &self.error_kinds {
            row("  error", format!("{n} × {error}"));
        }
        if let Some(l) = &self.latency_ms {
            row(
                "latency ms",
                format!(
                    "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (n={}, per {})",
                    l.p50, l.p90, l.p99, l.max, l.n, self.latency_of
                ),
            );
        }
        for (name, usage) in [("server", &self.server), ("backend", &self.backend)] {
            let Some(s) = usage else { continue };
            let mut cpu = format!("{:.2} s, {:.2} cores", s.cpu_s, s.cores);
            if let Some(per_gib) = s.cpu_s_per_gib {
                cpu.push_str(&format!(", {per_gib:.2} s/GiB"));
            }
            if let Some(per_upload) = s.cpu_ms_per_upload {
                cpu.push_str(&format!(", {per_upload:.3} ms/upload"));
            } else if let Some(per_request) = s.cpu_us_per_request {
                cpu.push_str(&format!(", {per_request:.1} µs/request"));
            }
            row(&format!("{name} cpu"), cpu);
            let mut rss = format!(
                "peak {:.1} MiB ({})",
                s.peak_rss_mib,
                if s.peak_rss_reset {
                    "VmHWM, reset before the run"
                } else {
                    "VmHWM since start: reset not permitted"
                }
            );
            if let Some(sampled) = s.sampled_peak_rss_mib {
                rss.push_str(&format!(", sampled peak {sampled:.1} MiB"));
            }
            rss.push_str(&format!(", before {:.1} MiB", s.rss_before_mib));
            row(&format!("{name} rss"), rss);
            if s.processes.len() > 1 {
                for p in &s.processes {
                    row(
                        &format!("  pid {}", p.pid),
                        format!("cpu {:.2} s, peak {:.1} MiB", p.cpu_s, p.peak_rss_mib),
                    );
                }
            }
        }
        let mut client = match self.client.cpu_s {
            Some(cpu) => format!("{cpu:.2} s"),
            None => "n/a".into(),
        };
        if let Some(per_gib) = self.client.cpu_s_per_gib {
            client.push_str(&format!(", {per_gib:.2} s/GiB"));
        }
        if let Some(per_op) = self.client.cpu_us_per_operation {
            client.push_str(&format!(", {per_op:.0} µs/operation"));
        }
        row("client cpu", client);
        if let Some(m) = &self.machine {
            row(
                "machine",
                format!("{:.2} cores busy, steal {:.1} %", m.busy_cores, m.steal_pct),
            );
        }
        let v = &self.verify;
        if v.performed {
            let mut text = format!("HEAD offset {}/{} ok", v.head_ok, v.head_checked);
            match &v.sha256_skipped {
                Some(why) => text.push_str(&format!("; sha256 not checked: {why}")),
                None => text.push_str(&format!("; sha256 {}/{} ok", v.sha256_ok, v.sha256_checked)),
            }
            row("verified", text);
            for failure in &v.failure_samples {
                row("  failed", failure.clone());
            }
        } else if self.size.is_some() {
            row("verified", "no (--no-verify)".into());
        }
        out.truncate(out.trim_end().len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::stats::{Sample, Tally};
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::super::BenchArgs,
    }

    fn report(args: &[&str], ok: bool) -> Report {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .expect("parses");
        let plan = Plan::from_args(&cli.args, false).expect("valid");
        let mut tally = Tally::default();
        for i in 0..200u64 {
            tally.add(Sample {
                latency: Some(Duration::from_micros(1000 + i * 10)),
                bytes: 10240,
                requests: 2,
                completed_upload: Some(super::super::client::UploadAt {
                    target: 0,
                    path: format!("/files/{i}"),
                }),
                error: None,
            });
        }
        if !ok {
            tally.add_error("PATCH: status 500".into());
        }
        let phase = Phase {
            tally,
            elapsed: Duration::from_millis(100),
            sampled_peak_rss_kib: 0,
        };
        let mut samples = phase.tally.latencies_ns.clone();
        Report::new(
            &plan,
            &phase,
            LatencySummary::from_samples(&mut samples),
            None,
            ClientUsage::new(Some(0.01), 1, phase.tally.bytes, phase.tally.operations),
            Some(MachineUsage {
                busy_cores: 1.0,
                steal_pct: 0.0,
            }),
            Verification::default(),
        )
    }

    #[test]
    fn json_has_the_figures_scripts_read() {
        let r = report(
            &["http://127.0.0.1:1/files/", "-w", "small", "-n", "200"],
            true,
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(v["workload"], "small");
        assert_eq!(v["uploads"], 200);
        assert_eq!(v["uploads_per_s"], 2000.0);
        assert_eq!(v["requests"], 400);
        assert_eq!(v["latency_ms"]["n"], 200);
        assert_eq!(v["latency_ms"]["p50"], 1.99);
        assert_eq!(v["latency_of"], "upload (POST + PATCH)");
        assert_eq!(v["ok"], true);
        assert!(v["server"].is_null());
    }

    #[test]
    fn instances_and_backend_are_reported_apart() {
        let mut r = report(
            &[
                "http://127.0.0.1:1/files/",
                "http://127.0.0.1:2/files/",
                "-w",
                "small",
                "-n",
                "200",
            ],
            true,
        );
        let usage = |pids: Vec<u32>, cpu_s: f64, peak_kib: u64| {
            ServerUsage::new(
                &Processes { pids },
                cpu_s,
                Duration::from_secs(1),
                GIB,
                Some(200),
                400,
                peak_kib,
                true,
                0,
                1024,
            )
        };
        let mut server = usage(vec![11, 12], 3.0, 40 * 1024);
        server.processes = vec![
            ProcessUsage::new(11, 1.0, GIB, 15 * 1024),
            ProcessUsage::new(12, 2.0, GIB, 25 * 1024),
        ];
        r.server = Some(server);
        r.backend = Some(usage(vec![13], 4.0, 300 * 1024));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(v["url"], "http://127.0.0.1:1/files/");
        assert_eq!(v["urls"][1], "http://127.0.0.1:2/files/");
        assert_eq!(v["spread"], "upload");
        assert_eq!(v["server"]["cpu_s_per_gib"], 3.0);
        assert_eq!(v["server"]["processes"][1]["pid"], 12);
        assert_eq!(v["server"]["processes"][1]["peak_rss_mib"], 25.0);
        assert_eq!(v["server"]["processes"][0]["cpu_s_per_gib"], 1.0);
        assert_eq!(v["backend"]["cpu_s"], 4.0);
        assert_eq!(v["backend"]["peak_rss_mib"], 300.0);
        assert!(v["backend"]["sampled_peak_rss_mib"].is_null());
        let table = r.to_table();
        assert!(
            table.contains("  http://127.0.0.1:2/files/\n  (round-robin per upload)"),
            "{table}"
        );
        assert!(
            table.contains("  pid 12       cpu 2.00 s, peak 25.0 MiB"),
            "{table}"
        );
        assert!(
            table.contains("backend cpu    4.00 s, 4.00 cores, 4.00 s/GiB"),
            "{table}"
        );
        assert!(
            table.contains(
                "backend rss    peak 300.0 MiB (VmHWM, reset before the run), before 1.0 MiB"
            ),
            "{table}"
        );
    }

    #[test]
    fn table_reads_well_and_shows_failures() {
        let r = report(
            &[
                "http://127.0.0.1:1/files/",
                "-w",
                "small",
                "-n",
                "200",
                "--label",
                "tusd",
            ],
            false,
        );
        let table = r.to_table();
        assert!(
            table.starts_with("tusd: small — 200 × 10 KiB in one PATCH, POST timed"),
            "{table}"
        );
        assert!(table.contains("result         FAILED"), "{table}");
        assert!(table.contains("1 × PATCH: status 500"), "{table}");
        assert!(table.contains("uploads        200 (2000.0/s)"), "{table}");
    }
}
