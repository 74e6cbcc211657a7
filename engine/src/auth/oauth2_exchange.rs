//! The OAuth2 code exchange with a provider: the token request (client credentials in a Basic
//! header, retried in the form as Go's `oauth2` auto-detection does, PKCE `code_verifier`), the
//! user info request, and each built-in provider's mapping of its user to PocketBase's
//! `AuthUser` (only *verified* emails are kept). The generic OIDC providers read the
//! `id_token` claims when no user info URL is set: `aud`, `exp`, `iat`, the `issuers` extra
//! and, with the `jwksURL` extra, the signature against the provider's JWKS.
//!
//! These are blocking HTTP calls: callers run them on the CPU pool, never on a worker.

use super::oauth2::Provider;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The tolerance for `exp`/`iat` of id tokens (seconds).
const ID_TOKEN_LEEWAY: i64 = 5 * 60;

/// The token endpoint's answer.
#[derive(Debug, Clone, Default)]
pub struct Token {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds; 0 when the provider gave no `expires_in`.
    pub expiry: i64,
    pub id_token: String,
}

/// PocketBase's `AuthUser`.
#[derive(Debug, Clone, Default)]
pub struct AuthUser {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    pub avatar_url: String,
    pub raw_user: Map<String, Value>,
    pub token: Token,
}

impl AuthUser {
    /// The `meta` of the auth response (without `isNew`), keys as Go marshals the struct.
    pub fn meta(&self) -> Map<String, Value> {
        let expiry = if self.token.expiry > 0 {
            pocketbun_storage::time::format_unix_millis(self.token.expiry * 1000)
        } else {
            String::new()
        };
        let v = json!({
            "expiry": expiry,
            "rawUser": self.raw_user,
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "avatarURL": self.avatar_url,
            "accessToken": self.token.access_token,
            "refreshToken": self.token.refresh_token,
            "email": self.email,
            "avatarUrl": self.avatar_url,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// Why the exchange failed: the token step or the user step (PocketBase answers them with
/// different messages).
#[derive(Debug)]
pub enum ExchangeError {
    Token(String),
    User(String),
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Exchanges `code` for a token and the provider's user.
pub fn exchange(
    p: &Provider,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<AuthUser, ExchangeError> {
    let agent = agent();
    let token = fetch_token(&agent, p, code, verifier, redirect).map_err(ExchangeError::Token)?;
    fetch_user(&agent, p, token).map_err(ExchangeError::User)
}

fn fetch_token(
    agent: &ureq::Agent,
    p: &Provider,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<Token, String> {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "authorization_code"), ("code", code)];
    if !redirect.is_empty() {
        form.push(("redirect_uri", redirect));
    }
    if p.pkce {
        form.push(("code_verifier", verifier));
    }
    // credentials in a Basic header first, then in the form (Go's AuthStyleAutoDetect)
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            super::oauth2::form_escape(&p.client_id),
            super::oauth2::form_escape(&p.client_secret)
        ))
    );
    let first = post_token(agent, &p.token_url, &form, Some(&basic));
    let raw = match first {
        Ok(raw) => raw,
        Err(_) => {
            let mut with_creds = form.clone();
            with_creds.push(("client_id", &p.client_id));
            with_creds.push(("client_secret", &p.client_secret));
            post_token(agent, &p.token_url, &with_creds, None)?
        }
    };
    let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let access_token = text("access_token");
    if access_token.is_empty() {
        return Err("server response missing access_token".into());
    }
    let expires_in = match raw.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let now = unix_now();
    Ok(Token {
        access_token,
        refresh_token: text("refresh_token"),
        expiry: if expires_in > 0 { now + expires_in } else { 0 },
        id_token: text("id_token"),
    })
}

fn post_token(
    agent: &ureq::Agent,
    url: &str,
    form: &[(&str, &str)],
    auth: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let mut req = agent.post(url).header("Accept", "application/json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut resp = req
        .send_form(form.iter().copied())
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!("oauth2: cannot fetch token: {status}: {body}"));
    }
    if content_type.contains("application/x-www-form-urlencoded")
        || content_type.contains("text/plain")
    {
        // golang.org/x/oauth2 fails the exchange on a body `url.ParseQuery` refuses and reads
        // the first value of each key
        let form = crate::go::parse_form(body.as_bytes());
        if form.refused {
            return Err("oauth2: cannot parse token response".into());
        }
        let pairs = form.first_values().into_iter();
        return Ok(pairs.map(|(k, v)| (k, Value::String(v))).collect());
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("oauth2: cannot parse token response".into()),
    }
}

fn get_json(agent: &ureq::Agent, url: &str, token: &Token) -> Result<Value, String> {
    let mut resp = agent
        .get(url)
        .header("Authorization", &format!("Bearer {}", token.access_token))
        .header("Accept", "application/json")
        .call()
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !(200..400).contains(&status) {
        return Err(format!(
            "failed to fetch OAuth2 user profile via {url} ({status}): {body}"
        ));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

fn s(v: &Map<String, Value>, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Go's `cast.ToBool` of a claim (`true`, `"true"`, `1`...).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

fn fetch_user(agent: &ureq::Agent, p: &Provider, token: Token) -> Result<AuthUser, String> {
    let kind = p.name.trim_end_matches(['2', '3']);
    let raw: Map<String, Value> =
        if (kind == "oidc" && p.user_info_url.is_empty()) || kind == "apple" {
            id_token_claims(agent, p, &token)?
        } else {
            match get_json(agent, &p.user_info_url, &token)? {
                Value::Object(m) => m,
                _ => return Err("invalid user info".into()),
            }
        };
    let mut user = AuthUser {
        raw_user: raw.clone(),
        ..Default::default()
    };
    match kind {
        "github" => {
            user.id = s(&raw, "id");
            user.name = s(&raw, "name");
            user.username = s(&raw, "login");
            user.avatar_url = s(&raw, "avatar_url");
            // the verified primary email from the emails endpoint
            let emails_url = format!("{}/emails", p.user_info_url.trim_end_matches('/'));
            if let Ok(Value::Array(list)) = get_json(agent, &emails_url, &token) {
                if let Some(e) = list
                    .iter()
                    .filter_map(Value::as_object)
                    .find(|e| truthy(e.get("verified")) && truthy(e.get("primary")))
                {
                    user.email = s(e, "email");
                }
            }
        }
        "gitlab" => {
            user.id = s(&raw, "id");
            user.name = s(&raw, "name");
            user.username = s(&raw, "username");
            user.avatar_url = s(&raw, "avatar_url");
            if !s(&raw, "confirmed_at").is_empty() {
                user.email = s(&raw, "email");
            }
        }
        "discord" => {
            user.id = s(&raw, "id");
            user.username = s(&raw, "username");
            user.name = s(&raw, "global_name");
            if user.name.is_empty() {
                user.name = user.username.clone();
            }
            let avatar = s(&raw, "avatar");
            if !avatar.is_empty() {
                user.avatar_url = format!(
                    "https://cdn.discordapp.com/avatars/{}/{avatar}.png",
                    user.id
                );
            }
            if truthy(raw.get("verified")) {
                user.email = s(&raw, "email");
            }
        }
        "microsoft" => {
            user.id = s(&raw, "id");
            user.name = s(&raw, "displayName");
            user.email = s(&raw, "mail");
        }
        // google, apple and the generic OIDC providers speak OIDC claims
        _ => {
            user.id = s(&raw, "sub");
            user.name = s(&raw, "name");
            user.username = s(&raw, "preferred_username");
            user.avatar_url = s(&raw, "picture");
            if truthy(raw.get("email_verified")) {
                user.email = s(&raw, "email");
            }
        }
    }
    user.token = token;
    Ok(user)
}

/// The claims of the token's `id_token`, validated as PocketBase does.
fn id_token_claims(
    agent: &ureq::Agent,
    p: &Provider,
    token: &Token,
) -> Result<Map<String, Value>, String> {
    let id_token = token.id_token.as_str();
    if id_token.is_empty() {
        return Err("empty id_token".into());
    }
    let claims = super::token::raw_payload(id_token).ok_or("malformed id_token")?;
    let now = unix_now();
    let num = |k: &str| claims.get(k).and_then(Value::as_f64);
    if let Some(exp) = num("exp") {
        if (now - ID_TOKEN_LEEWAY) as f64 >= exp {
            return Err("token is expired".into());
        }
    }
    if let Some(iat) = num("iat") {
        if ((now + ID_TOKEN_LEEWAY) as f64) < iat {
            return Err("token used before issued".into());
        }
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &p.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&p.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("token has invalid audience".into());
    }
    let issuers: Vec<String> = match p.extra.get("issuers") {
        Some(Value::Array(l)) => l
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    };
    if !issuers.is_empty() && !issuers.iter().any(|i| *i == s(&claims, "iss")) {
        return Err("invalid iss".into());
    }
    let jwks_url = match p.extra.get("jwksURL").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => Some(u.to_string()),
        _ if p.name == "apple" => Some("https://appleid.apple.com/auth/keys".to_string()),
        _ => None,
    };
    if let Some(url) = jwks_url {
        verify_signature(agent, id_token, &url)
            .map_err(|e| format!("id_token validation failed: {e}"))?;
    }
    Ok(claims)
}

/// Checks the RS256 signature of `jwt` with the key of its `kid` in the JWKS at `url`.
fn verify_signature(agent: &ureq::Agent, jwt: &str, url: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::RS256 {
        return Err(format!(
            "the id_token alg must be RS256, got {:?}",
            header.alg
        ));
    }
    let kid = header.kid.unwrap_or_default();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    if !(200..300).contains(&resp.status().as_u16()) {
        return Err(format!("failed to fetch JWKS from {url}"));
    }
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let jwks: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|k| s(k, "kid") == kid)
        .ok_or_else(|| format!("jwk with kid {kid:?} was not found"))?;
    let key =
        DecodingKey::from_rsa_components(&s(key, "n"), &s(key, "e")).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn unix_now() -> i64 {
    pocketbun_storage::time::unix_micros() / 1_000_000
}
