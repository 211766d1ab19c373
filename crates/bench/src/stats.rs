//! What the workers report and what the collector makes of it. The collector is one task:
//! workers send it a [`Sample`] per finished operation over a channel and never share
//! counters with each other, except the progress byte counter.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::client::UploadAt;

/// One finished operation: an upload (small, slow, parallel), one PATCH (single, chunked),
/// or one GET (download). Failed operations carry the error and no latency.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    pub(crate) latency: Option<Duration>,
    /// Payload bytes this operation moved (body bytes sent or received).
    pub(crate) bytes: u64,
    /// HTTP requests it made.
    pub(crate) requests: u64,
    /// The upload it belongs to is complete with this operation: where it is, for
    /// verification.
    pub(crate) completed_upload: Option<UploadAt>,
    pub(crate) error: Option<String>,
}

/// How many distinct error messages are kept; the rest are counted as "other errors".
const MAX_ERROR_KINDS: usize = 20;

/// Everything the collector accumulates during the timed run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Latency samples in nanoseconds, raw (percentiles are exact).
    pub(crate) latencies_ns: Vec<u64>,
    pub(crate) bytes: u64,
    pub(crate) requests: u64,
    pub(crate) operations: u64,
    pub(crate) errors: u64,
    pub(crate) error_kinds: BTreeMap<String, u64>,
    pub(crate) completed_uploads: Vec<UploadAt>,
}

impl Tally {
    pub(crate) fn add(&mut self, sample: Sample) {
        self.bytes += sample.bytes;
        self.requests += sample.requests;
        if let Some(upload) = sample.completed_upload {
            self.completed_uploads.push(upload);
        }
        match sample.error {
            Some(error) => self.add_error(error),
            None => {
                self.operations += 1;
                if let Some(latency) = sample.latency {
                    self.latencies_ns
                        .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
                }
            }
        }
    }

    pub(crate) fn add_error(&mut self, error: String) {
        self.errors += 1;
        if self.error_kinds.len() < MAX_ERROR_KINDS || self.error_kinds.contains_key(&error) {
            *self.error_kinds.entry(error).or_default() += 1;
        } else {
            *self
                .error_kinds
                .entry("other errors".to_owned())
                .or_default() += 1;
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) n: usize,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl LatencySummary {
    /// Sorts the samples in place. `None` without samples.
    pub(crate) fn from_samples(samples_ns: &mut [u64]) -> Option<Self> {
        if samples_ns.is_empty() {
            return None;
        }
        samples_ns.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let sum: u128 = samples_ns.iter().map(|&s| u128::from(s)).sum();
        Some(LatencySummary {
            n: samples_ns.len(),
            p50: ms(percentile(samples_ns, 50.0)),
            p90: ms(percentile(samples_ns, 90.0)),
            p99: ms(percentile(samples_ns, 99.0)),
            max: ms(samples_ns[samples_ns.len() - 1]),
            mean: sum as f64 / samples_ns.len() as f64 / 1e6,
        })
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample such that at least `p`
/// percent of all samples are less than or equal to it. 0 for no samples.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 90.0), 90);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&sorted, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // 1000 samples: p99 is the 990th, so the 10 slowest are above it.
        let sorted: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&sorted, 99.0), 990);
        // Two samples: p50 is the first, p90 the second.
        assert_eq!(percentile(&[10, 20], 50.0), 10);
        assert_eq!(percentile(&[10, 20], 90.0), 20);
    }

    #[test]
    fn summary_in_milliseconds() {
        let mut samples: Vec<u64> = (1..=200).rev().map(|i| i * 1_000_000).collect();
        let s = LatencySummary::from_samples(&mut samples).expect("samples");
        assert_eq!(s.n, 200);
        assert_eq!(s.p50, 100.0);
        assert_eq!(s.p90, 180.0);
        assert_eq!(s.p99, 198.0);
        assert_eq!(s.max, 200.0);
        assert_eq!(s.mean, 100.5);
        assert!(LatencySummary::from_samples(&mut []).is_none());
    }

    #[test]
    fn tally_counts_operations_errors_and_uploads() {
        let mut tally = Tally::default();
        tally.add(Sample {
            latency: Some(Duration::from_millis(2)),
            bytes: 10,
            requests: 2,
            completed_upload: Some(UploadAt {
                target: 1,
                path: "/files/a".into(),
            }),
            error: None,
        });
        tally.add(Sample {
            requests: 1,
            error: Some("PATCH: status 409".into()),
            ..Sample::default()
        });
        assert_eq!(tally.operations, 1);
        assert_eq!(tally.errors, 1);
        assert_eq!(tally.requests, 3);
        assert_eq!(tally.bytes, 10);
        assert_eq!(tally.latencies_ns, [2_000_000]);
        assert_eq!(
            tally.completed_uploads,
            [UploadAt {
                target: 1,
                path: "/files/a".into()
            }]
        );
        for i in 0..MAX_ERROR_KINDS + 5 {
            tally.add_error(format!("e{i}"));
        }
        assert_eq!(tally.error_kinds.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(tally.error_kinds["other errors"], 6);
        assert_eq!(tally.errors, 1 + MAX_ERROR_KINDS as u64 + 5);
    }
}
