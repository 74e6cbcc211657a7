//! Request data that `@request.*` identifiers read, the parameter sources a compiled query
//! binds from, and the guards that decide whether a cached compilation fits a request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::fold::{FoldCheck, Truth};

/// A value bound to a positional SQL parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// The authenticated record of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthInfo {
    pub id: String,
    pub collection_id: String,
    pub collection_name: String,
    /// The record's fields as PocketBase exports them for rules: every field (hidden ones
    /// included), plus `collectionId` and `collectionName`.
    pub data: Map<String, Json>,
}

/// What `@request.*` sees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    pub context: String,
    pub method: String,
    pub query: Map<String, Json>,
    pub headers: Map<String, Json>,
    pub body: Map<String, Json>,
    pub auth: Option<AuthInfo>,
    /// A superuser request (rules are skipped and hidden fields are filterable).
    pub superuser: bool,
    /// Whether anything read a value of this request that its method, path, query string
    /// and caller do not decide ([`Volatile`]).
    pub volatile: Volatile,
}

/// A note that a request's compilation, guards or parameters read a value its method, path,
/// query string and caller do not decide: a datetime macro, `@request.headers.*`,
/// `@request.context` or `@request.body.*` (the engine's fresh-read cache keeps no answer
/// that depends on one). Copies of a [`RequestInfo`] share it (an expand reads through a
/// copy with its own context), so its owner sees what any copy read. Not part of the
/// request's value: two notes are always equal.
#[derive(Debug, Clone, Default)]
pub struct Volatile(Arc<AtomicBool>);

impl Volatile {
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a volatile value was read since the request info was built.
    pub fn read(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for Volatile {
    fn eq(&self, _: &Volatile) -> bool {
        true
    }
}

/// Datetime/number macros, evaluated when a query is bound (never baked into the SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Macro {
    Now,
    Yesterday,
    Tomorrow,
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Weekday,
    Year,
    TodayStart,
    TodayEnd,
    MonthStart,
    MonthEnd,
    YearStart,
    YearEnd,
}

impl Macro {
    pub fn from_name(s: &str) -> Option<Macro> {
        Some(match s {
            "@now" => Macro::Now,
            "@yesterday" => Macro::Yesterday,
            "@tomorrow" => Macro::Tomorrow,
            "@second" => Macro::Second,
            "@minute" => Macro::Minute,
            "@hour" => Macro::Hour,
            "@day" => Macro::Day,
            "@month" => Macro::Month,
            "@weekday" => Macro::Weekday,
            "@year" => Macro::Year,
            "@todayStart" => Macro::TodayStart,
            "@todayEnd" => Macro::TodayEnd,
            "@monthStart" => Macro::MonthStart,
            "@monthEnd" => Macro::MonthEnd,
            "@yearStart" => Macro::YearStart,
            "@yearEnd" => Macro::YearEnd,
            _ => return None,
        })
    }

    /// The macro's value at `now` (unix time in milliseconds, UTC).
    pub fn eval(self, now_ms: i64) -> Value {
        let days = now_ms.div_euclid(86_400_000);
        let ms_of_day = now_ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let dt = |y: i64, m: i64, d: i64, ms: i64| Value::Text(format_dt(y, m, d, ms));
        match self {
            Macro::Now => dt(y, m, d, ms_of_day),
            Macro::Yesterday => {
                let (y, m, d) = civil_from_days(days - 1);
                dt(y, m, d, ms_of_day)
            }
            Macro::Tomorrow => {
                let (y, m, d) = civil_from_days(days + 1);
                dt(y, m, d, ms_of_day)
            }
            Macro::Second => Value::Integer(secs % 60),
            Macro::Minute => Value::Integer((secs / 60) % 60),
            Macro::Hour => Value::Integer(secs / 3600),
            Macro::Day => Value::Integer(d),
            Macro::Month => Value::Integer(m),
            Macro::Weekday => Value::Integer((days + 4).rem_euclid(7)),
            Macro::Year => Value::Integer(y),
            Macro::TodayStart => dt(y, m, d, 0),
            Macro::TodayEnd => dt(y, m, d, 86_399_999),
            Macro::MonthStart => dt(y, m, 1, 0),
            Macro::MonthEnd => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let (ly, lm, ld) = civil_from_days(days_from_civil(ny, nm, 1) - 1);
                dt(ly, lm, ld, 86_399_999)
            }
            Macro::YearStart => dt(y, 1, 1, 0),
            Macro::YearEnd => dt(y, 12, 31, 86_399_999),
        }
    }
}

fn format_dt(y: i64, m: i64, d: i64, ms_of_day: i64) -> String {
    let s = ms_of_day / 1000;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        y,
        m,
        d,
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms_of_day % 1000
    )
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Where a positional parameter's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamSource {
    Text(String),
    Real(f64),
    Macro(Macro),
    /// A static `@request.*` value: the path after `@request.` (e.g. `["auth", "id"]`).
    /// `number_field`: a string value is parsed as a number when it parses.
    Request {
        path: Vec<String>,
        number_field: bool,
    },
    /// `@request.body.<field>:lower` (the value cast to a string).
    BodyString(String),
    /// `@request.body.<field>:each`: the body value as a JSON array.
    BodyJsonArray(String),
    /// `@request.body.<rel>.*`: the n-th unique id of the body relation value.
    BodyRelId(String, usize),
    /// The authenticated record's id.
    AuthId,
}

/// A positional parameter (`?N` is `params[N-1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub source: ParamSource,
    /// Wrapped for a "contains" LIKE (`%v%`, with `%`/`_` escaped) unless it already holds
    /// an unescaped `%`.
    pub like: bool,
}

/// Emptiness class of a request value, the only property the SQL shape depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueClass {
    Missing,
    Null,
    Empty,
    NonEmpty,
}

/// A fact about the request that the compiled SQL's shape depends on.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// Class of a parameter source's value (and presence of the path).
    Class(ParamSource, ValueClass),
    /// Id of the authenticated record's collection (None = guest).
    AuthCollection(Option<String>),
    /// Whether a `@request.*` path is present (`:isset`).
    Present(Vec<String>, bool),
    /// Number of unique ids in a body relation value.
    BodyRelCount(String, usize),
    /// Number of items of a body value (`:length`).
    BodyLen(String, usize),
    /// A comparison folded to a constant ([`crate::fold`]) and its outcome.
    Fold(Arc<FoldCheck>, Truth),
}

impl Guard {
    pub fn holds(&self, req: &RequestInfo) -> bool {
        match self {
            Guard::Class(src, class) => classify(src, req) == *class,
            Guard::Present(path, present) => extract(req, path).is_ok() == *present,
            Guard::AuthCollection(c) => {
                req.auth.as_ref().map(|a| a.collection_id.as_str()) == c.as_deref()
            }
            Guard::BodyRelCount(f, n) => {
                req.volatile.mark();
                unique_strings(req.body.get(f)).len() == *n
            }
            Guard::BodyLen(f, n) => {
                req.volatile.mark();
                to_slice(req.body.get(f)).len() == *n
            }
            Guard::Fold(check, t) => check.outcome(req) == Some(*t),
        }
    }
}

/// Looks up a `@request.*` path: `Err(())` when a key is missing.
pub(crate) fn extract(req: &RequestInfo, path: &[String]) -> Result<Option<Json>, ()> {
    let (first, rest) = path.split_first().ok_or(())?;
    if matches!(first.as_str(), "context" | "headers" | "body") {
        req.volatile.mark();
    }
    let root: Json = match first.as_str() {
        "context" => Json::String(req.context.clone()),
        "method" => Json::String(req.method.clone()),
        "query" => return nested_map(&req.query, rest),
        "headers" => return nested_map(&req.headers, rest),
        "body" => return nested_map(&req.body, rest),
        "auth" => match &req.auth {
            None => Json::Null,
            Some(a) => {
                let builtin = match rest.first().map(String::as_str) {
                    Some("id") => Some(&a.id),
                    Some("collectionId") => Some(&a.collection_id),
                    Some("collectionName") => Some(&a.collection_name),
                    _ => None,
                };
                if let (Some(v), 1) = (builtin, rest.len()) {
                    if !a.data.contains_key(&rest[0]) {
                        return Ok(Some(Json::String(v.clone())));
                    }
                }
                return nested_map(&a.data, rest);
            }
        },
        _ => return Err(()),
    };
    if rest.is_empty() {
        Ok(Some(root))
    } else {
        Err(())
    }
}

fn nested_map(m: &Map<String, Json>, keys: &[String]) -> Result<Option<Json>, ()> {
    let Some((k, rest)) = keys.split_first() else {
        return Ok(Some(Json::Object(m.clone())));
    };
    let v = m.get(k).ok_or(())?;
    nested(v, rest)
}

fn nested(v: &Json, keys: &[String]) -> Result<Option<Json>, ()> {
    let Some((k, rest)) = keys.split_first() else {
        return Ok(Some(v.clone()));
    };
    match v {
        Json::Object(m) => nested(m.get(k).ok_or(())?, rest),
        Json::Array(a) => {
            let i: usize = k.parse().map_err(|_| ())?;
            nested(a.get(i).ok_or(())?, rest)
        }
        // a JSON-encoded string (e.g. a json field value) is decoded for deeper paths
        Json::String(s) => {
            let decoded: Json = serde_json::from_str(s).map_err(|_| ())?;
            match decoded {
                Json::Object(_) | Json::Array(_) => nested(&decoded, keys),
                _ => Err(()),
            }
        }
        _ => Err(()),
    }
}

/// Converts a request JSON value to the bound SQL value the way PocketBase does.
pub(crate) fn json_to_value(v: Option<Json>, number_field: bool) -> Value {
    match v {
        None | Some(Json::Null) => Value::Null,
        Some(Json::Bool(b)) => Value::Integer(b as i64),
        Some(Json::Number(n)) => Value::Real(n.as_f64().unwrap_or(0.0)),
        Some(Json::String(s)) => {
            if number_field {
                if let Ok(f) = s.parse::<f64>() {
                    return Value::Real(f);
                }
            }
            Value::Text(s)
        }
        Some(other) => Value::Text(other.to_string()),
    }
}

/// `cast.ToString`-like conversion used by `:lower` on body fields.
fn json_to_string(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Number(n)) => format_number(n.as_f64().unwrap_or(0.0)),
        Some(_) => String::new(),
    }
}

pub(crate) fn format_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

pub(crate) fn to_slice(v: Option<&Json>) -> Vec<Json> {
    match v {
        None | Some(Json::Null) => vec![],
        Some(Json::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    }
}

pub(crate) fn unique_strings(v: Option<&Json>) -> Vec<String> {
    let raw: Vec<String> = match v {
        None | Some(Json::Null) => vec![],
        Some(Json::String(s)) if s.is_empty() => vec![],
        Some(Json::String(s)) => {
            if s.contains('[') {
                serde_json::from_str::<Vec<String>>(s).unwrap_or_else(|_| vec![s.clone()])
            } else {
                vec![s.clone()]
            }
        }
        Some(Json::Array(a)) => a
            .iter()
            .map(|x| match x {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            })
            .collect(),
        Some(other) => vec![other.to_string()],
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for s in raw {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Evaluates a parameter source for a request (`now_ms`: unix ms, for macros).
pub fn eval(src: &ParamSource, req: &RequestInfo, now_ms: i64) -> Value {
    match src {
        ParamSource::Text(s) => Value::Text(s.clone()),
        ParamSource::Real(f) => Value::Real(*f),
        ParamSource::Macro(m) => {
            req.volatile.mark();
            m.eval(now_ms)
        }
        ParamSource::Request { path, number_field } => {
            json_to_value(extract(req, path).ok().flatten(), *number_field)
        }
        ParamSource::BodyString(f) => {
            req.volatile.mark();
            Value::Text(json_to_string(req.body.get(f)))
        }
        ParamSource::BodyJsonArray(f) => {
            req.volatile.mark();
            Value::Text(Json::Array(to_slice(req.body.get(f))).to_string())
        }
        ParamSource::BodyRelId(f, i) => {
            req.volatile.mark();
            unique_strings(req.body.get(f))
                .get(*i)
                .map(|s| Value::Text(s.clone()))
                .unwrap_or(Value::Null)
        }
        ParamSource::AuthId => req
            .auth
            .as_ref()
            .map(|a| Value::Text(a.id.clone()))
            .unwrap_or(Value::Null),
    }
}

pub(crate) fn classify(src: &ParamSource, req: &RequestInfo) -> ValueClass {
    if let ParamSource::Request { path, .. } = src {
        if extract(req, path).is_err() {
            return ValueClass::Missing;
        }
    }
    class_of(&eval(src, req, 0))
}

pub(crate) fn class_of(v: &Value) -> ValueClass {
    match v {
        Value::Null => ValueClass::Null,
        Value::Text(s) if s.is_empty() => ValueClass::Empty,
        _ => ValueClass::NonEmpty,
    }
}

/// Applies the LIKE "contains" wrapping to a bound value.
pub(crate) fn like_wrap(v: Value) -> Value {
    let s = match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format_number(f),
        Value::Text(s) => s,
    };
    if contains_unescaped(&s, '%') {
        return Value::Text(s);
    }
    Value::Text(format!("%{}%", escape_unescaped(&s, &['\\', '%', '_'])))
}

fn contains_unescaped(s: &str, ch: char) -> bool {
    let mut prev = '\0';
    for c in s.chars() {
        if c == ch && prev != '\\' {
            return true;
        }
        if c == '\\' && prev == '\\' {
            prev = '\0';
        } else {
            prev = c;
        }
    }
    false
}

/// Escapes each of `chars` not already preceded by a backslash (scanning from the end, as
/// PocketBase does).
fn escape_unescaped(s: &str, chars: &[char]) -> String {
    let rs: Vec<char> = s.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(rs.len() + 4);
    let mut matched = false;
    for i in (0..rs.len()).rev() {
        if matched {
            if rs[i] != '\\' {
                out.push('\\');
            }
            matched = false;
        } else if chars.contains(&rs[i]) {
            matched = true;
        }
        out.push(rs[i]);
        if i == 0 && matched {
            out.push('\\');
        }
    }
    out.reverse();
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_format() {
        // 2024-02-29 13:14:15.678 UTC
        let t = 1_709_212_455_678i64;
        assert_eq!(
            Macro::Now.eval(t),
            Value::Text("2024-02-29 13:14:15.678Z".into())
        );
        assert_eq!(
            Macro::Yesterday.eval(t),
            Value::Text("2024-02-28 13:14:15.678Z".into())
        );
        assert_eq!(
            Macro::Tomorrow.eval(t),
            Value::Text("2024-03-01 13:14:15.678Z".into())
        );
        assert_eq!(Macro::Second.eval(t), Value::Integer(15));
        assert_eq!(Macro::Minute.eval(t), Value::Integer(14));
        assert_eq!(Macro::Hour.eval(t), Value::Integer(13));
        assert_eq!(Macro::Day.eval(t), Value::Integer(29));
        assert_eq!(Macro::Month.eval(t), Value::Integer(2));
        assert_eq!(Macro::Weekday.eval(t), Value::Integer(4)); // Thursday
        assert_eq!(Macro::Year.eval(t), Value::Integer(2024));
        assert_eq!(
            Macro::TodayStart.eval(t),
            Value::Text("2024-02-29 00:00:00.000Z".into())
        );
        assert_eq!(
            Macro::TodayEnd.eval(t),
            Value::Text("2024-02-29 23:59:59.999Z".into())
        );
        assert_eq!(
            Macro::MonthStart.eval(t),
            Value::Text("2024-02-01 00:00:00.000Z".into())
        );
        assert_eq!(
            Macro::MonthEnd.eval(t),
            Value::Text("2024-02-29 23:59:59.999Z".into())
        );
        assert_eq!(
            Macro::YearStart.eval(t),
            Value::Text("2024-01-01 00:00:00.000Z".into())
        );
        assert_eq!(
            Macro::YearEnd.eval(t),
            Value::Text("2024-12-31 23:59:59.999Z".into())
        );
    }

    #[test]
    fn like_wrapping() {
        let w = |s: &str| like_wrap(Value::Text(s.into()));
        assert_eq!(w("abc"), Value::Text("%abc%".into()));
        assert_eq!(w("a%c"), Value::Text("a%c".into()));
        assert_eq!(w("a_c"), Value::Text("%a\\_c%".into()));
        assert_eq!(w("a\\%c"), Value::Text("%a\\%c%".into()));
        assert_eq!(w("_"), Value::Text("%\\_%".into()));
        assert_eq!(like_wrap(Value::Real(1.0)), Value::Text("%1%".into()));
    }
}
