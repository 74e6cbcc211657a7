//! Per-worker housekeeping for quiet periods: memory a burst of requests left behind goes
//! back to the OS instead of staying resident until the next burst.
//!
//! Every [`TICK`] each worker hands back the page cache of a read connection that no request
//! used since the previous tick ([`pocketbun_storage::Reader::release_if_idle`]), then asks
//! the allocator to purge what this thread freed ([`pocketbun_storage::trim`]): connection
//! buffers of idle keep-alive connections (`pocketbun_http::Limits::idle_release`), response
//! bodies, cache pages. A worker's allocator purges by itself only when it allocates again;
//! one that falls quiet would otherwise keep its last burst's pages (measured: a fresh server
//! stayed at 66 MiB after 5 s of logged `/api/health`, 26 MiB with the purge).
//!
//! The same goes for the read transaction the worker's reader keeps across the reads of one
//! event-loop turn ([`pocketbun_storage::Reader::batch_reads`]): [`start_read_batches`]'s
//! task ends it once the work that was ready when it began is done.

use crate::ctx::AppCtx;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

/// How often a worker looks for idle memory. A read connection is released one to two ticks
/// after its last read. A tick costs one timer and one allocator collect (a walk over this
/// thread's non-full pages, microseconds), so once a second is free at any load.
pub const TICK: Duration = Duration::from_secs(1);

/// Starts the tick on the current worker (its monoio runtime); it ends with the worker.
pub fn start(ctx: &Rc<AppCtx>) {
    let ctx: Weak<AppCtx> = Rc::downgrade(ctx);
    monoio::spawn(async move {
        loop {
            monoio::time::sleep(TICK).await;
            let Some(ctx) = ctx.upgrade() else { return };
            ctx.db.reader.release_if_idle();
            if let Some(aux) = ctx.aux.get() {
                aux.release_if_idle();
            }
            pocketbun_storage::trim(false);
        }
    });
}

/// Starts the task that ends the worker reader's read transaction every turn: the reader
/// wakes it when a read begins a transaction, and monoio queues a woken task behind the tasks
/// already ready (`LocalScheduler::schedule` pushes to the back of the run queue), so the
/// transaction serves every request that is ready in this turn (under 64 keep-alive
/// connections, a turn's batch of views) and ends before the worker waits for I/O again: it
/// never spans a request's wait for the writer, the CPU pool or the network. The task ends
/// with the worker.
pub fn start_read_batches(ctx: &Rc<AppCtx>) {
    let ctx: Weak<AppCtx> = Rc::downgrade(ctx);
    monoio::spawn(std::future::poll_fn(move |cx| {
        let Some(ctx) = ctx.upgrade() else {
            return Poll::Ready(());
        };
        ctx.db.reader.end_batch();
        ctx.db.reader.batch_reads(cx.waker());
        Poll::Pending
    }));
}
