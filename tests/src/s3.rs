//! A real S3-compatible server for the S3 tests: moto's server (PyPI `moto[server]`), installed
//! into `<target>/moto-venv` on first use like the reference PocketBase, started on a loopback
//! port and stopped when dropped. Buckets are created and read with plain path-style HTTP
//! (moto accepts unsigned requests), so the tests need no S3 client of their own.

use crate::http::Request;
use crate::paths::target_dir;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The venv's Python with moto installed (installed when missing); `None` when the install
/// is impossible here.
pub fn moto_python() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(install).clone()
}

fn install() -> Option<PathBuf> {
    let venv = target_dir().join("moto-venv");
    // the scripts' shebangs point into the staging folder: only `python3 -m` is used
    let python = venv.join("bin").join("python3");
    let ready = |py: &PathBuf| {
        Command::new(py)
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && ready(&python) {
        return Some(python);
    }
    if let Err(e) = crate::venv::pip_install(&venv, "moto[server]") {
        eprintln!("{e}");
        return None;
    }
    ready(&python).then_some(python)
}

/// A running moto server.
pub struct S3Server {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts moto on `port` and waits until it answers.
fn spawn(port: u16) -> Child {
    let python = moto_python().expect("moto is installed");
    let mut child = Command::new(python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let up = Request::new("GET", "/moto-api/")
            .timeout(Duration::from_secs(2))
            .send(port)
            .is_ok();
        if up {
            return child;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("moto did not start on port {port}");
}

impl S3Server {
    /// Starts moto on a free loopback port; `None` (after saying why) when moto cannot be
    /// installed.
    pub fn start() -> Option<S3Server> {
        moto_python()?;
        let port = free_port();
        Some(S3Server {
            child: spawn(port),
            port,
        })
    }

    /// Kills the server (an S3 outage): connections to its port are refused until
    /// [`S3Server::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the server (SIGSTOP), keeping its buckets: an S3 that is unreachable (its
    /// connections hang) until [`S3Server::resume`].
    pub fn pause(&self) {
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGSTOP);
        }
    }

    /// Lets a [`S3Server::pause`]d server go on (SIGCONT) with what it held.
    pub fn resume(&self) {
        // SAFETY: as in `pause`.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGCONT);
        }
    }

    /// Starts it again on the same port. moto keeps nothing across restarts: buckets must be
    /// created again.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn send(&self, method: &str, target: &str) -> crate::http::Response {
        Request::new(method, target)
            .header("Host", &format!("127.0.0.1:{}", self.port))
            .header("Connection", "close")
            .timeout(Duration::from_secs(30))
            .send(self.port)
            .unwrap_or_else(|e| panic!("{method} {target} to moto: {e}"))
    }

    pub fn create_bucket(&self, bucket: &str) {
        let resp = self.send("PUT", &format!("/{bucket}"));
        assert_eq!(resp.status, 200, "create bucket: {}", resp.text());
    }

    /// The keys of the bucket (all pages), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut target = format!("/{bucket}?list-type=2");
            if let Some(t) = &token {
                target.push_str(&format!("&continuation-token={}", encode(t)));
            }
            let resp = self.send("GET", &target);
            assert_eq!(resp.status, 200, "list: {}", resp.text());
            let xml = resp.text();
            keys.extend(tags(&xml, "Key"));
            token = tags(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// An object's `Content-Type` and bytes, read with a signed request (boto3 from the same
    /// venv: moto refuses unsigned object reads); `None` when there is no such object.
    pub fn object(&self, bucket: &str, key: &str) -> Option<(String, Vec<u8>)> {
        let script = "import boto3, sys\n\
                      c = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
                      aws_access_key_id='testing', aws_secret_access_key='testing')\n\
                      o = c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])\n\
                      print(o['ContentType']); print(o['Body'].read().hex())\n";
        let python = moto_python().expect("moto is installed");
        let out = Command::new(python)
            .args(["-c", script, &self.endpoint(), bucket, key])
            .output()
            .expect("python runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("NoSuchKey") {
            return None;
        }
        assert!(out.status.success(), "get {bucket}/{key}: {stderr}");
        let text = String::from_utf8(out.stdout).expect("utf-8 output");
        let mut lines = text.lines();
        let ct = lines.next().unwrap_or_default().to_string();
        let hex = lines.next().unwrap_or_default();
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        Some((ct, bytes))
    }
}

impl S3Server {
    /// An object's user metadata (`x-amz-meta-*`, names without the prefix) as a JSON object,
    /// read with a signed HEAD (boto3).
    pub fn object_metadata(&self, bucket: &str, key: &str) -> serde_json::Value {
        let script = "import boto3, json, sys\n\
                      c = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
                      aws_access_key_id='testing', aws_secret_access_key='testing')\n\
                      print(json.dumps(c.head_object(Bucket=sys.argv[2], Key=sys.argv[3])['Metadata']))\n";
        let python = moto_python().expect("moto is installed");
        let out = Command::new(python)
            .args(["-c", script, &self.endpoint(), bucket, key])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "head {bucket}/{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("metadata JSON")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of every `<tag>` element (XML entities for `&`, `<`, `>` decoded).
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(|v| {
            v.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
