//! monoio runtime construction.
//!
//! `FusionDriver` picks io_uring when the kernel supports monoio's opcodes and
//! falls back to the legacy (epoll) driver otherwise (or when
//! `MONOIO_FORCE_LEGACY_DRIVER=1`). On top of that, io_uring setup flags matter
//! a lot when client and server run on different cores: without
//! `IORING_SETUP_COOP_TASKRUN` or `IORING_SETUP_DEFER_TASKRUN` every
//! completion posted from the other CPU interrupts this one with an IPI. See loadtest/README.md for numbers.

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver};

/// The runtime type every harness thread uses.
pub type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// io_uring setup flags to ask for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UringMode {
    /// No setup flags (monoio's default): completions are signalled by IPI.
    Plain,
    /// `COOP_TASKRUN | TASKRUN_FLAG` (5.19+): completion work waits for our
    /// next syscall instead of interrupting us.
    Coop,
    /// `DEFER_TASKRUN | SINGLE_ISSUER` (6.1+): completion work only runs when we
    /// wait for events. Fastest here (see README), the default.
    #[default]
    Defer,
}

impl UringMode {
    fn builder(self) -> io_uring::Builder {
        let mut b = io_uring::IoUring::builder();
        match self {
            UringMode::Plain => {}
            UringMode::Coop => {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            UringMode::Defer => {
                b.setup_defer_taskrun().setup_single_issuer();
            }
        }
        b
    }
}

/// Builds a timer-enabled runtime for the calling thread. If the kernel
/// rejects the requested setup flags, retries without them. Returns the
/// runtime and a label of what was built (`io_uring+coop`, `epoll`, ...).
pub fn build(mode: UringMode, entries: u32) -> std::io::Result<(Runtime, &'static str)> {
    let make = |m: UringMode| {
        monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .with_entries(entries)
            .uring_builder(m.builder())
            .enable_timer()
            .build()
    };
    let (rt, used) = match make(mode) {
        Ok(rt) => (rt, mode),
        Err(_) if mode != UringMode::Plain => (make(UringMode::Plain)?, UringMode::Plain),
        Err(e) => return Err(e),
    };
    let label = match (&rt, used) {
        (FusionRuntime::Legacy(_), _) => "epoll",
        (FusionRuntime::Uring(_), UringMode::Plain) => "io_uring",
        (FusionRuntime::Uring(_), UringMode::Coop) => "io_uring+coop",
        (FusionRuntime::Uring(_), UringMode::Defer) => "io_uring+defer",
    };
    Ok((rt, label))
}
