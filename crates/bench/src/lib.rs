//! The tus load generator behind `tusgate bench` (and the `tusgate-bench` binary), for any
//! tus 1.0 endpoint (tusgate, tusd, @tus/server, rustus, a hosted service) and for plain
//! downloads. A crate of its own: it shares no code with the server, so the server library
//! never carries it, and it measures tusgate exactly as it measures the others.
//!
//! Workloads are presets of a few knobs (size, chunk, count, concurrency, pacing, whether the
//! POST is timed); every knob can be set by a flag. Each worker owns one keep-alive HTTP/1.1
//! connection (hyper's low-level client) and runs operations one after another; bodies are
//! zero-copy slices of one pre-generated buffer. Workers report finished operations to a
//! single collector task, which also samples the server's RSS and draws the progress line.
//! Uploads are verified afterwards, outside the timed window: `HEAD` must report
//! `Upload-Offset` equal to the size, and large uploads are read back with `GET` and compared
//! by sha256 where the server allows downloads.
//!
//! Several URLs (instances of one server sharing a store) are used round-robin: upload `i`
//! goes to URL `i mod n` (`--spread upload`, as a load balancer with affinity), or each of its
//! requests to the next URL (`--spread request`, one without); GETs go round-robin too.
//!
//! The command line takes tusd's Go flag syntax as the server's does (`-timeout=10s` is
//! `--timeout=10s`, durations like `1m30s`): [`main_with`] is the one entry point of both
//! binaries.

mod chart;
mod client;
mod procfs;
mod report;
mod stats;
mod units;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use client::{Conn, Drain, Pattern, PatternBody, Target, UploadAt, describe};
use procfs::{MachineTicks, Processes};
use report::{ClientUsage, MachineUsage, ProcessUsage, Report, ServerUsage, Verification};
use stats::{LatencySummary, Sample, Tally};
use units::{KIB, MIB, format_bytes, parse_bool, parse_bytes, parse_duration};

/// What to run. Each is a preset of the other flags; flags given explicitly win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One upload of --size (1 GiB) in a single PATCH; the POST happens before the clock.
    Single,
    /// One upload of --size (1 GiB) in PATCHes of --chunk (8 MiB) on one connection.
    Chunked,
    /// --count (8) uploads of --size (128 MiB) at once, one PATCH each.
    Parallel,
    /// --count (2000) uploads of --size (10 KiB), --concurrency 16, POST + PATCH each, timed
    /// per upload (or one POST each with --creation-with-upload).
    Small,
    /// --count (100) uploads sent slowly all at once (--size 1 MiB at --rate 256 KiB/s each),
    /// to measure the server's memory with many open uploads.
    Slow,
    /// GET the URL --count times (1) or for --duration, --concurrency connections.
    Download,
}

impl Workload {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Single => "single",
            Workload::Chunked => "chunked",
            Workload::Parallel => "parallel",
            Workload::Small => "small",
            Workload::Slow => "slow",
            Workload::Download => "download",
        }
    }
}

/// How requests are spread over several URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spread {
    /// Upload `i` (all its requests) goes to URL `i mod n`; GET `i` likewise.
    Upload,
    /// Each request of an upload goes to the next URL: POST to `i mod n`, its k-th PATCH to
    /// `(i + k) mod n` (HEAD and GET checks afterwards to the creating URL).
    Request,
}

impl Spread {
    fn name(self) -> &'static str {
        match self {
            Spread::Upload => "upload",
            Spread::Request => "request",
        }
    }
}

// The command line of the load generator: a run (URLs and flags), or a tool on results.
#[derive(Debug, Parser)]
#[command(
    about = "Load generator: tus uploads (any tus server) and downloads, with throughput, latency percentiles, the server's CPU and peak RSS, and verification (see benches/README.md)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    tool: Option<Tool>,
    #[command(flatten)]
    run: BenchArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// Draw benches/compare.sh's results (results.jsonl) as an SVG chart: each peer's
    /// throughput as a ratio to tusd and to the limit, per upload workload, with the min–max
    /// of its rounds.
    Chart(chart::ChartArgs),
}

/// Runs the load generator on the command line `args` (without the program name). `name` is
/// how it was called (`tusgate bench`, `tusgate-bench`), for the usage line and messages.
/// Exit status: 0 when every operation succeeded and verified, 1 when not, 2 for a bad
/// command line (clap's, as every tusgate command).
pub fn main_with(name: &'static str, args: impl IntoIterator<Item = String>) -> ExitCode {
    let argv = std::iter::once(name.to_owned()).chain(go_flags(args));
    let parsed = Cli::command()
        .bin_name(name)
        .try_get_matches_from(argv)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(Cli {
            tool: Some(Tool::Chart(args)),
            ..
        }) => chart::run(name, &args),
        Ok(cli) => run(name, cli.run),
        Err(e) => e.exit(),
    }
}

/// Go's `flag` syntax in clap's: `-name…` becomes `--name…`. Single-letter flags (`-w`, `-n`)
/// and everything after `--` are left alone.
fn go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        match arg.strip_prefix('-') {
            Some(rest) if rest.len() > 1 && !rest.starts_with('-') => out.push(format!("-{arg}")),
            _ => out.push(arg),
        }
    }
    out
}

/// `tusgate bench`: measure a tus server (or a download URL) from this machine.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  tusgate bench http://127.0.0.1:8080/files/ --workload single --size 1GiB --pid $(pidof tusgate)
  tusgate bench http://127.0.0.1:1080/files/ -w small -n 2000 -c 16 --warmup 500 --json
  tusgate bench 'http://127.0.0.1:8080/assets/private/a.bin?md5=…&expires=…' -w download -c 64 -d 10s --threads 2
  tusgate bench http://127.0.0.1:8081/files/ http://127.0.0.1:8082/files/ -w parallel --pid $A --pid $B")]
pub struct BenchArgs {
    /// The tus creation URL (`http://127.0.0.1:8080/files/`), or for `download` the URL to GET.
    /// Several: instances sharing one store, used round-robin (see --spread).
    #[arg(required = true, num_args = 1.., value_name = "URL")]
    pub urls: Vec<String>,
    /// With several URLs: give each upload to one of them in turn (`upload`), or send each
    /// request of an upload to the next one (`request`: no affinity).
    #[arg(long, value_enum, default_value = "upload")]
    pub spread: Spread,
    /// What to run (a preset of the flags below).
    #[arg(short, long, value_enum, default_value = "single")]
    pub workload: Workload,
    /// Bytes per upload (`10240`, `10KiB`, `128MiB`, `1GiB`; `MB` = 10^6).
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// Send each upload in PATCHes of this size (0: one PATCH).
    #[arg(long, value_parser = parse_bytes)]
    pub chunk: Option<u64>,
    /// Number of uploads (or of GETs).
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Operations in flight at once, one connection each.
    #[arg(short, long)]
    pub concurrency: Option<usize>,
    /// Stop starting new operations after this long (Go duration, e.g. 10s) instead of after
    /// --count; for downloads and timed-creation uploads.
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Create each upload with its first bytes in the POST (creation-with-upload); timed.
    #[arg(long)]
    pub creation_with_upload: bool,
    /// Count each upload's POST in its time (default: only for `small`; otherwise uploads
    /// are created before the clock starts and only PATCHes are timed).
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub timed_create: Option<bool>,
    /// Send each upload's bytes at most this fast, per second (`256KiB`).
    #[arg(long, value_parser = parse_bytes)]
    pub rate: Option<u64>,
    /// Largest body piece handed to the connection at once (default 1 MiB; rate/8 when paced).
    #[arg(long, value_parser = parse_bytes)]
    pub frame: Option<u64>,
    /// Extra request header `Name: value`, repeatable. An `Upload-Metadata` header replaces
    /// the default `filename <name>` metadata of each upload.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Operations to run before the clock starts (not counted; same shape, timed creation).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// A server process to measure (CPU time, peak RSS), repeatable; its descendants count too.
    /// Totals are over all of them; each is also reported on its own.
    #[arg(long)]
    pub pid: Vec<u32>,
    /// A process the server relies on (an S3 server, a database), measured apart from the
    /// server (CPU time, peak RSS), repeatable.
    #[arg(long)]
    pub backend_pid: Vec<u32>,
    /// Worker threads of the load generator (1 = everything on one thread).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timeout of one request, body included (Go duration).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Abort the measured run after this long (Go duration).
    #[arg(long, default_value = "900s", value_parser = parse_duration)]
    pub max_time: Duration,
    /// Skip verification entirely (HEAD offsets and sha256).
    #[arg(long)]
    pub no_verify: bool,
    /// Skip the sha256 read-back through GET (HEAD offsets are still checked).
    #[arg(long)]
    pub no_sha256: bool,
    /// Uploads at least this large are read back and checked by sha256.
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    pub sha256_min: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A name for the server under test, shown in the output.
    #[arg(long)]
    pub label: Option<String>,
    /// No progress line on stderr (it is only drawn when stderr is a terminal).
    #[arg(short, long)]
    pub quiet: bool,
}

/// How uploads come into being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// POSTed before the clock starts; each PATCH is an operation.
    Before,
    /// POST + PATCHes are one operation.
    Timed,
    /// POST with the first bytes (+ PATCHes for the rest) is one operation.
    WithUpload,
}

impl Create {
    fn name(self) -> &'static str {
        match self {
            Create::Before => "before-clock",
            Create::Timed => "timed",
            Create::WithUpload => "creation-with-upload",
        }
    }
}

/// The validated plan of a run.
#[derive(Debug, Clone)]
struct Plan {
    workload: Workload,
    urls: Vec<String>,
    /// One per URL, in order.
    targets: Vec<Arc<Target>>,
    spread: Spread,
    /// Bytes per upload (0 for downloads).
    size: u64,
    /// PATCH size; `size` for one PATCH.
    chunk: u64,
    /// Operations (uploads or GETs); `u64::MAX` when bounded by `duration` only.
    count: u64,
    concurrency: usize,
    duration: Option<Duration>,
    create: Create,
    rate: Option<u64>,
    frame: u64,
    warmup: u64,
    /// Sent with every request, after ours (so they override ours).
    headers: Vec<(HeaderName, HeaderValue)>,
    custom_metadata: bool,
    threads: usize,
    timeout: Duration,
    max_time: Duration,
    verify: bool,
    sha256: bool,
    sha256_min: u64,
    pids: Vec<u32>,
    backend_pids: Vec<u32>,
    json: bool,
    label: Option<String>,
    progress: bool,
}

/// A worker gives up after this many failed operations in a row (server gone).
const MAX_CONSECUTIVE_ERRORS: u32 = 20;
/// Connections used to create uploads before the clock, and to verify them after.
const SETUP_CONCURRENCY: usize = 8;

impl Plan {
    fn from_args(args: &BenchArgs, stderr_is_tty: bool) -> Result<Plan, String> {
        let targets = args
            .urls
            .iter()
            .map(|url| Target::parse(url).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err("give at least one URL".into());
        }
        let upload = args.workload != Workload::Download;
        // (size, chunk, count, concurrency, timed creation, rate)
        let preset: (u64, u64, u64, usize, bool, Option<u64>) = match args.workload {
            Workload::Single => (1 << 30, 0, 1, 1, false, None),
            Workload::Chunked => (1 << 30, 8 * MIB, 1, 1, false, None),
            Workload::Parallel => (128 * MIB, 0, 8, 8, false, None),
            Workload::Small => (10 * KIB, 0, 2000, 16, true, None),
            Workload::Slow => (MIB, 0, 100, 100, false, Some(256 * KIB)),
            Workload::Download => (0, 0, 1, 1, false, None),
        };
        if !upload {
            let upload_only = [
                (args.size.is_some(), "--size"),
                (args.chunk.is_some(), "--chunk"),
                (args.rate.is_some(), "--rate"),
                (args.creation_with_upload, "--creation-with-upload"),
                (args.timed_create.is_some(), "--timed-create"),
            ];
            if let Some((_, flag)) = upload_only.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{flag} applies to uploads, not to --workload download"
                ));
            }
        }
        let size = args.size.unwrap_or(preset.0);
        if upload && size == 0 {
            return Err("--size must be at least 1 byte".into());
        }
        let chunk = match args.chunk.unwrap_or(preset.1) {
            0 => size,
            chunk => chunk.min(size),
        };
        let create = if args.creation_with_upload {
            Create::WithUpload
        } else if args.timed_create.unwrap_or(preset.4) {
            Create::Timed
        } else {
            Create::Before
        };
        let count = match (args.count, args.duration) {
            (Some(0), _) => return Err("--count must be at least 1".into()),
            (Some(n), _) => n,
            (None, Some(_)) => u64::MAX,
            (None, None) => preset.2,
        };
        if args.duration.is_some() && upload && create == Create::Before {
            return Err(
                "--duration needs uploads created inside the clock: add --timed-create (or give --count)"
                    .into(),
            );
        }
        let concurrency = args.concurrency.unwrap_or(preset.3);
        if concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        let concurrency = usize::try_from(count).map_or(concurrency, |n| concurrency.min(n));
        if !(1..=64).contains(&args.threads) {
            return Err("--threads must be between 1 and 64".into());
        }
        let rate = args.rate.or(preset.5).filter(|&r| r > 0);
        let frame = match (args.frame, rate) {
            (Some(0), _) => return Err("--frame must be at least 1 byte".into()),
            (Some(frame), _) => frame,
            (None, Some(rate)) => (rate / 8).clamp(KIB, MIB),
            (None, None) => MIB,
        };
        let mut headers = Vec::new();
        for raw in &args.headers {
            let (name, value) = raw
                .split_once(':')
                .ok_or_else(|| format!("--header {raw:?}: use `Name: value`"))?;
            let name = HeaderName::try_from(name.trim())
                .map_err(|_| format!("--header {raw:?}: invalid header name"))?;
            let value = HeaderValue::try_from(value.trim())
                .map_err(|_| format!("--header {raw:?}: invalid header value"))?;
            headers.push((name, value));
        }
        let custom_metadata = headers.iter().any(|(n, _)| n == "upload-metadata");
        Ok(Plan {
            workload: args.workload,
            urls: args.urls.clone(),
            targets,
            spread: args.spread,
            size: if upload { size } else { 0 },
            chunk,
            count,
            concurrency,
            duration: args.duration,
            create,
            rate: rate.filter(|_| upload),
            frame,
            warmup: args.warmup,
            headers,
            custom_metadata,
            threads: args.threads,
            timeout: args.timeout,
            max_time: args.max_time,
            verify: !args.no_verify && upload,
            sha256: !args.no_verify && !args.no_sha256 && upload && size >= args.sha256_min,
            sha256_min: args.sha256_min,
            pids: args.pid.clone(),
            backend_pids: args.backend_pid.clone(),
            json: args.json,
            label: args.label.clone(),
            progress: stderr_is_tty && !args.quiet,
        })
    }

    fn is_upload(&self) -> bool {
        self.workload != Workload::Download
    }

    /// The URL (index into `targets`) of request `nth` of operation `index`: for uploads,
    /// request 0 is the POST and request k its k-th PATCH; a GET is request 0.
    fn target_of(&self, index: u64, nth: u64) -> usize {
        let n = self.targets.len() as u64;
        let turn = match self.spread {
            Spread::Upload => index,
            Spread::Request => index.wrapping_add(nth),
        };
        usize::try_from(turn % n.max(1)).unwrap_or(0)
    }

    /// One (not yet connected) connection per URL.
    fn connections(&self) -> Vec<Conn> {
        self.targets
            .iter()
            .map(|target| Conn::new(Arc::clone(target), self.timeout))
            .collect()
    }

    /// What one latency sample measures.
    fn latency_of(&self) -> &'static str {
        match (self.is_upload(), self.create) {
            (false, _) => "GET",
            (true, Create::Before) => "PATCH",
            (true, Create::Timed) => "upload (POST + PATCH)",
            (true, Create::WithUpload) if self.chunk >= self.size => "upload (POST with body)",
            (true, Create::WithUpload) => "upload (POST with body + PATCH)",
        }
    }
}

/// Runs the benchmark described by the arguments; the exit status is 0 only if every
/// operation succeeded and everything verified. `name` prefixes error messages.
pub fn run(name: &str, args: BenchArgs) -> ExitCode {
    let plan = match Plan::from_args(&args, std::io::stderr().is_terminal()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = if plan.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(plan.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(Box::pin(execute(plan.clone())));
    // Connection tasks of the last requests may still be parked; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(report) => {
            let output = if plan.json {
                report.to_json()
            } else {
                report.to_table()
            };
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{output}");
            let _ = stdout.flush();
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// State shared by the workers of one phase.
#[derive(Debug)]
struct Shared {
    plan: Plan,
    pattern: Pattern,
    /// Next operation index to claim.
    next: AtomicU64,
    /// Stop starting operations after this instant.
    deadline: Option<Instant>,
    /// Payload bytes handed to connections (uploads) or received (downloads), for progress.
    progress: Arc<AtomicU64>,
    /// Uploads created before the clock (`Create::Before`), one per operation.
    created: Vec<UploadAt>,
    /// Distinguishes the filenames of this run's uploads.
    run_id: String,
}

async fn execute(plan: Plan) -> Result<Report, String> {
    let pattern = Pattern::new();
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mut processes = match plan.pids.as_slice() {
        [] => None,
        pids => Some(Processes::discover(pids)?),
    };
    // Each --pid on its own too (instances of one server), and the backend apart.
    let mut each = plan
        .pids
        .iter()
        .map(|&pid| Processes::discover(&[pid]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut backend = match plan.backend_pids.as_slice() {
        [] => None,
        pids => Some(Processes::discover(pids)?),
    };

    if plan.warmup > 0 {
        let mut warm = plan.clone();
        warm.count = plan.warmup;
        warm.duration = None;
        warm.concurrency =
            usize::try_from(plan.warmup).map_or(plan.concurrency, |n| n.min(plan.concurrency));
        if warm.create == Create::Before {
            warm.create = Create::Timed;
        }
        let shared = Arc::new(Shared {
            plan: warm,
            pattern: pattern.clone(),
            next: AtomicU64::new(0),
            deadline: None,
            progress: Arc::new(AtomicU64::new(0)),
            created: Vec::new(),
            run_id: format!("{run_id}-warmup"),
        });
        let phase = run_phase(shared, "warm-up", None).await;
        if phase.tally.errors > 0 {
            let (first, _) = phase
                .tally
                .error_kinds
                .iter()
                .next()
                .map_or(("?", &0), |(k, v)| (k.as_str(), v));
            return Err(format!(
                "warm-up failed: {} of {} operations failed (first: {first})",
                phase.tally.errors, plan.warmup
            ));
        }
    }

    let created = if plan.is_upload() && plan.create == Create::Before {
        create_uploads(&plan, &pattern, &run_id).await?
    } else {
        Vec::new()
    };

    // The measured phase.
    let mut rss_before_kib = 0;
    let mut peak_reset = false;
    if let Some(procs) = processes.as_mut() {
        procs.refresh();
        peak_reset = procs.reset_peak_rss();
        rss_before_kib = procs.rss_kib();
    }
    for procs in &mut each {
        procs.refresh();
    }
    let mut backend_peak_reset = false;
    let mut backend_rss_before_kib = 0;
    if let Some(procs) = backend.as_mut() {
        procs.refresh();
        backend_peak_reset = procs.reset_peak_rss();
        backend_rss_before_kib = procs.rss_kib();
    }
    let shared = Arc::new(Shared {
        deadline: plan.duration.map(|d| Instant::now() + d),
        plan: plan.clone(),
        pattern: pattern.clone(),
        next: AtomicU64::new(0),
        progress: Arc::new(AtomicU64::new(0)),
        created,
        run_id,
    });
    let server_cpu_before = processes.as_ref().map(Processes::cpu_seconds);
    let each_cpu_before: Vec<f64> = each.iter().map(Processes::cpu_seconds).collect();
    let backend_cpu_before = backend.as_ref().map(Processes::cpu_seconds);
    let own_cpu_before = procfs::own_cpu_seconds();
    let machine_before = MachineTicks::now();
    let mut phase = run_phase(Arc::clone(&shared), "run", processes.as_mut()).await;
    let machine_after = MachineTicks::now();
    let own_cpu_after = procfs::own_cpu_seconds();
    let server = processes.as_mut().map(|procs| {
        procs.refresh();
        // A process that exited meanwhile no longer counts: never report negative time.
        let cpu = (procs.cpu_seconds() - server_cpu_before.unwrap_or(0.0)).max(0.0);
        let mut usage = ServerUsage::new(
            procs,
            cpu,
            phase.elapsed,
            phase.tally.bytes,
            phase.uploads(&plan),
            phase.tally.requests,
            procs.peak_rss_kib(),
            peak_reset,
            phase.sampled_peak_rss_kib,
            rss_before_kib,
        );
        usage.processes = each
            .iter_mut()
            .zip(&plan.pids)
            .zip(&each_cpu_before)
            .map(|((procs, &pid), before)| {
                procs.refresh();
                ProcessUsage::new(
                    pid,
                    (procs.cpu_seconds() - before).max(0.0),
                    phase.tally.bytes,
                    procs.peak_rss_kib(),
                )
            })
            .collect();
        usage
    });
    let backend = backend.as_mut().map(|procs| {
        procs.refresh();
        let cpu = (procs.cpu_seconds() - backend_cpu_before.unwrap_or(0.0)).max(0.0);
        ServerUsage::new(
            procs,
            cpu,
            phase.elapsed,
            phase.tally.bytes,
            phase.uploads(&plan),
            phase.tally.requests,
            procs.peak_rss_kib(),
            backend_peak_reset,
            0,
            backend_rss_before_kib,
        )
    });

    let verification = if plan.verify {
        verify_uploads(&plan, &pattern, &phase.tally.completed_uploads).await
    } else {
        Verification::skipped()
    };

    let latency = LatencySummary::from_samples(&mut phase.tally.latencies_ns);
    let client_cpu = match (own_cpu_before, own_cpu_after) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    let machine = match (machine_before, machine_after) {
        (Some(a), Some(b)) => {
            let (busy_cores, steal_pct) = b.since(&a);
            Some(MachineUsage {
                busy_cores,
                steal_pct,
            })
        }
        _ => None,
    };
    let mut report = Report::new(
        &plan,
        &phase,
        latency,
        server,
        ClientUsage::new(
            client_cpu,
            plan.threads,
            phase.tally.bytes,
            phase.tally.operations,
        ),
        machine,
        verification,
    );
    report.backend = backend;
    Ok(report)
}

/// The outcome of one phase (warm-up or measured run).
#[derive(Debug)]
struct Phase {
    tally: Tally,
    elapsed: Duration,
    sampled_peak_rss_kib: u64,
}

impl Phase {
    fn uploads(&self, plan: &Plan) -> Option<u64> {
        plan.is_upload()
            .then_some(self.tally.completed_uploads.len() as u64)
    }
}

/// Spawns the workers and collects their samples until all are done (or `--max-time`).
async fn run_phase(
    shared: Arc<Shared>,
    name: &str,
    mut processes: Option<&mut Processes>,
) -> Phase {
    let plan = &shared.plan;
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared), tx.clone())))
        .collect();
    drop(tx);
    let mut tally = Tally::default();
    let mut sampled_peak_rss_kib = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    let mut batch = Vec::with_capacity(256);
    let mut progress = Progress::new(plan.progress, name);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut batch, 256) => {
                if received == 0 {
                    break;
                }
                for sample in batch.drain(..) {
                    tally.add(sample);
                }
            }
            _ = tick.tick() => {
                ticks += 1;
                if let Some(procs) = processes.as_deref_mut() {
                    sampled_peak_rss_kib = sampled_peak_rss_kib.max(procs.rss_kib());
                }
                if ticks % 2 == 0 {
                    progress.draw(&shared, &tally, started.elapsed());
                }
                if started.elapsed() > plan.max_time {
                    for worker in &workers {
                        worker.abort();
                    }
                    tally.add_error(format!("run aborted after --max-time {:?}", plan.max_time));
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    progress.clear();
    for worker in workers {
        let _ = worker.await;
    }
    Phase {
        tally,
        elapsed,
        sampled_peak_rss_kib,
    }
}

/// The single updating progress line on stderr.
#[derive(Debug)]
struct Progress {
    enabled: bool,
    name: String,
    drawn: bool,
}

impl Progress {
    fn new(enabled: bool, name: &str) -> Self {
        Progress {
            enabled,
            name: name.to_owned(),
            drawn: false,
        }
    }

    fn draw(&mut self, shared: &Shared, tally: &Tally, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let plan = &shared.plan;
        let bytes = shared.progress.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mib_per_s = bytes as f64 / MIB as f64 / secs;
        let mut line = format!(
            "{} {} {:5.1}s  {}  {:.*} MiB/s",
            self.name,
            plan.workload.name(),
            secs,
            format_bytes(bytes),
            if mib_per_s < 10.0 { 1 } else { 0 },
            mib_per_s
        );
        if plan.count != u64::MAX {
            let total =
                if plan.is_upload() && plan.chunk < plan.size && plan.create == Create::Before {
                    plan.count * plan.size.div_ceil(plan.chunk)
                } else {
                    plan.count
                };
            line.push_str(&format!("  ops {}/{}", tally.operations, total));
        } else {
            line.push_str(&format!("  ops {}", tally.operations));
        }
        line.push_str(&format!(
            "  {:.0}/s  errors {}",
            tally.operations as f64 / secs,
            tally.errors
        ));
        eprint!("\r\x1b[K{line}");
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// One connection (per URL), operations one after another until none are left.
async fn worker(shared: Arc<Shared>, tx: mpsc::UnboundedSender<Sample>) {
    let plan = &shared.plan;
    let mut conns = plan.connections();
    let mut consecutive_errors = 0;
    loop {
        if shared.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= plan.count {
            break;
        }
        let failed = if plan.is_upload() {
            upload_op(&shared, &mut conns, index, &tx).await
        } else {
            download_op(&shared, &mut conns[plan.target_of(index, 0)], &tx).await
        };
        if failed {
            consecutive_errors += 1;
            if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                let _ = tx.send(Sample {
                    error: Some(format!(
                        "a worker stopped after {MAX_CONSECUTIVE_ERRORS} failures in a row"
                    )),
                    ..Sample::default()
                });
                break;
            }
        } else {
            consecutive_errors = 0;
        }
    }
}

/// `Tus-Resumable`, then `ours`, then the user's `--header`s (later ones win).
fn tus_headers(
    plan: &Plan,
    ours: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![(
        HeaderName::from_static("tus-resumable"),
        HeaderValue::from_static("1.0.0"),
    )];
    headers.extend(ours);
    headers.extend(plan.headers.iter().cloned());
    headers
}

/// POSTs a new upload to the connection's URL (with `first` bytes of body when creating with
/// upload); returns its path and the offset the server reported.
async fn post_upload(
    plan: &Plan,
    conn: &mut Conn,
    pattern: &Pattern,
    progress: &Arc<AtomicU64>,
    name: &str,
    first: u64,
) -> Result<(String, u64), String> {
    let mut ours = vec![(
        HeaderName::from_static("upload-length"),
        HeaderValue::from(plan.size),
    )];
    if !plan.custom_metadata {
        let encoded = base64::engine::general_purpose::STANDARD.encode(name);
        if let Ok(value) = HeaderValue::try_from(format!("filename {encoded}")) {
            ours.push((HeaderName::from_static("upload-metadata"), value));
        }
    }
    let body = if first > 0 {
        ours.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/offset+octet-stream"),
        ));
        PatternBody::new(pattern, 0..first, plan.frame, progress, plan.rate)
    } else {
        PatternBody::empty()
    };
    let headers = tus_headers(plan, ours);
    let creation = conn.target().path.clone();
    let reply = conn
        .exchange(Method::POST, &creation, &headers, body, Drain::Text, None)
        .await?;
    if reply.status != StatusCode::CREATED {
        return Err(describe("POST", &reply));
    }
    let location = reply
        .header("location")
        .ok_or_else(|| "POST: 201 without Location".to_owned())?;
    let offset = if first > 0 {
        reply.offset().unwrap_or(0)
    } else {
        0
    };
    Ok((conn.target().resolve(location), offset))
}

/// PATCHes `offset..end` of an upload; Ok(new offset).
async fn patch_upload(
    shared: &Shared,
    conn: &mut Conn,
    path: &str,
    offset: u64,
    end: u64,
) -> Result<u64, String> {
    let plan = &shared.plan;
    let headers = tus_headers(
        plan,
        [
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/offset+octet-stream"),
            ),
            (
                HeaderName::from_static("upload-offset"),
                HeaderValue::from(offset),
            ),
        ],
    );
    let body = PatternBody::new(
        &shared.pattern,
        offset..end,
        plan.frame,
        &shared.progress,
        plan.rate,
    );
    let reply = conn
        .exchange(Method::PATCH, path, &headers, body, Drain::Text, None)
        .await?;
    if reply.status != StatusCode::NO_CONTENT {
        return Err(describe("PATCH", &reply));
    }
    match reply.offset() {
        Some(got) if got == end => Ok(end),
        Some(got) => Err(format!(
            "PATCH: Upload-Offset {got} after sending up to {end}"
        )),
        None => Err("PATCH: 204 without Upload-Offset".into()),
    }
}

/// One upload operation; sends its samples. True if it failed.
async fn upload_op(
    shared: &Shared,
    conns: &mut [Conn],
    index: u64,
    tx: &mpsc::UnboundedSender<Sample>,
) -> bool {
    let plan = &shared.plan;
    let started = Instant::now();
    let mut requests = 0;
    let fail = |error: String, requests: u64| {
        let _ = tx.send(Sample {
            requests,
            error: Some(error),
            ..Sample::default()
        });
        true
    };
    let created_at = plan.target_of(index, 0);
    let (path, mut offset) = match plan.create {
        Create::Before => match shared.created.get(index as usize) {
            Some(upload) => (upload.path.clone(), 0),
            None => return fail("no upload was created for this operation".into(), 0),
        },
        Create::Timed | Create::WithUpload => {
            let first = if plan.create == Create::WithUpload {
                plan.chunk
            } else {
                0
            };
            let name = format!("bench-{}-{index}.bin", shared.run_id);
            requests += 1;
            let conn = &mut conns[created_at];
            match post_upload(plan, conn, &shared.pattern, &shared.progress, &name, first).await {
                Ok(created) => created,
                Err(e) => return fail(e, requests),
            }
        }
    };
    let upload = |path: &str| UploadAt {
        target: created_at,
        path: path.to_owned(),
    };
    // Request 0 was the POST (here or before the clock).
    let mut nth = 1;
    while offset < plan.size {
        let end = (offset + plan.chunk).min(plan.size);
        let patch_started = Instant::now();
        requests += 1;
        let conn = &mut conns[plan.target_of(index, nth)];
        nth += 1;
        match patch_upload(shared, conn, &path, offset, end).await {
            Ok(new_offset) => {
                if plan.create == Create::Before {
                    let _ = tx.send(Sample {
                        latency: Some(patch_started.elapsed()),
                        bytes: new_offset - offset,
                        requests,
                        completed_upload: (new_offset == plan.size).then(|| upload(&path)),
                        error: None,
                    });
                    requests = 0;
                }
                offset = new_offset;
            }
            Err(e) => return fail(e, requests),
        }
    }
    if plan.create != Create::Before {
        let _ = tx.send(Sample {
            latency: Some(started.elapsed()),
            bytes: plan.size,
            requests,
            completed_upload: Some(upload(&path)),
            error: None,
        });
    }
    false
}

/// One GET of the download URL. True if it failed.
async fn download_op(shared: &Shared, conn: &mut Conn, tx: &mpsc::UnboundedSender<Sample>) -> bool {
    let plan = &shared.plan;
    let started = Instant::now();
    let path = conn.target().path.clone();
    let result = conn
        .exchange(
            Method::GET,
            &path,
            &plan.headers,
            PatternBody::empty(),
            Drain::Discard,
            Some(&shared.progress),
        )
        .await;
    let sample = match result {
        Ok(reply)
            if reply.status == StatusCode::OK || reply.status == StatusCode::PARTIAL_CONTENT =>
        {
            Sample {
                latency: Some(started.elapsed()),
                bytes: reply.body_len,
                requests: 1,
                ..Sample::default()
            }
        }
        Ok(reply) => Sample {
            requests: 1,
            error: Some(describe("GET", &reply)),
            ..Sample::default()
        },
        Err(e) => Sample {
            requests: 1,
            error: Some(e),
            ..Sample::default()
        },
    };
    let failed = sample.error.is_some();
    let _ = tx.send(sample);
    failed
}

/// Creates `plan.count` uploads before the clock starts (a few connections in parallel),
/// upload `i` at the URL its POST would go to in the run.
async fn create_uploads(
    plan: &Plan,
    pattern: &Pattern,
    run_id: &str,
) -> Result<Vec<UploadAt>, String> {
    let count = usize::try_from(plan.count).map_err(|_| "--count is too large".to_owned())?;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONCURRENCY.min(count) {
        let plan = plan.clone();
        let next = Arc::clone(&next);
        let run_id = run_id.to_owned();
        let pattern = pattern.clone();
        tasks.push(tokio::spawn(async move {
            let mut conns = plan.connections();
            let progress = Arc::new(AtomicU64::new(0));
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.count {
                    break;
                }
                let name = format!("bench-{run_id}-{i}.bin");
                let target = plan.target_of(i, 0);
                let (path, _) =
                    post_upload(&plan, &mut conns[target], &pattern, &progress, &name, 0).await?;
                made.push((i, UploadAt { target, path }));
            }
            Ok::<_, String>(made)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        let made = task.await.map_err(|e| format!("creating uploads: {e}"))??;
        all.extend(made);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, upload)| upload).collect())
}

/// HEAD every completed upload (offset == size), then read back the large ones by sha256,
/// each at the URL it was created at.
async fn verify_uploads(plan: &Plan, pattern: &Pattern, uploads: &[UploadAt]) -> Verification {
    let mut verification = Verification::default();
    let paths = Arc::new(uploads.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONCURRENCY.min(paths.len()) {
        let paths = Arc::clone(&paths);
        let next = Arc::clone(&next);
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            let mut conns = plan.connections();
            let headers = tus_headers(&plan, []);
            let mut failures = Vec::new();
            let mut checked = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(UploadAt { target, path }) = paths.get(i) else {
                    break;
                };
                checked += 1;
                let result = conns[*target]
                    .exchange(
                        Method::HEAD,
                        path,
                        &headers,
                        PatternBody::empty(),
                        Drain::Discard,
                        None,
                    )
                    .await;
                match result {
                    Ok(reply) if reply.status.is_success() => match reply.offset() {
                        Some(offset) if offset == plan.size => {}
                        other => failures.push(format!(
                            "HEAD {path}: Upload-Offset {other:?}, expected {}",
                            plan.size
                        )),
                    },
                    Ok(reply) => failures.push(format!("{path}: {}", describe("HEAD", &reply))),
                    Err(e) => failures.push(format!("{path}: {e}")),
                }
            }
            (checked, failures)
        }));
    }
    for task in tasks {
        match task.await {
            Ok((checked, failures)) => {
                verification.head_checked += checked;
                verification.head_ok += checked - failures.len() as u64;
                verification.add_failures(failures);
            }
            Err(e) => verification.add_failures(vec![format!("HEAD check: {e}")]),
        }
    }
    if !plan.sha256 {
        verification.sha256_skipped = Some(if plan.size < plan.sha256_min {
            format!(
                "uploads smaller than --sha256-min {}",
                format_bytes(plan.sha256_min)
            )
        } else {
            "--no-sha256".to_owned()
        });
        return verification;
    }
    let expected = pattern.sha256(plan.size);
    let mut conns = plan.connections();
    let headers = tus_headers(plan, []);
    for UploadAt { target, path } in paths.iter() {
        let result = conns[*target]
            .exchange(
                Method::GET,
                path,
                &headers,
                PatternBody::empty(),
                Drain::Sha256,
                None,
            )
            .await;
        match result {
            Ok(reply) if reply.status == StatusCode::OK => {
                verification.sha256_checked += 1;
                if reply.text == expected {
                    verification.sha256_ok += 1;
                } else {
                    verification.add_failures(vec![format!(
                        "GET {path}: sha256 {} of {} bytes, expected {expected}",
                        reply.text, reply.body_len
                    )]);
                }
            }
            Ok(reply) => {
                // Downloads disabled or not supported (405, 404, 403, 501…): not a failure.
                verification.sha256_skipped = Some(format!(
                    "the server does not serve uploads ({})",
                    describe("GET", &reply)
                ));
                break;
            }
            Err(e) => {
                verification.sha256_checked += 1;
                verification.add_failures(vec![format!("GET {path}: {e}")]);
            }
        }
    }
    verification
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Plan::from_args(&cli.run, false)
    }

    const URL: &str = "http://127.0.0.1:1080/files/";

    #[test]
    fn presets() {
        let p = plan(&[URL]).expect("valid");
        assert_eq!(
            (p.workload, p.size, p.chunk, p.count, p.concurrency),
            (Workload::Single, 1 << 30, 1 << 30, 1, 1)
        );
        assert_eq!(p.create, Create::Before);
        assert!(p.verify && p.sha256);
        assert_eq!(p.latency_of(), "PATCH");

        let p = plan(&[URL, "-w", "chunked"]).expect("valid");
        assert_eq!((p.size, p.chunk), (1 << 30, 8 << 20));

        let p = plan(&[URL, "--workload", "parallel"]).expect("valid");
        assert_eq!((p.size, p.count, p.concurrency), (128 << 20, 8, 8));

        let p = plan(&[URL, "-w", "small"]).expect("valid");
        assert_eq!((p.size, p.count, p.concurrency), (10 << 10, 2000, 16));
        assert_eq!(p.create, Create::Timed);
        assert!(p.verify && !p.sha256, "10 KiB is below --sha256-min");
        assert_eq!(p.latency_of(), "upload (POST + PATCH)");

        let p = plan(&[URL, "-w", "slow"]).expect("valid");
        assert_eq!(
            (p.count, p.concurrency, p.rate),
            (100, 100, Some(256 << 10))
        );
        assert_eq!(p.frame, 32 << 10);

        let p = plan(&[
            "http://127.0.0.1:8080/assets/public/a?x=1",
            "-w",
            "download",
        ])
        .expect("valid");
        assert_eq!((p.count, p.concurrency, p.size), (1, 1, 0));
        assert_eq!(p.targets[0].path, "/assets/public/a?x=1");
        assert!(!p.verify);
    }

    #[test]
    fn flags_override_presets() {
        let p = plan(&[
            URL,
            "-w",
            "small",
            "-n",
            "200",
            "-c",
            "4",
            "--size",
            "64KiB",
            "--creation-with-upload",
        ])
        .expect("valid");
        assert_eq!((p.size, p.count, p.concurrency), (64 << 10, 200, 4));
        assert_eq!(p.create, Create::WithUpload);
        assert_eq!(p.latency_of(), "upload (POST with body)");

        let p = plan(&[URL, "-w", "single", "--size", "64MiB", "--chunk", "8MiB"]).expect("valid");
        assert_eq!((p.size, p.chunk), (64 << 20, 8 << 20));
        let p = plan(&[URL, "--size", "1MiB", "--chunk", "8MiB"]).expect("valid");
        assert_eq!(
            p.chunk,
            1 << 20,
            "a chunk larger than the upload is one PATCH"
        );

        let p = plan(&[URL, "-w", "parallel", "-n", "3"]).expect("valid");
        assert_eq!(p.concurrency, 3, "never more connections than uploads");

        let p = plan(&[URL, "-w", "small", "--timed-create=false"]).expect("valid");
        assert_eq!(p.create, Create::Before);
        let p = plan(&[URL, "--timed-create"]).expect("valid");
        assert_eq!(p.create, Create::Timed);

        let p = plan(&[URL, "-w", "small", "-d", "5s"]).expect("valid");
        assert_eq!(
            (p.count, p.duration),
            (u64::MAX, Some(Duration::from_secs(5)))
        );

        let p = plan(&[URL, "--rate", "1MiB", "--frame", "4KiB"]).expect("valid");
        assert_eq!((p.rate, p.frame), (Some(1 << 20), 4096));

        let p = plan(&[URL, "--no-sha256"]).expect("valid");
        assert!(p.verify && !p.sha256);
        let p = plan(&[URL, "--no-verify"]).expect("valid");
        assert!(!p.verify && !p.sha256);
    }

    #[test]
    fn headers() {
        let p = plan(&[
            URL,
            "-H",
            "Authorization: Bearer x",
            "--header",
            "Upload-Metadata: filename YQ==",
        ])
        .expect("valid");
        assert_eq!(p.headers.len(), 2);
        assert_eq!(p.headers[0].0, "authorization");
        assert_eq!(p.headers[0].1, "Bearer x");
        assert!(p.custom_metadata);
        assert!(!plan(&[URL]).expect("valid").custom_metadata);
        assert!(plan(&[URL, "-H", "no colon"]).is_err());
        assert!(plan(&[URL, "-H", "bad name: x"]).is_err());
    }

    #[test]
    fn go_flag_syntax() {
        let argv = [
            URL,
            "-w",
            "small",
            "-n",
            "5",
            "-size=1MiB",
            "-timeout",
            "1m30s",
            "-H",
            "Upload-Metadata: filename YQ==",
            "-pid",
            "1",
            "--json",
            "-timed-create=false",
        ];
        let args = go_flags(argv.iter().map(|s| (*s).to_owned()));
        assert_eq!(&args[..3], [URL, "-w", "small"], "short flags stay short");
        let cli = Cli::try_parse_from(std::iter::once("tusgate bench".to_owned()).chain(args))
            .expect("parses");
        let p = Plan::from_args(&cli.run, false).expect("valid");
        assert_eq!((p.workload, p.count, p.size), (Workload::Small, 5, 1 << 20));
        assert_eq!(p.timeout, Duration::from_secs(90));
        assert_eq!(p.create, Create::Before);
        assert!(p.custom_metadata && p.json);
        assert_eq!(p.pids, [1]);
        assert_eq!(
            go_flags(["-x".into(), "--".into(), "-json".into()]),
            ["-x", "--", "-json"],
            "nothing after --"
        );
    }

    #[test]
    fn chart_is_a_subcommand_beside_the_urls() {
        let cli =
            Cli::try_parse_from(["bench", "chart", "r.jsonl", "-o", "c.svg"]).expect("parses");
        let Some(Tool::Chart(args)) = cli.tool else {
            panic!("not the chart: {cli:?}");
        };
        assert_eq!(args.results.to_str(), Some("r.jsonl"));
        assert_eq!(args.output.to_str(), Some("c.svg"));
        let cli = Cli::try_parse_from(["bench", URL, "-w", "small"]).expect("parses");
        assert!(cli.tool.is_none());
        assert!(
            Cli::try_parse_from(["bench", "chart", "r.jsonl"]).is_err(),
            "-o is required"
        );
        assert!(
            Cli::try_parse_from(["bench", "-w", "small"]).is_err(),
            "a URL is required"
        );
    }

    /// `tusgate bench --help` (and docs/configuration.md) describes every flag.
    #[test]
    fn every_flag_has_a_help_text() {
        let mut command = Cli::command();
        command.build();
        let missing: Vec<String> = std::iter::once(&command)
            .chain(command.get_subcommands())
            .flat_map(|c| {
                c.get_arguments()
                    .filter(|a| !a.is_hide_set() && a.get_help().is_none())
                    .map(move |a| format!("{} {}", c.get_name(), a.get_id()))
            })
            .collect();
        assert!(missing.is_empty(), "no doc comment: {missing:?}");
    }

    #[test]
    fn several_urls_take_turns() {
        let p = plan(&[
            "http://127.0.0.1:1081/files/",
            "http://127.0.0.1:1082/files/",
            "http://127.0.0.1:1083/up/",
            "-w",
            "chunked",
        ])
        .expect("valid");
        assert_eq!(p.spread, Spread::Upload);
        let addrs: Vec<_> = p.targets.iter().map(|t| t.addr.as_str()).collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:1081", "127.0.0.1:1082", "127.0.0.1:1083"]
        );
        assert_eq!(p.targets[2].path, "/up/");
        assert_eq!(p.connections().len(), 3);
        // Per upload: every request of upload i at URL i mod 3.
        let turns: Vec<_> = (0..7).map(|i| p.target_of(i, 0)).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2, 0]);
        assert!((0..10).all(|nth| p.target_of(4, nth) == 1));

        // Per request: the POST of upload i at i mod 3, its k-th PATCH at (i + k) mod 3.
        let p = plan(&[
            "http://127.0.0.1:1081/files/",
            "http://127.0.0.1:1082/files/",
            "http://127.0.0.1:1083/files/",
            "--spread",
            "request",
        ])
        .expect("valid");
        assert_eq!(p.spread, Spread::Request);
        let requests: Vec<_> = (0..5).map(|nth| p.target_of(1, nth)).collect();
        assert_eq!(requests, [1, 2, 0, 1, 2]);
        assert_eq!(
            p.target_of(u64::MAX, 1),
            p.target_of(0, 0),
            "wraps, no overflow"
        );

        // One URL: always that one.
        let p = plan(&[URL, "--spread", "request"]).expect("valid");
        assert!((0..5).all(|i| p.target_of(i, i + 1) == 0));

        assert!(plan(&[URL, "https://example.com/files/"]).is_err());
        assert!(plan(&["--spread", "request"]).is_err(), "a URL is required");
    }

    #[tokio::test]
    async fn uploads_are_spread_over_the_urls() {
        // Three minimal tus servers: each answers POST with a Location of its own and
        // PATCH/HEAD with the expected offset, and records what it was asked.
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        type Log = Arc<std::sync::Mutex<Vec<String>>>;
        async fn serve(listener: tokio::net::TcpListener, name: usize, log: Log) {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut stream = tokio::io::BufReader::new(stream);
                    loop {
                        let mut head = Vec::new();
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push(line.trim_end().to_owned());
                        }
                        let header = |name: &str| {
                            head.iter().find_map(|h| {
                                let (n, v) = h.split_once(':')?;
                                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                        };
                        let length: u64 = header("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let offset: u64 = header("upload-offset")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; usize::try_from(length).unwrap_or(0)];
                        if stream.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let request_line = head.first().cloned().unwrap_or_default();
                        let mut parts = request_line.split(' ');
                        let (method, path) = (
                            parts.next().unwrap_or("").to_owned(),
                            parts.next().unwrap_or("").to_owned(),
                        );
                        log.lock()
                            .expect("not poisoned")
                            .push(format!("{method} {path} @{name}"));
                        let reply = match method.as_str() {
                            "POST" => {
                                let n = log.lock().expect("not poisoned").len();
                                format!(
                                    "HTTP/1.1 201 Created\r\nLocation: /files/u{name}-{n}\r\n\
                                     Content-Length: 0\r\n\r\n"
                                )
                            }
                            "PATCH" => format!(
                                "HTTP/1.1 204 No Content\r\nUpload-Offset: {}\r\n\r\n",
                                offset + length
                            ),
                            _ => "HTTP/1.1 200 OK\r\nUpload-Offset: 3072\r\n\
                                  Content-Length: 0\r\n\r\n"
                                .to_owned(),
                        };
                        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        let log: Log = Arc::default();
        let mut urls = Vec::new();
        for name in 0..3 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            urls.push(format!(
                "http://{}/files/",
                listener.local_addr().expect("address")
            ));
            tokio::spawn(serve(listener, name, Arc::clone(&log)));
        }
        let run = |spread: &str| {
            let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
            args.extend([
                "-w", "small", "-n", "6", "-c", "2", "--size", "3KiB", "--chunk", "1KiB",
                "--spread", spread,
            ]);
            plan(&args).expect("valid")
        };
        let requests = |log: &Log| std::mem::take(&mut *log.lock().expect("not poisoned"));

        let report = execute(run("upload")).await.expect("runs");
        assert!(report.ok, "{}", report.to_table());
        assert_eq!((report.uploads, report.verify.head_ok), (Some(6), 6));
        let seen = requests(&log);
        // 6 uploads × (POST + 3 PATCHes) + 6 HEADs, every upload's requests at one server:
        // the one named in its Location.
        assert_eq!(seen.len(), 6 * 4 + 6);
        for line in &seen {
            let server = line.rsplit('@').next().expect("named");
            if let Some(upload) = line
                .split(' ')
                .nth(1)
                .and_then(|p| p.strip_prefix("/files/u"))
            {
                assert!(upload.starts_with(server), "{line}: sent to another server");
            }
        }
        for server in 0..3 {
            let posts = seen
                .iter()
                .filter(|l| l.starts_with("POST") && l.ends_with(&format!("@{server}")))
                .count();
            assert_eq!(posts, 2, "two uploads per server: {seen:?}");
        }

        let report = execute(run("request")).await.expect("runs");
        assert!(report.ok, "{}", report.to_table());
        let seen = requests(&log);
        // Each upload's POST and its three PATCHes went to the three servers in turn (so two
        // of its PATCHes to servers other than the creating one); its HEAD to the creator.
        let patches_at = |server: usize| {
            seen.iter()
                .filter(|l| l.starts_with("PATCH") && l.ends_with(&format!("@{server}")))
                .count()
        };
        assert_eq!((patches_at(0), patches_at(1), patches_at(2)), (6, 6, 6));
        // Requests of `method` sent to a server other than the one that created the upload.
        let elsewhere = |method: &str| {
            seen.iter()
                .filter(|l| l.starts_with(method))
                .filter(|l| {
                    let server = l.rsplit('@').next().unwrap_or("");
                    !l.contains(&format!("/files/u{server}-"))
                })
                .count()
        };
        assert_eq!(
            elsewhere("HEAD"),
            0,
            "HEAD goes to the creating server: {seen:?}"
        );
        assert_eq!(
            elsewhere("PATCH"),
            12,
            "two of each upload's three PATCHes go elsewhere"
        );
    }

    #[test]
    fn invalid_combinations() {
        for args in [
            &[URL, "--size", "0"][..],
            &[URL, "-n", "0"],
            &[URL, "-c", "0"],
            &[URL, "--threads", "0"],
            &[URL, "--threads", "65"],
            &[URL, "-d", "5s"],
            &[URL, "-w", "download", "--size", "1MiB"],
            &[URL, "-w", "download", "--creation-with-upload"],
            &[URL, "--frame", "0"],
            &["https://example.com/files/"],
            &[URL, "--size", "1.5GiB"],
            &[URL, "-w", "nope"],
        ] {
            assert!(plan(args).is_err(), "{args:?} should be refused");
        }
    }
}
