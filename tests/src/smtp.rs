//! A real SMTP server on loopback for the mail tests: it speaks enough RFC 5321 (with AUTH)
//! for `lettre` and PocketBase, and hands every delivered message to a channel.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// One message as the SMTP server received it.
#[derive(Debug, Default)]
pub struct Delivered {
    pub helo: String,
    pub auth: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

/// Starts the server on a free loopback port; every delivered message goes to the returned
/// channel.
pub fn smtp_sink() -> (u16, mpsc::Receiver<Delivered>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an SMTP port");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = serve_smtp(conn, &tx);
            });
        }
    });
    (port, rx)
}

fn serve_smtp(conn: TcpStream, tx: &mpsc::Sender<Delivered>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    let mut msg = Delivered::default();
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            msg.helo = cmd[4..].trim().to_string();
            out.write_all(b"250-sink.test\r\n250 AUTH PLAIN LOGIN\r\n")?;
        } else if upper.starts_with("AUTH PLAIN") {
            msg.auth = Some(cmd[10..].trim().to_string());
            out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("AUTH") {
            out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            msg.mail_from = cmd[10..].trim().to_string();
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            msg.rcpt_to.push(cmd[8..].trim().to_string());
            out.write_all(b"250 OK\r\n")?;
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                msg.data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            out.write_all(b"250 OK queued\r\n")?;
            let _ = tx.send(std::mem::take(&mut msg));
        } else if upper == "QUIT" {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            out.write_all(b"250 OK\r\n")?;
        } else {
            out.write_all(b"502 Command not implemented\r\n")?;
        }
    }
}

/// A message body with quoted-printable soft breaks and escapes undone.
pub fn unquote(data: &str) -> String {
    let joined = data.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
