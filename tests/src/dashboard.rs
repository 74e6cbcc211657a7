//! Shared parts of the dashboard's browser tests (`tests/dashboard*.rs`): the install token a
//! first start prints, the `ui/` folder with `playwright-core`, Node and Chromium, and an SMTP
//! sink whose mails land as files a browser script can read; and the run of one `ui/tests/*.mjs`
//! suite against `pocketbun`, then against the real PocketBase serving the same `ui/dist`.

use crate::smtp::{smtp_sink, unquote};
use crate::{need, pocketbase, workspace_root, Server, ServerKind, ServerSpec};
use std::ffi::OsString;
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

/// Calls `run(ui, spec, version)` for `pocketbun`, then for the reference PocketBase of
/// `POCKETBASE_VERSION` serving `ui/dist` as its public dir (which shows that the dashboard
/// uses only PocketBase's public Web API). No browser, or no PocketBase: the `need` policy.
pub fn on_both_servers(test: &str, mut run: impl FnMut(&Path, &ServerSpec, &str)) {
    let ui = match browser_setup() {
        Ok(ui) => ui,
        Err(why) => {
            return need::unavailable(test, &format!("the browser tests cannot run: {why}"))
        }
    };
    run(&ui, &ServerSpec::pocketbun(), env!("CARGO_PKG_VERSION"));

    let Some(mut spec) = ServerSpec::reference(test) else {
        return;
    };
    let wanted = pocketbase::wanted_version();
    let version = pocketbase::version_of(&spec.program).unwrap_or_default();
    assert_eq!(
        version,
        wanted,
        "{} is PocketBase {version:?}, but POCKETBASE_VERSION asks for {wanted}",
        spec.program.display()
    );
    spec.args
        .push(format!("--publicDir={}", ui.join("dist").display()));
    run(&ui, &spec, &version);
}

/// Where `server` serves the dashboard: `/_/` on `pocketbun`, `/` on PocketBase (its public dir).
pub fn dashboard_url(server: &Server) -> String {
    match server.kind() {
        ServerKind::PocketBun => format!("http://127.0.0.1:{}/_/", server.port()),
        ServerKind::PocketBase => format!("http://127.0.0.1:{}/", server.port()),
    }
}

/// One run of a browser suite: `node tests/<script> <dashboard url> <install token>` in `ui/`.
pub struct Suite<'a> {
    /// The script under `ui/tests/`.
    pub script: &'a str,
    /// Its name in the failure message ("schema browser suite").
    pub name: &'a str,
    /// Where a failed step's screenshot goes (default: the server's temp dir).
    pub screenshots: Option<PathBuf>,
    /// More environment for the script (beside `FAIL_SCREENSHOT_DIR` and `SERVER_KIND`).
    pub env: Vec<(&'static str, OsString)>,
    /// Other servers of the run whose logs a failure shows too ("fresh server").
    pub also_logs: Vec<(&'a str, &'a Server)>,
}

impl<'a> Suite<'a> {
    /// `script` (under `ui/tests/`), called `name` in messages, with nothing else set.
    pub fn new(script: &'a str, name: &'a str) -> Self {
        Suite {
            script,
            name,
            screenshots: None,
            env: Vec::new(),
            also_logs: Vec::new(),
        }
    }

    /// Runs the suite against `server` (version `version`, for the messages); fails the test
    /// when the script fails, and returns its stdout.
    pub fn run(&self, ui: &Path, server: &Server, version: &str) -> String {
        let token = install_token(server);
        let shots = self.screenshots.as_deref().unwrap_or(server.root());
        let out = Command::new("node")
            .arg(format!("tests/{}", self.script))
            .arg(dashboard_url(server))
            .arg(&token)
            .env("FAIL_SCREENSHOT_DIR", shots)
            .env("SERVER_KIND", server.kind().name())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(ui)
            .output()
            .expect("node");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let kind = server.kind().name();
        println!("{kind} {version}:\n{stdout}");
        let others: String = self
            .also_logs
            .iter()
            .map(|(name, s)| format!("\n{name} log:\n{}", s.log()))
            .collect();
        assert!(
            out.status.success(),
            "{kind} {version}: {} failed (screenshots of failed steps in {})\n{stdout}{}\nserver log:\n{}{others}",
            self.name,
            shots.display(),
            String::from_utf8_lossy(&out.stderr),
            server.log(),
        );
        stdout
    }
}
