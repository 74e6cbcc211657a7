//! Handing idle memory back to the OS.
//!
//! `sqlite3_db_release_memory` frees a connection's cached pages to the allocator; whether
//! the allocator gives them to the OS is its own affair. mimalloc (the server's allocator)
//! keeps freed pages for its purge delay (1 s in v3) and purges only when a thread later
//! allocates or collects, so pages freed by a thread that then goes idle stay resident:
//! measured on a fresh server after 5 s of `/api/health` with request logs on, RSS stayed at
//! 66 MiB after the log writer released its cache, and fell to 26 MiB with an immediate
//! purge. The server installs a hook ([`set_trim_hook`]) that makes its allocator purge;
//! this crate calls it ([`trim`]) on the thread that just released memory. Without a hook
//! (tests, other allocators) trimming does nothing.

use std::sync::OnceLock;

static HOOK: OnceLock<fn(bool)> = OnceLock::new();

/// Installs the allocator's trim: `hook(force)` returns the calling thread's free memory to
/// the OS (`force`: now, whatever the allocator's own delay). The first hook installed stays.
pub fn set_trim_hook(hook: fn(bool)) {
    let _ = HOOK.set(hook);
}

/// Runs the installed trim hook on this thread, if any.
pub fn trim(force: bool) {
    if let Some(hook) = HOOK.get() {
        hook(force);
    }
}
