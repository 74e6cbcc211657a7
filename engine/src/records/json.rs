//! A record's API JSON, as PocketBase's `Record.PublicExport` encodes it: a Go map, so the
//! keys come out sorted byte-wise (fields, `collectionId`, `collectionName`, `expand`).

use super::{value, Arena, Exp, SqlRef, SqlVal};
use pocketbun_storage::collections::gojson;
use pocketbun_storage::collections::Collection;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
enum Slot {
    Field(usize),
    CollectionId,
    CollectionName,
    Expand,
}

/// Output keys in Go's order, each as JSON text (`"name":`), with where its value comes from.
type Plan = Rc<Vec<(String, Slot)>>;

/// Most collection plans a worker keeps (a schema change brings new collection values).
const MAX_PLANS: usize = 256;

/// Plans by collection value; the `Arc` held keeps the address unique. Each worker keeps one
/// (`records::db::Db::plans`: not `Sync`, no lock).
#[derive(Default)]
pub struct Plans(RefCell<PlanMap>);

/// foldhash: one lookup per record written (SipHash cost ~160 instructions of a view).
type PlanMap = HashMap<*const Collection, (Arc<Collection>, Plan), foldhash::fast::RandomState>;

/// Writes records with each collection's output keys in Go's sorted order (computed once
/// per collection value and [`Plans`]).
pub struct Writer<'p> {
    plans: PlansOf<'p>,
}

/// A worker's plans, or a writer's own (work on the CPU pool: one set per batch).
enum PlansOf<'p> {
    Worker(&'p Plans),
    Own(Plans),
}

fn plan(coll: &Collection) -> Vec<(String, Slot)> {
    let mut keys: Vec<(String, Slot)> = Vec::with_capacity(coll.fields.len() + 3);
    for (i, f) in coll.fields.iter().enumerate() {
        // other password fields (e.g. `_otps`' hidden one) are shown like any field, as ""
        // (an API answer comes after the plain value was hashed and forgotten)
        if coll.is_auth() && (f.name == "password" || f.name == "tokenKey") {
            continue;
        }
        keys.push((f.name.clone(), Slot::Field(i)));
    }
    // later keys replace earlier ones in Go's map, fields are written first
    for (k, s) in [
        ("collectionId", Slot::CollectionId),
        ("collectionName", Slot::CollectionName),
        ("expand", Slot::Expand),
    ] {
        keys.retain(|(name, _)| name != k);
        keys.push((k.to_string(), s));
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    // each key is stored ready to copy: quoted, escaped, with its colon
    for (name, _) in &mut keys {
        let mut quoted = String::with_capacity(name.len() + 3);
        gojson::write_str(&mut quoted, name);
        quoted.push(':');
        *name = quoted;
    }
    keys
}

impl Writer<'static> {
    /// A writer with plans of its own (off the workers: a batch on the CPU pool).
    pub fn new() -> Self {
        Writer {
            plans: PlansOf::Own(Plans::default()),
        }
    }
}

impl Default for Writer<'static> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p> Writer<'p> {
    /// A writer using a worker's `plans`.
    pub fn with(plans: &'p Plans) -> Self {
        Writer {
            plans: PlansOf::Worker(plans),
        }
    }

    fn plan_for(&mut self, coll: &Arc<Collection>) -> Plan {
        let plans = match &self.plans {
            PlansOf::Worker(plans) => plans,
            PlansOf::Own(plans) => plans,
        };
        let mut plans = plans.0.borrow_mut();
        if let Some((_, p)) = plans.get(&Arc::as_ptr(coll)) {
            return p.clone();
        }
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        let p = Rc::new(plan(coll));
        plans.insert(Arc::as_ptr(coll), (coll.clone(), p.clone()));
        p
    }

    /// Writes record `idx` of `arena` (with its expand tree).
    pub fn write(&mut self, out: &mut String, arena: &Arena, idx: usize) {
        let rec = &arena.recs[idx];
        self.write_record(
            out,
            &rec.coll,
            rec.show_email,
            rec.unhide,
            |i| rec.values.get(i).map_or(SqlRef::Null, SqlVal::borrow),
            rec.expand.as_ref().map(|e| (arena, e)),
        );
    }

    /// Writes a record of a non-auth collection without `expand` from its field values
    /// (`value(i)`: field `i`), e.g. straight from a SQLite row.
    pub fn write_plain<'v>(
        &mut self,
        out: &mut String,
        coll: &Arc<Collection>,
        unhide: bool,
        value: impl Fn(usize) -> SqlRef<'v>,
    ) {
        self.write_record(out, coll, unhide, unhide, value, None);
    }

    fn write_record<'v>(
        &mut self,
        out: &mut String,
        coll: &Arc<Collection>,
        show_email: bool,
        unhide: bool,
        value: impl Fn(usize) -> SqlRef<'v>,
        expand: Option<(&Arena, &BTreeMap<String, Exp>)>,
    ) {
        let plan = self.plan_for(coll);
        let hide_email = coll.is_auth()
            && !show_email
            && !coll
                .fields
                .iter()
                .position(|f| f.name == "emailVisibility")
                .is_some_and(|i| value::ref_to_bool(value(i)));
        let coll = &**coll;
        out.push('{');
        let mut first = true;
        for (key, slot) in plan.iter() {
            match *slot {
                Slot::Field(i) => {
                    let f = &coll.fields[i];
                    if f.hidden && !unhide {
                        continue;
                    }
                    if hide_email && f.name == "email" {
                        continue;
                    }
                    sep(out, &mut first, key);
                    value::write_field(out, f, value(i));
                }
                Slot::CollectionId => {
                    sep(out, &mut first, key);
                    gojson::write_str(out, &coll.id);
                }
                Slot::CollectionName => {
                    sep(out, &mut first, key);
                    gojson::write_str(out, &coll.name);
                }
                Slot::Expand => {
                    let Some((arena, expand)) = expand else {
                        continue;
                    };
                    sep(out, &mut first, key);
                    out.push('{');
                    for (j, (name, exp)) in expand.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        gojson::write_str(out, name);
                        out.push(':');
                        match exp {
                            Exp::One(r) => self.write(out, arena, *r),
                            Exp::Many(list) => {
                                out.push('[');
                                for (n, r) in list.iter().enumerate() {
                                    if n > 0 {
                                        out.push(',');
                                    }
                                    self.write(out, arena, *r);
                                }
                                out.push(']');
                            }
                        }
                    }
                    out.push('}');
                }
            }
        }
        out.push('}');
    }
}

/// `key` is a plan key: already quoted, with its colon.
fn sep(out: &mut String, first: &mut bool, key: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push_str(key);
}
