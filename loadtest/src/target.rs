//! Target URL parsing. The harness only ever talks to loopback addresses.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `http://host:port/path?query` target.
#[derive(Clone, Debug)]
pub struct Target {
    /// Resolved loopback socket address.
    pub addr: SocketAddr,
    /// Value for the `Host` header (`host:port` as written).
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `http://127.0.0.1:8090/api/health`. Refuses `https` and any
    /// address outside the loopback range: load is only ever sent locally.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() {
            return Err(format!("missing host in {url:?}"));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority:?}: {e}"))?
            .collect();
        let addr = addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first().copied())
            .ok_or_else(|| format!("{authority:?} resolved to nothing"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "refusing non-loopback target {addr}: load is only sent to 127.0.0.0/8 or ::1"
            ));
        }
        Ok(Target {
            addr,
            authority: authority.to_string(),
            path,
        })
    }

    /// Same origin, different path.
    pub fn with_path(&self, path: &str) -> Target {
        Target {
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// `http://authority/path`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let t = Target::parse("http://127.0.0.1:8090/api/health").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8090".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:8090");
        assert_eq!(t.path, "/api/health");
        let t = Target::parse("http://localhost:9000").unwrap();
        assert_eq!(t.path, "/");
        assert!(t.addr.ip().is_loopback());
        let t = Target::parse("http://127.0.0.1:1?x=1").unwrap();
        assert_eq!(t.path, "/?x=1");
    }

    #[test]
    fn refuses() {
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("http://10.1.2.3:80/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }
}
