//! Record validation with PocketBase's codes and messages: the auth upsert form's checks
//! (password, passwordConfirm, oldPassword, email, verified) and every field type's value
//! checks (relation ids and custom primary keys are looked up on the caller's connection).

use super::files::mime_allowed;
use super::write::{Draft, FileItem, FormInput, NewFile, Val};
use crate::error::{FieldError, FieldErrors};
use pocketbun_storage::collections::snapshot::Collections;
use pocketbun_storage::collections::{Field, FieldKind};
use pocketbun_storage::rusqlite::{self, Connection};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Who saves: PocketBase's upsert form access levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Default,
    Manager,
    Superuser,
}

fn required_error() -> FieldError {
    FieldError::new("validation_required", "Cannot be blank.")
}

fn mismatch() -> FieldError {
    FieldError::new("validation_values_mismatch", "Values don't match.")
}

/// The auth form's checks (`None` for non-auth collections). `old_password_ok`: whether
/// `oldPassword` matches the stored hash (checked by the caller on the CPU pool).
pub fn form(
    draft: &Draft,
    input: &FormInput,
    access: Access,
    old_password_ok: bool,
) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if !draft.coll.is_auth() {
        return errs;
    }
    let manage = access >= Access::Manager;
    let is_new = draft.is_new;
    // a password set through the record itself (not the form) skips the form's checks
    let disable = match draft.get("password") {
        Some(Val::Password { plain, .. }) => !plain.is_empty() && *plain != input.password,
        _ => false,
    };
    if !is_new && !manage && draft.str_of("email") != draft.original_str("email") {
        errs.add("email", mismatch());
    }
    let verified = matches!(draft.get("verified"), Some(Val::Bool(true)));
    let orig_verified = draft
        .index("verified")
        .is_some_and(|i| matches!(draft.original[i], Val::Bool(true)));
    if !manage && verified != orig_verified {
        errs.add("verified", mismatch());
    }
    if !disable {
        let (p, pc, op) = (
            &input.password,
            &input.password_confirm,
            &input.old_password,
        );
        if (is_new || !pc.is_empty() || !op.is_empty()) && p.is_empty() {
            errs.add("password", required_error());
        }
        if (is_new || !p.is_empty() || !op.is_empty()) && pc.is_empty() {
            errs.add("passwordConfirm", required_error());
        } else if pc != p {
            errs.add("passwordConfirm", mismatch());
        }
        if !is_new && !manage && (!p.is_empty() || !pc.is_empty()) {
            if op.is_empty() {
                errs.add("oldPassword", required_error());
            } else if !old_password_ok {
                errs.add(
                    "oldPassword",
                    FieldError::new(
                        "validation_invalid_old_password",
                        "Missing or invalid old password.",
                    ),
                );
            }
        }
    }
    errs
}

fn email_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
            .expect("email regex")
    })
}

fn url_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(?i)[a-z][a-z0-9+.\-]*://[^\s/?#@]+(?:@[^\s/?#]+)?(?:[/?#]\S*)?$")
            .expect("url regex")
    })
}

fn filename_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[^\./\\][^/\\]+$").expect("filename regex"))
}

/// Most patterns a thread keeps compiled before it starts over (collections are few, but a
/// stream of schema edits must not grow the cache without bound).
const PATTERN_CACHE_MAX: usize = 256;

/// Field patterns compiled so far: compiling one (and its first search cache) cost ~90k
/// instructions, more than the rest of a create's validation. Each worker keeps one
/// (`records::db::Db::patterns`: not `Sync`, no lock); a write validated inside the
/// writer's job (a batch item after an earlier one changed the data) uses its own.
#[derive(Default)]
pub struct Patterns(RefCell<HashMap<String, Option<Regex>>>);

impl Patterns {
    /// Whether `s` matches the field pattern `pattern` (a pattern that does not compile
    /// matches nothing).
    fn matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = self.0.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return re.as_ref().is_some_and(|re| re.is_match(s));
        }
        if cache.len() >= PATTERN_CACHE_MAX {
            cache.clear();
        }
        let re = Regex::new(pattern).ok();
        let ok = re.as_ref().is_some_and(|re| re.is_match(s));
        cache.insert(pattern.to_string(), re);
        ok
    }
}

/// Go's `%v` of a number parameter inside a message.
fn num_text(f: f64) -> String {
    crate::go::format_float(f)
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

const DEFAULT_ID_PATTERN: &str = "^[a-z0-9]+$";
const FORBIDDEN_PK: [&str; 2] = ["/", "\\"];
const RESERVED_PK: [&str; 2] = ["aux", "null"];

/// What every field check may need besides the field and its value.
struct Check<'a> {
    draft: &'a Draft,
    schema: &'a Collections,
    conn: &'a Connection,
    patterns: &'a Patterns,
}

/// A check's answer: the field's error, if any (`Err`: a lookup failed).
type Checked = rusqlite::Result<Option<FieldError>>;

/// Every field's value checks (PocketBase's `onRecordValidate`): one check per field type,
/// each giving the field's first error.
pub fn fields(
    draft: &Draft,
    schema: &Collections,
    conn: &Connection,
    patterns: &Patterns,
) -> rusqlite::Result<FieldErrors> {
    let check = Check {
        draft,
        schema,
        conn,
        patterns,
    };
    let mut errs = FieldErrors::new();
    for (i, f) in draft.coll.fields.iter().enumerate() {
        if let Some(e) = check.field(i, f)? {
            errs.add(f.name.clone(), e);
        }
    }
    Ok(errs)
}

impl Check<'_> {
    /// The checks of field `i` (`f`) on the draft's value for it.
    fn field(&self, i: usize, f: &Field) -> Checked {
        let required = f.required;
        Ok(match (&f.kind, &self.draft.vals[i]) {
            (
                FieldKind::Text {
                    min,
                    max,
                    pattern,
                    primary_key,
                    ..
                },
                Val::Str(s),
            ) => {
                if *primary_key {
                    if let Some(answer) = self.primary_key(&f.name, pattern, s)? {
                        return Ok(answer);
                    }
                }
                if s.is_empty() {
                    (required || *primary_key).then(required_error)
                } else {
                    self.text(s, *min, *max, pattern, *primary_key)
                }
            }
            (FieldKind::Number { min, max, only_int }, Val::Num(x)) => {
                number(*x, required, *min, *max, *only_int)
            }
            (FieldKind::Bool, Val::Bool(b)) => (required && !b).then(required_error),
            (
                FieldKind::Email {
                    except_domains,
                    only_domains,
                }
                | FieldKind::Url {
                    except_domains,
                    only_domains,
                },
                Val::Str(s),
            ) => {
                let domains = Domains {
                    only: only_domains,
                    except: except_domains,
                };
                if matches!(f.kind, FieldKind::Email { .. }) {
                    email(s, required, domains)
                } else {
                    url(s, required, domains)
                }
            }
            (FieldKind::Editor { max_size, .. }, Val::Str(s)) => editor(s, required, *max_size),
            (FieldKind::Date { min, max }, Val::Date(s)) => date(s, required, min, max),
            (FieldKind::Select { values, max_select }, Val::List(l)) => {
                select(l, required, values, *max_select)
            }
            (FieldKind::Json { max_size }, Val::Json(raw)) => {
                let known_valid = self.draft.valid_json.contains(&i);
                json(
                    raw.as_deref().unwrap_or(""),
                    required,
                    *max_size,
                    known_valid,
                )
            }
            (
                FieldKind::Relation {
                    collection_id,
                    min_select,
                    max_select,
                    ..
                },
                Val::List(ids),
            ) => self.relation(ids, required, collection_id, *min_select, *max_select),
            (
                FieldKind::File {
                    max_size,
                    max_select,
                    mime_types,
                    ..
                },
                Val::Files(items),
            ) => {
                if items.is_empty() {
                    required.then(required_error)
                } else {
                    let limits = FileLimits {
                        max_size: *max_size,
                        max_select: *max_select,
                        mime_types,
                    };
                    self.files(&self.draft.original[i], items, &limits)
                }
            }
            (FieldKind::GeoPoint, Val::Geo(lon, lat)) => geo_point(*lon, *lat, required),
            (
                FieldKind::Password {
                    min, max, pattern, ..
                },
                Val::Password { plain, hash },
            ) => {
                if plain.is_empty() {
                    (required && hash.is_empty()).then(required_error)
                } else {
                    self.password(plain, *min, *max, pattern)
                }
            }
            _ => None,
        })
    }

    /// A primary key's own rules, before its text checks: `Some(answer)` decides the field
    /// (a changed key is refused, a kept one passes), `None` goes on to the text checks. A
    /// new key with a custom pattern must not exist yet.
    fn primary_key(
        &self,
        name: &str,
        pattern: &str,
        s: &str,
    ) -> rusqlite::Result<Option<Option<FieldError>>> {
        let draft = self.draft;
        if !draft.is_new {
            let old = draft.original_str(name);
            if old != s {
                return Ok(Some(Some(FieldError::new(
                    "validation_pk_change",
                    "The record primary key cannot be changed.",
                ))));
            }
            return Ok((!old.is_empty()).then_some(None));
        }
        if pattern != DEFAULT_ID_PATTERN
            && crate::recstore::rows::exists(self.conn, &draft.coll.name, s, true)?
        {
            return Ok(Some(Some(FieldError::new(
                "validation_pk_invalid",
                "The record primary key is invalid or already exists.",
            ))));
        }
        Ok(None)
    }

    /// A text value that is not empty: length (max 0: 5,000), pattern, and a custom primary
    /// key's characters.
    fn text(
        &self,
        s: &str,
        min: i64,
        max: i64,
        pattern: &str,
        primary_key: bool,
    ) -> Option<FieldError> {
        let len = s.chars().count() as i64;
        let max = if max == 0 { 5000 } else { max };
        if min > 0 && len < min {
            Some(
                FieldError::new(
                    "validation_min_text_constraint",
                    format!("Must be at least {min} character(s)."),
                )
                .param("min", min),
            )
        } else if max > 0 && len > max {
            Some(
                FieldError::new(
                    "validation_max_text_constraint",
                    format!("Must be no more than {max} character(s)."),
                )
                .param("max", max),
            )
        } else if !pattern.is_empty() && !self.patterns.matches(pattern, s) {
            Some(FieldError::new(
                "validation_invalid_format",
                "Invalid value format.",
            ))
        } else if primary_key && pattern != DEFAULT_ID_PATTERN {
            primary_key_characters(s)
        } else {
            None
        }
    }

    /// Relation ids: how many (min/max select), then whether every one exists in the
    /// target collection.
    fn relation(
        &self,
        ids: &[String],
        required: bool,
        collection_id: &str,
        min_select: i64,
        max_select: i64,
    ) -> Option<FieldError> {
        let max = max_select.max(1);
        if ids.is_empty() {
            return required.then(required_error);
        }
        if min_select > 0 && (ids.len() as i64) < min_select {
            return Some(
                FieldError::new(
                    "validation_not_enough_values",
                    format!("Select at least {min_select}"),
                )
                .param("minSelect", min_select),
            );
        }
        if ids.len() as i64 > max {
            return Some(too_many_values(max));
        }
        let Some(target) = self.schema.get(collection_id) else {
            return Some(FieldError::new(
                "validation_missing_rel_collection",
                "Relation connection is missing or cannot be accessed",
            ));
        };
        // one id (the usual case) is looked up without json_each
        let total = match ids {
            [one] => crate::recstore::rows::count_id(self.conn, &target.name, one),
            _ => crate::recstore::rows::count_ids(
                self.conn,
                &target.name,
                &serde_json::to_string(ids).unwrap_or_default(),
            ),
        }
        .unwrap_or(0);
        (total != ids.len() as i64).then(|| {
            FieldError::new(
                "validation_missing_rel_records",
                "Failed to find all relation records with the provided ids",
            )
        })
    }

    /// A file list that is not empty: names kept from `original` only, how many, then each
    /// new upload's name, size and MIME type.
    fn files(&self, original: &Val, items: &[FileItem], limits: &FileLimits) -> Option<FieldError> {
        let old: Vec<&String> = match original {
            Val::Files(l) => l
                .iter()
                .filter_map(|it| match it {
                    FileItem::Name(n) => Some(n),
                    FileItem::New(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let invalid: Vec<String> = items
            .iter()
            .filter_map(|it| match it {
                FileItem::Name(n) if !old.contains(&n) => Some(n.chars().take(250).collect()),
                _ => None,
            })
            .collect();
        if !invalid.is_empty() {
            return Some(
                FieldError::new(
                    "validation_invalid_file",
                    // Go prints the list with `%v`: `[a b]`
                    format!("Invalid new files: [{}].", invalid.join(" ")),
                )
                .param("invalidFiles", invalid),
            );
        }
        let max = limits.max_select.max(1);
        if items.len() as i64 > max {
            return Some(
                FieldError::new(
                    "validation_too_many_files",
                    format!("The maximum allowed files is {max}"),
                )
                .param("maxSelect", max),
            );
        }
        items.iter().find_map(|it| {
            let FileItem::New(k) = it else { return None };
            upload(self.draft.new_files.get(*k)?, limits)
        })
    }

    /// A new password that is not empty: length (max 0 or less: bcrypt's 71) and pattern.
    fn password(&self, plain: &str, min: i64, max: i64, pattern: &str) -> Option<FieldError> {
        let len = plain.chars().count() as i64;
        let max = if max <= 0 { 71 } else { max };
        if len < min {
            Some(FieldError::new(
                "validation_min_text_constraint",
                format!("Must be at least {min} character(s)"),
            ))
        } else if len > max {
            Some(FieldError::new(
                "validation_max_text_constraint",
                format!("Must be less than {max} character(s)"),
            ))
        } else if !pattern.is_empty() && !self.patterns.matches(pattern, plain) {
            Some(FieldError::new(
                "validation_invalid_format",
                "Invalid value format",
            ))
        } else {
            None
        }
    }
}

/// A custom primary key holds neither `/` nor `\` and is none of the reserved names.
fn primary_key_characters(s: &str) -> Option<FieldError> {
    if let Some(ch) = FORBIDDEN_PK.iter().find(|c| s.contains(**c)) {
        return Some(
            FieldError::new(
                "validation_forbidden_pk_character",
                format!("'{ch}' is not a valid primary key character."),
            )
            .param("ch", *ch),
        );
    }
    RESERVED_PK
        .iter()
        .find(|r| s.eq_ignore_ascii_case(r))
        .map(|r| {
            FieldError::new(
                "validation_reserved_pk",
                format!("The primary key '{r}' is reserved and cannot be used."),
            )
            .param("reserved", *r)
        })
}

/// A number: finite, 0 counts as blank, integer when asked, within min and max.
fn number(
    x: f64,
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    only_int: bool,
) -> Option<FieldError> {
    if !x.is_finite() {
        Some(FieldError::new(
            "validation_not_a_number",
            "The submitted number is not properly formatted",
        ))
    } else if x == 0.0 {
        required.then(required_error)
    } else if only_int && x != x.trunc() {
        Some(FieldError::new(
            "validation_only_int_constraint",
            "Decimal numbers are not allowed",
        ))
    } else if let Some(m) = min.filter(|m| x < *m) {
        Some(
            FieldError::new(
                "validation_min_number_constraint",
                format!("Must be greater or equal than {}", num_text(m)),
            )
            .param("min", m),
        )
    } else {
        max.filter(|m| x > *m).map(|m| {
            FieldError::new(
                "validation_max_number_constraint",
                format!("Must be less or equal than {}", num_text(m)),
            )
            .param("max", m)
        })
    }
}

/// Where an email or URL field's values may point: its `onlyDomains` and `exceptDomains`.
struct Domains<'a> {
    only: &'a Option<Vec<String>>,
    except: &'a Option<Vec<String>>,
}

impl Domains<'_> {
    /// Whether `domain` passes both lists.
    fn allow(&self, domain: &str) -> bool {
        let only = self.only.as_deref().unwrap_or(&[]);
        let except = self.except.as_deref().unwrap_or(&[]);
        (only.is_empty() || only.iter().any(|d| d == domain)) && !except.iter().any(|d| d == domain)
    }
}

/// An email address: at most 254 bytes, well formed, an allowed domain.
fn email(s: &str, required: bool, domains: Domains) -> Option<FieldError> {
    if s.is_empty() {
        required.then(required_error)
    } else if s.len() > 254 || !email_re().is_match(s) {
        Some(FieldError::new(
            "validation_is_email",
            "must be a valid email address",
        ))
    } else {
        let domain = s.rsplit('@').next().unwrap_or("");
        (!domains.allow(domain)).then(|| {
            FieldError::new(
                "validation_email_domain_not_allowed",
                "Email domain is not allowed",
            )
        })
    }
}

/// A URL: well formed, an allowed host.
fn url(s: &str, required: bool, domains: Domains) -> Option<FieldError> {
    if s.is_empty() {
        required.then(required_error)
    } else if !url_re().is_match(s) {
        Some(FieldError::new(
            "validation_invalid_url",
            "Must be a valid url",
        ))
    } else {
        (!domains.allow(host_of(s))).then(|| {
            FieldError::new(
                "validation_url_domain_not_allowed",
                "Url domain is not allowed",
            )
        })
    }
}

/// Rich text: at most `max_size` bytes (0: 5 MiB).
fn editor(s: &str, required: bool, max_size: i64) -> Option<FieldError> {
    let max = if max_size > 0 { max_size } else { 5 << 20 };
    if required && s.is_empty() {
        Some(required_error())
    } else {
        (s.len() as i64 > max).then(|| {
            FieldError::new(
                "validation_content_size_limit",
                format!("The maximum allowed content size is {max} bytes"),
            )
            .param("maxSize", max)
        })
    }
}

/// A date within min and max (both as stored text, which sorts as time).
fn date(s: &str, required: bool, min: &str, max: &str) -> Option<FieldError> {
    if s.is_empty() {
        required.then(required_error)
    } else if !min.is_empty() && s < min {
        Some(
            FieldError::new(
                "validation_min_greater_equal_than_required",
                format!("Must be no less than {min}"),
            )
            .param("threshold", min),
        )
    } else if !max.is_empty() && s > max {
        Some(
            FieldError::new(
                "validation_max_less_equal_than_required",
                format!("Must be no greater than {max}"),
            )
            .param("threshold", max),
        )
    } else {
        None
    }
}

/// PocketBase's error for more values than `maxSelect` (selects and relations).
fn too_many_values(max: i64) -> FieldError {
    FieldError::new(
        "validation_too_many_values",
        format!("Select no more than {max}"),
    )
    .param("maxSelect", max)
}

/// Selected values: how many, and each one of the allowed values.
fn select(
    l: &[String],
    required: bool,
    values: &Option<Vec<String>>,
    max_select: i64,
) -> Option<FieldError> {
    let max = max_select.max(1);
    if l.is_empty() {
        required.then(required_error)
    } else if l.len() as i64 > max {
        Some(too_many_values(max))
    } else {
        let allowed = values.as_deref().unwrap_or(&[]);
        l.iter().find(|v| !allowed.contains(v)).map(|v| {
            FieldError::new("validation_invalid_value", format!("Invalid value {v}"))
                .param("value", v.clone())
        })
    }
}

/// A JSON value: at most `max_size` bytes (0: 1 MiB), valid (`known_valid`: checked when
/// it was read), and not blank when required.
fn json(text: &str, required: bool, max_size: i64, known_valid: bool) -> Option<FieldError> {
    let max = if max_size > 0 { max_size } else { 1 << 20 };
    if text.len() as i64 > max {
        Some(
            FieldError::new(
                "validation_json_size_limit",
                format!("The maximum allowed JSON size is {max} bytes"),
            )
            .param("maxSize", max),
        )
    } else if !text.is_empty() && !known_valid && !crate::json_strict::is_valid(text) {
        // a duplicate key too (PocketBase 0.40), e.g. a multipart `json` field
        Some(FieldError::new(
            "validation_invalid_json",
            "Must be a valid json value",
        ))
    } else {
        let t = text.trim();
        (required && matches!(t, "" | "null" | "\"\"" | "[]" | "{}" | "0" | "false"))
            .then(required_error)
    }
}

/// A file field's limits.
struct FileLimits<'a> {
    /// Bytes of one file (0: 5 MiB).
    max_size: i64,
    max_select: i64,
    mime_types: &'a Option<Vec<String>>,
}

/// One new upload: its stored name's length and form, its size, its sniffed MIME type.
fn upload(nf: &NewFile, limits: &FileLimits) -> Option<FieldError> {
    let n = nf.name.chars().count();
    if !(1..=150).contains(&n) {
        return Some(
            FieldError::new(
                "validation_length_out_of_range",
                "the length must be between 1 and 150",
            )
            .param("min", 1)
            .param("max", 150),
        );
    }
    if !filename_re().is_match(&nf.name) {
        return Some(FieldError::new(
            "validation_match_invalid",
            "must be in a valid format",
        ));
    }
    let max_size = if limits.max_size > 0 {
        limits.max_size
    } else {
        5 << 20
    };
    if nf.data.len() as i64 > max_size {
        let file: String = nf.original_name.chars().take(300).collect();
        return Some(
            FieldError::new(
                "validation_file_size_limit",
                format!(
                    "Failed to upload {file} - the maximum allowed file size is {max_size} bytes."
                ),
            )
            .param("file", file)
            .param("maxSize", max_size),
        );
    }
    let allowed = limits.mime_types.as_deref().unwrap_or(&[]);
    if !allowed.is_empty() && !mime_allowed(nf.sniffed.0, allowed) {
        return Some(FieldError::new(
            "validation_invalid_mime_type",
            format!(
                "{:?} mime type must be one of: {}.",
                nf.name,
                allowed.join(", ")
            ),
        ));
    }
    None
}

/// A geo point: (0, 0) counts as blank; latitude within ±90, longitude within ±180.
fn geo_point(lon: f64, lat: f64, required: bool) -> Option<FieldError> {
    if lat == 0.0 && lon == 0.0 {
        required.then(required_error)
    } else if !(-90.0..=90.0).contains(&lat) {
        Some(FieldError::new(
            "validation_invalid_latitude",
            "Latitude must be between -90 and 90 degrees.",
        ))
    } else {
        (!(-180.0..=180.0).contains(&lon)).then(|| {
            FieldError::new(
                "validation_invalid_longitude",
                "Longitude must be between -180 and 180 degrees.",
            )
        })
    }
}
