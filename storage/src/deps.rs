//! Which tables a read depends on, and whether any of them changed since: the ground truth
//! of the engine's fresh-read cache (issue 18).
//!
//! * **Generations.** The writer thread knows every row it changes: SQLite's update hook
//!   names the table of each inserted, updated or deleted row (foreign-key actions included),
//!   and an authorizer on the writer's connection sees every schema statement it prepares.
//!   After a commit and *before* any job of that commit is answered, the writer stamps each
//!   touched table's slot with a new value of a process-wide clock ([`Generations`]); a
//!   schema statement stamps the `ddl` slot, which every read depends on. Slots are atomics
//!   in one array (table name hashed to a slot, so no lock and no allocation); two tables
//!   sharing a slot only cost extra misses, never a stale answer.
//! * **Dependencies.** A reader's connection reports each statement it starts (SQLite's
//!   `SQLITE_TRACE_STMT`) to the recording in progress on its thread ([`recording`]).
//!   [`Reader::dependencies`](crate::Reader::dependencies) turns the recorded SQL into table
//!   slots: each distinct SQL text is prepared once more, uncached, with an authorizer that
//!   collects every table SQLite reads for it (through views and subqueries too), and the
//!   result is remembered per connection. A statement calling a function whose value is not
//!   a function of the data (`random()`, the date/time functions, …) has no dependency set:
//!   its answer must not be reused.
//! * **Freshness.** A value computed by reads that started after the clock read `epoch` is
//!   still exact while every slot it depends on is `<= epoch` ([`Generations::fresh`]): a
//!   commit that could change it stamps a slot with a clock value above `epoch`. Stamping a
//!   slot happens after the commit, so a reader that saw the stamp also sees the data.
//!
//! Everything here is off unless the store was opened with
//! [`StoreOptions::read_tracking`](crate::StoreOptions::read_tracking): then neither the
//! writer nor the readers pay for hooks or tracing.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Slots of the generation array: tables hash into it. 1024 keeps the chance that two of a
/// typical app's 10-50 tables share a slot low (~1 in 20 for 10 tables) while the array is
/// 8 KiB.
pub const SLOTS: usize = 1024;

/// The slot of a table (SQLite table names are ASCII-case-insensitive): FNV-1a of the
/// lowercased name.
pub fn slot_of(table: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in table.bytes() {
        h ^= u32::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % SLOTS as u32) as u16
}

/// The per-table generations of one database, shared by its writer and every reader.
pub struct Generations {
    clock: AtomicU64,
    ddl: AtomicU64,
    slots: Box<[AtomicU64]>,
}

impl Default for Generations {
    fn default() -> Self {
        Generations {
            clock: AtomicU64::new(0),
            ddl: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Generations {
    /// The clock: read it before the reads whose result may be kept.
    pub fn clock(&self) -> u64 {
        self.clock.load(Ordering::Acquire)
    }

    /// The generation of the last schema change (every read depends on it).
    pub fn ddl(&self) -> u64 {
        self.ddl.load(Ordering::Acquire)
    }

    /// Whether no commit touched a table of `deps` (nor the schema) since the clock read
    /// `epoch`.
    pub fn fresh(&self, deps: &[u16], epoch: u64) -> bool {
        self.ddl.load(Ordering::Acquire) <= epoch
            && deps
                .iter()
                .all(|&s| self.slots[usize::from(s)].load(Ordering::Acquire) <= epoch)
    }

    /// The generation of `table`'s slot.
    pub fn of(&self, table: &str) -> u64 {
        self.slots[usize::from(slot_of(table))].load(Ordering::Acquire)
    }

    /// Stamps what `touched` collected with a new clock value; called by the writer after a
    /// commit, before the commit's jobs are answered.
    pub(crate) fn publish(&self, touched: &Touched) {
        let ddl = touched.ddl.swap(false, Ordering::Relaxed);
        let mut any = ddl;
        let mut words = [0u64; SLOTS / 64];
        for (w, bits) in words.iter_mut().zip(touched.bits.iter()) {
            *w = bits.swap(0, Ordering::Relaxed);
            any |= *w != 0;
        }
        if !any {
            return;
        }
        let stamp = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        for (i, mut w) in words.into_iter().enumerate() {
            while w != 0 {
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                self.slots[i * 64 + bit].store(stamp, Ordering::Release);
            }
        }
        if ddl {
            self.ddl.store(stamp, Ordering::Release);
        }
    }
}

/// What the writer's hooks saw since the last [`Generations::publish`].
pub(crate) struct Touched {
    bits: Box<[AtomicU64]>,
    ddl: AtomicBool,
}

impl Default for Touched {
    fn default() -> Self {
        Touched {
            bits: (0..SLOTS / 64).map(|_| AtomicU64::new(0)).collect(),
            ddl: AtomicBool::new(false),
        }
    }
}

impl Touched {
    /// A row of `table` changed (the update hook).
    pub(crate) fn row(&self, table: &str) {
        let s = usize::from(slot_of(table));
        self.bits[s / 64].fetch_or(1 << (s % 64), Ordering::Relaxed);
    }

    /// The writer's authorizer: notes schema statements, and keeps `DELETE FROM t` (no
    /// WHERE) from SQLite's truncate optimization, which empties a table without calling
    /// the update hook. `SQLITE_IGNORE` on `SQLITE_DELETE` is SQLite's documented way to
    /// turn it off (the rows are then deleted one by one), but SQLite asks the same question
    /// inside `DROP TABLE`/`DROP VIEW` (right after `SQLITE_DROP_*` for that name) and for
    /// its own `sqlite_schema` row, where IGNORE would silently skip the drop: those are
    /// allowed. `dropping` is the authorizer's memory of the last `SQLITE_DROP_*` name.
    pub(crate) fn authorize(
        &self,
        ctx: &AuthContext<'_>,
        dropping: &mut Option<String>,
    ) -> Authorization {
        use AuthAction as A;
        let dropped = dropping.take();
        match ctx.action {
            A::Delete { table_name } => {
                self.row(table_name);
                let own = table_name
                    .get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"));
                let in_drop = dropped.is_some_and(|d| d.eq_ignore_ascii_case(table_name));
                if own || in_drop {
                    Authorization::Allow
                } else {
                    Authorization::Ignore
                }
            }
            A::DropTable { table_name } | A::DropTempTable { table_name } => {
                self.ddl.store(true, Ordering::Relaxed);
                *dropping = Some(table_name.to_owned());
                Authorization::Allow
            }
            A::DropView { view_name } | A::DropTempView { view_name } => {
                self.ddl.store(true, Ordering::Relaxed);
                *dropping = Some(view_name.to_owned());
                Authorization::Allow
            }
            A::CreateIndex { .. }
            | A::CreateTable { .. }
            | A::CreateTrigger { .. }
            | A::CreateView { .. }
            | A::CreateTempIndex { .. }
            | A::CreateTempTable { .. }
            | A::CreateTempTrigger { .. }
            | A::CreateTempView { .. }
            | A::DropIndex { .. }
            | A::DropTempIndex { .. }
            | A::DropTrigger { .. }
            | A::DropTempTrigger { .. }
            | A::AlterTable { .. }
            | A::CreateVtable { .. }
            | A::DropVtable { .. }
            | A::Attach { .. }
            | A::Detach { .. }
            | A::Reindex { .. }
            | A::Analyze { .. } => {
                self.ddl.store(true, Ordering::Relaxed);
                Authorization::Allow
            }
            _ => Authorization::Allow,
        }
    }
}

/// Functions whose value is not a function of the stored data alone: a statement calling one
/// gives another answer to the same request later (`sort=@random`, a filter on `@now` sent
/// as SQL's own clock), so its reads are never reused.
const VOLATILE: [&str; 16] = [
    "random",
    "randomblob",
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
    "changes",
    "total_changes",
    "last_insert_rowid",
    "sqlite_offset",
];

/// The statements started on this thread while a [`recording`] runs.
///
/// A thread-local because SQLite's trace callback reaches Rust as a plain `fn` with no
/// user data (rusqlite 0.37's `Connection::trace_v2`; closures exist only on its unreleased
/// master) and this crate forbids `unsafe`: the callback cannot be handed the recording, so
/// it finds it through the thread, where the reader's statements run. It holds nothing but
/// the statements of the [`recording`] that is running; outside one it is empty and off.
#[derive(Default)]
struct Recorder {
    on: bool,
    stmts: Vec<String>,
}

thread_local! {
    static RECORDER: RefCell<Recorder> = RefCell::default();
}

/// Runs `f`, appending to `into` the SQL of every statement this thread's tracked readers
/// start meanwhile (what [`crate::Reader::dependencies`] takes). Recordings nest: an outer
/// one does not see what an inner one recorded, and goes on after it.
pub fn recording<T>(into: &mut Vec<String>, f: impl FnOnce() -> T) -> T {
    let outer = RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let outer = (r.on, std::mem::take(&mut r.stmts));
        r.on = true;
        outer
    });
    // restored even when `f` unwinds, so a caught panic leaves no recording on
    struct Restore<'a>(&'a mut Vec<String>, Option<(bool, Vec<String>)>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let (on, stmts) = self.1.take().unwrap_or_default();
            RECORDER.with(|r| {
                let mut r = r.borrow_mut();
                self.0.append(&mut r.stmts);
                r.on = on;
                r.stmts = stmts;
            })
        }
    }
    let _restore = Restore(into, Some(outer));
    f()
}

/// `SQLITE_TRACE_STMT` of a tracked connection. The `BEGIN`/`COMMIT` of a batched reader's
/// transaction ([`crate::Reader::batch_reads`]) read no table: not recorded.
pub(crate) fn on_stmt(sql: &str) {
    if sql == "BEGIN" || sql == "COMMIT" {
        return;
    }
    RECORDER.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if r.on {
                r.stmts.push(sql.to_owned());
            }
        }
    })
}

/// The tables a statement being prepared for [`crate::Reader::dependencies`] reads, as a
/// tracked reader's authorizer reports them: shared by the reader and its authorizer
/// closure. SQLite calls the authorizer on the reader's own thread while it prepares, so the
/// lock is never contended; `None` inside: the statement calls a volatile function.
#[derive(Clone, Default)]
pub(crate) struct Learning(Arc<Mutex<Option<Option<Vec<u16>>>>>);

impl Learning {
    fn with<T>(&self, f: impl FnOnce(&mut Option<Option<Vec<u16>>>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The authorizer of a tracked reader: collects tables while a statement is learnt.
    pub(crate) fn authorize(&self, ctx: &AuthContext<'_>) -> Authorization {
        self.with(|learning| {
            let Some(Some(tables)) = learning.as_mut() else {
                return;
            };
            match ctx.action {
                AuthAction::Read { table_name, .. } => tables.push(slot_of(table_name)),
                AuthAction::Function { function_name }
                    if VOLATILE
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(function_name)) =>
                {
                    *learning = Some(None)
                }
                _ => {}
            }
        });
        Authorization::Allow
    }

    /// Runs `prepare` collecting the tables the authorizer reports; `None` when the
    /// statement calls a volatile function.
    pub(crate) fn learn(&self, prepare: impl FnOnce() -> bool) -> Option<Vec<u16>> {
        self.with(|l| *l = Some(Some(Vec::new())));
        let ok = prepare();
        let learnt = self.with(Option::take).flatten();
        if ok {
            learnt
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_ignore_ascii_case_and_stay_in_range() {
        assert_eq!(slot_of("Posts"), slot_of("posts"));
        for name in ["", "a", "_collections", "a_very_long_table_name_indeed"] {
            assert!(usize::from(slot_of(name)) < SLOTS);
        }
    }

    #[test]
    fn publish_stamps_touched_slots_only() {
        let gens = Generations::default();
        let touched = Touched::default();
        let epoch = gens.clock();
        gens.publish(&touched);
        assert_eq!(gens.clock(), epoch, "nothing touched: no tick");
        touched.row("posts");
        gens.publish(&touched);
        assert!(!gens.fresh(&[slot_of("posts")], epoch));
        let other = (0..SLOTS as u16).find(|&s| s != slot_of("posts")).unwrap();
        assert!(gens.fresh(&[other], epoch));
        let later = gens.clock();
        assert!(gens.fresh(&[slot_of("posts")], later));
        touched.ddl.store(true, Ordering::Relaxed);
        gens.publish(&touched);
        assert!(!gens.fresh(&[], later), "a schema change stales everything");
    }
}
