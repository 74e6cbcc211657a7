//! PocketBase's rate limiter, driven by the `rateLimits` settings.
//!
//! Every request is matched against the rules once, before dispatch, with its route (resolved
//! once, from the head: [`crate::ctx::Matched`]):
//! - the routes registered with a [`CollectionLimit`] (record CRUD, the collection auth
//!   routes such as `auth-with-password` or `request-otp`, file downloads) are checked with
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
//! The counters are one table shared by all workers ([`crate::fixed_windows`], in
//! [`crate::ctx::Shared`]), reset when the settings change, as PocketBase does on reload.
//! When the limiter is off (the default) the whole check is one atomic load.

use crate::client_ip::{client_ip, ip_in_list};
use crate::ctx::{AppCtx, CollectionLimit, Route};
use crate::error::ApiError;
use crate::fixed_windows::Limit;
use crate::settings::model::{RateLimitRule, RateLimitsConfig};
use pocketbun_http::Request;
use std::time::{SystemTime, UNIX_EPOCH};

/// Checks the request (whose route is `route`, `None` when no route takes it) against the
/// rate limit rules: `Err` is the 429 to answer with.
pub fn check(ctx: &AppCtx, req: &Request, route: Option<&Route>) -> Result<(), ApiError> {
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
    let ip = client_ip(&settings.trusted_proxy, req.peer.ip(), |h| {
        req.head.headers.last(h)
    });
    if ip.is_empty() || ip_in_list(&settings.rate_limits.excluded_ips, &ip) {
        return Ok(());
    }
    let raw = crate::ctx::raw_path(&req.head);
    // PocketBase matches its labels against `r.URL.Path`: path-unescaped, so `+` stays `+`
    let mut path = String::with_capacity(raw.len());
    crate::go::path_unescape_into(&mut path, raw);
    let method = req.head.method.as_str().to_ascii_uppercase();
    let audiences: [&str; 2] = if auth.is_some() {
        ["", "@auth"]
    } else {
        ["", "@guest"]
    };
    let default_labels = [format!("{method} {path}"), path.clone()];

    let collection_route = route.and_then(|r| {
        let limit = r.collection_limit.as_ref()?;
        let collection = req.param("collection").filter(|c| !c.is_empty())?;
        Some((r, limit, collection))
    });
    let (limiter_id, rule) = match collection_route {
        Some((route, limit, collection)) => {
            let schema = ctx.shared.schema.get();
            let Some(collection) = schema.collections.get(collection) else {
                // the handler answers the 404
                return Ok(());
            };
            if limit.writes && collection.is_view() {
                // the handler answers the 400 before any limit is counted
                return Ok(());
            }
            let Some(rule) = find_rule(
                &settings.rate_limits,
                &collection_labels(limit, &collection.name, default_labels),
                &audiences,
            ) else {
                return Ok(());
            };
            let id = format!(
                "{}{}{}{}",
                collection.id,
                route.name,
                limit.tags.concat(),
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
    let limit = Limit {
        max: rule.max_requests,
        interval: rule.duration,
    };
    if ctx
        .shared
        .rate_windows
        .consume(&settings, &limiter_id, &ip, limit, now())
    {
        Ok(())
    } else {
        Err(ApiError::new(429, "Too Many Requests."))
    }
}

/// The labels a collection route is matched with, in order: `name:tag` for each tag, then
/// `*:tag`, then the method+path and path labels every route has.
fn collection_labels(limit: &CollectionLimit, name: &str, default: [String; 2]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::with_capacity(2 * limit.tags.len() + 2);
    labels.extend(limit.tags.iter().map(|t| format!("{name}:{t}")));
    labels.extend(limit.tags.iter().map(|t| format!("*:{t}")));
    labels.extend(default);
    labels
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
}
