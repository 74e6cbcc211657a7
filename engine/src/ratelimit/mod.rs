//! PocketBase's rate limiter, driven by the `rateLimits` settings.
//!
//! Every request is matched against the rules once, before dispatch:
//! - the record CRUD routes (`/api/collections/{c}/records[/{id}]`), the collection auth
//!   routes (`auth-with-password`, `request-otp`, ...) and file downloads are checked with
//!   their collection tags first (`users:create`, `*:create`, `users:auth`, `*:auth`,
//!   `users:file`...), then the method+path and path labels, in a limiter of their own per
//!   collection and route (PocketBase's `checkCollectionRateLimit`);
//! - every other route only with `METHOD /path` and `/path` (plus rules whose label ends with
//!   `/` as path prefixes), in one limiter per rule (PocketBase's global middleware).
//!
//! A rule applies to its audience only (`@guest`, `@auth` or everyone); superusers and
//! `excludedIPs` are never limited. The client key is the IP from [`crate::client_ip`].
//! Windows are fixed, per client and limiter: `maxRequests` per `duration` seconds counted
//! from the first request of the window. A refused request gets PocketBase's 429.
//!
//! The limiter state is one table shared by all workers (so limits hold whatever worker a
//! connection lands on), reset when the settings change, as PocketBase does on reload. When
//! the limiter is off (the default) the whole check is one atomic load.

use crate::client_ip::{client_ip, ip_in_list};
use crate::ctx::AppCtx;
use crate::error::ApiError;
use crate::settings::model::{RateLimitRule, RateLimitsConfig};
use crate::settings::Settings;
use pocketbun_http::{Method, Request};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Idle clients are forgotten this long (seconds) after their last window ended.
const MIN_DELETE_INTERVAL: i64 = 1800;
/// How often (seconds) idle clients are swept.
const SWEEP_EVERY: i64 = 3600;

/// Checks the request against the rate limit rules: `Err` is the 429 to answer with.
pub fn check(ctx: &AppCtx, req: &Request) -> Result<(), ApiError> {
    if !ctx.shared.settings.rate_limits_enabled() {
        return Ok(());
    }
    let settings = ctx.shared.settings.get();
    if !settings.rate_limits.enabled {
        return Ok(());
    }
    let auth = ctx.auth(req);
    if auth.as_ref().is_some_and(|a| a.is_superuser()) {
        return Ok(());
    }
    let ip = client_ip(&settings.trusted_proxy, req);
    if ip.is_empty() || ip_in_list(&settings.rate_limits.excluded_ips, &ip) {
        return Ok(());
    }
    let raw = crate::ctx::raw_path(&req.head);
    let path = if raw.contains('%') {
        crate::go::url_decode(raw).unwrap_or_else(|| raw.to_string())
    } else {
        raw.to_string()
    };
    let method = req.head.method.as_str().to_ascii_uppercase();
    let audiences: [&str; 2] = if auth.is_some() {
        ["", "@auth"]
    } else {
        ["", "@guest"]
    };
    let default_labels = [format!("{method} {path}"), path.clone()];

    let (limiter_id, rule) = match collection_route(&req.head.method, &path) {
        Some(route) => {
            let schema = ctx.shared.schema.get();
            let Some(collection) = schema.collections.get(&route.collection) else {
                // the handler answers the 404
                return Ok(());
            };
            if route.writes && collection.is_view() {
                // the handler answers the 400 before any limit is counted
                return Ok(());
            }
            let mut labels: Vec<String> = Vec::with_capacity(2 * route.tags.len() + 2);
            labels.extend(
                route
                    .tags
                    .iter()
                    .map(|t| format!("{}:{t}", collection.name)),
            );
            labels.extend(route.tags.iter().map(|t| format!("*:{t}")));
            labels.extend(default_labels);
            let Some(rule) = find_rule(&settings.rate_limits, &labels, &audiences) else {
                return Ok(());
            };
            let id = format!(
                "{}{}{}{}",
                collection.id,
                route.pattern,
                route.tags.concat(),
                rule.audience
            );
            (id, rule)
        }
        None => {
            let Some(rule) = find_rule(&settings.rate_limits, &default_labels, &audiences) else {
                return Ok(());
            };
            (format!("{}{}", rule.label, rule.audience), rule)
        }
    };
    if consume(&settings, &limiter_id, rule, ip, now()) {
        Ok(())
    } else {
        Err(ApiError::new(429, "Too Many Requests."))
    }
}

/// A route PocketBase limits with collection tags.
struct CollectionRoute {
    collection: String,
    /// The route's pattern (part of the limiter's identity).
    pattern: &'static str,
    tags: &'static [&'static str],
    /// Create/update: not checked for view collections (the handler refuses them first).
    writes: bool,
}

fn collection_route(method: &Method, path: &str) -> Option<CollectionRoute> {
    let route = |collection: &str, pattern, tags, writes| {
        Some(CollectionRoute {
            collection: collection.to_string(),
            pattern,
            tags,
            writes,
        })
    };
    if let Some(rest) = path.strip_prefix("/api/files/") {
        let parts: Vec<&str> = rest.split('/').collect();
        return match (method, parts.as_slice()) {
            (Method::Get | Method::Head, [c, id, file])
                if !c.is_empty() && !id.is_empty() && !file.is_empty() =>
            {
                route(
                    c,
                    "GET /api/files/{collection}/{recordId}/{filename}",
                    &["file"],
                    false,
                )
            }
            _ => None,
        };
    }
    let rest = path.strip_prefix("/api/collections/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (c, action) = match parts.as_slice() {
        [c, action] if !c.is_empty() => (*c, *action),
        [c, "records", id] if !c.is_empty() && !id.is_empty() => {
            return match method {
                Method::Get | Method::Head => route(
                    c,
                    "GET /api/collections/{collection}/records/{id}",
                    &["view"],
                    false,
                ),
                Method::Patch => route(
                    c,
                    "PATCH /api/collections/{collection}/records/{id}",
                    &["update"],
                    true,
                ),
                Method::Delete => route(
                    c,
                    "DELETE /api/collections/{collection}/records/{id}",
                    &["delete"],
                    false,
                ),
                _ => None,
            };
        }
        _ => return None,
    };
    let post = matches!(method, Method::Post);
    match action {
        "records" => match method {
            Method::Get | Method::Head => route(
                c,
                "GET /api/collections/{collection}/records",
                &["list"],
                false,
            ),
            Method::Post => route(
                c,
                "POST /api/collections/{collection}/records",
                &["create"],
                true,
            ),
            _ => None,
        },
        "auth-methods" if matches!(method, Method::Get | Method::Head) => route(
            c,
            "GET /api/collections/{collection}/auth-methods",
            &["listAuthMethods"],
            false,
        ),
        _ if !post => None,
        "auth-refresh" => route(c, "POST auth-refresh", &["authRefresh"], false),
        "auth-with-password" => route(
            c,
            "POST auth-with-password",
            &["authWithPassword", "auth"],
            false,
        ),
        "auth-with-oauth2" => route(
            c,
            "POST auth-with-oauth2",
            &["authWithOAuth2", "auth"],
            false,
        ),
        "request-otp" => route(c, "POST request-otp", &["requestOTP"], false),
        "auth-with-otp" => route(c, "POST auth-with-otp", &["authWithOTP", "auth"], false),
        "request-password-reset" => route(
            c,
            "POST request-password-reset",
            &["requestPasswordReset"],
            false,
        ),
        "confirm-password-reset" => route(
            c,
            "POST confirm-password-reset",
            &["confirmPasswordReset"],
            false,
        ),
        "request-verification" => route(
            c,
            "POST request-verification",
            &["requestVerification"],
            false,
        ),
        "confirm-verification" => route(
            c,
            "POST confirm-verification",
            &["confirmVerification"],
            false,
        ),
        "request-email-change" => route(
            c,
            "POST request-email-change",
            &["requestEmailChange"],
            false,
        ),
        "confirm-email-change" => route(
            c,
            "POST confirm-email-change",
            &["confirmEmailChange"],
            false,
        ),
        _ => None,
    }
}

/// The first rule matching the labels in order (exactly, or — rules ending with `/` — as a
/// path prefix of the label), among the rules of the given audiences.
pub fn find_rule<'a>(
    config: &'a RateLimitsConfig,
    labels: &[String],
    audiences: &[&str],
) -> Option<&'a RateLimitRule> {
    let for_audience = |r: &RateLimitRule| audiences.contains(&r.audience.as_str());
    let prefix_rules: Vec<&RateLimitRule> = config
        .rules
        .iter()
        .filter(|r| r.label.ends_with('/'))
        .collect();
    for label in labels {
        if let Some(rule) = config
            .rules
            .iter()
            .find(|r| r.label == *label && for_audience(r))
        {
            return Some(rule);
        }
        let slashed = format!("{label}/");
        if let Some(rule) = prefix_rules
            .iter()
            .find(|r| slashed.starts_with(r.label.as_str()) && for_audience(r))
        {
            return Some(rule);
        }
    }
    None
}

struct Limiters {
    /// The settings the limiters were made for (a settings change resets them all).
    settings: Option<Arc<Settings>>,
    limiters: HashMap<String, Limiter>,
    last_sweep: i64,
}

struct Limiter {
    max: i64,
    interval: i64,
    clients: HashMap<String, Window>,
}

/// A client's fixed window: requests left and when the window started (unix seconds).
struct Window {
    available: i64,
    start: i64,
}

static LIMITERS: LazyLock<Mutex<Limiters>> = LazyLock::new(|| {
    Mutex::new(Limiters {
        settings: None,
        limiters: HashMap::new(),
        last_sweep: 0,
    })
});

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Takes one request from `client`'s window in limiter `id`; false when none is left.
fn consume(
    settings: &Arc<Settings>,
    id: &str,
    rule: &RateLimitRule,
    client: String,
    now: i64,
) -> bool {
    let mut all = LIMITERS.lock().unwrap_or_else(|p| p.into_inner());
    if !all
        .settings
        .as_ref()
        .is_some_and(|s| Arc::ptr_eq(s, settings))
    {
        all.settings = Some(settings.clone());
        all.limiters.clear();
    }
    if now - all.last_sweep >= SWEEP_EVERY {
        all.last_sweep = now;
        for limiter in all.limiters.values_mut() {
            let interval = limiter.interval;
            limiter
                .clients
                .retain(|_, w| now - (w.start + interval) <= MIN_DELETE_INTERVAL);
        }
    }
    let limiter = match all.limiters.get_mut(id) {
        Some(l) => l,
        None => all.limiters.entry(id.to_string()).or_insert(Limiter {
            max: rule.max_requests,
            interval: rule.duration,
            clients: HashMap::new(),
        }),
    };
    let (max, interval) = (limiter.max, limiter.interval);
    let window = limiter.clients.entry(client).or_insert(Window {
        available: 0,
        start: i64::MIN / 2,
    });
    if now - window.start >= interval {
        window.available = max;
        window.start = now;
    }
    if window.available > 0 {
        window.available -= 1;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(label: &str, audience: &str) -> RateLimitRule {
        RateLimitRule {
            label: label.into(),
            audience: audience.into(),
            duration: 1,
            max_requests: 1,
        }
    }

    #[test]
    fn rule_matching_order() {
        let config = RateLimitsConfig {
            rules: vec![
                // prefix rules are tried in the order of the settings
                rule("/api/collections/posts/", "@auth"),
                rule("/api/", ""),
                rule("*:auth", "@guest"),
                rule("users:auth", "@auth"),
                rule("POST /api/batch", ""),
            ],
            excluded_ips: vec![],
            enabled: true,
        };
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let guest = ["", "@guest"];
        let authed = ["", "@auth"];
        let found = |l: &[&str], a: &[&str]| {
            find_rule(&config, &labels(l), a).map(|r| (r.label.clone(), r.audience.clone()))
        };
        let r = |l: &str, a: &str| Some((l.to_string(), a.to_string()));
        let auth_labels = ["users:auth", "*:auth", "POST /api/x", "/api/x"];
        assert_eq!(found(&auth_labels, &guest), r("*:auth", "@guest"));
        assert_eq!(found(&auth_labels, &authed), r("users:auth", "@auth"));
        assert_eq!(
            found(&["POST /api/batch", "/api/batch"], &guest),
            r("POST /api/batch", "")
        );
        assert_eq!(
            found(&["GET /api/batch", "/api/batch"], &guest),
            r("/api/", "")
        );
        // a prefix rule covers the path itself without its trailing slash
        assert_eq!(
            found(
                &["GET /api/collections/posts", "/api/collections/posts"],
                &authed
            ),
            r("/api/collections/posts/", "@auth")
        );
        assert_eq!(
            found(
                &["GET /api/collections/posts", "/api/collections/posts"],
                &guest
            ),
            r("/api/", "")
        );
        assert_eq!(found(&["GET /other", "/other"], &guest), None);
    }

    #[test]
    fn fixed_windows() {
        let settings = Arc::new(Settings::default());
        let rule = RateLimitRule {
            label: "x".into(),
            audience: "".into(),
            duration: 3,
            max_requests: 2,
        };
        let id = "unit-test-fixed-windows";
        let take = |ip: &str, t| consume(&settings, id, &rule, ip.into(), t);
        assert!(take("a", 100));
        assert!(take("a", 101));
        assert!(!take("a", 102));
        assert!(take("b", 102));
        assert!(take("a", 103));
        assert!(take("a", 105));
        assert!(!take("a", 105));
    }
}
