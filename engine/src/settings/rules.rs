//! The validation rules PocketBase applies to settings and forms, with its error codes and
//! messages. Like PocketBase's rules, every format rule accepts an empty value (pair it with
//! `required` to refuse blanks), and a field reports only its first failing rule.

use crate::error::FieldError;
use regex::Regex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

pub type Check = Result<(), FieldError>;

pub fn required_str(v: &str) -> Check {
    if v.is_empty() {
        Err(blank())
    } else {
        Ok(())
    }
}

pub fn required_int(v: i64) -> Check {
    if v == 0 {
        Err(blank())
    } else {
        Ok(())
    }
}

/// `Ok` when `valid`, else the error `code` with `message`.
fn valid_or(valid: bool, code: &'static str, message: &'static str) -> Check {
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(code, message))
    }
}

pub fn blank() -> FieldError {
    FieldError::new("validation_required", "cannot be blank")
}

/// Rune length between `min` and `max` (0 = unbounded); empty strings pass.
pub fn length(v: &str, min: usize, max: usize) -> Check {
    if v.is_empty() {
        return Ok(());
    }
    let n = v.chars().count();
    if (min > 0 && n < min) || (max > 0 && n > max) {
        let err = if min == max {
            FieldError::new(
                "validation_length_invalid",
                format!("the length must be exactly {min}"),
            )
        } else if min == 0 {
            FieldError::new(
                "validation_length_too_long",
                format!("the length must be no more than {max}"),
            )
        } else if max == 0 {
            FieldError::new(
                "validation_length_too_short",
                format!("the length must be no less than {min}"),
            )
        } else {
            FieldError::new(
                "validation_length_out_of_range",
                format!("the length must be between {min} and {max}"),
            )
        };
        return Err(err.param("max", max).param("min", min));
    }
    Ok(())
}

/// `v >= threshold`; zero values pass (they are "empty").
pub fn min(v: i64, threshold: i64) -> Check {
    if v != 0 && v < threshold {
        return Err(FieldError::new(
            "validation_min_greater_equal_than_required",
            format!("must be no less than {threshold}"),
        )
        .param("threshold", threshold));
    }
    Ok(())
}

/// `v <= threshold`; zero values pass.
pub fn max(v: i64, threshold: i64) -> Check {
    if v != 0 && v > threshold {
        return Err(FieldError::new(
            "validation_max_less_equal_than_required",
            format!("must be no greater than {threshold}"),
        )
        .param("threshold", threshold));
    }
    Ok(())
}

/// One of `options`; empty strings pass.
pub fn one_of(v: &str, options: &[&str]) -> Check {
    valid_or(
        v.is_empty() || options.contains(&v),
        "validation_in_invalid",
        "must be a valid value",
    )
}

pub fn matches(v: &str, re: &Regex) -> Check {
    valid_or(
        v.is_empty() || re.is_match(v),
        "validation_match_invalid",
        "must be in a valid format",
    )
}

pub fn url(v: &str) -> Check {
    valid_or(
        v.is_empty() || is_url(v),
        "validation_is_url",
        "must be a valid URL",
    )
}

pub fn host(v: &str) -> Check {
    valid_or(
        v.is_empty() || is_ip(v) || is_dns_name(v),
        "validation_is_host",
        "must be a valid IP address or DNS name",
    )
}

pub fn email(v: &str) -> Check {
    valid_or(
        v.is_empty() || is_email(v),
        "validation_is_email",
        "must be a valid email address",
    )
}

pub fn hex_color(v: &str) -> Check {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").unwrap());
    valid_or(
        v.is_empty() || RE.is_match(v),
        "validation_is_hex_color",
        "must be a valid hexadecimal color code",
    )
}

/// A single IPv4/IPv6 address or a CIDR subnet; empty strings pass.
pub fn ip_or_subnet(v: &str) -> Check {
    // (sic) PocketBase's code has this spelling
    valid_or(
        v.is_empty() || parse_prefix(v) || parse_addr(v),
        "validation_invlaid_ip_or_subnet",
        "invalid IP or CIDR subnet",
    )
}

/// A cron expression as PocketBase's scheduler accepts it; empty strings pass.
pub fn cron(v: &str) -> Check {
    if v.is_empty() {
        return Ok(());
    }
    parse_cron(v).map_err(|msg| FieldError::new("validation_invalid_cron", msg))
}

/// Each element of a list: required, then `rule`; errors keyed by index.
pub fn each_required(
    items: &[String],
    rule: fn(&str) -> Check,
) -> Option<crate::error::FieldErrors> {
    let mut errs = crate::error::FieldErrors::new();
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = required_str(item).and_then(|()| rule(item)) {
            errs.add(i.to_string(), e);
        }
    }
    (!errs.is_empty()).then_some(errs)
}

// ---------------------------------------------------------------------------------------------
// formats

/// Go's `net.ParseIP` (no zones, no leading zeros in IPv4 octets).
pub fn is_ip(v: &str) -> bool {
    v.parse::<Ipv4Addr>().is_ok() || (!v.contains('%') && v.parse::<Ipv6Addr>().is_ok())
}

/// Go's `netip.ParseAddr`: like [`is_ip`] but IPv6 may carry a `%zone`.
fn parse_addr(v: &str) -> bool {
    if v.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let (addr, zone) = match v.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (v, None),
    };
    if zone.is_some_and(str::is_empty) {
        return false;
    }
    addr.parse::<Ipv6Addr>().is_ok()
}

/// Go's `netip.ParsePrefix`: `addr/bits`, no zone, bits in range without sign or leading zeros.
fn parse_prefix(v: &str) -> bool {
    let Some((addr, bits)) = v.rsplit_once('/') else {
        return false;
    };
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
        || bits.len() > 3
    {
        return false;
    }
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => !addr.contains('%') && bits <= 128,
        Err(_) => false,
    }
}

pub fn is_dns_name(v: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?$")
            .unwrap()
    });
    !v.is_empty() && v.replace('.', "").len() <= 255 && !is_ip(v) && RE.is_match(v)
}

/// The email format PocketBase accepts (RFC 5322-ish local part, dotted domain, no lookups).
pub fn is_email(v: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        const U: &str = r"\x{00A0}-\x{D7FF}\x{F900}-\x{FDCF}\x{FDF0}-\x{FFEF}";
        let atext = format!(r"([a-zA-Z]|\d|[!#\$%&'\*\+\-/=\?\^_`{{\|}}~]|[{U}])");
        let dot_atom = format!(r"({atext}+(\.{atext}+)*)");
        let ws = r"((\x20|\x09)*(\x0d\x0a))?(\x20|\x09)+";
        let qtext =
            format!(r"([\x01-\x08\x0b\x0c\x0e-\x1f\x7f]|\x21|[\x23-\x5b]|[\x5d-\x7e]|[{U}])");
        let qpair = format!(r"(\\([\x01-\x09\x0b\x0c\x0d-\x7f]|[{U}]))");
        let quoted = format!(r"((\x22)(({ws})?({qtext}|{qpair}))*({ws})?(\x22))");
        let alnum = format!(r"([a-zA-Z]|\d|[{U}])");
        let alpha = format!(r"([a-zA-Z]|[{U}])");
        let label = format!(r"({alnum}|({alnum}([a-zA-Z]|\d|-|\.|_|~|[{U}])*{alnum}))");
        let tld = format!(r"({alpha}|({alpha}([a-zA-Z]|\d|-|_|~|[{U}])*{alpha}))");
        Regex::new(&format!(r"^({dot_atom}|{quoted})@({label}\.)+{tld}\.?$")).unwrap()
    });
    RE.is_match(v)
}

/// The URL format PocketBase accepts: an optional scheme among ftp/tcp/udp/ws(s)/http(s),
/// optional user info, a host (IPv4, [IPv6] or a name), optional port and path.
pub fn is_url(v: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        let ip6 = r"(([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(:[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9]))";
        let schema = r"((ftp|tcp|udp|wss?|https?)://)";
        let user = r"(\S+(:\S*)?@)";
        let path = r"((/|\?|#)[^\s]*)";
        let port = r"(:(\d{1,5}))";
        let ip4 = r"([1-9]\d?|1\d\d|2[01]\d|22[0-3]|24\d|25[0-5])(\.(\d{1,2}|1\d\d|2[0-4]\d|25[0-5])){2}(?:\.([0-9]\d?|1\d\d|2[0-4]\d|25[0-5]))";
        let subdomain = r"((www\.)|([a-zA-Z0-9]+([-_.]?[a-zA-Z0-9])*[a-zA-Z0-9]\.[a-zA-Z0-9]+))";
        let w = r"a-zA-Z\x{00a1}-\x{ffff}0-9";
        let host = format!(
            r"(({ip4}|(\[{ip6}\])|(([a-zA-Z0-9]([a-zA-Z0-9-_]+)?[a-zA-Z0-9]([-.][a-zA-Z0-9]+)*)|({subdomain}?))?(([{w}]+-?-?)*[{w}]+)(?:\.([a-zA-Z\x{{00a1}}-\x{{ffff}}]{{1,}}))?))"
        );
        Regex::new(&format!(r"^{schema}?{user}?{host}\.?{port}?{path}?$")).unwrap()
    });
    let runes = v.chars().count();
    if v.is_empty() || runes >= 2083 || v.len() <= 3 || v.starts_with('.') {
        return false;
    }
    let candidate = if v.contains(':') && !v.contains("://") {
        format!("http://{v}")
    } else {
        v.to_string()
    };
    let Some((host, path)) = split_url(&candidate) else {
        return false;
    };
    if host.starts_with('.') {
        return false;
    }
    if host.is_empty() && !path.is_empty() && !path.contains('.') {
        return false;
    }
    RE.is_match(v)
}

/// Splits a URL into (host, path) the way Go's `url.Parse` would, or `None` where it errors.
fn split_url(s: &str) -> Option<(String, String)> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let no_fragment = s.split('#').next().unwrap_or("");
    let mut rest = no_fragment;
    // scheme
    if let Some(i) = rest.find(':') {
        let scheme = &rest[..i];
        let valid = !scheme.is_empty()
            && scheme.as_bytes()[0].is_ascii_alphabetic()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
        if valid {
            rest = &rest[i + 1..];
        } else if i == 0 {
            return None; // "missing protocol scheme"
        }
    }
    let rest = rest.split('?').next().unwrap_or("");
    if !valid_escapes(rest) {
        return None;
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        let authority = &after[..end];
        let path = &after[end..];
        let host = match authority.rfind('@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };
        if !valid_host(host) {
            return None;
        }
        Some((host.to_string(), path.to_string()))
    } else {
        Some((String::new(), rest.to_string()))
    }
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => (&host[..=i], &host[i + 1..]),
            None => return false,
        }
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let port_ok =
        port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return false;
    }
    name.chars().all(|c| {
        !c.is_ascii() || c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:[]%\"<>".contains(c)
    })
}

// ---------------------------------------------------------------------------------------------
// cron

const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Checks a 5-segment cron expression (or macro); the error is PocketBase's message.
pub fn parse_cron(expr: &str) -> Result<(), String> {
    let expr = MACROS
        .iter()
        .find(|(m, _)| *m == expr)
        .map_or(expr, |(_, e)| e);
    let segments: Vec<&str> = expr.split(' ').collect();
    if segments.len() != 5 {
        return Err("invalid cron expression - must be a valid macro or to have exactly 5 space separated segments".into());
    }
    let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    for (seg, (lo, hi)) in segments.iter().zip(bounds) {
        cron_segment(seg, lo, hi)?;
    }
    Ok(())
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        // no cause: only digits reach here, so the one failure is Go's out-of-range text
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

fn cron_segment(segment: &str, lo: i64, hi: i64) -> Result<(), String> {
    for part in segment.split(',') {
        let step_parts: Vec<&str> = part.split('/').collect();
        let step = match step_parts.len() {
            1 => 1,
            2 => {
                let step = atoi(step_parts[1])?;
                if step < 1 || step > hi {
                    return Err(format!(
                        "invalid segment step boundary - the step must be between 1 and the {hi}"
                    ));
                }
                step
            }
            _ => {
                return Err(
                    "invalid segment step format - must be in the format */n or 1-30/n".into(),
                )
            }
        };
        if step_parts[0] == "*" {
            continue;
        }
        let range: Vec<&str> = step_parts[0].split('-').collect();
        match range.len() {
            1 => {
                if step != 1 {
                    return Err("invalid segment step - step > 1 could be used only with the wildcard or range format".into());
                }
                let v = atoi(range[0])?;
                if v < lo || v > hi {
                    return Err(
                        "invalid segment value - must be between the min and max of the segment"
                            .into(),
                    );
                }
            }
            2 => {
                let from = atoi(range[0])?;
                if from < lo || from > hi {
                    return Err(format!(
                        "invalid segment range minimum - must be between {lo} and {hi}"
                    ));
                }
                let to = atoi(range[1])?;
                if to < from || to > hi {
                    return Err(format!(
                        "invalid segment range maximum - must be between {from} and {hi}"
                    ));
                }
            }
            _ => {
                return Err(
                    "invalid segment range format - the range must have 1 or 2 parts".into(),
                )
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        for ok in [
            "http://localhost:8090",
            "https://example.com/a?b#c",
            "example.com",
            "127.0.0.1:80",
        ] {
            assert!(is_url(ok), "{ok}");
        }
        for bad in [
            "not a url",
            "abc",
            "http://",
            ".example.com",
            "http://a b.com",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
        assert!(is_email("a@b.c"));
        assert!(is_email("test@example.com"));
        assert!(!is_email("ab@localhost"));
        assert!(!is_email("a..b@example.org"));
        assert!(!is_email("x@[1.2.3.4]"));
        assert!(ip_or_subnet("10.0.0.0/8").is_ok());
        assert!(ip_or_subnet("fe80::1%eth0").is_ok());
        assert!(ip_or_subnet("1.2.3.4/33").is_err());
        assert!(ip_or_subnet("abc").is_err());
        assert!(host("smtp.example.com").is_ok());
        assert!(host("bad host!").is_err());
    }

    #[test]
    fn cron_expressions() {
        assert!(parse_cron("@daily").is_ok());
        assert!(parse_cron("*/5 1-3 * * 0,6").is_ok());
        assert!(parse_cron("bad").is_err());
        assert_eq!(
            parse_cron("x * * * *").unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert!(parse_cron("60 * * * *").is_err());
    }
}
