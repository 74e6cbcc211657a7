//! PocketBase's installer superuser: a temporary `_superusers` row behind the one-time install
//! link, removed in the same write that creates the first real superuser.

use pocketbun_storage::rusqlite::{self, Connection};

/// Email of the temporary superuser PocketBase's installer creates.
pub const INSTALLER_EMAIL: &str = "__pbinstaller@example.com";

/// Deletes the installer's temporary superuser from `table` (`_superusers`), if
/// any; run in the writer job that created a real superuser.
pub fn remove_installer_row(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    crate::recstore::auth::delete_by_email(conn, table, INSTALLER_EMAIL)?;
    Ok(())
}
