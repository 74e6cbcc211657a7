//! OAuth2 providers: the built-in provider definitions (endpoints, scopes, PKCE), a
//! collection's configured providers resolved over them, and the sign-in links
//! `auth-methods` hands out.

use pocketbun_storage::collections::{Collection, OAuth2Provider};
use pocketbun_storage::random;
use serde::Serialize;

/// A built-in provider's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub display_name: &'static str,
    pub pkce: bool,
    pub scopes: &'static [&'static str],
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub user_info_url: &'static str,
    /// Colour of the generated badge logo.
    pub color: &'static str,
}

const OIDC_SCOPES: &[&str] = &["openid", "email", "profile"];

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "apple",
        display_name: "Apple",
        pkce: true,
        scopes: &["name", "email"],
        auth_url: "https://appleid.apple.com/auth/authorize",
        token_url: "https://appleid.apple.com/auth/token",
        user_info_url: "",
        color: "#000000",
    },
    Builtin {
        name: "google",
        display_name: "Google",
        pkce: true,
        scopes: &[
            "https://www.googleapis.com/auth/userinfo.profile",
            "https://www.googleapis.com/auth/userinfo.email",
        ],
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        user_info_url: "https://www.googleapis.com/oauth2/v3/userinfo",
        color: "#4285f4",
    },
    Builtin {
        name: "microsoft",
        display_name: "Microsoft",
        pkce: true,
        scopes: &["User.Read"],
        auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        user_info_url: "https://graph.microsoft.com/v1.0/me",
        color: "#00a4ef",
    },
    Builtin {
        name: "github",
        display_name: "GitHub",
        pkce: true,
        scopes: &["read:user", "user:email"],
        auth_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        user_info_url: "https://api.github.com/user",
        color: "#24292f",
    },
    Builtin {
        name: "gitlab",
        display_name: "GitLab",
        pkce: true,
        scopes: &["read_user"],
        auth_url: "https://gitlab.com/oauth/authorize",
        token_url: "https://gitlab.com/oauth/token",
        user_info_url: "https://gitlab.com/api/v4/user",
        color: "#fc6d26",
    },
    Builtin {
        name: "discord",
        display_name: "Discord",
        pkce: true,
        scopes: &["identify", "email"],
        auth_url: "https://discord.com/api/oauth2/authorize",
        token_url: "https://discord.com/api/oauth2/token",
        user_info_url: "https://discord.com/api/users/@me",
        color: "#5865f2",
    },
    oidc("oidc"),
    oidc("oidc2"),
    oidc("oidc3"),
];

/// One of PocketBase's three OIDC slots: every URL comes from the collection's settings.
const fn oidc(name: &'static str) -> Builtin {
    Builtin {
        name,
        display_name: "OIDC",
        pkce: true,
        scopes: OIDC_SCOPES,
        auth_url: "",
        token_url: "",
        user_info_url: "",
        color: "#ff6200",
    }
}

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// A configured provider: the built-in defaults with the collection's overrides applied.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub display_name: String,
    pub logo: String,
    pub pkce: bool,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub user_info_url: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Provider {
    /// Resolves `cfg` (`None` for unknown provider names).
    pub fn init(cfg: &OAuth2Provider) -> Option<Provider> {
        let b = builtin(&cfg.name)?;
        let pick = |own: &str, default: &str| {
            if own.is_empty() {
                default.to_string()
            } else {
                own.to_string()
            }
        };
        Some(Provider {
            name: cfg.name.clone(),
            display_name: pick(&cfg.display_name, b.display_name),
            logo: logo(b),
            pkce: cfg.pkce.unwrap_or(b.pkce),
            scopes: b.scopes.iter().map(|s| s.to_string()).collect(),
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            auth_url: pick(&cfg.auth_url, b.auth_url),
            token_url: pick(&cfg.token_url, b.token_url),
            user_info_url: pick(&cfg.user_info_url, b.user_info_url),
            extra: cfg.extra.clone().unwrap_or_default(),
        })
    }

    /// The provider's authorization link for `state` (OAuth2's `AuthCodeURL`: the query
    /// parameters sorted by name), with `extra` parameters such as the PKCE challenge.
    pub fn auth_code_url(&self, state: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, String)> = vec![
            ("client_id", self.client_id.clone()),
            ("response_type", "code".into()),
            ("state", state.to_string()),
        ];
        if !redirect.is_empty() {
            params.push(("redirect_uri", redirect.to_string()));
        }
        if !self.scopes.is_empty() {
            params.push(("scope", self.scopes.join(" ")));
        }
        for (k, v) in extra {
            params.push((k, v.to_string()));
        }
        params.sort_by(|a, b| a.0.cmp(b.0));
        let query = params
            .iter()
            .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let sep = if self.auth_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{query}", self.auth_url)
    }
}

/// Go's `url.QueryEscape`.
pub fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Every provider PocketBase knows, in its order, with its display name (what the dashboard
/// offers in `GET /api/collections/meta/oauth2-providers`).
pub const ALL_PROVIDERS: &[(&str, &str)] = &[
    ("apple", "Apple"),
    ("google", "Google"),
    ("microsoft", "Microsoft"),
    ("yandex", "Yandex"),
    ("facebook", "Facebook"),
    ("instagram2", "Instagram"),
    ("github", "GitHub"),
    ("gitlab", "GitLab"),
    ("bitbucket", "Bitbucket"),
    ("gitee", "Gitee"),
    ("gitea", "Gitea/Forgejo"),
    ("discord", "Discord"),
    ("twitter", "X/Twitter"),
    ("kakao", "Kakao"),
    ("vk", "ВКонтакте"),
    ("linear", "Linear"),
    ("notion", "Notion"),
    ("monday", "monday.com"),
    ("lark", "Lark"),
    ("box", "Box"),
    ("spotify", "Spotify"),
    ("trakt", "Trakt"),
    ("twitch", "Twitch"),
    ("patreon", "Patreon"),
    ("strava", "Strava"),
    ("wakatime", "WakaTime"),
    ("livechat", "LiveChat"),
    ("mailcow", "mailcow"),
    ("planningcenter", "Planning Center"),
    ("oidc", "OIDC"),
    ("oidc2", "OIDC"),
    ("oidc3", "OIDC"),
];

/// The badge logo of any provider in [`ALL_PROVIDERS`].
pub fn provider_logo(name: &str, display_name: &str) -> String {
    match builtin(name) {
        Some(b) => logo(b),
        None => badge(display_name, "#6b7280"),
    }
}

/// A small badge logo (the provider's initial on its colour).
fn logo(b: &Builtin) -> String {
    badge(b.display_name, b.color)
}

fn badge(display_name: &str, color: &str) -> String {
    let initial = display_name.chars().next().unwrap_or('?');
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 64\">\
<rect width=\"64\" height=\"64\" rx=\"12\" fill=\"{}\"/>\
<text x=\"32\" y=\"43\" font-family=\"sans-serif\" font-size=\"30\" text-anchor=\"middle\" fill=\"#fff\">{initial}</text></svg>",
        color
    )
}

/// PKCE's S256 challenge of a code verifier.
pub fn s256_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// One provider as `auth-methods` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub name: String,
    #[serde(rename = "displayName")]
    pub display_name: String,
    pub logo: String,
    pub state: String,
    #[serde(rename = "authURL")]
    pub auth_url: String,
    #[serde(rename = "authUrl")]
    pub auth_url_legacy: String,
    #[serde(rename = "codeVerifier")]
    pub code_verifier: String,
    #[serde(rename = "codeChallenge")]
    pub code_challenge: String,
    #[serde(rename = "codeChallengeMethod")]
    pub code_challenge_method: String,
}

/// The sign-in links of the collection's providers (unknown providers are skipped).
pub fn providers_info(coll: &Collection) -> Vec<ProviderInfo> {
    let mut out = Vec::new();
    for cfg in coll.auth.oauth2.providers.iter().flatten() {
        let Some(p) = Provider::init(cfg) else {
            continue;
        };
        let state = random::random_string(30);
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if p.name == "apple" {
            extra.push(("response_mode", "form_post"));
        }
        let (mut verifier, mut challenge, mut method) = (String::new(), String::new(), "");
        if p.pkce {
            verifier = random::random_string(43);
            challenge = s256_challenge(&verifier);
            method = "S256";
        }
        if p.pkce {
            extra.push(("code_challenge", &challenge));
            extra.push(("code_challenge_method", method));
        }
        let url = format!("{}&redirect_uri=", p.auth_code_url(&state, "", &extra));
        out.push(ProviderInfo {
            name: p.name.clone(),
            display_name: if p.display_name.is_empty() {
                p.name.clone()
            } else {
                p.display_name.clone()
            },
            logo: p.logo.clone(),
            state,
            auth_url: url.clone(),
            auth_url_legacy: url,
            code_verifier: verifier.clone(),
            code_challenge: challenge.clone(),
            code_challenge_method: method.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_rfc7636() {
        // RFC 7636, appendix B
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn auth_code_url_sorted_and_escaped() {
        let p = Provider::init(&OAuth2Provider {
            name: "gitlab".into(),
            client_id: "a b".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            p.auth_code_url("st", "", &[("code_challenge", "x")]),
            "https://gitlab.com/oauth/authorize?client_id=a+b&code_challenge=x&response_type=code&scope=read_user&state=st"
        );
    }
}

/// Apple sends the user's name only with its first redirect (as the form field `user`), never
/// from an endpoint: the redirect keeps it for a minute under the authorization code, and the
/// code exchange of `auth-with-oauth2` takes it from there.
pub mod apple_names {
    use crate::app_store::AppStore;
    use std::time::Duration;

    const KEY_PREFIX: &str = "@redirect_name_";
    /// Longest key kept (PocketBase's limit), so a huge code cannot pin memory.
    const MAX_KEY: usize = 1000;
    const MAX_NAME: usize = 150;
    const TTL: Duration = Duration::from_secs(60);

    /// Keeps the name in Apple's `user` JSON (`{"name":{"firstName","lastName"}}`) for `code`.
    /// Returns whether a name was kept.
    pub fn store(app: &AppStore, code: &str, user_json: &str) -> bool {
        if user_json.is_empty() || KEY_PREFIX.len() + code.len() > MAX_KEY {
            return false;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(user_json) else {
            return false;
        };
        let part = |k: &str| {
            v.pointer(&format!("/name/{k}"))
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        let mut full = format!("{} {}", part("firstName"), part("lastName"));
        if full.len() > MAX_NAME {
            let mut cut = MAX_NAME;
            while !full.is_char_boundary(cut) {
                cut -= 1;
            }
            full.truncate(cut);
        }
        let full = full.trim();
        if full.is_empty() {
            return false;
        }
        app.set_value(&format!("{KEY_PREFIX}{code}"), full.to_string(), TTL);
        true
    }

    /// The name kept for `code` (removed: it serves one exchange).
    pub fn take(app: &AppStore, code: &str) -> Option<String> {
        app.take(&format!("{KEY_PREFIX}{code}"))
    }
}
