// glibc's malloc was ~10% of a request's instructions (per-size-class locking, consolidation on
// free); mimalloc's thread-local free lists suit one worker thread per core
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    use pocketbun_storage::rusqlite::ffi;
    // SAFETY: sqlite3_config must run before SQLite is initialised and while no other thread
    // uses it: this is the first thing the process does, before any thread or connection.
    // SQLite copies the methods before the call returns.
    unsafe {
        // SQLite's allocation statistics off (nothing reads them: no heap limit, no
        // sqlite3_memory_used): with them on, every allocation and free of every connection
        // takes one process-wide mutex, ~1k instructions per request log row on the log writer
        // alone (callgrind, 2026-12-07) and a lock all worker threads share.
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int);
        // SQLite's own allocations through mimalloc too (they went to glibc's malloc: ~1.5k
        // instructions of every request log row, more on the writer of data.db)
        let methods = sqlite_alloc::methods();
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        );
    }
    // idle threads purge what they freed (pocketbun_storage::trim): mimalloc does it by
    // itself only on a thread's next allocation
    pocketbun_storage::set_trim_hook(trim);
    std::process::exit(pocketbun_engine::cli::main());
}

extern "C" {
    /// mimalloc's public C API (`mimalloc.h`), from the library `mimalloc` links; the Rust
    /// crate declares it only with its `extended` feature, which needs one more dependency.
    fn mi_collect(force: bool);
}

/// Returns this thread's free memory to the OS: every empty page, and with `force` also
/// what mimalloc would otherwise keep for its purge delay (1 s).
fn trim(force: bool) {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time
    unsafe { mi_collect(force) }
}

/// SQLite's memory methods over the process's global allocator: each block carries its size
/// in an 8-byte header (SQLite asks for a block's size, and needs 8-byte alignment).
mod sqlite_alloc {
    use pocketbun_storage::rusqlite::ffi;
    use std::alloc::{alloc, dealloc, realloc, Layout};
    use std::os::raw::{c_int, c_void};

    const HEADER: usize = 8;

    pub fn methods() -> ffi::sqlite3_mem_methods {
        ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        }
    }

    fn layout(n: usize) -> Option<Layout> {
        Layout::from_size_align(n.checked_add(HEADER)?, HEADER).ok()
    }

    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        let Some(l) = usize::try_from(n).ok().filter(|&n| n > 0).and_then(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: a non-zero size; the header is written inside the new block
        unsafe {
            let base = alloc(l);
            if base.is_null() {
                return std::ptr::null_mut();
            }
            (base as *mut usize).write(n as usize);
            base.add(HEADER) as *mut c_void
        }
    }

    /// The block's start and size behind a pointer `x_malloc`/`x_realloc` returned.
    unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
        // SAFETY (caller): `p` came from this allocator, so a header precedes it
        unsafe {
            let base = (p as *mut u8).sub(HEADER);
            (base, (base as *const usize).read())
        }
    }

    unsafe extern "C" fn x_free(p: *mut c_void) {
        if p.is_null() {
            return;
        }
        // SAFETY: SQLite frees only what its xMalloc/xRealloc returned, with this layout
        unsafe {
            let (base, n) = block(p);
            if let Some(l) = layout(n) {
                dealloc(base, l);
            }
        }
    }

    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        if p.is_null() {
            return unsafe { x_malloc(n) };
        }
        let Some(new) = usize::try_from(n).ok().filter(|&n| n > 0) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `p` came from this allocator (SQLite's contract); the old layout is the
        // one it was made with, the new size is non-zero and fits a Layout
        unsafe {
            let (base, old) = block(p);
            let (Some(l), Some(_)) = (layout(old), layout(new)) else {
                return std::ptr::null_mut();
            };
            let moved = realloc(base, l, new + HEADER);
            if moved.is_null() {
                return std::ptr::null_mut();
            }
            (moved as *mut usize).write(new);
            moved.add(HEADER) as *mut c_void
        }
    }

    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        if p.is_null() {
            return 0;
        }
        // SAFETY: `p` came from this allocator
        unsafe { block(p).1 as c_int }
    }

    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        n.saturating_add(7) & !7
    }

    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }

    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}
}
