// glibc's malloc was ~10% of a request's instructions (per-size-class locking, consolidation on
// free); mimalloc's thread-local free lists suit one worker thread per core
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    use pocketbun_storage::rusqlite::ffi;
    // SQLite's allocation statistics off (nothing reads them: no heap limit, no
    // sqlite3_memory_used): with them on, every allocation and free of every connection takes
    // one process-wide mutex, ~1k instructions per request log row on the log writer alone
    // (callgrind, 2026-12-07) and a lock all worker threads share.
    // SAFETY: sqlite3_config must run before SQLite is initialised and while no other thread
    // uses it: this is the first thing the process does, before any thread or connection.
    unsafe {
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::os::raw::c_int);
    }
    std::process::exit(pocketbun_engine::cli::main());
}
