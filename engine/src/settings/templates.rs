//! The emails PocketBase sends for auth records (verification, password reset, email change,
//! OTP, login alert): the collection's template with its placeholders filled in, wrapped in
//! the common HTML layout.

use pocketbun_storage::rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;

/// The parts of an auth collection the emails need.
#[derive(Debug, Clone)]
pub struct AuthCollection {
    pub id: String,
    pub name: String,
    /// (name, type, hidden) of every field, in order.
    pub fields: Vec<(String, String, bool)>,
    pub options: Value,
}

impl AuthCollection {
    /// Looks a collection up by id or (case-insensitive) name; `None` unless it is an auth one.
    pub fn find(
        conn: &Connection,
        name_or_id: &str,
    ) -> pocketbun_storage::Result<Option<AuthCollection>> {
        let row = crate::recstore::auth::collection_row(conn, name_or_id)?;
        let Some((id, name, kind, fields, options)) = row else {
            return Ok(None);
        };
        if kind != "auth" {
            return Ok(None);
        }
        let fields: Value = serde_json::from_str(fields.as_deref().unwrap_or("[]"))
            .unwrap_or(Value::Array(Vec::new()));
        let fields = fields
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|f| {
                        (
                            f["name"].as_str().unwrap_or("").to_string(),
                            f["type"].as_str().unwrap_or("").to_string(),
                            f["hidden"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let options = serde_json::from_str(options.as_deref().unwrap_or("{}"))
            .unwrap_or(Value::Object(Default::default()));
        Ok(Some(AuthCollection {
            id,
            name,
            fields,
            options,
        }))
    }

    /// The email template at `path` in the collection options (e.g. `["otp", "emailTemplate"]`).
    pub fn template(&self, path: &[&str]) -> (String, String) {
        let mut node = &self.options;
        for key in path {
            node = &node[*key];
        }
        (
            node["subject"].as_str().unwrap_or("").to_string(),
            node["body"].as_str().unwrap_or("").to_string(),
        )
    }

    /// `(secret, duration seconds)` of the token config `name` (e.g. `verificationToken`).
    pub fn token_config(&self, name: &str) -> (String, i64) {
        let cfg = &self.options[name];
        (
            cfg["secret"].as_str().unwrap_or("").to_string(),
            cfg["duration"].as_i64().unwrap_or(0),
        )
    }
}

/// A signed HS256 token with `claims` plus `exp` = now + `duration` seconds.
pub fn new_token(
    mut claims: BTreeMap<String, Value>,
    key: &str,
    duration: i64,
) -> Result<String, String> {
    if key.is_empty() {
        return Err("missing or invalid signing key".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    claims.insert("exp".into(), (now + duration).into());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            _ => out.push(c),
        }
    }
    out
}

/// Fills `placeholders` into a template's subject and body and wraps the body in the layout.
pub fn render(subject: &str, body: &str, placeholders: &[(String, String)]) -> (String, String) {
    let mut subject = subject.to_string();
    let mut body = body.to_string();
    for (key, value) in placeholders {
        subject = subject.replace(key.as_str(), value);
        body = body.replace(key.as_str(), value);
    }
    (subject, layout(&body))
}

/// The HTML document every PocketBase email body is placed in (the `btn` class styles links
/// as buttons, `hidden` hides an element).
pub fn layout(content: &str) -> String {
    const HEAD: &str = r#"
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
    <meta name="viewport" content="width=device-width,initial-scale=1" />
    <style>
        body, html { padding: 0; margin: 0; border: 0; color: #16161a; background: #fff; font-size: 14px; line-height: 20px; font-weight: normal; font-family: Source Sans Pro, sans-serif, emoji; }
        body { padding: 20px 30px; }
        strong { font-weight: bold; }
        em, i { font-style: italic; }
        p { display: block; margin: 10px 0; font-family: inherit; }
        small { font-size: 12px; line-height: 16px; }
        hr { display: block; height: 1px; border: 0; width: 100%; background: #e1e6ea; margin: 10px 0; }
        a { color: inherit; }
        .hidden { display: none !important; }
        .btn { display: inline-block; vertical-align: top; border: 0; cursor: pointer; color: #fff !important; background: #16161a !important; text-decoration: none !important; line-height: 40px; width: auto; min-width: 150px; text-align: center; padding: 0 20px; margin: 5px 0; font-family: Source Sans Pro, sans-serif, emoji; font-size: 14px; font-weight: bold; border-radius: 6px; box-sizing: border-box; }
    </style>
</head>
<body>
    "#;
    const TAIL: &str = "\n</body>\n</html>\n";
    let mut out = String::with_capacity(HEAD.len() + content.len() + TAIL.len());
    out.push_str(HEAD);
    out.push_str(content);
    out.push_str(TAIL);
    out
}
