//! A one-shot reply slot the writer thread fills and a caller either awaits
//! (from an async runtime thread, without blocking it) or blocks on.
//!
//! The error type is the job's own (`E`, by default [`StorageError`]): a job that refuses
//! for a domain reason hands that reason back through the slot itself, so callers need no
//! side channel. `E: From<StorageError>` covers what the writer itself can fail with (a
//! commit error, a dropped queue, a panicking job).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{ErrorKind, StorageError};

struct Slot<T, E> {
    value: Option<Result<T, E>>,
    waker: Option<Waker>,
    /// The sending side is gone (answered or dropped).
    closed: bool,
    /// A thread blocks in [`Reply::wait`]: only then is the condvar notified. std's
    /// `notify_all` is a `futex` wake even when nobody waits, and the workers await their
    /// replies instead: that was one syscall per answered job on the writer thread (0.8 per
    /// create under a create load, BENCHMARKS.md, branch create).
    blocking: bool,
}

struct Shared<T, E> {
    slot: Mutex<Slot<T, E>>,
    ready: Condvar,
}

/// Sending half, owned by the writer thread.
pub(crate) struct ReplySender<T, E = StorageError> {
    shared: Arc<Shared<T, E>>,
}

/// The answer to a submitted write job. `.await` it on any executor (the
/// waker may be called from the writer thread), or call [`Reply::wait`] to
/// block the current thread.
#[must_use = "a write's outcome is only known by awaiting its Reply"]
pub struct Reply<T, E = StorageError> {
    shared: Arc<Shared<T, E>>,
}

pub(crate) fn channel<T, E>() -> (ReplySender<T, E>, Reply<T, E>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            value: None,
            waker: None,
            closed: false,
            blocking: false,
        }),
        ready: Condvar::new(),
    });
    (
        ReplySender {
            shared: Arc::clone(&shared),
        },
        Reply { shared },
    )
}

/// A reply that is already answered (used when the queue is closed).
pub(crate) fn ready<T, E>(value: Result<T, E>) -> Reply<T, E> {
    let (tx, rx) = channel();
    tx.send(value);
    rx
}

impl<T, E> ReplySender<T, E> {
    pub(crate) fn send(self, value: Result<T, E>) {
        let (waker, blocking) = {
            let mut slot = lock(&self.shared.slot);
            slot.value = Some(value);
            slot.closed = true;
            (slot.waker.take(), slot.blocking)
        };
        if blocking {
            self.shared.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        // Drop sees `closed` already set and does nothing more.
    }
}

impl<T, E> Drop for ReplySender<T, E> {
    fn drop(&mut self) {
        let (waker, blocking) = {
            let mut slot = lock(&self.shared.slot);
            if slot.closed {
                return;
            }
            slot.closed = true;
            (slot.waker.take(), slot.blocking)
        };
        if blocking {
            self.shared.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

fn dropped() -> StorageError {
    StorageError::new(
        ErrorKind::Closed,
        "the writer stopped before answering this job",
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T, E: From<StorageError>> Reply<T, E> {
    /// Blocks the calling thread until the job is answered. Never call this
    /// on an async runtime thread; `.await` instead.
    pub fn wait(self) -> Result<T, E> {
        let mut slot = lock(&self.shared.slot);
        loop {
            if let Some(v) = slot.value.take() {
                return v;
            }
            if slot.closed {
                return Err(dropped().into());
            }
            // set under the lock the sender takes: it sees it before it notifies
            slot.blocking = true;
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl<T, E: From<StorageError>> Future for Reply<T, E> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.shared.slot);
        if let Some(v) = slot.value.take() {
            return Poll::Ready(v);
        }
        if slot.closed {
            return Poll::Ready(Err(dropped().into()));
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
