//! PocketBun load harness.
//!
//! One module per concern so later workloads slot in without touching the
//! engine of the generator:
//!
//! * [`affinity`] — CPU-list parsing and pinning (threads and child processes).
//! * [`target`] — `http://host:port/path` parsing (loopback only).
//! * [`http1`] — incremental HTTP/1.1 response reader (Content-Length, chunked, close).
//! * [`workload`] — the named workloads and the per-connection request generators.
//! * [`client`] — one keep-alive connection loop.
//! * [`stats`] — latency histograms and error counters, per thread then merged.
//! * [`rt`] — monoio runtime construction (io_uring setup flags, epoll fallback).
//! * [`runner`] — N connections over T monoio generator threads, warm-up, progress.
//! * [`server`] — spawning, readiness, RSS and killing of servers under test.
//! * [`report`] — tables and JSON.
//! * [`api`] — blocking JSON client for seeding and pre-flight checks.
//! * [`seed`] — the dataset every server gets, created through the Web API.
//! * [`soak`] — a long mixed run checking errors, lost writes, realtime and memory.

pub mod affinity;
pub mod api;
pub mod client;
pub mod http1;
pub mod realtime;
pub mod report;
pub mod rt;
pub mod runner;
pub mod seed;
pub mod server;
pub mod soak;
pub mod stats;
pub mod target;
pub mod util;
pub mod workload;

/// Boxed error used across the harness.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
