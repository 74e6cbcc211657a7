//! `pocketbun superuser upsert|create|update|delete EMAIL [PASSWORD]`:
//! manages `_superusers` records with PocketBase v0.39's CLI semantics and
//! messages, writing rows the real PocketBase can log in with (bcrypt
//! `$2a$` hashes, 15 char ids, 50 char token keys).
//!
//! `Ok` is the line to print on stdout; `Err` is the error text — PocketBase
//! prints it as `Error: {text}` (also on stdout) and still exits with 0.

use crate::auth::installer::INSTALLER_EMAIL;
use crate::recstore::superusers;
use pocketbun_storage::rusqlite::Connection;
use pocketbun_storage::{random, time, Store};
use serde_json::Value;

/// Which `superuser` subcommand to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuperuserAction {
    /// Create, or change the password if the email exists.
    Upsert,
    /// Create a new superuser.
    Create,
    /// Change an existing superuser's password.
    Update,
    /// Delete a superuser.
    Delete,
}

const COLLECTION: &str = "_superusers";
/// Record-proxy collections whose rows point at auth records and are removed
/// with them.
const AUTH_REF_COLLECTIONS: [&str; 4] = ["_externalAuths", "_mfas", "_otps", "_authOrigins"];
/// bcrypt's input limit as PocketBase applies it when the field sets no max.
const DEFAULT_PASSWORD_MAX: usize = 71;
/// Go's `bcrypt.DefaultCost`, used when the field's cost is 0.
const DEFAULT_BCRYPT_COST: u32 = 10;

/// Runs `action`. `password` is required by every action but `Delete`
/// (extra CLI arguments beyond EMAIL PASSWORD make PocketBase answer
/// "missing email and password arguments" for upsert/create/update; callers
/// should map that case to `password: None`).
pub fn run(
    store: &Store,
    action: SuperuserAction,
    email: &str,
    password: Option<&str>,
) -> Result<String, String> {
    if action == SuperuserAction::Delete {
        if !is_email(email) {
            return Err("invalid or missing email address".into());
        }
        return delete(store, email);
    }
    let Some(password) = password else {
        return Err("missing email and password arguments".into());
    };
    if !is_email(email) {
        return Err("missing or invalid email address".into());
    }
    let collection = load_collection(store)
        .map_err(|e| format!("failed to fetch {}: {e}", go_quote(COLLECTION)))?;
    let existing = find_by_email(store, &collection, email).map_err(|e| e.to_string())?;

    let (context, is_create) = match (action, &existing) {
        (SuperuserAction::Create, _) | (SuperuserAction::Upsert, None) => {
            let ctx = if action == SuperuserAction::Create {
                "failed to create new superuser account".to_string()
            } else {
                "failed to upsert superuser account".to_string()
            };
            (ctx, true)
        }
        (SuperuserAction::Upsert, Some(_)) => ("failed to upsert superuser account".into(), false),
        (SuperuserAction::Update, None) => {
            return Err(format!(
                "superuser with email {} doesn't exist",
                go_quote(email)
            ))
        }
        (SuperuserAction::Update, Some(rec)) => (
            format!(
                "failed to change superuser {} password",
                go_quote(&rec.email)
            ),
            false,
        ),
        (SuperuserAction::Delete, _) => unreachable!("handled above"),
    };

    if let Err(msg) = validate_password(&collection.password, password) {
        return Err(format!("{context}: password: {msg}."));
    }
    let hash = crate::auth::password::bcrypt_hash(password, collection.password.cost)
        .map_err(|e| format!("{context}: {e}"))?;
    let token_key = random::from_autogenerate_pattern(&collection.token_key_pattern)
        .unwrap_or_else(|_| random::random_string(50));
    let now = time::now_datetime();

    let saved_email = if is_create {
        let id = random::from_autogenerate_pattern(&collection.id_pattern)
            .unwrap_or_else(|_| random::new_record_id());
        let row = Row {
            id,
            email: email.to_string(),
            hash,
            token_key,
            now,
        };
        let col = collection.clone();
        save(store, &context, move |conn| {
            insert(conn, &col, &row)?;
            if row.email != INSTALLER_EMAIL {
                remove_installer(conn, &col)?;
            }
            Ok(())
        })?;
        email.to_string()
    } else {
        let rec = existing.expect("update of an existing record");
        // upsert sets the email again (same value up to NOCASE collation)
        let new_email = if action == SuperuserAction::Upsert {
            email.to_string()
        } else {
            rec.email.clone()
        };
        let row = Row {
            id: rec.id.clone(),
            email: new_email.clone(),
            hash,
            token_key,
            now,
        };
        let col = collection.clone();
        save(store, &context, move |conn| update(conn, &col, &row))?;
        new_email
    };

    Ok(match action {
        SuperuserAction::Create => {
            format!(
                "Successfully created new superuser {}!",
                go_quote(&saved_email)
            )
        }
        SuperuserAction::Upsert => {
            format!("Successfully saved superuser {}!", go_quote(&saved_email))
        }
        SuperuserAction::Update => format!(
            "Successfully changed superuser {} password!",
            go_quote(&saved_email)
        ),
        SuperuserAction::Delete => unreachable!("handled above"),
    })
}

fn delete(store: &Store, email: &str) -> Result<String, String> {
    let collection = load_collection(store)
        .map_err(|e| format!("failed to fetch {}: {e}", go_quote(COLLECTION)))?;
    let Some(rec) = find_by_email(store, &collection, email).map_err(|e| e.to_string())? else {
        return Ok(format!(
            "superuser {} is missing or already deleted",
            go_quote(email)
        ));
    };
    let col = collection.clone();
    let id = rec.id.clone();
    let result = store
        .writer()
        .submit_blocking(move |conn: &Connection| delete_record(conn, &col, &id));
    match result {
        Ok(()) => Ok(format!(
            "Successfully deleted superuser {}!",
            go_quote(&rec.email)
        )),
        Err(e) => Err(format!(
            "failed to delete superuser {}: {}",
            go_quote(&rec.email),
            e.message()
        )),
    }
}

/// The parts of the `_superusers` collection definition the command needs.
#[derive(Debug, Clone)]
struct Collection {
    id: String,
    table: String,
    email_nocase: bool,
    password: PasswordRules,
    id_pattern: String,
    token_key_pattern: String,
    /// Autodate fields: (name, onCreate, onUpdate).
    autodates: Vec<(String, bool, bool)>,
}

#[derive(Debug, Clone)]
struct PasswordRules {
    min: usize,
    max: usize,
    cost: u32,
}

struct Found {
    id: String,
    email: String,
}

fn load_collection(store: &Store) -> pocketbun_storage::Result<Collection> {
    let reader = store.reader()?;
    let row = reader.read(|conn| Ok(superusers::collection_row(conn, COLLECTION)?))?;
    let Some((id, table, fields, indexes)) = row else {
        return Err(pocketbun_storage::StorageError::new(
            pocketbun_storage::ErrorKind::NotFound,
            "sql: no rows in result set",
        ));
    };
    let fields: Vec<Value> = serde_json::from_str(&fields).unwrap_or_default();
    let indexes: Vec<String> = serde_json::from_str(&indexes).unwrap_or_default();
    let mut col = Collection {
        id,
        table,
        email_nocase: email_index_is_nocase(&indexes),
        password: PasswordRules {
            min: 0,
            max: DEFAULT_PASSWORD_MAX,
            cost: DEFAULT_BCRYPT_COST,
        },
        id_pattern: "[a-z0-9]{15}".into(),
        token_key_pattern: "[a-zA-Z0-9]{50}".into(),
        autodates: Vec::new(),
    };
    for f in &fields {
        let name = f["name"].as_str().unwrap_or_default();
        let num = |k: &str| f[k].as_u64().unwrap_or(0);
        match (f["type"].as_str().unwrap_or_default(), name) {
            ("password", "password") => {
                col.password.min = num("min") as usize;
                if num("max") > 0 {
                    col.password.max = num("max") as usize;
                }
                if num("cost") > 0 {
                    col.password.cost = num("cost") as u32;
                }
            }
            ("text", "id") => {
                if let Some(p) = f["autogeneratePattern"].as_str().filter(|p| !p.is_empty()) {
                    col.id_pattern = p.to_string();
                }
            }
            ("text", "tokenKey") => {
                if let Some(p) = f["autogeneratePattern"].as_str().filter(|p| !p.is_empty()) {
                    col.token_key_pattern = p.to_string();
                }
            }
            ("autodate", _) => col.autodates.push((
                name.to_string(),
                f["onCreate"].as_bool().unwrap_or(false),
                f["onUpdate"].as_bool().unwrap_or(false),
            )),
            _ => {}
        }
    }
    Ok(col)
}

/// Whether the collection's single-column unique index on `email` uses
/// `COLLATE NOCASE` (then email lookups are case-insensitive).
fn email_index_is_nocase(indexes: &[String]) -> bool {
    indexes.iter().any(|sql| {
        let lower = sql.to_ascii_lowercase();
        let Some(open) = lower.find('(') else {
            return false;
        };
        let close = lower.rfind(')').unwrap_or(lower.len());
        let cols = &lower[open + 1..close.max(open + 1)];
        lower.contains("unique")
            && !cols.contains(',')
            && cols
                .replace(['`', '"', '[', ']'], "")
                .trim_start()
                .starts_with("email")
            && cols.contains("nocase")
    })
}

fn find_by_email(store: &Store, col: &Collection, email: &str) -> Result<Option<Found>, String> {
    let reader = store.reader().map_err(|e| e.to_string())?;
    reader
        .read(|conn| {
            let found = superusers::find_by_email(conn, &col.table, email, col.email_nocase)?;
            Ok(found.map(|(id, email)| Found { id, email }))
        })
        .map_err(|e| e.to_string())
}

fn validate_password(rules: &PasswordRules, password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("cannot be blank".into());
    }
    let len = password.chars().count();
    if len < rules.min {
        return Err(format!("Must be at least {} character(s)", rules.min));
    }
    if len > rules.max {
        return Err(format!("Must be less than {} character(s)", rules.max));
    }
    Ok(())
}

/// What a superuser save writes.
struct Row {
    id: String,
    email: String,
    hash: String,
    token_key: String,
    now: String,
}

/// Runs a superuser save on the writer; a taken email answers PocketBase's unique message.
fn save(
    store: &Store,
    context: &str,
    job: impl FnOnce(&Connection) -> pocketbun_storage::Result<()> + Send + 'static,
) -> Result<(), String> {
    match store.writer().submit_blocking(job) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == pocketbun_storage::ErrorKind::Unique => {
            Err(format!("{context}: {}", unique_message(e.message())))
        }
        Err(e) => Err(format!("{context}: {e}")),
    }
}

fn insert(conn: &Connection, col: &Collection, row: &Row) -> pocketbun_storage::Result<()> {
    let mut names = vec![
        "id",
        "email",
        "emailVisibility",
        "verified",
        "password",
        "tokenKey",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    let mut values: Vec<crate::recstore::value::SqlVal> = vec![
        row.id.clone().into(),
        row.email.clone().into(),
        false.into(),
        true.into(),
        row.hash.clone().into(),
        row.token_key.clone().into(),
    ];
    for (name, on_create, _) in &col.autodates {
        if *on_create {
            names.push(name.clone());
            values.push(row.now.clone().into());
        }
    }
    superusers::insert(conn, &col.table, &names, values)?;
    Ok(())
}

fn update(conn: &Connection, col: &Collection, row: &Row) -> pocketbun_storage::Result<()> {
    let on_update = col
        .autodates
        .iter()
        .filter(|(_, _, on_update)| *on_update)
        .map(|(name, _, _)| name.as_str());
    let Row {
        id,
        email,
        hash,
        token_key,
        now,
    } = row;
    superusers::update(conn, &col.table, on_update, id, email, hash, token_key, now)?;
    Ok(())
}

fn remove_installer(conn: &Connection, col: &Collection) -> pocketbun_storage::Result<()> {
    let installer = superusers::id_by_email(conn, &col.table, INSTALLER_EMAIL)?;
    if let Some(id) = installer {
        delete_record(conn, col, &id)?;
    }
    Ok(())
}

fn delete_record(conn: &Connection, col: &Collection, id: &str) -> pocketbun_storage::Result<()> {
    let total = superusers::count(conn, &col.table)?;
    if total == 1 {
        return Err(pocketbun_storage::StorageError::new(
            pocketbun_storage::ErrorKind::Invalid,
            "You can't delete the only existing superuser.",
        ));
    }
    superusers::delete(conn, &col.table, &col.id, id, &AUTH_REF_COLLECTIONS)?;
    Ok(())
}

/// PocketBase's message for a unique constraint failure on the record table.
fn unique_message(sqlite_msg: &str) -> String {
    let lower = sqlite_msg.to_ascii_lowercase();
    let mut fields: Vec<&str> = ["email", "id", "tokenKey"]
        .into_iter()
        .filter(|f| lower.contains(&format!(".{}", f.to_ascii_lowercase())))
        .collect();
    if fields.is_empty() {
        return sqlite_msg.to_string();
    }
    fields.sort_unstable();
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("{f}: Value must be unique"))
        .collect();
    format!("{}.", parts.join("; "))
}

/// Go's `%q` for the strings this command prints.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The email syntax PocketBase's CLI accepts (ozzo-validation's
/// `is.EmailFormat`): a dot-atom or quoted local part, `@`, and a domain of
/// at least two labels whose last one starts and ends with a letter.
/// Non-ASCII letters in the ranges U+00A0–U+D7FF, U+F900–U+FDCF and
/// U+FDF0–U+FFEF count as letters.
pub fn is_email(s: &str) -> bool {
    let Some(at) = s.rfind('@') else {
        return false;
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    valid_local(local) && valid_domain(domain)
}

fn is_ucs(c: char) -> bool {
    matches!(c as u32, 0xA0..=0xD7FF | 0xF900..=0xFDCF | 0xFDF0..=0xFFEF)
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_ucs(c)
}

fn valid_local(local: &str) -> bool {
    if local.is_empty() {
        return false;
    }
    if let Some(inner) = local.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return false;
        };
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            let ok = match c {
                '\\' => chars.next().is_some_and(|n| (n as u32) < 0x80 || is_ucs(n)),
                '"' => false,
                ' ' | '\t' => true,
                c => ((c as u32) >= 1 && (c as u32) < 0x80 && c != '\n' && c != '\r') || is_ucs(c),
            };
            if !ok {
                return false;
            }
        }
        return true;
    }
    local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn valid_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let label_char = |c: char| c.is_ascii_alphanumeric() || is_ucs(c);
    let mid_char = |c: char| label_char(c) || matches!(c, '-' | '.' | '~');
    let letter = |c: char| c.is_ascii_alphabetic() || is_ucs(c);
    // `head` (one or more labels) . `tld`
    domain
        .char_indices()
        .filter(|&(_, c)| c == '.')
        .any(|(i, _)| {
            let (head, tld) = (&domain[..i], &domain[i + 1..]);
            let edges_ok = |s: &str, edge: &dyn Fn(char) -> bool| {
                let mut cs = s.chars();
                match (cs.next(), cs.next_back()) {
                    (Some(a), None) => edge(a),
                    (Some(a), Some(b)) => edge(a) && edge(b) && cs.all(mid_char),
                    _ => false,
                }
            };
            edges_ok(head, &label_char) && edges_ok(tld, &letter)
        })
}

/// How long the installer link printed at first start works (PocketBase: 30 minutes).
pub const INSTALLER_TOKEN_SECS: i64 = 30 * 60;

/// What the installer's token is made of: its claims and the key that signs them.
pub struct InstallerClaims {
    pub claims: serde_json::Map<String, Value>,
    pub signing_key: String,
}

/// First start: when `_superusers` holds no superuser but PocketBase's installer, (re)makes the
/// installer with a random password and returns a non-refreshable auth token for it, the one
/// the dashboard's `#/pbinstall/{token}` page uses to create the first real superuser (which
/// removes the installer). `None` once a real superuser exists. The caller signs the claims
/// (this file stays free of the auth module: storage's round-trip test compiles it alone).
pub fn installer_claims(store: &Store) -> Result<Option<InstallerClaims>, String> {
    let col = load_collection(store).map_err(|e| e.to_string())?;
    let reader = store.reader().map_err(|e| e.to_string())?;
    let others = reader
        .read(|conn| {
            Ok(superusers::count_other_than(
                conn,
                &col.table,
                INSTALLER_EMAIL,
            )?)
        })
        .map_err(|e| e.to_string())?;
    if others > 0 {
        return Ok(None);
    }
    run(
        store,
        SuperuserAction::Upsert,
        INSTALLER_EMAIL,
        Some(&random::random_string(30)),
    )?;
    let (id, token_key, options): (String, String, String) = reader
        .read(|conn| {
            let (id, key) = superusers::id_and_token_key(conn, &col.table, INSTALLER_EMAIL)?;
            let options = superusers::collection_options(conn, &col.id)?;
            Ok((id, key, options))
        })
        .map_err(|e| e.to_string())?;
    let options: Value = serde_json::from_str(&options).unwrap_or_default();
    let secret = options["authToken"]["secret"].as_str().unwrap_or_default();
    let mut claims = serde_json::Map::new();
    claims.insert("type".into(), "auth".into());
    claims.insert("id".into(), id.into());
    claims.insert("collectionId".into(), col.id.clone().into());
    claims.insert("refreshable".into(), false.into());
    Ok(Some(InstallerClaims {
        claims,
        signing_key: format!("{token_key}{secret}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_like_pocketbase() {
        for ok in [
            "a@b.co",
            "A@B.CO",
            "ä@b.co",
            "a@b.co.",
            "a@1.co",
            "x.y+z@sub.example.com",
        ] {
            assert!(is_email(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "bad",
            "a@b",
            "a..b@b.co",
            "a.@b.co",
            "a b@b.co",
            "a@-b.co",
            "a@b.c1",
            "a\"b@b.co",
            "@b.co",
        ] {
            assert!(!is_email(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a@b.co"), "\"a@b.co\"");
        assert_eq!(go_quote("ä\"\\"), "\"ä\\\"\\\\\"");
    }

    #[test]
    fn nocase_index_detection() {
        assert!(!email_index_is_nocase(&[
            "CREATE UNIQUE INDEX `idx_email` ON `_superusers` (`email`) WHERE `email` != ''".into()
        ]));
        assert!(email_index_is_nocase(&[
            "CREATE UNIQUE INDEX `idx_email` ON `_superusers` (`email` COLLATE NOCASE) WHERE `email` != ''".into()
        ]));
    }
}
