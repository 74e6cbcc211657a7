//! The HTTP/1.1 server PocketBun speaks through, written by hand on `monoio`.
//!
//! One job: turn bytes on a socket into [`Request`]s and [`Response`]s back into bytes, fast
//! and safely. Thread-per-core: every worker thread runs its own monoio runtime with its own
//! `SO_REUSEPORT` listener, so a connection lives and dies on one core and nothing on the
//! request path is shared between threads.
//!
//! What lives here, one file a concern: request-head parsing and framing rules ([`parse`]),
//! chunked bodies ([`chunked`]), the connection loop with keep-alive, pipelining, limits and
//! timeouts (`conn`), response framing and streaming (`response`, `write`), the router
//! ([`router`]), PocketBase's default CORS ([`cors`]), optional gzip ([`gzip`]), workers,
//! graceful shutdown and stall detection (`server`, `shutdown`, `stall`), a lazily polled
//! deadline timer ([`Deadline`]), and TLS under all of
//! it ([`tls`]: rustls over the same monoio streams).
//!
//! Application behaviour (PocketBase's envelopes, auth, records) is not here: the engine
//! implements [`Service`].

pub mod chunked;
mod config;
mod conn;
pub mod cors;
mod date;
mod deadline;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod gzip;
pub mod parse;
mod request;
mod response;
pub mod router;
mod server;
mod service;
mod shutdown;
mod stall;
pub mod tls;
mod write;

pub use config::{Driver, Limits, ServerConfig};
pub use deadline::Deadline;
pub use error::{HttpError, HttpErrorKind};
pub use request::{BodyFraming, Headers, Method, Request, RequestHead, Version};
pub use response::{Body, BodyStream, FixedHeaders, Response};
pub use server::{Server, ServerHandle};
pub use service::{default_error_response, Service};
pub use shutdown::Shutdown;
pub use stall::BusyMeter;
pub use write::CHUNK_ROOM;
