//! PocketBun storage: owns the SQLite files of a PocketBase `pb_data`
//! directory — creating them exactly as PocketBase v0.39 does, handing out
//! per-thread read connections, and funnelling every write through one
//! group-committing writer thread.

#![forbid(unsafe_code)]

mod checkpoint;
pub mod collections;
mod connection;
pub mod deps;
mod dev;
mod error;
pub mod files;
mod ident;
mod memory;
mod options;
pub mod random;
mod reader;
mod reply;
pub mod schema;
mod store;
pub mod time;
mod writer;

pub use checkpoint::{checkpoint, CheckpointStats};
pub use connection::defensive;
pub use deps::Generations;
pub use error::{ErrorKind, Result, StorageError};
pub use ident::Ident;
pub use memory::{set_trim_hook, trim};
pub use options::StoreOptions;
pub use reader::Reader;
pub use reply::Reply;
pub use rusqlite;
pub use store::{Store, AUX_DB, DATA_DB};
pub use writer::{Job, Writer, WriterStats};

/// Logs a warning through the `log` facade, or to stderr when no logger is installed.
pub(crate) fn warn(args: std::fmt::Arguments<'_>) {
    if log::max_level() == log::LevelFilter::Off {
        eprintln!("pocketbun-storage: {args}");
    } else {
        log::warn!("{args}");
    }
}
