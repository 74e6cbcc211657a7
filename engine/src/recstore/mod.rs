//! The record data-access layer: every SQL statement on record tables and on the auth
//! collections' system tables lives here (issue 15, item 2), over the `storage` crate's
//! connections. Callers get typed answers or a prepared statement whose rows they decode
//! (`records::Arena::load`); they hold no SQL text. Filters and rules are still compiled by
//! the `query` crate: [`rules`] only wraps the compiled condition in its statement.
//! `.ci/sql_home.py` fails CI on a SQL string literal elsewhere in `engine/src` (outside its
//! commented allow-list: logs, settings, replication, ...).
//!
//! * [`rows`] — record tables by id or field: loads, the view statement ([`rows::ViewSql`]),
//!   existence and unique checks, relation lookups, insert, update, delete, cascade clean-ups.
//! * [`rules`] — reads and checks filtered by a compiled rule or filter: the records list's
//!   page and total and the view's read (the caller decodes the rows from the statement it
//!   is handed), rule checks on a stored record, a draft or a deleted record's values.
//! * [`auth`] — auth collections: token keys, passwords, the state the update clean-ups
//!   compare, the auth options of `_collections`.
//! * [`authrows`] — `_otps`, `_mfas`, `_authOrigins`, `_externalAuths`.
//! * [`superusers`] — the `superuser` command's statements.
//! * [`value`] — the owned/borrowed value pair ([`value::SqlVal`], [`value::SqlRef`]) every
//!   record bind and loaded column goes through.
//!
//! The SQL text is the same as before it moved here, so `prepare_cached` keeps finding the
//! same statements and no request pays for the move.

pub mod auth;
pub mod authrows;
pub mod rows;
pub mod rules;
pub mod superusers;
pub mod value;
