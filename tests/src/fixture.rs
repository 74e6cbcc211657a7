//! The conformance fixture (`shared/conformance/pb_data`), as is or edited before a start.
//!
//! PocketBase's Go tests prepare state with Go calls (`app.Save(...)`, settings set in
//! memory, validation skipped); the ports of those tests prepare the same state by editing
//! a copy of the fixture's `data.db` before the server opens it.

use std::path::{Path, PathBuf};

/// An auth token of the fixture's superuser `test@example.com` (`sywbhecnh46rhm0`), valid until
/// 2050, as PocketBase's own tests use it.
pub const SUPERUSER_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InN5d2JoZWNuaDQ2cmhtMCIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoicGJjXzMxNDI2MzU4MjMiLCJleHAiOjI1MjQ2MDQ0NjEsInJlZnJlc2hhYmxlIjp0cnVlfQ.UXgO3j-0BumcugrFjbd7j0M4MQvbrLggLlcu_YNGjoY";

/// An auth token of the fixture's `users` record `test@example.com` (`4q1xlclmfloku33`), valid
/// until 2050.
pub const USER_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjRxMXhsY2xtZmxva3UzMyIsInR5cGUiOiJhdXRoIiwiY29sbGVjdGlvbklkIjoiX3BiX3VzZXJzX2F1dGhfIiwiZXhwIjoyNTI0NjA0NDYxLCJyZWZyZXNoYWJsZSI6dHJ1ZX0.ZT3F0Z3iM-xbGgSG3LEKiEzHrPHr8t8IuHLZGGNuxLo";

use crate::server::copy_dir;

/// The fixture's `pb_data` (never written to: servers get copies). When the corpus is
/// missing: fails under `CI=true`, else ends the test binary with one SKIP line
/// ([`crate::need::fixture_or_exit`]).
pub fn fixture_dir() -> PathBuf {
    crate::need::fixture_or_exit()
}

/// The fixture's `data.db`, opened read-only and `immutable` so SQLite creates no `-wal` or
/// `-shm` beside it. A plain open (as root, which CI is, the read-only bits don't stop it)
/// adds and removes those files while other tests copy the fixture: a copy then lists a
/// file that is gone by the time it is read (ENOENT; failed CI once, in `v040`).
pub fn fixture_db() -> rusqlite::Connection {
    let path = fixture_dir().join("data.db");
    rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()))
}

/// A copy of the fixture whose `data.db` went through `edit`; start a server with
/// `Server::start(spec, Some(copy.path()))` (which copies it once more).
pub struct EditedFixture {
    dir: tempfile::TempDir,
}

impl EditedFixture {
    pub fn new(edit: impl FnOnce(&rusqlite::Connection)) -> EditedFixture {
        let dir = tempfile::Builder::new()
            .prefix("pocketbun-fixture-")
            .tempdir()
            .expect("temp dir");
        copy_dir(&fixture_dir(), dir.path()).expect("copy the fixture");
        let db = rusqlite::Connection::open(dir.path().join("data.db")).expect("open data.db");
        edit(&db);
        // fold the WAL back so the copy made at start sees the edit in data.db alone
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        drop(db);
        EditedFixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
