//! HTTP helpers shared by the collection tests (included with `#[path]`);
//! built alone it is an empty test target.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The fixture's superuser token (valid until 2050).
pub const SUPERUSER_TOKEN: &str = pocketbun_tests::fixture::SUPERUSER_TOKEN;

/// PocketBase's test fixture (`../shared/conformance/pb_data`; read-only, copy before use).
pub fn fixture() -> Option<PathBuf> {
    pocketbun_tests::conformance_dir().map(|d| d.join("pb_data"))
}

/// A request with the superuser token; returns (status, body without the
/// trailing newline PocketBase's JSON encoder adds).
pub fn call(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: {SUPERUSER_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    if body.ends_with('\n') {
        body.pop();
    }
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

/// Equality with a short report around the first difference.
pub fn assert_same(ours: &str, theirs: &str, what: &str) {
    if ours == theirs {
        return;
    }
    let at = ours
        .bytes()
        .zip(theirs.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let from = at.saturating_sub(100);
    panic!(
        "{what} differs at byte {at}:\n ours:   {:?}\n theirs: {:?}",
        ours.get(from..(at + 100).min(ours.len())).unwrap_or(""),
        theirs.get(from..(at + 100).min(theirs.len())).unwrap_or("")
    );
}

/// Copies the fixture's databases into `dir` (created); false if absent.
pub fn copy_fixture(dir: &Path) -> bool {
    let Some(src) = fixture() else {
        return false;
    };
    std::fs::create_dir_all(dir).unwrap();
    for f in ["data.db", "data.db-wal", "auxiliary.db"] {
        if src.join(f).exists() {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
            let mut perms = std::fs::metadata(dir.join(f)).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(dir.join(f), perms).unwrap();
        }
    }
    true
}

/// A fixture copy under a fresh temp dir; when the fixture is missing, `None` after the
/// policy of `pocketbun_tests::need` (fails under `CI=true`, else one SKIP line).
pub fn fixture_copy(base: PathBuf, test: &str) -> Option<PathBuf> {
    pocketbun_tests::need::fixture(test)?;
    let dir = base.join("pb_data");
    assert!(copy_fixture(&dir), "copy the fixture");
    Some(dir)
}
