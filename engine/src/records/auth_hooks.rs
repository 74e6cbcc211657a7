//! PocketBase's own record hooks for auth collections, as write hooks
//! ([`super::event::WriteHook`]) that every record row write runs in its transaction: after an
//! update, what changed decides what goes (provider links on verification, OTPs with the
//! token key, MFA sessions and login origins with the password); after a delete, everything
//! that belonged to the record. The SQL is `crate::auth::cleanup`'s.

use super::event::{Action, Memo, RowWrite, WriteHook};
use crate::auth::cleanup::{
    after_auth_delete, after_auth_update, auth_state, new_token_key, AuthState,
};
use pocketbun_storage::rusqlite::{self, Connection};

/// The auth clean-ups: present in every [`super::event::RecordHooks`].
pub struct AuthCleanup;

impl WriteHook for AuthCleanup {
    /// An auth record's update remembers its `(verified, tokenKey, password)` as stored before.
    fn before(&self, conn: &Connection, row: &RowWrite<'_>) -> rusqlite::Result<Option<Memo>> {
        if row.action != Action::Update || !row.collection.is_auth() {
            return Ok(None);
        }
        let before = auth_state(conn, &row.collection.name, row.id)?;
        Ok(before.map(|state| Box::new(state) as Memo))
    }

    fn after(
        &self,
        conn: &Connection,
        row: &RowWrite<'_>,
        memo: Option<Memo>,
    ) -> rusqlite::Result<()> {
        let coll = row.collection;
        if !coll.is_auth() {
            return Ok(());
        }
        match row.action {
            Action::Create => Ok(()),
            Action::Update => match memo.and_then(|m| m.downcast::<AuthState>().ok()) {
                Some(before) => {
                    after_auth_update(conn, &coll.name, &coll.id, row.id, *before, || {
                        new_token_key(coll)
                    })
                }
                None => Ok(()),
            },
            Action::Delete => after_auth_delete(conn, row.schema, &coll.id, row.id),
        }
    }
}
