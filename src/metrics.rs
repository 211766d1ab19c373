//! Prometheus metrics under tusd's names, so existing dashboards keep working, plus histograms
//! tusd lacks (request duration, PATCH chunk size). One owned registry, no globals.
//!
//! Nothing here ever carries a secret, a path or an upload id: labels are methods, statuses,
//! error codes and hook types only.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The process's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests_total: IntCounterVec,
    pub errors_total: IntCounterVec,
    pub bytes_received: IntCounter,
    pub uploads_created: IntCounter,
    pub uploads_finished: IntCounter,
    pub uploads_terminated: IntCounter,
    pub uploads_expired: IntCounter,
    pub connections_open: IntGauge,
    pub request_duration: HistogramVec,
    pub chunk_size: Histogram,
    pub hook_invocations_total: IntCounterVec,
    pub hook_errors_total: IntCounterVec,
    /// Notifications (post-*) given up after the backend's retries; tusd has no such count.
    pub hook_notifications_lost_total: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            Opts::new(
                "tusd_requests_total",
                "Total number of requests served by tusd per method.",
            ),
            &["method"],
        )
        .expect("valid metric");
        let errors_total = IntCounterVec::new(
            Opts::new("tusd_errors_total", "Total number of errors per status."),
            &["status", "code"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let bytes_received = counter(
            "tusd_bytes_received",
            "Number of bytes received for uploads.",
        );
        let uploads_created = counter("tusd_uploads_created", "Number of created uploads.");
        let uploads_finished = counter("tusd_uploads_finished", "Number of finished uploads.");
        let uploads_terminated =
            counter("tusd_uploads_terminated", "Number of terminated uploads.");
        let uploads_expired = counter(
            "tusgate_uploads_expired",
            "Number of incomplete uploads removed after expiring.",
        );
        let connections_open = IntGauge::new(
            "tusd_connections_open",
            "Current number of open connections.",
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "tusgate_request_duration_seconds",
                "Time from request head to response head.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            &["method"],
        )
        .expect("valid metric");
        let chunk_size = Histogram::with_opts(
            HistogramOpts::new(
                "tusgate_chunk_size_bytes",
                "Bytes stored per PATCH (or creation-with-upload).",
            )
            .buckets(prometheus::exponential_buckets(1024.0, 4.0, 11).expect("valid buckets")),
        )
        .expect("valid metric");
        let per_hook = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["hooktype"]).expect("valid metric")
        };
        let hook_invocations_total = per_hook(
            "tusd_hook_invocations_total",
            "Total number of invocations per hook type.",
        );
        let hook_errors_total = per_hook(
            "tusd_hook_errors_total",
            "Total number of execution errors per hook type.",
        );
        let hook_notifications_lost_total = per_hook(
            "tusgate_hook_notifications_lost_total",
            "Hook notifications (post-*) that failed after the retries and were given up.",
        );
        for collector in [
            Box::new(requests_total.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors_total.clone()),
            Box::new(bytes_received.clone()),
            Box::new(uploads_created.clone()),
            Box::new(uploads_finished.clone()),
            Box::new(uploads_terminated.clone()),
            Box::new(uploads_expired.clone()),
            Box::new(connections_open.clone()),
            Box::new(request_duration.clone()),
            Box::new(chunk_size.clone()),
            Box::new(hook_invocations_total.clone()),
            Box::new(hook_errors_total.clone()),
            Box::new(hook_notifications_lost_total.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // tusd pre-creates the method series so dashboards see zeros rather than gaps.
        for method in ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"] {
            requests_total.with_label_values(&[method]);
        }
        // tusd's SetupHookMetrics: every hook type's series exists from the start.
        for hook in crate::hooks::HookType::ALL {
            hook_invocations_total.with_label_values(&[hook.as_str()]);
            hook_errors_total.with_label_values(&[hook.as_str()]);
            if hook.is_notification() {
                hook_notifications_lost_total.with_label_values(&[hook.as_str()]);
            }
        }
        Metrics {
            registry,
            requests_total,
            errors_total,
            bytes_received,
            uploads_created,
            uploads_finished,
            uploads_terminated,
            uploads_expired,
            connections_open,
            request_duration,
            chunk_size,
            hook_invocations_total,
            hook_errors_total,
            hook_notifications_lost_total,
        }
    }

    /// Counts a request under its (possibly overridden) method; unknown methods share a label
    /// so a client cannot create unbounded series.
    pub fn count_request(&self, method: &http::Method) {
        let label = match method.as_str() {
            m @ ("GET" | "HEAD" | "POST" | "PATCH" | "DELETE" | "OPTIONS") => m,
            _ => "OTHER",
        };
        self.requests_total.with_label_values(&[label]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
