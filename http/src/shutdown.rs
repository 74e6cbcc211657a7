use event_listener::Event;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A one-way switch from "serving" to "shutting down", visible to every worker thread.
/// Waiters on any thread wake when it flips.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    event: Event,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once [`trigger`](Self::trigger) has been called.
    pub async fn wait(&self) {
        loop {
            if self.is_triggered() {
                return;
            }
            let listener = self.inner.event.listen();
            // checked again after listening, so a trigger in between is not missed
            if self.is_triggered() {
                return;
            }
            listener.await;
        }
    }
}

/// A worker's view of a [`Shutdown`], for the waits its connections start on every request (a
/// keep-alive connection waits for its next head with shutdown as the other way out). One
/// task per worker listens to the shared switch and wakes the worker's waiters; a wait only
/// files its waker in a slot of the worker's list. A listener of the shared event per wait
/// cost ~660 instructions a request (a lock, a listener allocated and freed).
pub(crate) struct WorkerShutdown {
    shared: Shutdown,
    waiters: Rc<RefCell<Waiters>>,
}

#[derive(Default)]
struct Waiters {
    /// A slot per pending wait; `None` once woken or free.
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl WorkerShutdown {
    /// Call on the worker's runtime: it spawns the task that relays the shared switch.
    pub(crate) fn start(shared: Shutdown) -> Self {
        let waiters = Rc::new(RefCell::new(Waiters::default()));
        let relay = (shared.clone(), Rc::downgrade(&waiters));
        monoio::spawn(async move {
            let (shared, waiters) = relay;
            shared.wait().await;
            let Some(waiters) = waiters.upgrade() else {
                return;
            };
            // taken out first: a woken task runs later, never inside this borrow
            let woken: Vec<Waker> = waiters
                .borrow_mut()
                .wakers
                .iter_mut()
                .filter_map(Option::take)
                .collect();
            woken.into_iter().for_each(Waker::wake);
        });
        WorkerShutdown { shared, waiters }
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.shared.is_triggered()
    }

    /// Resolves once the shared switch has flipped.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            shutdown: self,
            slot: None,
        }
    }
}

/// [`WorkerShutdown::wait`].
pub(crate) struct Wait<'a> {
    shutdown: &'a WorkerShutdown,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // the relay runs on this thread after the switch flipped: a wait filed before it runs
        // is woken by it, one that comes after sees the switch here
        if self.shutdown.is_triggered() {
            return Poll::Ready(());
        }
        let mut waiters = self.shutdown.waiters.borrow_mut();
        let slot = match self.slot {
            Some(slot) => slot,
            None => match waiters.free.pop() {
                Some(slot) => slot,
                None => {
                    waiters.wakers.push(None);
                    waiters.wakers.len() - 1
                }
            },
        };
        waiters.wakers[slot] = Some(cx.waker().clone());
        drop(waiters);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut waiters = self.shutdown.waiters.borrow_mut();
            waiters.wakers[slot] = None;
            waiters.free.push(slot);
        }
    }
}
