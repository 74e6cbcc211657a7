// glibc's malloc was ~10% of a request's instructions (per-size-class locking, consolidation on
// free); mimalloc's thread-local free lists suit one worker thread per core
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(pocketbun_engine::cli::main());
}
