//! Validation of a collection about to be saved, with PocketBase's error
//! codes, messages and params (`{"name":{"code":"validation_required",...}}`).
//! Runs on the normalised collection (system fields added, as PocketBase
//! does before validating), so field indexes in errors match its.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;
use rusqlite::{Connection, OptionalExtension};

use super::errors::{FieldError, ValidationErrors};
use super::fields::{self, Field, FieldKind};
use super::index::ParsedIndex;
use super::model::{find_single_column_unique_index, Collection, CollectionType, TokenConfig};

/// Checks a rule/filter expression against a collection: `Err(raw error)`
/// when it does not compile. The query crate provides the real one.
pub type RuleChecker<'a> = &'a dyn Fn(&Collection, &str) -> Result<(), String>;

/// A checker that accepts every rule.
pub fn accept_all_rules(_: &Collection, _: &str) -> Result<(), String> {
    Ok(())
}

fn word_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\w+$").expect("word regex"))
}

fn required() -> FieldError {
    FieldError::new("validation_required", "cannot be blank")
}

fn length(min: usize, max: usize) -> FieldError {
    FieldError::new(
        "validation_length_out_of_range",
        &format!("the length must be between {min} and {max}"),
    )
    .param("max", max)
    .param("min", min)
}

fn match_invalid() -> FieldError {
    FieldError::new("validation_match_invalid", "must be in a valid format")
}

fn via(v: &str) -> Option<FieldError> {
    v.to_lowercase().contains("_via_").then(|| {
        FieldError::new(
            "validation_found_via",
            "The value cannot contain \"_via_\".",
        )
    })
}

/// Names no field may have (SQL keywords and the `@`-less dynamic names).
pub const EXCLUDED_FIELD_NAMES: [&str; 6] =
    ["null", "true", "false", "_rowid_", "expand", "collectionId"];

fn check_field_name(name: &str) -> Option<FieldError> {
    let len = name.chars().count();
    if name.is_empty() {
        return Some(required());
    }
    if len > 100 {
        return Some(length(1, 100));
    }
    if !word_re().is_match(name) {
        return Some(match_invalid());
    }
    if EXCLUDED_FIELD_NAMES.contains(&name) || name == "collectionName" {
        return Some(FieldError::new(
            "validation_not_in_invalid",
            "must not be in list",
        ));
    }
    via(name)
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND LOWER(name) = LOWER(?1)",
        [name],
        |_| Ok(()),
    )
    .optional()
    .ok()
    .flatten()
    .is_some()
}

/// Validates `new` (already normalised, view fields already inferred)
/// against its stored state `original` (`None` on create) and the other
/// `collections`. `conn` is used for table/index name clashes.
pub fn validate_collection(
    conn: &Connection,
    new: &Collection,
    original: Option<&Collection>,
    collections: &[Collection],
    check_rule: RuleChecker<'_>,
) -> ValidationErrors {
    let mut errs = ValidationErrors::new();
    let is_new = original.is_none();
    let blank = Collection::empty(new.kind);
    let orig = original.unwrap_or(&blank);

    // id
    if new.id.is_empty() {
        errs.add("id", required());
    } else if is_new {
        if new.id.chars().count() > 100 {
            errs.add("id", length(1, 100));
        } else if !word_re().is_match(&new.id) {
            errs.add("id", match_invalid());
        } else if collections.iter().any(|c| c.id == new.id) {
            errs.add(
                "id",
                FieldError::new(
                    "validation_invalid_id",
                    "the model id is invalid or already exists",
                ),
            );
        }
    } else if new.id != orig.id {
        errs.add(
            "id",
            FieldError::new("validation_values_mismatch", "values mismatch"),
        );
    }

    // system flag / type
    if !is_new && new.system != orig.system {
        errs.add(
            "system",
            FieldError::new(
                "validation_collection_system_flag_change",
                "System collection state cannot be changed.",
            ),
        );
    }
    if new.invalid_type.is_some() {
        errs.add(
            "type",
            FieldError::new("validation_in_invalid", "must be a valid value"),
        );
    } else if !is_new && new.kind != orig.kind {
        errs.add(
            "type",
            FieldError::new(
                "validation_collection_type_change",
                "Collection type cannot be changed.",
            ),
        );
    }

    // name
    if let Some(e) = check_name(conn, new, orig, is_new, collections) {
        errs.add("name", e);
    }

    // fields
    let mut ferrs = ValidationErrors::new();
    let field_err = check_fields(new, orig, is_new, collections, &mut ferrs);
    if let Some(e) = field_err {
        errs.add("fields", e);
    } else {
        errs.add_nested("fields", ferrs);
    }

    // rules
    for (key, rule, old_rule, nil_for_view) in [
        ("listRule", &new.list_rule, &orig.list_rule, false),
        ("viewRule", &new.view_rule, &orig.view_rule, false),
        ("createRule", &new.create_rule, &orig.create_rule, true),
        ("updateRule", &new.update_rule, &orig.update_rule, true),
        ("deleteRule", &new.delete_rule, &orig.delete_rule, true),
    ] {
        if nil_for_view && new.is_view() && rule.is_some() {
            errs.add(key, FieldError::new("validation_nil", "must be blank"));
            continue;
        }
        if let Some(e) = check_rule_value(new, rule, check_rule) {
            errs.add(key, e);
            continue;
        }
        if !is_new && orig.system && rule != old_rule {
            errs.add(key, system_rule_change());
        }
    }

    // indexes
    if let Some(node) = check_indexes(conn, new, orig, is_new) {
        match node {
            IndexErr::Top(e) => errs.add("indexes", e),
            IndexErr::At(i, e) => {
                let mut n = ValidationErrors::new();
                n.add(i.to_string(), e);
                errs.add_nested("indexes", n);
            }
        }
    }

    // type options
    match new.kind {
        CollectionType::Base => {}
        CollectionType::View => {
            if new.view_query.trim().is_empty() {
                errs.add("viewQuery", required());
            }
        }
        CollectionType::Auth => check_auth_options(new, orig, is_new, check_rule, &mut errs),
    }
    errs
}

fn system_rule_change() -> FieldError {
    FieldError::new(
        "validation_collection_system_rule_change",
        "System collection API rule cannot be changed.",
    )
}

fn check_rule_value(
    c: &Collection,
    rule: &Option<String>,
    check_rule: RuleChecker<'_>,
) -> Option<FieldError> {
    let r = rule.as_deref().unwrap_or("");
    if r.is_empty() {
        return None;
    }
    check_rule(c, r).err().map(|e| {
        FieldError::new(
            "validation_invalid_rule",
            &format!("Invalid rule. Raw error: {e}"),
        )
    })
}

fn check_name(
    conn: &Connection,
    new: &Collection,
    orig: &Collection,
    is_new: bool,
    collections: &[Collection],
) -> Option<FieldError> {
    let name = &new.name;
    if name.is_empty() {
        return Some(required());
    }
    if name.chars().count() > 255 {
        return Some(length(1, 255));
    }
    if let Some(e) = via(name) {
        return Some(e);
    }
    if !word_re().is_match(name) {
        return Some(match_invalid());
    }
    if !is_new && orig.system && *name != orig.name {
        return Some(FieldError::new(
            "validation_collection_system_name_change",
            "System collection name cannot be changed.",
        ));
    }
    let others = || collections.iter().filter(|c| c.id != orig.id || is_new);
    if others().any(|c| c.name.eq_ignore_ascii_case(name)) {
        return Some(FieldError::new(
            "validation_collection_name_exists",
            "Collection name must be unique (case insensitive).",
        ));
    }
    if collections.iter().any(|c| c.id == *name) {
        return Some(FieldError::new(
            "validation_collection_name_id_duplicate",
            "The name must not match an existing collection id.",
        ));
    }
    if orig.name != *name
        && !collections
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        && table_exists(conn, name)
    {
        return Some(FieldError::new(
            "validation_collection_name_invalid",
            "The name shouldn't match with an existing internal table.",
        ));
    }
    None
}

/// Collection-level field problems are returned; per-field ones go into `ferrs`.
fn check_fields(
    new: &Collection,
    orig: &Collection,
    is_new: bool,
    collections: &[Collection],
    ferrs: &mut ValidationErrors,
) -> Option<FieldError> {
    // duplicates (first one found ends the check, like PocketBase)
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for (i, f) in new.fields.iter().enumerate() {
        if !ids.insert(f.id.as_str()) {
            let mut n = ValidationErrors::new();
            n.add(
                "id",
                FieldError::new(
                    "validation_duplicated_field_id",
                    &format!("Duplicated or invalid field id {:?}", f.id),
                ),
            );
            ferrs.add_nested(i.to_string(), n);
            return None;
        }
        if !names.insert(f.name.to_lowercase()) {
            let mut n = ValidationErrors::new();
            n.add(
                "name",
                FieldError::new(
                    "validation_duplicated_field_name",
                    &format!("Duplicated or invalid field name {}", f.name),
                )
                .param("fieldName", f.name.clone()),
            );
            ferrs.add_nested(i.to_string(), n);
            return None;
        }
    }
    if let Some(e) = check_min_fields(new) {
        return Some(e);
    }
    if !new.is_view() {
        if !is_new {
            for of in orig.fields.iter().filter(|f| f.system) {
                match new.field_by_id(&of.id) {
                    Some(nf) if nf.name == of.name => {}
                    _ => {
                        return Some(FieldError::new(
                            "validation_system_field_change",
                            "System fields cannot be deleted or renamed.",
                        ))
                    }
                }
            }
        }
        let mut changed = false;
        for (i, f) in new.fields.iter().enumerate() {
            if let Some(of) = orig.field_by_id(&f.id) {
                if of.type_name() != f.type_name() {
                    ferrs.add(
                        i.to_string(),
                        FieldError::new(
                            "validation_field_type_change",
                            "Field type cannot be changed.",
                        ),
                    );
                    changed = true;
                }
            }
        }
        if changed {
            return None;
        }
    }
    if new.is_auth() {
        let mut reserved = false;
        for (i, f) in new.fields.iter().enumerate() {
            if f.name == "passwordConfirm" || f.name == "oldPassword" {
                let mut n = ValidationErrors::new();
                n.add(
                    "name",
                    FieldError::new(
                        "validation_reserved_field_name",
                        "The field name is reserved and cannot be used.",
                    ),
                );
                ferrs.add_nested(i.to_string(), n);
                reserved = true;
            }
        }
        if reserved {
            return None;
        }
    }
    for (i, f) in new.fields.iter().enumerate() {
        let n = check_field_settings(f, new, collections);
        ferrs.add_nested(i.to_string(), n);
    }
    None
}

fn check_min_fields(c: &Collection) -> Option<FieldError> {
    if c.fields.is_empty() {
        return Some(required());
    }
    if !c.field(fields::FIELD_ID).is_some_and(Field::is_primary_key) {
        return Some(FieldError::new(
            "validation_missing_primary_key",
            "Missing or invalid \"id\" PK field.",
        ));
    }
    if !c.is_auth() {
        return None;
    }
    let missing = |name: &str| {
        FieldError::new(
            &format!("validation_missing_{name}_field"),
            &format!("System {name:?} field is required."),
        )
    };
    type IsKind = fn(&FieldKind) -> bool;
    let checks: [(&str, IsKind); 5] = [
        (fields::FIELD_PASSWORD, |k| {
            matches!(k, FieldKind::Password { .. })
        }),
        (fields::FIELD_TOKEN_KEY, |k| {
            matches!(k, FieldKind::Text { .. })
        }),
        (fields::FIELD_EMAIL, |k| {
            matches!(k, FieldKind::Email { .. })
        }),
        (fields::FIELD_EMAIL_VISIBILITY, |k| {
            matches!(k, FieldKind::Bool)
        }),
        (fields::FIELD_VERIFIED, |k| matches!(k, FieldKind::Bool)),
    ];
    for (name, is_kind) in checks {
        match c.field(name) {
            Some(f) if is_kind(&f.kind) => {
                let hidden_needed =
                    name == fields::FIELD_PASSWORD || name == fields::FIELD_TOKEN_KEY;
                if !f.system || (hidden_needed && !f.hidden) {
                    return Some(if hidden_needed {
                        FieldError::new(
                            "validation_must_be_system_and_hidden",
                            "The field must be marked as system and hidden.",
                        )
                    } else {
                        FieldError::new(
                            "validation_must_be_system",
                            "The field must be marked as system.",
                        )
                    });
                }
            }
            _ => return Some(missing(name)),
        }
    }
    None
}

fn check_field_settings(f: &Field, c: &Collection, collections: &[Collection]) -> ValidationErrors {
    let mut e = ValidationErrors::new();
    if f.id.is_empty() {
        e.add("id", required());
    } else if f.id.chars().count() > 100 {
        e.add("id", length(1, 100));
    }
    if let Some(err) = check_field_name(&f.name) {
        e.add("name", err);
    }
    match &f.kind {
        FieldKind::Select { values, max_select } => {
            if values.as_ref().is_none_or(|v| v.is_empty()) {
                e.add("values", required());
            }
            let n = values.as_ref().map_or(0, Vec::len) as i64;
            if *max_select > n.max(1) {
                e.add(
                    "maxSelect",
                    FieldError::new(
                        "validation_max_less_equal_than_required",
                        &format!("must be no greater than {}", n.max(1)),
                    )
                    .param("threshold", n.max(1)),
                );
            }
        }
        FieldKind::Relation {
            collection_id,
            min_select,
            max_select,
            ..
        } => {
            if collection_id.is_empty() {
                e.add("collectionId", required());
            } else {
                match collections.iter().find(|x| x.id == *collection_id) {
                    None => e.add(
                        "collectionId",
                        FieldError::new(
                            "validation_field_relation_missing_collection",
                            "The relation collection doesn't exist.",
                        ),
                    ),
                    Some(target) if target.is_view() && !c.is_view() => e.add(
                        "collectionId",
                        FieldError::new(
                            "validation_relation_field_non_view_base_collection",
                            "Only view collections are allowed to have relations to other views.",
                        ),
                    ),
                    _ => {}
                }
            }
            if *max_select > 0 && min_select > max_select {
                e.add(
                    "minSelect",
                    FieldError::new(
                        "validation_max_less_equal_than_required",
                        &format!("must be no greater than {max_select}"),
                    )
                    .param("threshold", *max_select),
                );
            }
        }
        FieldKind::Text {
            min, max, pattern, ..
        }
        | FieldKind::Password {
            min, max, pattern, ..
        } => {
            if *min < 0 {
                e.add(
                    "min",
                    FieldError::new(
                        "validation_min_greater_equal_than_required",
                        "must be no less than 0",
                    )
                    .param("threshold", 0),
                );
            }
            if *max != 0 && max < min {
                e.add(
                    "max",
                    FieldError::new(
                        "validation_min_greater_equal_than_required",
                        &format!("must be no less than {min}"),
                    )
                    .param("threshold", *min),
                );
            }
            if !pattern.is_empty() && Regex::new(pattern).is_err() {
                e.add(
                    "pattern",
                    FieldError::new("validation_invalid_regex", "Invalid regex pattern."),
                );
            }
        }
        _ => {}
    }
    e
}

enum IndexErr {
    Top(FieldError),
    At(usize, FieldError),
}

fn check_indexes(
    conn: &Connection,
    new: &Collection,
    orig: &Collection,
    is_new: bool,
) -> Option<IndexErr> {
    if new.is_view() && !new.indexes.is_empty() {
        return Some(IndexErr::Top(FieldError::new(
            "validation_indexes_not_supported",
            "View collections don't support indexes.",
        )));
    }
    let mut names = HashSet::new();
    let mut defs = HashSet::new();
    for (i, raw) in new.indexes.iter().enumerate() {
        let mut p = ParsedIndex::parse(raw);
        p.table_name = "validator".into();
        if !p.is_valid() {
            return Some(IndexErr::At(
                i,
                FieldError::new(
                    "validation_invalid_index_expression",
                    "Invalid CREATE INDEX expression.",
                ),
            ));
        }
        if !names.insert(p.index_name.to_lowercase()) {
            return Some(IndexErr::At(
                i,
                FieldError::new(
                    "validation_duplicated_index_name",
                    "The index name already exists.",
                ),
            ));
        }
        let used: Option<String> = conn
            .query_row(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND LOWER(tbl_name) != LOWER(?1) AND LOWER(tbl_name) != LOWER(?2) AND LOWER(name) = LOWER(?3) LIMIT 1",
                [&orig.name, &new.name, &p.index_name],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        if let Some(t) = used.filter(|t| !t.is_empty()) {
            return Some(IndexErr::At(
                i,
                FieldError::new(
                    "validation_existing_index_name",
                    &format!("The index name is already used in {t} collection."),
                )
                .param("usedTableName", t),
            ));
        }
        p.schema_name = "validator".into();
        p.index_name = "validator".into();
        if !defs.insert(p.build()) {
            return Some(IndexErr::At(
                i,
                FieldError::new(
                    "validation_duplicated_index_definition",
                    "The index definition already exists.",
                ),
            ));
        }
    }
    if !is_new {
        // unique indexes over system fields must be kept
        'old: for old_raw in &orig.indexes {
            let mut old = ParsedIndex::parse(old_raw);
            if !old.unique {
                continue;
            }
            for col in &mut old.columns {
                col.collate.clear();
                col.sort.clear();
            }
            let old_str = old.build();
            for col in &old.columns {
                if let Some(f) = orig
                    .fields
                    .iter()
                    .find(|f| f.system && f.name.eq_ignore_ascii_case(&col.name))
                {
                    let matched = new.indexes.iter().any(|raw| {
                        let mut n = ParsedIndex::parse(raw);
                        n.schema_name = old.schema_name.clone();
                        n.index_name = old.index_name.clone();
                        n.table_name = old.table_name.clone();
                        n.where_expr = old.where_expr.clone();
                        for c in &mut n.columns {
                            c.collate.clear();
                            c.sort.clear();
                        }
                        n.build() == old_str
                    });
                    if !matched {
                        return Some(IndexErr::Top(
                            FieldError::new(
                                "validation_invalid_unique_system_field_index",
                                &format!("Unique index definition on system fields ({}) is invalid or missing.", f.name),
                            )
                            .param("fieldName", f.name.clone()),
                        ));
                    }
                    continue 'old;
                }
            }
        }
    }
    if new.is_auth() {
        for name in [fields::FIELD_TOKEN_KEY, fields::FIELD_EMAIL] {
            if find_single_column_unique_index(&new.indexes, name).is_none() {
                return Some(IndexErr::Top(
                    FieldError::new(
                        "validation_missing_required_unique_index",
                        &format!("Missing required unique index for field \"{name}\"."),
                    )
                    .param("fieldName", name),
                ));
            }
        }
    }
    None
}

fn check_token(t: &TokenConfig) -> ValidationErrors {
    let mut e = ValidationErrors::new();
    let n = t.secret.chars().count();
    if n == 0 {
        e.add("secret", required());
    } else if !(30..=255).contains(&n) {
        e.add("secret", length(30, 255));
    }
    if t.duration == 0 {
        e.add("duration", required());
    } else if t.duration < 10 {
        e.add(
            "duration",
            FieldError::new(
                "validation_min_greater_equal_than_required",
                "must be no less than 10",
            )
            .param("threshold", 10),
        );
    } else if t.duration > 94_670_856 {
        e.add(
            "duration",
            FieldError::new(
                "validation_max_less_equal_than_required",
                "must be no greater than 94670856",
            )
            .param("threshold", 94_670_856),
        );
    }
    e
}

fn check_template(t: &super::model::EmailTemplate) -> ValidationErrors {
    let mut e = ValidationErrors::new();
    if t.subject.is_empty() {
        e.add("subject", required());
    }
    if t.body.is_empty() {
        e.add("body", required());
    }
    e
}

fn check_auth_options(
    new: &Collection,
    orig: &Collection,
    is_new: bool,
    check_rule: RuleChecker<'_>,
    errs: &mut ValidationErrors,
) {
    let a = &new.auth;
    let before = errs.0.len();
    if let Some(e) = check_rule_value(new, &a.auth_rule, check_rule) {
        errs.add("authRule", e);
    } else if !is_new && orig.system && a.auth_rule != orig.auth.auth_rule {
        errs.add("authRule", system_rule_change());
    }
    if a.manage_rule.as_deref() == Some("") {
        errs.add(
            "manageRule",
            FieldError::new("validation_nil_or_not_empty_required", "cannot be blank"),
        );
    } else if let Some(e) = check_rule_value(new, &a.manage_rule, check_rule) {
        errs.add("manageRule", e);
    } else if !is_new && orig.system && a.manage_rule != orig.auth.manage_rule {
        errs.add("manageRule", system_rule_change());
    }
    let mut alert = ValidationErrors::new();
    alert.add_nested(
        "emailTemplate",
        check_template(&a.auth_alert.email_template),
    );
    errs.add_nested("authAlert", alert);
    if a.password_auth.enabled
        && a.password_auth
            .identity_fields
            .as_ref()
            .is_none_or(|v| v.is_empty())
    {
        let mut p = ValidationErrors::new();
        p.add("identityFields", required());
        errs.add_nested("passwordAuth", p);
    }
    let mut otp = ValidationErrors::new();
    if a.otp.enabled {
        if a.otp.duration == 0 {
            otp.add("duration", required());
        } else if !(10..=86_400).contains(&a.otp.duration) {
            otp.add("duration", range_err(a.otp.duration, 10, 86_400));
        }
        if a.otp.length == 0 {
            otp.add("length", required());
        } else if a.otp.length < 4 {
            otp.add("length", range_err(a.otp.length, 4, i64::MAX));
        }
    }
    otp.add_nested("emailTemplate", check_template(&a.otp.email_template));
    errs.add_nested("otp", otp);
    if a.mfa.enabled {
        let mut m = ValidationErrors::new();
        if a.mfa.duration == 0 {
            m.add("duration", required());
        } else if !(10..=86_400).contains(&a.mfa.duration) {
            m.add("duration", range_err(a.mfa.duration, 10, 86_400));
        }
        errs.add_nested("mfa", m);
    }
    for (key, t) in [
        ("authToken", &a.auth_token),
        ("passwordResetToken", &a.password_reset_token),
        ("emailChangeToken", &a.email_change_token),
        ("verificationToken", &a.verification_token),
        ("fileToken", &a.file_token),
    ] {
        errs.add_nested(key, check_token(t));
    }
    for (key, t) in [
        ("verificationTemplate", &a.verification_template),
        ("resetPasswordTemplate", &a.reset_password_template),
        (
            "confirmEmailChangeTemplate",
            &a.confirm_email_change_template,
        ),
    ] {
        errs.add_nested(key, check_template(t));
    }
    if errs.0.len() != before {
        return; // PocketBase stops at the struct errors
    }
    if a.mfa.enabled {
        let enabled = [a.password_auth.enabled, a.oauth2.enabled, a.otp.enabled]
            .iter()
            .filter(|b| **b)
            .count();
        if enabled < 2 {
            let mut m = ValidationErrors::new();
            m.add(
                "enabled",
                FieldError::new(
                    "validation_mfa_not_enough_auths",
                    "MFA requires at least 2 auth methods to be enabled.",
                ),
            );
            errs.add_nested("mfa", m);
            return;
        }
    }
    if a.password_auth.enabled {
        for name in a.password_auth.identity_fields.iter().flatten() {
            let err = if new.field(name).is_none() {
                Some(
                    FieldError::new(
                        "validation_missing_field",
                        &format!("Invalid or missing field {name}"),
                    )
                    .param("fieldName", name.clone()),
                )
            } else if find_single_column_unique_index(&new.indexes, name).is_none() {
                Some(
                    FieldError::new(
                        "validation_missing_unique_constraint",
                        &format!("The field {name} doesn't have a UNIQUE constraint."),
                    )
                    .param("fieldName", name.clone()),
                )
            } else {
                None
            };
            if let Some(e) = err {
                let mut p = ValidationErrors::new();
                p.add("identityFields", e);
                errs.add_nested("passwordAuth", p);
                return;
            }
        }
    }
}

fn range_err(v: i64, min: i64, max: i64) -> FieldError {
    if v < min {
        FieldError::new(
            "validation_min_greater_equal_than_required",
            &format!("must be no less than {min}"),
        )
        .param("threshold", min)
    } else {
        FieldError::new(
            "validation_max_less_equal_than_required",
            &format!("must be no greater than {max}"),
        )
        .param("threshold", max)
    }
}
