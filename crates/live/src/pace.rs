//! The schedule's clock: wakes a sleeping task at its instant to within
//! the OS's sleep precision (tens of microseconds), not tokio's millisecond.
//!
//! tokio's timer wheel fires at millisecond ticks, rounding every deadline
//! up to the next one. A load generator sleeping on it would send each
//! request up to a millisecond late: latency counts from the intended time,
//! so that millisecond would be charged to the target (doubling the p50 of
//! a gateway that answers in half a millisecond), and a schedule of 150k
//! arrivals a second would leave in bursts of 150 that find the in-flight
//! cap full. The pacer is a thread of its own holding the deadlines of the
//! tasks waiting on it in a heap; it sleeps on a condition variable until
//! the earliest one (the kernel's high-resolution timers, within the
//! thread's timer slack) and wakes every task that is due.
//!
//! Registering a deadline wakes the thread only when it would otherwise
//! wake more than [`SLACK`] after that deadline: Linux lets a sleeping
//! thread's timer fire up to its timer slack (50 µs by default) late
//! anyway, and at tens of thousands of arrivals a second a wake-up per
//! arrival (a futex call and a context switch on each side) would cost the
//! generator more than its requests do. While registrations keep coming,
//! an idle thread sleeps [`SLACK`] at a time rather than until notified,
//! so a high-rate schedule registers without waking it.
//!
//! Bounded: the heap holds one entry per waiting future, and the schedules
//! that use it wait one arrival at a time, so it holds at most one entry
//! per schedule. The thread ends when the [`Pacer`] is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How late past its deadline a sleeper may wake without the thread being
/// notified early for it: Linux's default timer slack.
pub(crate) const SLACK: Duration = Duration::from_micros(50);

/// An idle thread keeps waking every [`SLACK`] for this long after the
/// last registration, then sleeps until notified.
const LINGER: Duration = Duration::from_millis(2);

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    stop: bool,
    /// When the thread will wake by itself: `None` while it is awake,
    /// `Some(None)` when it sleeps until notified.
    sleeping_until: Option<Option<Instant>>,
    /// The last registration, for [`LINGER`].
    registered_at: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

/// A precise sleeper for the load generator's schedules.
pub(crate) struct Pacer {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    /// Starts the pacer's thread.
    pub(crate) fn start() -> Pacer {
        let inner = Arc::new(Inner::default());
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-pacer".into())
            .spawn(move || run(&i))
            .ok();
        Pacer { inner, thread }
    }

    /// Resolves at `at` (at once if it has passed).
    pub(crate) fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep {
            pacer: self,
            at,
            registered: false,
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.inner.state.lock().expect("not poisoned").stop = true;
        self.inner.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner) {
    let mut state = inner.state.lock().expect("not poisoned");
    loop {
        if state.stop {
            // Wake the waiters so none sleeps forever: each sees its
            // deadline has not passed and re-registers with nobody.
            for Reverse(e) in state.heap.drain() {
                e.waker.wake();
            }
            return;
        }
        let now = Instant::now();
        while state.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Some(Reverse(e)) = state.heap.pop() else {
                break;
            };
            e.waker.wake();
        }
        let lingering = state
            .registered_at
            .is_some_and(|r| now.saturating_duration_since(r) < LINGER);
        let until = match state.heap.peek() {
            Some(Reverse(e)) => Some(e.at),
            None if lingering => Some(now + SLACK),
            None => None,
        };
        state.sleeping_until = Some(until);
        state = match until {
            Some(at) => {
                inner
                    .changed
                    .wait_timeout(state, at.saturating_duration_since(now))
                    .expect("not poisoned")
                    .0
            }
            None => inner.changed.wait(state).expect("not poisoned"),
        };
        state.sleeping_until = None;
    }
}

/// The future of [`Pacer::sleep_until`].
pub(crate) struct Sleep<'a> {
    pacer: &'a Pacer,
    at: Instant,
    registered: bool,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let inner = &self.pacer.inner;
        // Without its thread (it could not be spawned) the pacer cannot
        // wake anyone: fall back to waking at once and polling again,
        // which keeps the schedule, at a CPU cost.
        if self.pacer.thread.is_none() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !self.registered {
            let mut state = inner.state.lock().expect("not poisoned");
            if state.stop {
                return Poll::Ready(());
            }
            state.seq += 1;
            state.registered_at = Some(Instant::now());
            // Wake the thread only if it would sleep past this deadline by
            // more than the slack.
            let notify = match state.sleeping_until {
                None => false,
                Some(None) => true,
                Some(Some(until)) => until > self.at + SLACK,
            };
            let seq = state.seq;
            state.heap.push(Reverse(Entry {
                at: self.at,
                seq,
                waker: cx.waker().clone(),
            }));
            drop(state);
            if notify {
                inner.changed.notify_one();
            }
            self.registered = true;
        } else {
            // Woken before its time (another event of the task's select):
            // its entry stays in the heap and fires at `at`.
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleepers_wake_in_deadline_order_and_never_early() {
        let pacer = Arc::new(Pacer::start());
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Registered out of order; each must wake at or after its time.
        for k in [7u64, 2, 9, 4, 1, 6] {
            let (p, tx) = (pacer.clone(), tx.clone());
            tokio::spawn(async move {
                let at = start + Duration::from_millis(k * 3);
                p.sleep_until(at).await;
                tx.send((k, Instant::now() >= at)).unwrap();
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((k, on_time)) = rx.recv().await {
            assert!(on_time, "sleeper {k} woke before its deadline");
            order.push(k);
        }
        assert_eq!(order, [1, 2, 4, 6, 7, 9]);
        // A deadline in the past is ready at once.
        pacer.sleep_until(start).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_pacer_stops_its_thread_and_releases_waiters() {
        let pacer = Pacer::start();
        let far = Instant::now() + Duration::from_secs(3600);
        let mut sleep = Box::pin(pacer.sleep_until(far));
        // Registered, pending.
        assert!(futures_poll_once(sleep.as_mut()).await.is_pending());
        drop(sleep);
        drop(pacer); // joins the thread; a hang here fails the test by timeout
    }

    async fn futures_poll_once<F: Future + Unpin>(mut f: F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut f).poll(cx))).await
    }
}
