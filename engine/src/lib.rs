//! The PocketBun application: PocketBase's Web API on top of the `http`, `query` and `storage`
//! crates, and the `pocketbun` command line.
//!
//! `cli` parses the command line; `app` is the per-worker [`pocketbun_http::Service`] that
//! routes requests and applies PocketBase's middleware (CORS, security headers); `apis` holds
//! one module per API area; `error` is the single place where failures become PocketBase's
//! `{"status","message","data"}` envelope.

pub mod apis;
pub mod app;
pub mod app_store;
pub mod auth;
pub mod backups;
pub mod cli;
pub mod client_ip;
pub mod cluster;
pub mod crons;
pub mod ctx;
pub mod encryption;
pub mod error;
pub mod files;
mod fixed_windows;
#[doc(hidden)]
pub mod fuzzing;
pub mod go;
pub mod idle;
pub mod json_strict;
pub mod logs;
pub mod named_slot;
pub mod offload;
pub mod public;
pub mod ratelimit;
pub mod realtime;
pub mod records;
pub mod recstore;
pub mod replicate;
pub mod schema;
pub mod serve_options;
pub mod settings;
pub mod snapshot;
pub mod state;
pub mod superuser;
pub mod tls;

#[cfg(test)]
mod complexity_tests;
