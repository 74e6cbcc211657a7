//! The `Date` header, formatted at most once a second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

// Per thread and mutable, yet no hidden state: a memo of a pure function of the clock (the
// formatted second), so two servers in one process can share it with no effect on either.
// It turns one format per response into one per second per worker.
thread_local! {
    static CACHE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

pub(crate) fn with_http_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            c.0 = secs;
            c.1 = httpdate::fmt_http_date(now);
        }
        f(&c.1)
    })
}
