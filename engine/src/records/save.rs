//! The records API write path: create, update and delete with PocketBase's rule outcomes,
//! validation, password hashing (CPU pool, before the write), one writer job per request,
//! files written before and removed only after the commit, and realtime events after it.

use super::access::{now_ms, Caller};
use super::db::Db;
use super::event::{Action, RecordEvent, RecordHooks, RecordRequest, RowWrite, Subject};
use super::input::{BodyInput, RecordBody, WriteInput};
use super::validate::{self, Access};
use super::write::{Draft, FormInput, Val};
use super::{files, Arena, SqlRef, SqlVal};
use crate::error::{ApiError, FieldError, FieldErrors};
use crate::offload::{DropOnPool, OFFLOAD_PARSE_BYTES};
use crate::schema::SchemaPair;
use pocketbun_query::{CompiledFilter, Value as QValue};
use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::{Collection, FieldKind};
use pocketbun_storage::rusqlite::{self, Connection};
use pocketbun_storage::{ErrorKind, StorageError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

const ONLY_SUPERUSERS: &str = "Only superusers can perform this action.";
const DELETE_FAILED: &str =
    "Failed to delete record. Make sure that the record is not part of a required relation reference.";

/// Why a writer job refused.
#[derive(Debug)]
pub enum JobError {
    Validation(FieldErrors),
    Refused(String),
    /// The operation's own error response (a batch's checks run in the job).
    Api(ApiError),
}

/// Runs `job` on the writer thread; a refusal or a storage failure rolls the job back and
/// reaches the caller through the writer's reply, the storage error with its cause.
pub async fn write_job<T, F>(ctx: &Db, job: F) -> Result<T, JobFail>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, JobFail> + Send + 'static,
{
    ctx.core.store.writer().submit_with(job).await
}

/// A failed job: refused on purpose or a storage failure.
#[derive(Debug)]
pub enum JobFail {
    Refused(JobError),
    Storage(StorageError),
}

impl From<StorageError> for JobFail {
    fn from(e: StorageError) -> Self {
        JobFail::Storage(e)
    }
}

impl From<rusqlite::Error> for JobFail {
    fn from(e: rusqlite::Error) -> Self {
        JobFail::Storage(StorageError::from(e))
    }
}

/// Now as PocketBase stores datetimes (`2006-01-02 15:04:05.000Z`).
fn now_text() -> String {
    datetime_text(now_ms())
}

/// The Unix time `ms` (milliseconds) as PocketBase stores datetimes: storage's digit-by-digit
/// formatter, the one the request logs use (chrono's `format` cost ~4.5k instructions per
/// save; its calendar fields then `push`ed char by char, ~0.8k; this ~0.25k).
fn datetime_text(ms: i64) -> String {
    pocketbun_storage::time::format_unix_millis(ms)
}

/// Bytes a stored value takes (text length; 8 for anything else).
fn value_bytes(v: &SqlVal) -> usize {
    match v {
        SqlVal::Text(t) => t.len(),
        _ => 8,
    }
}

fn load_row(ctx: &Db, coll: &Arc<Collection>, id: &str) -> Result<Option<Vec<SqlVal>>, ApiError> {
    ctx.reader
        .read(|conn| Ok(super::row_by_id(conn, coll, id)?))
        .map_err(|e| ApiError::not_found(None).caused_by(e))
}

/// A rule check's statement and what it binds: the rule's parameters, then the record's
/// values (the stored record's id, or a draft's columns).
struct RuleQuery {
    sql: String,
    params: Vec<QValue>,
    values: Vec<SqlVal>,
}

impl RuleQuery {
    /// Whether the record passes, on `conn` (a reader, or the writer inside a job).
    fn passes(&self, conn: &Connection) -> rusqlite::Result<bool> {
        let binds = self.params.iter().map(SqlRef::from);
        let binds = binds.chain(self.values.iter().map(SqlVal::borrow));
        crate::recstore::rules::passes(conn, &self.sql, binds)
    }

    /// [`Self::passes`] on the worker's reader (a failed read fails the check).
    fn read(&self, ctx: &Db) -> bool {
        ctx.reader
            .read(|conn| Ok(self.passes(conn)?))
            .unwrap_or(false)
    }
}

/// `rule` compiled for the caller (hidden fields allowed, as rules read them) and its
/// parameters bound now (`None`: the rule does not compile).
fn rule_condition(
    ctx: &Db,
    schema: &SchemaPair,
    coll: &Collection,
    rule: &str,
    caller: &Caller,
) -> Option<(Arc<CompiledFilter>, Vec<QValue>)> {
    let cond = ctx
        .queries
        .borrow_mut()
        .condition(&schema.query, &coll.name, rule, &caller.info, true)
        .ok()?;
    let params = cond.bind(&caller.info, now_ms());
    Some((cond, params))
}

/// The query telling whether the stored record `id` passes `rule` for the caller (`None`:
/// the rule does not compile, so it fails).
fn stored_check(
    ctx: &Db,
    schema: &SchemaPair,
    coll: &Collection,
    rule: &str,
    caller: &Caller,
    id: &str,
) -> Option<RuleQuery> {
    let (cond, params) = rule_condition(ctx, schema, coll, rule, caller)?;
    let sql = crate::recstore::rules::check_by_id(&coll.name, &cond, params.len() + 1);
    Some(RuleQuery {
        sql,
        params,
        values: vec![SqlVal::from(id)],
    })
}

/// The query telling whether the not yet saved `draft` passes `rule` (checked against a
/// one-row CTE shadowing the collection's table, as PocketBase does).
fn draft_check(
    ctx: &Db,
    schema: &SchemaPair,
    draft: &Draft,
    rule: &str,
    caller: &Caller,
) -> Option<RuleQuery> {
    let coll = &draft.coll;
    let (cond, params) = rule_condition(ctx, schema, coll, rule, caller)?;
    let n = params.len();
    // the row as the rule sees it: a temporary id until one is set, never verified yet
    let mut cols = draft.columns();
    let mut set = |name: &str, v: SqlVal| {
        if let Some(i) = draft.index(name) {
            cols[i].1 = v;
        }
    };
    if draft.id().is_empty() {
        let temp = format!(
            "__temp_id____pb_create__{}",
            pocketbun_storage::random::random_string(6)
        );
        set("id", SqlVal::from(temp));
    }
    if coll.is_auth() {
        set("verified", SqlVal::from(false));
    }
    let sql = crate::recstore::rules::draft_check(
        &coll.name,
        &cond,
        cols.iter().map(|(name, _)| name.as_str()),
        n + 1,
    );
    Some(RuleQuery {
        sql,
        params,
        values: cols.into_iter().map(|(_, v)| v).collect(),
    })
}

fn manage_rule(coll: &Collection, caller: &Caller) -> Option<String> {
    if !coll.is_auth() || caller.info.auth.is_none() {
        return None;
    }
    coll.auth.manage_rule.clone().filter(|r| !r.is_empty())
}

/// Maps a failed insert/update to PocketBase's unique-field errors.
fn unique_errors(err: &rusqlite::Error, coll: &Collection) -> Option<FieldErrors> {
    // SQLite's extended code says that a unique key failed; only which columns failed is
    // read from its message ("UNIQUE constraint failed: posts.slug, posts.lang").
    if ErrorKind::of(err) != ErrorKind::Unique {
        return None;
    }
    let msg = err.to_string().to_lowercase();
    let msg = format!("{} ", msg.trim().replace(',', " "));
    let mut errs = FieldErrors::new();
    for f in &coll.fields {
        let needle = format!(" {}.{} ", coll.name, f.name).to_lowercase();
        if msg.contains(&needle) {
            errs.add(
                f.name.clone(),
                FieldError::new("validation_not_unique", "Value must be unique"),
            );
        }
    }
    (!errs.is_empty()).then_some(errs)
}

/// Writes the draft's row (insert or update) inside the writer job. `only_changed`: an
/// update writes only the columns the draft changed (a batch's draft may predate what an
/// earlier operation's cascade did to the row).
///
/// Returns the stored row of a create, one value per field of the draft's collection, when
/// it follows from the bound values ([`super::write::stored_as`]) and the statement and the
/// hooks changed exactly that one row (`total_changes` counts trigger and hook writes too);
/// `None` asks the caller to read the row back.
fn persist(
    conn: &Connection,
    draft: &mut Draft,
    schema: &Collections,
    only_changed: bool,
    hooks: &RecordHooks,
) -> Result<Option<Vec<SqlVal>>, JobFail> {
    let coll = draft.coll.clone();
    let password_changed = coll.is_auth()
        && !draft.is_new
        && matches!(draft.get("password"), Some(Val::Password { plain, .. }) if !plain.is_empty());
    if coll.is_auth() {
        if !draft.is_new {
            let token_same = draft.str_of("tokenKey") == draft.original_str("tokenKey");
            if token_same
                && (password_changed || draft.str_of("email") != draft.original_str("email"))
            {
                if let Some(FieldKind::Text {
                    autogenerate_pattern,
                    ..
                }) = coll.field("tokenKey").map(|f| &f.kind)
                {
                    let key = super::write::autogenerate(autogenerate_pattern);
                    draft.set("tokenKey", Val::Str(key));
                }
            }
        }
        let id = draft.id();
        for other in schema.iter().filter(|c| c.is_auth() && c.id != coll.id) {
            if crate::recstore::rows::exists(conn, &other.name, &id, false)? {
                let mut errs = FieldErrors::new();
                errs.add(
                    "id",
                    FieldError::new(
                        "validation_invalid_auth_id",
                        "Invalid or duplicated auth record id.",
                    ),
                );
                return Err(JobFail::Refused(JobError::Validation(errs)));
            }
        }
    }
    let mut cols = draft.columns();
    if only_changed && !draft.is_new {
        let mut before = draft.clone();
        before.vals = draft.original.clone();
        let mut i = 0;
        cols.retain(|(_, v)| {
            i += 1;
            *v != before.column(i - 1)
        });
        if cols.is_empty() {
            cols.push(("id".to_string(), SqlVal::from(draft.original_str("id"))));
        }
    }
    let id_slot = draft.index("id");
    let row_id = match id_slot.map(|i| match draft.is_new {
        true => &draft.vals[i],
        false => &draft.original[i],
    }) {
        Some(Val::Str(s)) => s.as_str(),
        _ => "",
    };
    let row = RowWrite {
        action: if draft.is_new {
            Action::Create
        } else {
            Action::Update
        },
        collection: &coll,
        id: row_id,
        schema,
    };
    // auth records keep the read-back (the superusers' installer clean-up, the auth hooks);
    // they are not the bulk of creates
    let changes_before = (draft.is_new && !coll.is_auth()).then(|| conn.total_changes());
    let memos = hooks.before_write(conn, &row)?;
    let result = if draft.is_new {
        crate::recstore::rows::insert(conn, &coll.name, &cols)
    } else {
        let id = SqlVal::from(draft.original_str("id"));
        crate::recstore::rows::update(conn, &coll.name, &cols, &id)
    };
    match result {
        Ok(0) if !draft.is_new => Err(JobFail::Refused(JobError::Api(ApiError::not_found(None)))),
        Ok(_) if draft.is_new && coll.name == crate::auth::token::SUPERUSERS => {
            // the first real superuser retires the installer's temporary account, as in PocketBase
            crate::auth::installer::remove_installer_row(conn, &coll.name)?;
            hooks.after_write(conn, &row, memos)?;
            Ok(None)
        }
        Ok(_) => {
            hooks.after_write(conn, &row, memos)?;
            let one_row = changes_before.is_some_and(|n| conn.total_changes() == n + 1);
            Ok(one_row.then(|| stored_row(&coll, cols)).flatten())
        }
        Err(e) => match unique_errors(&e, &coll) {
            Some(errs) => Err(JobFail::Refused(JobError::Validation(errs))),
            None => Err(e.into()),
        },
    }
}

/// The stored values of a just inserted row of `coll` (`cols`: one bound value per field,
/// in field order, as [`Draft::columns`] gives them), or `None` when one of them needs
/// SQLite's own conversion to be known.
fn stored_row(coll: &Collection, cols: Vec<(String, SqlVal)>) -> Option<Vec<SqlVal>> {
    if cols.len() != coll.fields.len() {
        return None;
    }
    coll.fields
        .iter()
        .zip(cols)
        .map(|(f, (name, v))| {
            if name != f.name {
                return None;
            }
            super::write::stored_as(f, v)
        })
        .collect()
}

fn failed(message: &str, errs: FieldErrors) -> ApiError {
    ApiError::validation(message, &errs)
}

/// A write prepared on the worker: the job for the writer connection and what follows it.
pub struct Prepared {
    pub write: WriteFn,
    pub after: After,
}

/// One operation's part of a writer job.
pub type WriteFn = Box<dyn FnOnce(&Connection) -> Result<Done, JobFail> + Send>;

/// What a write did: its realtime events and, for create/update, the saved row.
pub struct Done {
    pub events: Vec<RecordEvent>,
    pub values: Option<Vec<SqlVal>>,
}

/// The rows a batch's earlier operations leave behind as its later ones must see them
/// while they are prepared (`None`: deleted). Non-empty once anything was prepared, from then
/// on the checks that read the database run in the writer job, on the batch's transaction.
#[derive(Default)]
pub struct BatchState {
    rows: HashMap<(String, String), Option<Vec<SqlVal>>>,
    /// The batch body was over [`OFFLOAD_PARSE_BYTES`]: each operation's data is converted
    /// on the CPU pool (its own size is not known without walking it).
    pub big: bool,
}

impl BatchState {
    fn dirty(&self) -> bool {
        !self.rows.is_empty()
    }
}

/// The stored row `id`, as an earlier operation of the batch left it if any.
fn current_row(
    ctx: &Db,
    batch: Option<&BatchState>,
    coll: &Arc<Collection>,
    id: &str,
) -> Result<Option<Vec<SqlVal>>, ApiError> {
    if let Some(row) = batch.and_then(|b| b.rows.get(&(coll.id.clone(), id.to_string()))) {
        return Ok(row.clone());
    }
    load_row(ctx, coll, id)
}

/// Whether a batch operation sees the record `id` (PUT decides create or update with it).
pub fn batch_exists(ctx: &Db, batch: &BatchState, coll: &Arc<Collection>, id: &str) -> bool {
    matches!(current_row(ctx, Some(batch), coll, id), Ok(Some(_)))
}

enum Op {
    Upsert,
    Delete,
}

/// What an operation does after its job: on failure drop the files it wrote, on success
/// remove the files it replaced, publish its events and render its response.
pub struct After {
    op: Op,
    schema: Arc<SchemaPair>,
    coll: Arc<Collection>,
    caller: DropOnPool<Caller>,
    query: Vec<(String, String)>,
    id: String,
    dir: PathBuf,
    written: Vec<String>,
    to_remove: Vec<String>,
    fail_msg: &'static str,
    /// The job's one write is its last fallible step (see `Writer::submit_one_write`): a
    /// create of a base record (an auth record's may retire the installer account after its
    /// INSERT) with no checks deferred to the job.
    one_write: bool,
}

impl After {
    /// The operation's error after its job failed (its new files are removed): the job's
    /// own answer, the field errors of an upsert, else the operation's 400 with the failure
    /// (a storage error, a refusal's reason) kept as its cause.
    pub async fn failed(self, ctx: &Db, err: JobFail) -> ApiError {
        self.discard(ctx).await;
        let answer = ApiError::bad_request(Some(self.fail_msg));
        match (err, &self.op) {
            (JobFail::Refused(JobError::Api(e)), _) => e,
            (JobFail::Refused(JobError::Validation(errs)), Op::Upsert) => {
                failed(self.fail_msg, errs)
            }
            (JobFail::Refused(JobError::Refused(why)), _) if !why.is_empty() => {
                answer.caused_by(why)
            }
            (JobFail::Refused(_), _) => answer,
            (JobFail::Storage(e), _) => answer.caused_by(e),
        }
    }

    /// Removes the files written for a write that did not happen.
    pub async fn discard(&self, ctx: &Db) {
        if !self.written.is_empty() {
            files::remove_names(ctx, &self.dir, self.written.clone()).await;
        }
    }

    /// After the commit: replaced files go, realtime hears of it, and the answer.
    pub async fn finish(self, ctx: &Db, done: Done) -> Result<Outcome, ApiError> {
        if !self.to_remove.is_empty() {
            files::remove_names(ctx, &self.dir, self.to_remove).await;
        }
        publish_deletes(ctx, done.events).await;
        match self.op {
            Op::Delete => Ok(Outcome::Deleted),
            Op::Upsert => match done.values {
                Some(values) => {
                    record_json(
                        ctx,
                        &self.schema,
                        &self.caller,
                        &self.coll,
                        values,
                        &self.query,
                    )
                    .await
                }
                None => {
                    stored_record_json(
                        ctx,
                        &self.schema,
                        &self.caller,
                        &self.coll,
                        &self.id,
                        &self.query,
                    )
                    .await
                }
            }
            .map(Outcome::Record),
        }
    }
}

/// What a committed operation answers.
pub enum Outcome {
    /// The saved record's JSON, as the read path serialises it (`expand`, flags; `fields=`
    /// is applied to it on the way out).
    Record(String),
    /// A delete: no body (204).
    Deleted,
}

/// What [`convert_body`] makes of the request data: the draft, the `@request.body` rules
/// see (empty when nothing reads it: [`body_read`]), the draft's id before the data set it,
/// the auth form's values.
type Converted = (
    Draft,
    serde_json::Map<String, serde_json::Value>,
    String,
    FormInput,
);

/// The request data onto the draft: PocketBase's resolution of modifiers and uploads, hidden
/// fields dropped for non-superusers, the `@request.body` rules see (if `rules_body`), the
/// draft's id before the data set it (what the stored record is looked up by), then the
/// form load. `big`
/// (on the CPU pool): JSON values over [`OFFLOAD_PARSE_BYTES`] are also checked here, so
/// validation on the worker does not parse them again. A 64 MiB create (32 MiB of small JSON
/// numbers) spent seconds of CPU here (debug build): each JSON value is encoded, checked and
/// decoded by the resolution, and encoded again by the load.
fn convert_body(
    mut draft: Draft,
    body: RecordBody,
    superuser: bool,
    rules_body: bool,
    big: bool,
) -> Converted {
    let coll = draft.coll.clone();
    let mut data = draft.resolve(body.data, body.uploads);
    if !superuser {
        for f in &coll.fields {
            if f.hidden && !(coll.is_auth() && f.name == "password") {
                data.remove(&f.name);
            }
        }
    }
    // superusers skip the rules, and most requests have no rule that reads the body: no
    // copy of it for them
    let rules_body = if rules_body {
        draft.body_for_rules(&data)
    } else {
        serde_json::Map::new()
    };
    let stored_id = draft.id();
    let form = draft.load(&data, superuser);
    if big {
        for (i, v) in draft.vals.iter().enumerate() {
            if let Val::Json(Some(text)) = v {
                if text.len() > OFFLOAD_PARSE_BYTES
                    && !draft.valid_json.contains(&i)
                    && crate::json_strict::is_valid(text)
                {
                    draft.valid_json.push(i);
                }
            }
        }
    }
    // the request data goes here too, off the worker when big
    drop(data);
    (draft, rules_body, stored_id, form)
}

/// Runs one prepared write in its own writer job, then what follows it.
pub async fn run_single(ctx: &Db, prepared: Prepared) -> Result<Outcome, ApiError> {
    let Prepared { write, after } = prepared;
    let writer = ctx.core.store.writer();
    let reply = if after.one_write {
        writer.submit_one_write(write)
    } else {
        writer.submit_with(write)
    };
    match reply.await {
        Ok(done) => after.finish(ctx, done).await,
        Err(e) => Err(after.failed(ctx, e).await),
    }
}

/// A database check deferred to the writer job: the rule's query and the error when no row
/// matches.
type Check = (RuleQuery, ApiError);

fn run_checks(conn: &Connection, checks: Vec<Check>) -> Result<(), JobFail> {
    for (query, err) in checks {
        if !query.passes(conn)? {
            return Err(JobFail::Refused(JobError::Api(err)));
        }
    }
    Ok(())
}

/// Takes what the stored row holds now for the fields an update draft leaves unchanged (an
/// earlier operation of the batch, a cascade for one, may have changed them since).
fn rebase(conn: &Connection, draft: &mut Draft) -> Result<(), JobFail> {
    let coll = draft.coll.clone();
    let Some(row) = super::row_by_id(conn, &coll, &draft.original_str("id"))? else {
        return Err(JobFail::Refused(JobError::Api(ApiError::not_found(None))));
    };
    let now = Draft::from_row(coll.clone(), &row);
    let mut before = draft.clone();
    before.vals = draft.original.clone();
    for i in 0..coll.fields.len() {
        if draft.column(i) == before.column(i) {
            draft.vals[i] = now.vals[i].clone();
        }
    }
    draft.original = now.original;
    draft.valid_json.clear();
    Ok(())
}

/// The row a saved draft leaves, one value per field.
fn draft_row(draft: &Draft) -> Vec<SqlVal> {
    // the columns are the fields, in field order
    draft.columns().into_iter().map(|(_, v)| v).collect()
}

/// Checks a create/update/delete `rule` before the request body is read, where what
/// precedes the body decides it (issue 16: a guest must not make a worker parse a body
/// that a rule refuses anyway). A rule that folds to FALSE for the caller, method,
/// headers and query ([`pocketbun_query::QueryCache::decide`]) refuses with PocketBase's
/// answer to that rule failing (create: 400 "Failed to create record.", update and
/// delete: 404). An update or delete rule that reads no `@request.body` is also checked
/// against the stored record here (`unparsed`: the body is still to be read), which gives
/// PocketBase's answer too: it reads the body, finds the record, then checks the rule, and
/// for such a rule the body changes nothing. Returns whether the rule passed that check.
#[allow(clippy::too_many_arguments)]
fn rule_before_body(
    ctx: &Db,
    id: &str,
    schema: &SchemaPair,
    coll: &Collection,
    rule: &str,
    caller: &Caller,
    unparsed: bool,
    is_new: bool,
) -> Result<bool, ApiError> {
    let refused = || {
        if is_new {
            ApiError::bad_request(Some("Failed to create record."))
        } else {
            ApiError::not_found(None)
        }
    };
    let decided = ctx
        .queries
        .borrow_mut()
        .decide(&schema.query, &coll.name, rule, &caller.info);
    if decided == Some(false) {
        return Err(refused());
    }
    if is_new || !unparsed || rule.contains("@request.body") {
        return Ok(false);
    }
    match stored_check(ctx, schema, coll, rule, caller, id) {
        Some(query) if query.read(ctx) => Ok(true),
        _ => Err(refused()),
    }
}

/// Whether anything after the body is bound may read the caller's `@request.body`: the
/// create or update `rule` naming it, an auth collection (its `manageRule` and the email
/// flags of the answer), an `expand` of the answer (the expanded collections' view rules)
/// or a before-request hook (it sees the caller). Otherwise the body's copy for the rules
/// is not made: ~4.2k instructions a create of `loadtest`'s 7-field body (copy and drop,
/// callgrind under a create load), and as big as the body.
fn body_read(ctx: &Db, coll: &Collection, rule: Option<&str>, query: &[(String, String)]) -> bool {
    rule.is_some_and(|r| r.contains("@request.body"))
        || coll.is_auth()
        || query.iter().any(|(k, _)| k == "expand")
        || ctx.hooks.has_before()
}

/// What the steps of one create or update share.
struct Upsert<'a> {
    ctx: &'a Db,
    schema: &'a SchemaPair,
    coll: &'a Arc<Collection>,
    is_new: bool,
    superuser: bool,
    /// A batch's operation after an earlier one wrote: the database checks run in the job.
    defer: bool,
    /// Whether anything may read the caller's `@request.body` ([`body_read`]).
    rules_body: bool,
    /// The operation's 400 message ("Failed to create record." / "... update ...").
    fail_msg: &'static str,
}

/// The new files an upsert writes before its row, and the stored ones it replaces.
struct Staged {
    /// The record's directory (empty when no file is written or removed).
    dir: PathBuf,
    /// Written to `dir` already: removed again if the write fails.
    written: Vec<String>,
    /// Removed after the commit.
    to_remove: Vec<String>,
}

impl Upsert<'_> {
    /// The request data bound onto a new draft or one of the stored row ([`convert_body`]):
    /// on the CPU pool when the body or the stored row is big.
    async fn bind_input(
        &self,
        existing: Option<Vec<SqlVal>>,
        body: RecordBody,
        big: bool,
    ) -> Result<Converted, ApiError> {
        // a big stored row (even under a small body) is turned into the draft, converted and
        // its JSON values checked on the CPU pool: copying a 48 MiB row into a draft twice
        // and validating its 32 MiB JSON value took the worker ~1 s of CPU (debug build)
        let big_row = existing.as_deref().is_some_and(|row| {
            row.iter().map(value_bytes).sum::<usize>() > super::OFFLOAD_ENCODE_BYTES
        });
        let draft_of = |coll: Arc<Collection>, existing: Option<Vec<SqlVal>>| match existing {
            None => Draft::new(coll),
            Some(row) => Draft::from_row(coll, &row),
        };
        let (superuser, rules_body) = (self.superuser, self.rules_body);
        if big || big_row {
            let coll = self.coll.clone();
            Ok(self
                .ctx
                .core
                .cpu
                .run(move || {
                    convert_body(draft_of(coll, existing), body, superuser, rules_body, true)
                })
                .await?)
        } else {
            let draft = draft_of(self.coll.clone(), existing);
            Ok(convert_body(draft, body, superuser, rules_body, false))
        }
    }

    /// The create or update `rule` (unless `rule_checked` before the body) and the
    /// `manageRule`, against the draft (create) or the stored record `stored_id` (update):
    /// checked now, or kept for the writer job when deferred. Returns those kept and the
    /// caller's access for validation.
    fn rule_checks(
        &self,
        caller: &Caller,
        draft: &Draft,
        rule: Option<&str>,
        stored_id: &str,
        rule_checked: bool,
    ) -> Result<(Vec<Check>, Access), ApiError> {
        let (ctx, schema, coll) = (self.ctx, self.schema, self.coll);
        let mut checks: Vec<Check> = Vec::new();
        if self.superuser {
            return Ok((checks, Access::Superuser));
        }
        let rule = rule.filter(|r| !r.is_empty());
        let mut access = Access::Default;
        if self.is_new {
            if let Some(r) = rule {
                match draft_check(ctx, schema, draft, r, caller) {
                    Some(query) if self.defer => {
                        checks.push((query, ApiError::bad_request(Some(self.fail_msg))));
                    }
                    Some(query) if query.read(ctx) => {}
                    _ => return Err(ApiError::bad_request(Some(self.fail_msg))),
                }
            }
            if let Some(m) = manage_rule(coll, caller) {
                if draft_check(ctx, schema, draft, &m, caller).is_some_and(|q| q.read(ctx)) {
                    access = Access::Manager;
                }
            }
        } else {
            if let Some(r) = rule.filter(|_| !rule_checked) {
                match stored_check(ctx, schema, coll, r, caller, stored_id) {
                    Some(query) if self.defer => {
                        checks.push((query, ApiError::not_found(None)));
                    }
                    Some(query) if query.read(ctx) => {}
                    _ => return Err(ApiError::not_found(None)),
                }
            }
            if let Some(m) = manage_rule(coll, caller) {
                if stored_check(ctx, schema, coll, &m, caller, &draft.id())
                    .is_some_and(|q| q.read(ctx))
                {
                    access = Access::Manager;
                }
            }
        }
        Ok((checks, access))
    }

    /// The auth form first (an old password is checked on the CPU pool), then what
    /// PocketBase fills on save, then the record's fields (on the worker's reader, unless
    /// the checks are deferred to the writer job).
    async fn validate(
        &self,
        draft: &mut Draft,
        form: &FormInput,
        access: Access,
    ) -> Result<(), ApiError> {
        let (ctx, coll, fail_msg) = (self.ctx, self.coll, self.fail_msg);
        let mut old_ok = true;
        if coll.is_auth()
            && !self.is_new
            && access < Access::Manager
            && !form.old_password.is_empty()
            && (!form.password.is_empty() || !form.password_confirm.is_empty())
        {
            let hash = match draft.index("password").map(|i| &draft.original[i]) {
                Some(Val::Password { hash, .. }) => hash.clone(),
                _ => String::new(),
            };
            old_ok =
                crate::auth::password::check(&ctx.core.cpu, form.old_password.clone(), hash).await;
        }
        let errs = validate::form(draft, form, access, old_ok);
        if !errs.is_empty() {
            return Err(failed(fail_msg, errs));
        }
        if coll.is_auth() && coll.name == "_superusers" {
            draft.set("verified", Val::Bool(true));
        }
        draft.prepare_save(&now_text());
        if !self.defer {
            let collections = &self.schema.collections;
            let errs = ctx
                .reader
                .read(|conn| Ok(validate::fields(draft, collections, conn, &ctx.patterns)?))
                .map_err(|e| ApiError::bad_request(Some(fail_msg)).caused_by(e))?;
            if !errs.is_empty() {
                return Err(failed(fail_msg, errs));
            }
        }
        Ok(())
    }

    /// A new plain password hashed on the CPU pool, never on a worker or the writer.
    async fn hash_password(&self, draft: &mut Draft) -> Result<(), ApiError> {
        let Some(i) = draft.index("password") else {
            return Ok(());
        };
        let Val::Password { plain, .. } = &draft.vals[i] else {
            return Ok(());
        };
        if plain.is_empty() {
            return Ok(());
        }
        let cost = match &self.coll.fields[i].kind {
            FieldKind::Password { cost, .. } if *cost > 0 => *cost as u32,
            _ => crate::auth::password::DEFAULT_COST,
        };
        let hash = (self.ctx.core)
            .hash_password(plain.clone(), cost)
            .await
            .map_err(|e| ApiError::bad_request(Some(self.fail_msg)).caused_by(e))?;
        if let Val::Password { hash: h, .. } = &mut draft.vals[i] {
            *h = hash;
        }
        Ok(())
    }

    /// New files go to disk before the row (removed again if the write fails); the stored
    /// ones the draft no longer names are removed after the commit.
    async fn stage_files(&self, draft: &Draft) -> Result<Staged, ApiError> {
        use super::write::FileItem;
        let ctx = self.ctx;
        let mut to_write = Vec::new();
        let mut to_remove = Vec::new();
        for (i, f) in self.coll.fields.iter().enumerate() {
            if !matches!(f.kind, FieldKind::File { .. }) {
                continue;
            }
            let now = draft.file_names(i);
            if let Val::Files(items) = &draft.vals[i] {
                for it in items {
                    if let FileItem::New(k) = it {
                        let nf = &draft.new_files[*k];
                        to_write.push(files::PendingFile {
                            name: nf.name.clone(),
                            data: nf.data.clone(),
                            mime: nf.sniffed.0,
                            original_name: nf.original_name.clone(),
                        });
                    }
                }
            }
            if let Val::Files(old) = &draft.original[i] {
                for it in old {
                    if let FileItem::Name(n) = it {
                        if !now.contains(n) {
                            to_remove.push(n.clone());
                        }
                    }
                }
            }
        }
        let written: Vec<String> = to_write.iter().map(|f| f.name.clone()).collect();
        // the record's directory only when a file goes in or out (the path's three joins
        // cost ~1.2k instructions a create without files, callgrind under a create load)
        let dir = if to_write.is_empty() && to_remove.is_empty() {
            PathBuf::new()
        } else {
            files::record_dir(ctx.core.store.dir(), &self.coll.id, &draft.id())
        };
        if !to_write.is_empty() {
            files::write_all(ctx, &dir, to_write)
                .await
                .map_err(|e| ApiError::bad_request(Some(self.fail_msg)).caused_by(e))?;
        }
        Ok(Staged {
            dir,
            written,
            to_remove,
        })
    }

    /// The writer job: the deferred checks, then (deferred) the update rebased on the row
    /// as the batch left it and the fields validated on the job's connection, the row
    /// written and the event of the saved record loaded.
    fn job(&self, mut draft: Draft, checks: Vec<Check>) -> WriteFn {
        let (is_new, defer, fail_msg) = (self.is_new, self.defer, self.fail_msg);
        let action = if is_new {
            Action::Create
        } else {
            Action::Update
        };
        let collections = self.schema.collections.clone();
        let job_coll = self.coll.clone();
        let hooks = self.ctx.hooks.clone();
        Box::new(move |conn| {
            run_checks(conn, checks)?;
            if defer && !is_new {
                rebase(conn, &mut draft)?;
            }
            if defer {
                let patterns = validate::Patterns::default();
                let errs = validate::fields(&draft, &collections, conn, &patterns)?;
                if !errs.is_empty() {
                    return Err(JobFail::Refused(JobError::Api(failed(fail_msg, errs))));
                }
            }
            let stored = persist(conn, &mut draft, &collections, defer, &hooks)?;
            let ev = match stored {
                // the row as bound is the row as stored (see `persist`)
                Some(values) if is_new && Arc::ptr_eq(&draft.coll, &job_coll) => {
                    Some(RecordEvent {
                        action,
                        collection: job_coll,
                        values,
                        from_values: false,
                    })
                }
                _ => RecordEvent::load(conn, action, job_coll, &draft.id())?,
            };
            let values = ev.as_ref().map(|e| e.values.clone());
            Ok(Done {
                events: ev.into_iter().collect(),
                values,
            })
        })
    }
}

/// Prepares a create (`existing` `None`) or update (`Some(empty)`: the row `input.id` is
/// loaded after the body and access checks) up to its writer job. An unread `body` is read
/// once the rules decided what they can without it. In a batch, the checks that read the
/// database run in the job once earlier operations wrote something. The steps: the rule
/// before the body, the body bound onto the draft ([`Upsert::bind_input`]), the rules
/// ([`Upsert::rule_checks`]), the request hook, validation ([`Upsert::validate`]), the
/// password hash, the files ([`Upsert::stage_files`]), the job ([`Upsert::job`]).
pub async fn prepare_upsert(
    ctx: &Db,
    input: WriteInput,
    body: BodyInput<'_>,
    schema: Arc<SchemaPair>,
    coll: Arc<Collection>,
    existing: Option<Vec<SqlVal>>,
    batch: Option<&mut BatchState>,
) -> Result<Prepared, ApiError> {
    let is_new = existing.is_none();
    let WriteInput {
        caller,
        query,
        id: target,
        body_len,
    } = input;
    let big = match batch.as_deref() {
        Some(b) => b.big,
        None => body_len > OFFLOAD_PARSE_BYTES,
    };
    // holds the `@request.body` of rules, as big as the body: freed on the pool then
    let mut caller = DropOnPool::new(caller, &ctx.core.cpu, big);
    if batch.is_some() {
        caller.info.context = "batch".into();
    }
    let rule = if is_new {
        coll.create_rule.as_deref()
    } else {
        coll.update_rule.as_deref()
    };
    let superuser = caller.superuser();
    let up = Upsert {
        ctx,
        schema: &schema,
        coll: &coll,
        is_new,
        superuser,
        defer: batch.as_deref().is_some_and(BatchState::dirty),
        rules_body: !superuser && body_read(ctx, &coll, rule, &query),
        fail_msg: if is_new {
            "Failed to create record."
        } else {
            "Failed to update record."
        },
    };
    // the rule alone decides: refuse before reading the body. PocketBase parses first, so
    // a malformed body sent by a guest here gets our 403 where it gets a 400; we keep the
    // body unread on purpose (a guest must not make a worker parse up to 32 MiB for nothing)
    if !up.superuser && rule.is_none() {
        return Err(ApiError::forbidden(Some(ONLY_SUPERUSERS)));
    }
    let rule_checked = match rule.filter(|r| !up.superuser && !r.is_empty()) {
        Some(r) => {
            let unread = body.is_unread();
            rule_before_body(ctx, &target, &schema, &coll, r, &caller, unread, is_new)?
        }
        None => false,
    };
    let body: RecordBody = body.read().await?;
    let existing = match existing {
        Some(row) if row.is_empty() => match current_row(ctx, batch.as_deref(), &coll, &target)? {
            Some(row) => Some(row),
            None => return Err(ApiError::not_found(None)),
        },
        other => other,
    };
    let (mut draft, rules_body, stored_id, form) = up.bind_input(existing, body, big).await?;
    caller.info.body = rules_body;
    let (checks, access) = up.rule_checks(&caller, &draft, rule, &stored_id, rule_checked)?;

    // PocketBase's OnRecordCreateRequest / OnRecordUpdateRequest: the rules passed, the
    // draft holds the request's data; a hook may change it or refuse before anything else
    ctx.hooks.before_request(&mut RecordRequest {
        action: if is_new {
            Action::Create
        } else {
            Action::Update
        },
        collection: &coll,
        caller: &caller,
        subject: Subject::Draft(&mut draft),
    })?;
    if ctx.hooks.has_before() {
        // a hook may have changed a JSON value: validation checks them all again
        draft.valid_json.clear();
    }
    up.validate(&mut draft, &form, access).await?;
    up.hash_password(&mut draft).await?;
    let staged = up.stage_files(&draft).await?;

    let id = draft.id();
    if let Some(b) = batch {
        if !is_new && draft.original_str("id") != id {
            b.rows
                .insert((coll.id.clone(), draft.original_str("id")), None);
        }
        b.rows
            .insert((coll.id.clone(), id.clone()), Some(draft_row(&draft)));
    }
    let fail_msg = up.fail_msg;
    let one_write = is_new && !coll.is_auth() && checks.is_empty();
    let write = up.job(draft, checks);
    Ok(Prepared {
        write,
        after: After {
            op: Op::Upsert,
            schema,
            coll,
            caller,
            query,
            id,
            dir: staged.dir,
            written: staged.written,
            to_remove: staged.to_remove,
            fail_msg,
            one_write,
        },
    })
}

/// The saved record as the read path serialises it (flags, `expand`).
async fn stored_record_json(
    ctx: &Db,
    schema: &SchemaPair,
    caller: &Caller,
    coll: &Arc<Collection>,
    id: &str,
    query: &[(String, String)],
) -> Result<String, ApiError> {
    let values = load_row(ctx, coll, id)?.ok_or_else(|| ApiError::not_found(None))?;
    record_json(ctx, schema, caller, coll, values, query).await
}

/// A record row as the read path serialises it (on the CPU pool when big:
/// [`super::write_records`]).
async fn record_json(
    ctx: &Db,
    schema: &SchemaPair,
    caller: &Caller,
    coll: &Arc<Collection>,
    values: Vec<SqlVal>,
    query: &[(String, String)],
) -> Result<String, ApiError> {
    // the answer's room up front: names, punctuation and values (a `String::new()` grew
    // 3 times a create, ~0.5k instructions, callgrind under a create load)
    let names: usize = coll.fields.iter().map(|f| f.name.len() + 8).sum();
    let cap = 64
        + coll.id.len()
        + coll.name.len()
        + names
        + values.iter().map(value_bytes).sum::<usize>();
    let mut arena = Arena::default();
    arena.recs.push(super::Rec {
        coll: coll.clone(),
        values,
        show_email: false,
        unhide: false,
        expand: None,
    });
    let found = [0];
    super::expand::enrich(ctx, schema, caller, &mut arena, &found, query)?;
    super::write_records(ctx, arena, found.to_vec(), "", String::with_capacity(cap))
        .await
        .map_err(ApiError::from)
}

/// Prepares a delete up to its writer job. A request's body is read (a body that cannot be
/// bound is PocketBase's 400) but not used; a batch's operations carry none.
pub async fn prepare_delete(
    ctx: &Db,
    input: WriteInput,
    body: BodyInput<'_>,
    schema: Arc<SchemaPair>,
    coll: Arc<Collection>,
    batch: Option<&mut BatchState>,
) -> Result<Prepared, ApiError> {
    let WriteInput {
        mut caller,
        query,
        id,
        ..
    } = input;
    if id.is_empty() {
        return Err(ApiError::not_found(None));
    }
    let defer = batch.as_deref().is_some_and(BatchState::dirty);
    let superuser = caller.superuser();
    // as for create/update: a null rule refuses before the body is read
    if !superuser && coll.delete_rule.is_none() {
        return Err(ApiError::forbidden(Some(ONLY_SUPERUSERS)));
    }
    let rule_checked = match coll
        .delete_rule
        .as_deref()
        .filter(|r| !superuser && !r.is_empty())
    {
        Some(r) => {
            let unread = body.is_unread();
            rule_before_body(ctx, &id, &schema, &coll, r, &caller, unread, false)?
        }
        None => false,
    };
    if batch.is_some() {
        caller.info.context = "batch".into();
    }
    body.read().await?;
    if current_row(ctx, batch.as_deref(), &coll, &id)?.is_none() {
        return Err(ApiError::not_found(None));
    }
    let mut checks: Vec<Check> = Vec::new();
    if !superuser && !rule_checked {
        if let Some(r) = coll.delete_rule.as_deref().filter(|r| !r.is_empty()) {
            match stored_check(ctx, &schema, &coll, r, &caller, &id) {
                Some(query) if defer => {
                    checks.push((query, ApiError::not_found(None)));
                }
                Some(query) if query.read(ctx) => {}
                _ => return Err(ApiError::not_found(None)),
            }
        }
    }
    // PocketBase's OnRecordDeleteRequest: the rules passed; a hook may refuse
    ctx.hooks.before_request(&mut RecordRequest {
        action: Action::Delete,
        collection: &coll,
        caller: &caller,
        subject: Subject::Stored(&id),
    })?;
    if let Some(b) = batch {
        b.rows.insert((coll.id.clone(), id.clone()), None);
    }
    let collections = schema.collections.clone();
    let job_coll = coll.clone();
    let job_id = id.clone();
    let hooks = ctx.hooks.clone();
    let write: WriteFn = Box::new(move |conn| {
        run_checks(conn, checks)?;
        let mut events = Vec::new();
        delete_record(conn, &collections, &job_coll, &job_id, &hooks, &mut events)?;
        if events.is_empty() {
            return Err(JobFail::Refused(JobError::Api(ApiError::not_found(None))));
        }
        Ok(Done {
            events,
            values: None,
        })
    });
    Ok(Prepared {
        write,
        after: After {
            op: Op::Delete,
            dir: files::record_dir(ctx.core.store.dir(), &coll.id, &id),
            schema,
            coll,
            caller: DropOnPool::new(caller, &ctx.core.cpu, false),
            query,
            id,
            written: Vec::new(),
            to_remove: Vec::new(),
            fail_msg: DELETE_FAILED,
            one_write: false,
        },
    })
}

/// After a commit: the deleted records' files go, then the listeners hear of every change.
pub async fn publish_deletes(ctx: &Db, events: Vec<RecordEvent>) {
    let dirs: Vec<std::path::PathBuf> = events
        .iter()
        .filter(|e| e.action == Action::Delete)
        .map(|e| files::record_dir(ctx.core.store.dir(), &e.collection.id, e.record_id()))
        .collect();
    if !dirs.is_empty() {
        files::remove_dirs(ctx, dirs).await;
    }
    for ev in events {
        ctx.hooks.committed(ev);
    }
}

/// Deletes a record with PocketBase's cascade: references to it are removed from the
/// records pointing at it; those left empty are deleted when the relation cascades and
/// refuse the delete when it is required. The write `hooks` run around each deleted row.
pub fn delete_record(
    conn: &Connection,
    schema: &Collections,
    coll: &Arc<Collection>,
    id: &str,
    hooks: &RecordHooks,
    events: &mut Vec<RecordEvent>,
) -> Result<(), JobFail> {
    let refuse = |m: String| JobFail::Refused(JobError::Refused(m));
    let Some(ev) = RecordEvent::load(conn, Action::Delete, coll.clone(), id)? else {
        return Ok(());
    };
    if coll.name == "_superusers" {
        let total = crate::recstore::auth::count_superusers(conn)?;
        if total <= 1 {
            return Err(JobFail::Refused(JobError::Api(ApiError::bad_request(
                Some("You can't delete the only existing superuser."),
            ))));
        }
    }
    events.push(ev);
    let row = RowWrite {
        action: Action::Delete,
        collection: coll,
        id,
        schema,
    };
    let memos = hooks.before_write(conn, &row)?;
    crate::recstore::rows::delete(conn, &coll.name, id)?;
    hooks.after_write(conn, &row, memos)?;
    let mut refs: Vec<Arc<Collection>> = schema
        .iter()
        .filter(|c| !c.is_view() && c.relations_to(&coll.id).next().is_some())
        .cloned()
        .collect();
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    let now = now_text();
    for rc in refs {
        for f in rc.relations_to(&coll.id) {
            let FieldKind::Relation { cascade_delete, .. } = f.kind else {
                continue;
            };
            let mut arena = Arena::default();
            let found = {
                let mut stmt = crate::recstore::rows::referencing(
                    conn,
                    &rc.name,
                    &f.name,
                    f.is_multiple(),
                    rc.id == coll.id,
                )?;
                arena.load(&rc, &mut stmt, &[QValue::Text(id.to_string())])?
            };
            for i in found {
                let rec = &arena.recs[i];
                let rid = rec.id().to_string();
                let mut ids =
                    super::value::relation_ids(f, rec.value(&f.name).unwrap_or(&SqlVal::Null));
                if let Some(pos) = ids.iter().rposition(|x| x == id) {
                    ids.remove(pos);
                }
                if cascade_delete && ids.is_empty() {
                    delete_record(conn, schema, &rc, &rid, hooks, events)?;
                    continue;
                }
                if f.required && ids.is_empty() {
                    return Err(refuse(format!(
                        "the record cannot be deleted because it is part of a required reference in record {rid} ({} collection)",
                        rc.name
                    )));
                }
                let value = if f.is_multiple() {
                    serde_json::to_string(&ids).unwrap_or_default()
                } else {
                    ids.last().cloned().unwrap_or_default()
                };
                let autodates = rc.fields.iter().filter_map(|af| match af.kind {
                    FieldKind::Autodate {
                        on_update: true, ..
                    } => Some(af.name.as_str()),
                    _ => None,
                });
                crate::recstore::rows::set_relation(
                    conn, &rc.name, &f.name, &value, autodates, &now, &rid,
                )?;
                if let Some(ev) = RecordEvent::load(conn, Action::Update, rc.clone(), &rid)? {
                    events.push(ev);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_text_matches_chrono() {
        for ms in [
            0i64,
            1,
            999,
            1_000,
            1_732_665_600_123,
            4_102_444_799_999,
            253_402_300_799_999,
        ] {
            let dt = chrono::DateTime::from_timestamp(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
            .unwrap();
            assert_eq!(
                super::datetime_text(ms),
                dt.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
            );
        }
    }
}
