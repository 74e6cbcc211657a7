//! Shared parts of the dashboard's browser tests (`tests/dashboard*.rs`): the install token a
//! first start prints, the `ui/` folder with `playwright-core`, Node and Chromium, and an SMTP
//! sink whose mails land as files a browser script can read.

use crate::smtp::{smtp_sink, unquote};
use crate::{workspace_root, Server};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The install token from the `#/pbinstall/{token}` link the server printed on its first start.
pub fn install_token(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(i) = log.find("#/pbinstall/") {
            let rest = &log[i + "#/pbinstall/".len()..];
            return rest.split_whitespace().next().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "no install link printed:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ui/` with `playwright-core` installed (npm ci on first use), node and Chromium; `Err`
/// says what is missing.
pub fn browser_setup() -> Result<PathBuf, String> {
    let ui = workspace_root().join("ui");
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("no node on PATH".into()),
    }
    if !ui.join("node_modules/playwright-core").is_dir() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&ui)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("npm ci in ui/ failed".into());
        }
    }
    Ok(ui)
}

/// The mails of a run: an SMTP sink whose messages are written (quoted-printable undone) to
/// `mail-N.eml` files in a directory the browser suite polls.
pub struct MailDrop {
    pub port: u16,
    pub dir: PathBuf,
}

/// Starts a [`MailDrop`] writing into `root/mail`.
pub fn mail_drop(root: &Path) -> MailDrop {
    let (port, mail) = smtp_sink();
    let dir = root.join("mail");
    std::fs::create_dir_all(&dir).expect("mail dir");
    let out = dir.clone();
    std::thread::spawn(move || {
        for (n, msg) in mail.iter().enumerate() {
            // written under a temporary name and renamed, so a reader never sees half a mail
            let tmp = out.join(format!(".mail-{n}"));
            if std::fs::write(&tmp, unquote(&msg.data)).is_err()
                || std::fs::rename(&tmp, out.join(format!("mail-{n}.eml"))).is_err()
            {
                return;
            }
        }
    });
    MailDrop { port, dir }
}
