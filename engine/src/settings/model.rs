//! The application settings as PocketBase v0.39 defines them: field names and order, defaults,
//! the stored form (with secrets) and the public form (secrets left out), and validation.

use super::rules::{self, Check};
use crate::bind_fields;
use crate::error::{FieldError, FieldErrors};
use regex::Regex;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    #[serde(rename = "superuserIPs")]
    pub superuser_ips: Vec<String>,
    pub smtp: SmtpConfig,
    pub backups: BackupsConfig,
    pub s3: S3Config,
    pub meta: MetaConfig,
    #[serde(rename = "rateLimits")]
    pub rate_limits: RateLimitsConfig,
    #[serde(rename = "trustedProxy")]
    pub trusted_proxy: TrustedProxyConfig,
    pub batch: BatchConfig,
    pub logs: LogsConfig,
}
bind_fields!(Settings {
    "superuserIPs" => superuser_ips,
    "smtp" => smtp,
    "backups" => backups,
    "s3" => s3,
    "meta" => meta,
    "rateLimits" => rate_limits,
    "trustedProxy" => trusted_proxy,
    "batch" => batch,
    "logs" => logs,
});

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmtpConfig {
    pub enabled: bool,
    pub port: i64,
    pub host: String,
    pub username: String,
    pub password: String,
    /// `PLAIN` (default when empty) or `LOGIN`.
    pub auth_method: String,
    /// Implicit TLS; when false STARTTLS is used if the server offers it.
    pub tls: bool,
    /// EHLO name (default "localhost").
    pub local_name: String,
    /// Leave the password out of the JSON (the public form).
    hide_password: bool,
}
bind_fields!(SmtpConfig {
    "enabled" => enabled,
    "port" => port,
    "host" => host,
    "username" => username,
    "password" => password,
    "authMethod" => auth_method,
    "tls" => tls,
    "localName" => local_name,
});

impl Serialize for SmtpConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("SmtpConfig", 8)?;
        st.serialize_field("enabled", &self.enabled)?;
        st.serialize_field("port", &self.port)?;
        st.serialize_field("host", &self.host)?;
        st.serialize_field("username", &self.username)?;
        if !self.hide_password {
            st.serialize_field("password", &self.password)?;
        }
        st.serialize_field("authMethod", &self.auth_method)?;
        st.serialize_field("tls", &self.tls)?;
        st.serialize_field("localName", &self.local_name)?;
        st.end()
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct S3Config {
    pub enabled: bool,
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    #[serde(rename = "accessKey")]
    pub access_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret: String,
    #[serde(rename = "forcePathStyle")]
    pub force_path_style: bool,
}
bind_fields!(S3Config {
    "enabled" => enabled,
    "bucket" => bucket,
    "region" => region,
    "endpoint" => endpoint,
    "accessKey" => access_key,
    "secret" => secret,
    "forcePathStyle" => force_path_style,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BackupsConfig {
    pub cron: String,
    #[serde(rename = "cronMaxKeep")]
    pub cron_max_keep: i64,
    pub s3: S3Config,
}
bind_fields!(BackupsConfig {
    "cron" => cron,
    "cronMaxKeep" => cron_max_keep,
    "s3" => s3,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MetaConfig {
    #[serde(rename = "accentColor")]
    pub accent_color: String,
    #[serde(rename = "appName")]
    pub app_name: String,
    #[serde(rename = "appURL")]
    pub app_url: String,
    #[serde(rename = "senderName")]
    pub sender_name: String,
    #[serde(rename = "senderAddress")]
    pub sender_address: String,
    #[serde(rename = "hideControls")]
    pub hide_controls: bool,
}
bind_fields!(MetaConfig {
    "accentColor" => accent_color,
    "appName" => app_name,
    "appURL" => app_url,
    "senderName" => sender_name,
    "senderAddress" => sender_address,
    "hideControls" => hide_controls,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RateLimitsConfig {
    pub rules: Vec<RateLimitRule>,
    #[serde(rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
    pub enabled: bool,
}
bind_fields!(RateLimitsConfig {
    "rules" => rules,
    "excludedIPs" => excluded_ips,
    "enabled" => enabled,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RateLimitRule {
    /// A tag, `collection:action`, `*:action`, a path or path prefix, or `METHOD /path`.
    pub label: String,
    /// "" (everyone), "@guest" or "@auth".
    pub audience: String,
    /// Seconds per window.
    pub duration: i64,
    #[serde(rename = "maxRequests")]
    pub max_requests: i64,
}
bind_fields!(RateLimitRule {
    "label" => label,
    "audience" => audience,
    "duration" => duration,
    "maxRequests" => max_requests,
});

/// Defined beside the resolver that reads it, so `client_ip` needs no settings.
pub use crate::client_ip::TrustedProxyConfig;
bind_fields!(TrustedProxyConfig {
    "headers" => headers,
    "useLeftmostIP" => use_leftmost_ip,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BatchConfig {
    pub enabled: bool,
    #[serde(rename = "maxRequests")]
    pub max_requests: i64,
    /// Seconds.
    pub timeout: i64,
    /// Bytes; 0 = the default (~128 MiB).
    #[serde(rename = "maxBodySize")]
    pub max_body_size: i64,
}
bind_fields!(BatchConfig {
    "enabled" => enabled,
    "maxRequests" => max_requests,
    "timeout" => timeout,
    "maxBodySize" => max_body_size,
});

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LogsConfig {
    /// PocketBase 0.40: the largest `data` JSON a stored log keeps, in bytes (0 = 16384);
    /// see `crate::logs::fit_data`.
    #[serde(rename = "maxDataSize")]
    pub max_data_size: i64,
    #[serde(rename = "maxDays")]
    pub max_days: i64,
    #[serde(rename = "minLevel")]
    pub min_level: i64,
    #[serde(rename = "logIP")]
    pub log_ip: bool,
    #[serde(rename = "logAuthId")]
    pub log_auth_id: bool,
}
bind_fields!(LogsConfig {
    "maxDataSize" => max_data_size,
    "maxDays" => max_days,
    "minLevel" => min_level,
    "logIP" => log_ip,
    "logAuthId" => log_auth_id,
});

impl Default for Settings {
    /// A fresh install's settings.
    fn default() -> Self {
        let rule = |label: &str, max_requests, duration| RateLimitRule {
            label: label.into(),
            audience: String::new(),
            duration,
            max_requests,
        };
        Settings {
            superuser_ips: Vec::new(),
            smtp: SmtpConfig {
                port: 587,
                host: "smtp.example.com".into(),
                ..Default::default()
            },
            backups: BackupsConfig {
                cron_max_keep: 3,
                ..Default::default()
            },
            s3: S3Config::default(),
            meta: MetaConfig {
                accent_color: "#1055c9".into(),
                app_name: "Acme".into(),
                app_url: "http://localhost:8090".into(),
                sender_name: "Support".into(),
                sender_address: "support@example.com".into(),
                hide_controls: false,
            },
            rate_limits: RateLimitsConfig {
                rules: vec![
                    rule("*:auth", 2, 3),
                    rule("*:create", 20, 5),
                    rule("/api/batch", 3, 1),
                    rule("/api/", 300, 10),
                ],
                ..Default::default()
            },
            trusted_proxy: TrustedProxyConfig::default(),
            batch: BatchConfig {
                max_requests: 50,
                timeout: 3,
                ..Default::default()
            },
            logs: LogsConfig {
                max_days: 5,
                log_ip: true,
                ..Default::default()
            },
        }
    }
}

impl Settings {
    /// The JSON kept in `_params` (secrets included).
    pub fn to_stored_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A copy safe to show: SMTP password left out, S3 secrets blanked (and so left out).
    pub fn public(&self) -> Settings {
        let mut copy = self.clone();
        copy.smtp.hide_password = true;
        copy.s3.secret.clear();
        copy.backups.s3.secret.clear();
        copy
    }

    /// PocketBase's settings validation; empty when valid.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if let Some(e) = rules::each_required(&self.superuser_ips, rules::ip_or_subnet) {
            errs.nest("superuserIPs", e);
        }
        errs.nest("meta", self.meta.validate());
        errs.nest("logs", self.logs.validate());
        errs.nest("smtp", self.smtp.validate());
        errs.nest("s3", self.s3.validate());
        errs.nest("backups", self.backups.validate());
        errs.nest("batch", self.batch.validate());
        errs.nest("rateLimits", self.rate_limits.validate());
        errs
    }
}

/// Runs `checks` in order and records the first failure under `key`.
fn field(errs: &mut FieldErrors, key: &str, checks: &[&dyn Fn() -> Check]) {
    for check in checks {
        if let Err(e) = check() {
            errs.add(key, e);
            return;
        }
    }
}

fn when(cond: bool, check: Check) -> Check {
    if cond {
        check
    } else {
        Ok(())
    }
}

impl MetaConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        field(
            &mut e,
            "accentColor",
            &[&|| rules::length(&self.accent_color, 7, 7), &|| {
                rules::hex_color(&self.accent_color)
            }],
        );
        field(
            &mut e,
            "appName",
            &[&|| rules::required_str(&self.app_name), &|| {
                rules::length(&self.app_name, 1, 255)
            }],
        );
        field(
            &mut e,
            "appURL",
            &[&|| rules::required_str(&self.app_url), &|| {
                rules::url(&self.app_url)
            }],
        );
        field(
            &mut e,
            "senderName",
            &[&|| rules::required_str(&self.sender_name), &|| {
                rules::length(&self.sender_name, 1, 255)
            }],
        );
        field(
            &mut e,
            "senderAddress",
            &[&|| rules::email(&self.sender_address), &|| {
                rules::required_str(&self.sender_address)
            }],
        );
        e
    }
}

impl LogsConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        // 0.40 caps what a JSON number can carry exactly (2^53 - 1)
        const MAX_SAFE: i64 = (1 << 53) - 1;
        field(
            &mut e,
            "maxDataSize",
            &[&|| rules::min(self.max_data_size, 0), &|| {
                rules::max(self.max_data_size, MAX_SAFE)
            }],
        );
        field(
            &mut e,
            "maxDays",
            &[&|| rules::min(self.max_days, 0), &|| {
                rules::max(self.max_days, MAX_SAFE)
            }],
        );
        field(
            &mut e,
            "minLevel",
            &[&|| rules::max(self.min_level, MAX_SAFE)],
        );
        e
    }
}

impl SmtpConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        field(
            &mut e,
            "host",
            &[
                &|| when(self.enabled, rules::required_str(&self.host)),
                &|| rules::host(&self.host),
            ],
        );
        field(
            &mut e,
            "port",
            &[
                &|| when(self.enabled, rules::required_int(self.port)),
                &|| rules::min(self.port, 0),
            ],
        );
        field(
            &mut e,
            "authMethod",
            &[&|| rules::one_of(&self.auth_method, &["LOGIN", "PLAIN"])],
        );
        field(&mut e, "localName", &[&|| rules::host(&self.local_name)]);
        e
    }
}

impl S3Config {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        let on = self.enabled;
        field(
            &mut e,
            "endpoint",
            &[&|| rules::url(&self.endpoint), &|| {
                when(on, rules::required_str(&self.endpoint))
            }],
        );
        for (key, value) in [
            ("bucket", &self.bucket),
            ("region", &self.region),
            ("accessKey", &self.access_key),
            ("secret", &self.secret),
        ] {
            field(&mut e, key, &[&|| when(on, rules::required_str(value))]);
        }
        e
    }
}

impl BackupsConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        e.nest("s3", self.s3.validate());
        field(&mut e, "cron", &[&|| rules::cron(&self.cron)]);
        field(
            &mut e,
            "cronMaxKeep",
            &[
                &|| {
                    when(
                        !self.cron.is_empty(),
                        rules::required_int(self.cron_max_keep),
                    )
                },
                &|| rules::min(self.cron_max_keep, 1),
            ],
        );
        e
    }
}

impl BatchConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        let on = self.enabled;
        field(
            &mut e,
            "maxRequests",
            &[
                &|| when(on, rules::required_int(self.max_requests)),
                &|| rules::min(self.max_requests, 0),
            ],
        );
        field(
            &mut e,
            "timeout",
            &[&|| when(on, rules::required_int(self.timeout)), &|| {
                rules::min(self.timeout, 0)
            }],
        );
        field(
            &mut e,
            "maxBodySize",
            &[&|| rules::min(self.max_body_size, 0)],
        );
        e
    }
}

static RULE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9A-Za-z_]+ /[0-9A-Za-z_/-]*|/[0-9A-Za-z_/-]*|[0-9A-Za-z_]+:[0-9A-Za-z_]+|\*:[0-9A-Za-z_]+|[0-9A-Za-z_]+)$")
        .unwrap()
});

impl RateLimitsConfig {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        if self.enabled && self.rules.is_empty() {
            e.add("rules", rules::blank());
        } else if let Some(conflict) = self.conflicting_rule() {
            e.nest("rules", conflict);
        } else {
            let mut each = FieldErrors::new();
            for (i, rule) in self.rules.iter().enumerate() {
                each.nest(i.to_string(), rule.validate());
            }
            e.nest("rules", each);
        }
        if let Some(ips) = rules::each_required(&self.excluded_ips, rules::ip_or_subnet) {
            e.nest("excludedIPs", ips);
        }
        e
    }

    /// The first rule whose label+audience key is a prefix of an earlier one's (or vice versa).
    fn conflicting_rule(&self) -> Option<FieldErrors> {
        let mut seen: Vec<String> = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("{}@@{}", rule.label, rule.audience);
            if seen
                .iter()
                .any(|k| k.starts_with(&key) || key.starts_with(k.as_str()))
            {
                let mut inner = FieldErrors::new();
                inner.add(
                    "label",
                    FieldError::new(
                        "validation_conflicting_rate_limit_rule",
                        format!("Rate limit rule configuration with label {} already exists or conflicts with another rule.", rule.label),
                    )
                    .param("label", rule.label.clone()),
                );
                let mut outer = FieldErrors::new();
                outer.nest(i.to_string(), inner);
                return Some(outer);
            }
            seen.push(key);
        }
        None
    }
}

impl RateLimitRule {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        field(
            &mut e,
            "label",
            &[&|| rules::required_str(&self.label), &|| {
                rules::matches(&self.label, &RULE_LABEL)
            }],
        );
        field(
            &mut e,
            "maxRequests",
            &[&|| rules::required_int(self.max_requests), &|| {
                rules::min(self.max_requests, 1)
            }],
        );
        field(
            &mut e,
            "duration",
            &[&|| rules::required_int(self.duration), &|| {
                rules::min(self.duration, 1)
            }],
        );
        field(
            &mut e,
            "audience",
            &[&|| rules::one_of(&self.audience, &["", "@guest", "@auth"])],
        );
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::bind::Bind;

    #[test]
    fn default_matches_fresh_pocketbase_storage() {
        let expected = r##"{"superuserIPs":[],"smtp":{"enabled":false,"port":587,"host":"smtp.example.com","username":"","password":"","authMethod":"","tls":false,"localName":""},"backups":{"cron":"","cronMaxKeep":3,"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false}},"s3":{"enabled":false,"bucket":"","region":"","endpoint":"","accessKey":"","forcePathStyle":false},"meta":{"accentColor":"#1055c9","appName":"Acme","appURL":"http://localhost:8090","senderName":"Support","senderAddress":"support@example.com","hideControls":false},"rateLimits":{"rules":[{"label":"*:auth","audience":"","duration":3,"maxRequests":2},{"label":"*:create","audience":"","duration":5,"maxRequests":20},{"label":"/api/batch","audience":"","duration":1,"maxRequests":3},{"label":"/api/","audience":"","duration":10,"maxRequests":300}],"excludedIPs":[],"enabled":false},"trustedProxy":{"headers":[],"useLeftmostIP":false},"batch":{"enabled":false,"maxRequests":50,"timeout":3,"maxBodySize":0},"logs":{"maxDataSize":0,"maxDays":5,"minLevel":0,"logIP":true,"logAuthId":false}}"##;
        let s = Settings::default();
        assert_eq!(String::from_utf8(s.to_stored_json()).unwrap(), expected);
        assert!(s.validate().is_empty());
    }

    #[test]
    fn public_form_hides_secrets() {
        let mut s = Settings::default();
        s.bind(&serde_json::json!({"smtp":{"password":"p1"},"s3":{"secret":"s1"},"backups":{"s3":{"secret":"s2"}}}))
            .unwrap();
        let stored = String::from_utf8(s.to_stored_json()).unwrap();
        assert!(
            stored.contains("\"p1\"") && stored.contains("\"s1\"") && stored.contains("\"s2\"")
        );
        let public = serde_json::to_string(&s.public()).unwrap();
        assert!(!public.contains("password") && !public.contains("secret"));
    }

    #[test]
    fn conflicting_rate_limit_labels() {
        let mut s = Settings::default();
        s.rate_limits.rules[1].label = "*:auth".into();
        let errs = s.validate();
        let data = serde_json::Value::Object(errs.to_data()).to_string();
        assert!(
            data.contains(
                r#""rules":{"1":{"label":{"code":"validation_conflicting_rate_limit_rule""#
            ),
            "{data}"
        );
    }
}
