//! A deadline timer that is polled only when it may have fired.
//!
//! A stream that waits on a timer between messages (an SSE stream's idle and lifetime
//! limits, a body pump's write-stall limit) would poll it after every message. Each poll
//! reads the timer's entry in monoio's wheel, a cold cache line in a fan-out that touches
//! 10,000 streams in turn: ~2 of an SSE delivery's ~54 L1 misses for the pump's stall timer,
//! ~4 for the stream's two timers (callgrind, 2,000 clients). Once polled, the timer holds
//! the task's waker, so its firing wakes the task; until the clock nears the deadline a poll
//! can answer `Pending` from the deadline kept here, without touching the timer.

use monoio::time::{Instant, Sleep};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long before its deadline the timer is polled again: a guard against a timer wheel
/// that fires a tick early (monoio's ticks are 1 ms).
const MARGIN: Duration = Duration::from_millis(5);

/// A timer due at [`Deadline::due`], polled only when it may have fired.
pub struct Deadline {
    timer: Pin<Box<Sleep>>,
    due: Instant,
    /// The timer holds the waker of the task polling it (it was polled since it was set).
    armed: bool,
}

impl Deadline {
    pub fn new(due: Instant) -> Self {
        Deadline {
            timer: Box::pin(monoio::time::sleep_until(due)),
            due,
            armed: false,
        }
    }

    /// When the timer is set to fire.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Ready once the timer has fired. Always polled by the same task (its waker is kept
    /// from the first poll after each [`Deadline::reset`]).
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed && Instant::now() + MARGIN < self.due {
            return Poll::Pending;
        }
        self.armed = true;
        self.timer.as_mut().poll(cx)
    }

    /// Moves the deadline (the next [`Deadline::poll_fired`] polls the timer again).
    pub fn reset(&mut self, due: Instant) {
        self.timer.as_mut().reset(due);
        self.due = due;
        self.armed = false;
    }
}
