//! The crate's single error type.

use std::fmt;

/// What went wrong, coarse enough for callers to map to HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A read ran past its deadline and was interrupted.
    Timeout,
    /// A UNIQUE / PRIMARY KEY constraint was violated.
    Unique,
    /// Any other constraint (NOT NULL, CHECK, FOREIGN KEY) was violated.
    Constraint,
    /// The requested row/object does not exist.
    NotFound,
    /// The database stayed locked past the busy timeout.
    Busy,
    /// The store (or its writer thread) is closed.
    Closed,
    /// The caller asked for something invalid (bad input, bad state).
    Invalid,
    /// Filesystem error around the pb_data directory.
    Io,
    /// Any other SQLite error.
    Sqlite,
    /// A job panicked or an internal invariant broke.
    Internal,
}

/// Error returned by every fallible storage operation.
#[derive(Debug, Clone)]
pub struct StorageError {
    kind: ErrorKind,
    message: String,
}

/// Shorthand used across the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// Builds an error of `kind` with a human readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The error category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human readable message (for SQLite errors: SQLite's own text).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

impl ErrorKind {
    /// Classifies a SQLite failure by its (extended) result code, never by its message.
    pub fn of(err: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match err {
            rusqlite::Error::QueryReturnedNoRows => ErrorKind::NotFound,
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                C::OperationInterrupted => ErrorKind::Timeout,
                C::DatabaseBusy | C::DatabaseLocked => ErrorKind::Busy,
                C::ConstraintViolation => match e.extended_code {
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => ErrorKind::Unique,
                    _ => ErrorKind::Constraint,
                },
                _ => ErrorKind::Sqlite,
            },
            _ => ErrorKind::Sqlite,
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        Self::new(ErrorKind::of(&err), err.to_string())
    }
}

impl From<std::io::Error> for StorageError {
    fn from(err: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, err.to_string())
    }
}
