//! The process-wide budget for upload bytes buffered in memory (`--s3-max-buffer`).
//!
//! The S3 backend holds the parts of every running PATCH in memory: the part being filled
//! and the parts on their way to S3 (`S3Store::write`). Without a bound, memory grows with the
//! number of concurrent uploads (~3 parts each). The [`Budget`] caps the sum: before a part is
//! filled its bytes are reserved, and an upload that finds the budget spent waits, without
//! reading its request body, until parts of other uploads reach S3. The client is slowed by
//! TCP flow control (backpressure) instead of the server growing.
//!
//! What it owns: a count of bytes, nothing else. Buffers are not allocated through it; a
//! [`Permit`] says "this many bytes may be held now" and gives them back when dropped.
//!
//! Invariants:
//! - **Bound**: the bytes of all live permits never exceed the budget. Counted in units of
//!   [`UNIT`] bytes, each request rounded up, on a tokio semaphore.
//! - **FIFO**: requests are served in the order they were made. A request that does not fit
//!   yet blocks every later one, also small ones that would fit, so a whole part is never
//!   starved by a stream of small requests (tokio's semaphore is fair, `acquire_many`
//!   included: the head of the queue collects released units until it has all it asked for).
//! - **Clamp**: a request larger than the whole budget is served as a request for the whole
//!   budget: it waits until everything else is released and then runs alone; it is never
//!   refused and never waits forever. (The memory bound then is that request's size.)
//! - **Cancel-safe**: a waiter that is dropped leaves the queue and returns what it had
//!   collected; a permit is released on drop, whichever task holds it.
//! - **No deadlock**, provided no permit's release depends on a wait for the budget (no
//!   hold-and-wait): then every waiter's units come from permits that are released
//!   eventually, and the head of the queue always gets there, then the next. The S3 write
//!   loop keeps to that rule: it reserves a *whole part* before it reads the part's bytes
//!   (never half a part while waiting for the rest), the permit moves into the task that
//!   uploads the part, and that task releases it when S3 answers or the request's deadline
//!   cuts it off, independently of the budget. While it waits for its next reservation, an
//!   upload holds no permit that is not already on its way out.
//!
//! Not counted: bytes that arrived before the wait that reserves them, at most one body frame
//! per waiting upload (the rest of the frame that completed the previous part), and protocol
//! buffers (hyper's read buffer, HTTP/2 windows). Together ~1 MiB per open upload, measured
//! (benches/README.md, "S3 memory"). Nor the kernel's: a body nobody reads queues in the
//! socket's receive buffer, autotuned up to `net.ipv4.tcp_rmem`'s maximum unless
//! `--tcp-receive-buffer` fixes it, which hundreds of waiting uploads need (same section).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ByteSource;

/// Granularity of the accounting: every reservation is rounded up to whole units.
pub const UNIT: u64 = 4096;

/// A byte budget shared by everyone holding a clone of it.
#[derive(Debug, Clone)]
pub struct Budget {
    semaphore: Arc<Semaphore>,
    /// The whole budget in units (at least 1).
    units: u64,
}

/// Bytes of the budget held until dropped.
#[derive(Debug)]
pub struct Permit {
    /// `None` for an empty permit (zero bytes), which never touched the semaphore.
    inner: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `bytes`, rounded down to whole units (at least one unit).
    pub fn new(bytes: u64) -> Self {
        let max = u64::try_from(Semaphore::MAX_PERMITS).unwrap_or(u64::MAX);
        let units = (bytes / UNIT).clamp(1, max);
        Budget {
            semaphore: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> u64 {
        self.units * UNIT
    }

    /// Bytes not held by any permit right now (some may be promised to the head of the queue).
    pub fn available(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }

    /// Waits until `bytes` (rounded up to units, clamped to the whole budget) are free and
    /// every earlier request has been served, then holds them until the permit is dropped.
    /// Zero bytes are granted at once.
    pub async fn acquire(&self, bytes: u64) -> Permit {
        let units = bytes
            .div_ceil(UNIT)
            .min(self.units)
            .min(u64::from(u32::MAX));
        if units == 0 {
            return Permit { inner: None };
        }
        // `units` fits in u32 (clamped just above).
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.semaphore)
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed");
        Permit {
            inner: Some(permit),
        }
    }

    /// The reservation for the next part of an upload, made before the part is read: the
    /// bytes it can still receive (`buffered` already in memory plus what `source` can still
    /// deliver, at most `part_size`). `None` if `source` stops while this waits (see
    /// [`ByteSource::poll_stopped`]): the caller then reads on, gets the end, and stores what
    /// it has, without a permit for the part it will not fill.
    pub async fn reserve(
        &self,
        part_size: u64,
        buffered: u64,
        source: &mut (dyn ByteSource + '_),
    ) -> Option<Permit> {
        let can_come = buffered.saturating_add(source.remaining().unwrap_or(u64::MAX));
        let acquire = self.acquire(part_size.min(can_come));
        tokio::pin!(acquire);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(permit) = acquire.as_mut().poll(cx) {
                return Poll::Ready(Some(permit));
            }
            source.poll_stopped(cx).map(|()| None)
        })
        .await
    }
}

impl Permit {
    /// The bytes this permit holds (a multiple of [`UNIT`]).
    pub fn bytes(&self) -> u64 {
        self.inner.as_ref().map_or(0, |p| p.num_permits() as u64) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::Context;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::FutureExt;
    use proptest::prelude::*;

    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test]
    async fn permits_add_up_to_the_budget_and_come_back_on_drop() {
        let budget = Budget::new(10 * MIB);
        assert_eq!(budget.total(), 10 * MIB);
        let a = budget.acquire(4 * MIB).await;
        let b = budget.acquire(6 * MIB).await;
        assert_eq!((a.bytes(), b.bytes()), (4 * MIB, 6 * MIB));
        assert_eq!(budget.available(), 0);
        assert!(budget.acquire(1).now_or_never().is_none(), "spent");
        drop(a);
        assert_eq!(budget.available(), 4 * MIB);
        drop(b);
        assert_eq!(budget.available(), 10 * MIB);
    }

    #[tokio::test]
    async fn requests_round_up_to_units_and_zero_is_free() {
        let budget = Budget::new(3 * UNIT + 100);
        assert_eq!(budget.total(), 3 * UNIT, "rounded down");
        assert_eq!(budget.acquire(1).await.bytes(), UNIT);
        let all = budget.acquire(3 * UNIT).await;
        let zero = budget
            .acquire(0)
            .now_or_never()
            .expect("zero bytes never wait");
        assert_eq!(zero.bytes(), 0);
        drop(all);
        assert_eq!(Budget::new(0).total(), UNIT, "at least one unit");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_gets_all_of_it_once_free() {
        let budget = Budget::new(8 * MIB);
        let held = budget.acquire(MIB).await;
        let mut huge = Box::pin(budget.acquire(100 * MIB));
        assert!((&mut huge).now_or_never().is_none(), "waits for the rest");
        drop(held);
        let huge = huge.now_or_never().expect("clamped to the whole budget");
        assert_eq!(huge.bytes(), 8 * MIB);
    }

    #[tokio::test]
    async fn first_come_first_served_even_when_a_later_request_would_fit() {
        let budget = Budget::new(8 * MIB);
        let held = budget.acquire(6 * MIB).await;
        let mut big = Box::pin(budget.acquire(8 * MIB));
        assert!((&mut big).now_or_never().is_none());
        // 2 MiB are free, but the big request came first.
        let mut small = Box::pin(budget.acquire(MIB));
        assert!((&mut small).now_or_never().is_none(), "no overtaking");
        drop(held);
        let big = big.now_or_never().expect("the head is served first");
        assert!((&mut small).now_or_never().is_none());
        drop(big);
        assert_eq!(small.now_or_never().map(|p| p.bytes()), Some(MIB));
    }

    #[tokio::test]
    async fn a_dropped_waiter_gives_back_what_it_had_collected() {
        let budget = Budget::new(8 * MIB);
        let a = budget.acquire(4 * MIB).await;
        let b = budget.acquire(4 * MIB).await;
        let mut waiter = Box::pin(budget.acquire(8 * MIB));
        assert!((&mut waiter).now_or_never().is_none());
        drop(a); // 4 MiB go to the waiter at the head
        drop(waiter);
        let later = budget.acquire(4 * MIB).now_or_never();
        assert!(later.is_some(), "the waiter's share came back");
        drop((b, later));
        assert_eq!(budget.available(), 8 * MIB);
    }

    /// A source that can be stopped from outside and knows how much it still has.
    struct Stoppable {
        remaining: Option<u64>,
        stop: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    }

    impl ByteSource for Stoppable {
        fn poll_chunk(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
            Poll::Ready(None)
        }

        fn remaining(&self) -> Option<u64> {
            self.remaining
        }

        fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.stop.as_mut().poll(cx)
        }
    }

    #[tokio::test]
    async fn reserve_takes_what_can_still_come_and_gives_up_when_the_source_stops() {
        let budget = Budget::new(16 * MIB);
        let stop = tokio_util::sync::CancellationToken::new();
        let mut source = Stoppable {
            remaining: Some(MIB),
            stop: Box::pin(stop.clone().cancelled_owned()),
        };
        // A 1 MiB PATCH with 2 MiB of tail in memory: 3 MiB, not a whole 8 MiB part.
        let permit = budget.reserve(8 * MIB, 2 * MIB, &mut source).await;
        assert_eq!(permit.map(|p| p.bytes()), Some(3 * MIB));
        source.remaining = None;
        let whole = budget.reserve(8 * MIB, 0, &mut source).await;
        assert_eq!(whole.as_ref().map(Permit::bytes), Some(8 * MIB));
        let other = budget.acquire(8 * MIB).await;
        // Spent: the next reservation waits until the source stops.
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stop.cancel();
        });
        assert!(budget.reserve(8 * MIB, 0, &mut source).await.is_none());
        stopper.await.expect("stopper");
        drop((whole, other));
        assert_eq!(budget.available(), 16 * MIB);
    }

    /// The S3 write loop's pattern, simulated: each upload reserves a whole part before
    /// "filling" it, hands the permit to a task that "uploads" it (a sleep), keeps at most
    /// `in_flight` of those per upload, waiting for the oldest when full, and reserves the
    /// next part only after handing over the current one. Must finish (no deadlock) and never
    /// hold more than the budget.
    fn run_uploads(budget_parts: u64, uploads: Vec<(u64, Vec<u64>)>, in_flight: usize) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let part = 8 * MIB;
        let budget = Budget::new(budget_parts * part);
        let held = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let all = async {
            let mut writers = Vec::new();
            for (part_size, delays) in uploads {
                let (budget, held, peak) = (budget.clone(), Arc::clone(&held), Arc::clone(&peak));
                writers.push(tokio::spawn(async move {
                    let mut jobs = std::collections::VecDeque::new();
                    for delay in delays {
                        let permit = budget.acquire(part_size).await;
                        let now = held.fetch_add(permit.bytes(), Ordering::SeqCst) + permit.bytes();
                        peak.fetch_max(now, Ordering::SeqCst);
                        if jobs.len() >= in_flight {
                            let job: tokio::task::JoinHandle<()> =
                                jobs.pop_front().expect("non-empty");
                            job.await.expect("part task");
                        }
                        let held = Arc::clone(&held);
                        jobs.push_back(tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            held.fetch_sub(permit.bytes(), Ordering::SeqCst);
                            drop(permit);
                        }));
                    }
                    for job in jobs {
                        job.await.expect("part task");
                    }
                }));
            }
            for writer in writers {
                writer.await.expect("writer");
            }
        };
        runtime.block_on(async {
            // Virtual time: a deadlock shows as this timeout (nothing left to wake anyone).
            tokio::time::timeout(Duration::from_secs(24 * 3600), all)
                .await
                .expect("every upload finishes (no deadlock)");
        });
        assert!(
            peak.load(Ordering::SeqCst) <= budget.total(),
            "peak {} over the budget {}",
            peak.load(Ordering::SeqCst),
            budget.total()
        );
        assert_eq!(budget.available(), budget.total(), "everything released");
    }

    #[test]
    fn five_hundred_uploads_on_an_eight_part_budget_all_finish() {
        let uploads = (0..500).map(|i| (8 * MIB, vec![10 + i % 7; 4])).collect();
        run_uploads(8, uploads, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_write_loop_pattern_never_deadlocks_nor_exceeds_the_budget(
            budget_parts in 1u64..6,
            uploads in prop::collection::vec(
                // (part size in MiB: some larger than the budget, parts' upload times in ms)
                (prop_oneof![Just(8u64), Just(5), 1u64..64],
                 prop::collection::vec(0u64..50, 1..6)),
                1..24,
            ),
            in_flight in 1usize..4,
        ) {
            let uploads = uploads
                .into_iter()
                .map(|(mib, delays)| (mib * MIB, delays))
                .collect();
            run_uploads(budget_parts, uploads, in_flight);
        }
    }
}
