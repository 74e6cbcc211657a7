//! The one client-IP resolver: PocketBase's `RealIP` (trusted proxy headers, else the peer),
//! with IPs written as Go's `netip.Addr.StringExpanded` does. Used by the request log, the
//! realtime subscriptions, the auth flows and the rate limiter.

use std::net::IpAddr;

/// The `trustedProxy` settings: which headers name the client, and which end of their list.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TrustedProxyConfig {
    pub headers: Vec<String>,
    #[serde(rename = "useLeftmostIP")]
    pub use_leftmost_ip: bool,
}

/// The client IP: the first trusted proxy header naming a valid IP, else the `peer` address.
/// `last_header` gives the last value of a request header (`apis::extract::client_ip` is
/// this for a request).
pub fn client_ip<'a>(
    proxy: &TrustedProxyConfig,
    peer: IpAddr,
    last_header: impl Fn(&str) -> Option<&'a str>,
) -> String {
    real_ip(proxy, last_header).unwrap_or_else(|| expanded(peer))
}

/// The client IP from the trusted proxy headers (`trustedProxy.headers`), if any names one;
/// `last_header` gives a request header's last value.
///
/// Of a repeated header the last one counts (the one the proxy controls); of its
/// comma-separated list the rightmost valid IP, or the leftmost with `useLeftmostIP`.
pub fn real_ip<'a>(
    proxy: &TrustedProxyConfig,
    last_header: impl Fn(&str) -> Option<&'a str>,
) -> Option<String> {
    for name in &proxy.headers {
        let Some(list) = last_header(name) else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        let parse = |s: &str| s.trim().parse::<IpAddr>().ok();
        let found = if proxy.use_leftmost_ip {
            list.split(',').find_map(parse)
        } else {
            list.rsplit(',').find_map(parse)
        };
        if let Some(ip) = found {
            return Some(expanded(ip));
        }
    }
    None
}

/// An IP as Go's `netip.Addr.StringExpanded` writes it (IPv6 with every group in full).
pub fn expanded(ip: IpAddr) -> String {
    // dotted quad by hand: this runs for every logged request
    fn v4_string(v4: std::net::Ipv4Addr) -> String {
        let mut out = String::with_capacity(15);
        for (i, o) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            if o >= 100 {
                out.push((b'0' + o / 100) as char);
            }
            if o >= 10 {
                out.push((b'0' + o / 10 % 10) as char);
            }
            out.push((b'0' + o % 10) as char);
        }
        out
    }
    match ip {
        IpAddr::V4(v4) => v4_string(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_string(v4),
            None => {
                use std::fmt::Write;
                let mut out = String::with_capacity(39);
                for (i, s) in v6.segments().iter().enumerate() {
                    if i > 0 {
                        out.push(':');
                    }
                    let _ = write!(out, "{s:04x}");
                }
                out
            }
        },
    }
}

/// Whether `ip` is one of `ips_or_subnets` (single IPs or CIDR subnets; invalid entries and an
/// unparsable `ip` never match), as PocketBase's `excludedIPs` check.
pub fn ip_in_list(ips_or_subnets: &[String], ip: &str) -> bool {
    if ips_or_subnets.is_empty() {
        return false;
    }
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return false;
    };
    ips_or_subnets
        .iter()
        .any(|item| match item.split_once('/') {
            Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u8>()) {
                (Ok(net), Ok(bits)) => in_subnet(net, bits, addr),
                _ => false,
            },
            None => item.parse::<IpAddr>().is_ok_and(|one| one == addr),
        })
}

fn in_subnet(net: IpAddr, bits: u8, addr: IpAddr) -> bool {
    let masked = |v: u128, width: u8| {
        if bits == 0 {
            0
        } else {
            v >> (width - bits)
        }
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            masked(u32::from(n) as u128, 32) == masked(u32::from(a) as u128, 32)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            masked(u128::from(n), 128) == masked(u128::from(a), 128)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_subnets() {
        let list: Vec<String> = [
            "10.0.0.0/8",
            "1.2.3.4",
            "::1",
            "fe80::/10",
            "bad",
            "1.1.1.1/40",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(ip_in_list(&list, "10.200.3.4"));
        assert!(ip_in_list(&list, "1.2.3.4"));
        assert!(!ip_in_list(&list, "1.2.3.5"));
        assert!(!ip_in_list(&list, "11.0.0.1"));
        assert!(ip_in_list(&list, "0000:0000:0000:0000:0000:0000:0000:0001"));
        assert!(ip_in_list(&list, "fe80::1234"));
        assert!(!ip_in_list(&list, "1.1.1.1"));
        assert!(!ip_in_list(&list, ""));
        assert!(!ip_in_list(&[], "1.2.3.4"));
        assert!(ip_in_list(&["0.0.0.0/0".to_string()], "8.8.8.8"));
        assert_eq!(
            expanded("::1".parse().unwrap()),
            "0000:0000:0000:0000:0000:0000:0000:0001"
        );
    }
}
