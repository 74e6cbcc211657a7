//! Sending mail as PocketBase does: through the configured SMTP server when `smtp.enabled`,
//! otherwise by piping the message to the local `sendmail -i -t`. Sending blocks, so callers
//! run [`send`] off the request workers ([`send_off_thread`]).

use super::model::{Settings, SmtpConfig};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One outgoing email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from_name: String,
    pub from_address: String,
    pub to: Vec<String>,
    pub subject: String,
    pub html: String,
}

impl Message {
    /// A message from the app's configured sender.
    pub fn from_app(settings: &Settings, to: &str, subject: String, html: String) -> Message {
        Message {
            from_name: settings.meta.sender_name.clone(),
            from_address: settings.meta.sender_address.clone(),
            to: vec![to.to_string()],
            subject,
            html,
        }
    }
}

/// Delivers `msg` with the transport the settings select. Blocks until the server (or the
/// sendmail process) accepted it; the error is the transport's own description.
pub fn send(smtp: &SmtpConfig, msg: &Message) -> Result<(), String> {
    if smtp.enabled {
        send_smtp(smtp, msg)
    } else {
        send_sendmail(msg)
    }
}

/// [`send`] on a thread of its own; the returned future never blocks the caller.
pub async fn send_off_thread(smtp: SmtpConfig, msg: Message) -> Result<(), String> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("pocketbun-mail".into())
        .spawn(move || {
            let _ = tx.send(send(&smtp, &msg));
        })
        .map_err(|e| format!("cannot start the mail thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("the mail thread stopped unexpectedly".into()))
}

fn mailbox(name: &str, address: &str) -> Result<Mailbox, String> {
    let addr = address
        .parse()
        .map_err(|e| format!("invalid address {address:?}: {e}"))?;
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        addr,
    ))
}

fn send_smtp(cfg: &SmtpConfig, msg: &Message) -> Result<(), String> {
    let mut builder = lettre::Message::builder()
        .from(mailbox(&msg.from_name, &msg.from_address)?)
        .subject(msg.subject.clone());
    for to in &msg.to {
        builder = builder.to(mailbox("", to)?);
    }
    if let Some((_, domain)) = msg.from_address.split_once('@') {
        builder = builder.message_id(Some(format!(
            "<{}@{}>",
            pocketbun_storage::random::random_string(15),
            domain
        )));
    }
    let email = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(html_to_text(&msg.html)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(msg.html.clone()),
                ),
        )
        .map_err(|e| e.to_string())?;

    // no cause: the port in the message is all there is to say
    let port = u16::try_from(cfg.port).map_err(|_| format!("invalid SMTP port {}", cfg.port))?;
    let tls_params = || TlsParameters::new(cfg.host.clone()).map_err(|e| e.to_string());
    let tls = if cfg.tls {
        Tls::Wrapper(tls_params()?)
    } else {
        // like PocketBase: upgrade with STARTTLS when the server offers it
        Tls::Opportunistic(tls_params()?)
    };
    let hello = if cfg.local_name.is_empty() {
        "localhost".to_string()
    } else {
        cfg.local_name.clone()
    };
    let mut transport = SmtpTransport::builder_dangerous(cfg.host.as_str())
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain(hello))
        .timeout(Some(Duration::from_secs(30)));
    if !cfg.username.is_empty() || !cfg.password.is_empty() {
        let mechanism = if cfg.auth_method == "LOGIN" {
            Mechanism::Login
        } else {
            Mechanism::Plain
        };
        transport = transport
            .credentials(Credentials::new(cfg.username.clone(), cfg.password.clone()))
            .authentication(vec![mechanism]);
    }
    transport
        .build()
        .send(&email)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The message in the form PocketBase hands to sendmail: a few headers, a blank line, the HTML.
pub fn sendmail_payload(msg: &Message) -> Vec<u8> {
    let mut out = String::new();
    // header names in sorted order, as PocketBase writes them
    out.push_str("Content-Type: text/html; charset=UTF-8\r\n");
    out.push_str(&format!(
        "From: {}\r\n",
        format_address(&msg.from_name, &msg.from_address)
    ));
    out.push_str(&format!("Subject: {}\r\n", q_encode(&msg.subject)));
    out.push_str(&format!("To: {}\r\n", msg.to.join(",")));
    out.push_str("\r\n");
    out.push_str(&msg.html);
    out.into_bytes()
}

fn find_sendmail() -> Option<std::path::PathBuf> {
    for fixed in ["/usr/sbin/sendmail", "/usr/bin/sendmail"] {
        let p = std::path::Path::new(fixed);
        if is_executable(p) {
            return Some(p.to_path_buf());
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("sendmail"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn send_sendmail(msg: &Message) -> Result<(), String> {
    let path =
        find_sendmail().ok_or_else(|| "failed to locate a sendmail executable path".to_string())?;
    let mut child = Command::new(&path)
        .args(["-i", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // a sendmail that exits without reading everything is judged by its exit status
        let _ = stdin.write_all(&sendmail_payload(msg));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "signal: killed".to_string(),
        })
    }
}

/// `"Name" <address>`, or `<address>` without a name.
fn format_address(name: &str, address: &str) -> String {
    if name.is_empty() {
        return format!("<{address}>");
    }
    if name
        .chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
    {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{address}>")
    } else {
        format!("{} <{address}>", q_encode(name))
    }
}

/// RFC 2047 Q-encoding of a header value, applied only when it has non-printable bytes.
fn q_encode(s: &str) -> String {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t') {
        return s.to_string();
    }
    let mut out = String::from("=?utf-8?q?");
    for b in s.bytes() {
        match b {
            b' ' => out.push('_'),
            b'=' | b'?' | b'_' => out.push_str(&format!("={b:02X}")),
            b'!'..=b'~' => out.push(b as char),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    out
}

/// A plain-text rendering of an HTML body for the text/plain alternative: tags dropped,
/// line breaks kept, links as `text [url]`, `<head>`/`<style>` content skipped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&str> = None;
    let mut link: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            push_text(&mut out, &rest[..lt]);
        }
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("head", false) => skip_until = Some("head"),
            ("style", false) => skip_until = Some("style"),
            ("script", false) => skip_until = Some("script"),
            ("br", _) => out.push('\n'),
            ("p" | "div" | "tr" | "h1" | "h2" | "h3" | "h4" | "li", _)
                if !out.is_empty() && !out.ends_with('\n') =>
            {
                out.push('\n');
            }
            ("a", false) => {
                link = attr(tag, "href");
            }
            ("a", true) => {
                if let Some(href) = link.take() {
                    out.push_str(&format!(" [{href}]"));
                }
            }
            _ => {}
        }
    }
    if skip_until.is_none() {
        push_text(&mut out, rest);
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_text(out: &mut String, text: &str) {
    let decoded = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut last_space = out.ends_with([' ', '\n']) || out.is_empty();
    for c in decoded.chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let quote = rest.chars().next()?;
    if quote == '"' || quote == '\'' {
        rest[1..]
            .find(quote)
            .map(|end| rest[1..1 + end].to_string())
    } else {
        Some(rest.split_whitespace().next().unwrap_or("").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_alternative() {
        let html = "<html><head><style>p{}</style></head><body><p>Hello,</p><p><a class=\"btn\" href=\"http://x/y\">Verify</a></p>Thanks,<br/>Acme team</body></html>";
        assert_eq!(
            html_to_text(html),
            "Hello,\nVerify [http://x/y]\nThanks,\nAcme team"
        );
    }

    #[test]
    fn sendmail_message_shape() {
        let msg = Message {
            from_name: "Support".into(),
            from_address: "support@example.com".into(),
            to: vec!["a@example.com".into()],
            subject: "Hi".into(),
            html: "<p>x</p>".into(),
        };
        let raw = String::from_utf8(sendmail_payload(&msg)).unwrap();
        assert_eq!(raw, "Content-Type: text/html; charset=UTF-8\r\nFrom: \"Support\" <support@example.com>\r\nSubject: Hi\r\nTo: a@example.com\r\n\r\n<p>x</p>");
    }
}
