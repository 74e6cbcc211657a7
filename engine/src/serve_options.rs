//! PocketBase's global command-line flags beyond `--dir` (`--dev`, `--encryptionEnv`,
//! `--publicDir`, `--indexFallback`, `--queryTimeout`, the JS hooks and migrations flags), with
//! PocketBase's names, defaults and help texts, and what they become at run time.
//!
//! Bool flags take their value only as `--flag=false` (as Go's flag parser wants): a separate
//! `false` word would be a `serve` domain argument in PocketBase too.

use clap::{ArgAction, Args};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `serve` options the request path reads.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// `--origins`.
    pub cors: pocketbun_http::cors::Cors,
    /// `--publicDir` with `--indexFallback`; `None` serves no static files.
    pub public: Option<crate::public::PublicDir>,
    /// `--dev`: each request printed to the console ([`print_request`]).
    pub dev: bool,
}

/// The PocketBase release whose Web API PocketBun follows.
pub const POCKETBASE_API_VERSION: &str = "0.40.6";

/// What `pocketbun --version` prints after the program name.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (PocketBase Web API 0.40.6)");

/// Go's `strconv.ParseBool`, as a clap value parser.
fn go_bool(s: &str) -> Result<bool, String> {
    crate::files::serve::parse_bool(s).ok_or_else(|| format!("invalid boolean value {s:?}"))
}

/// `serve`'s own flags besides the listen addresses.
#[derive(Args, Debug, Clone)]
pub struct ServeFlags {
    /// CORS allowed domain origins list
    #[arg(
        long = "origins",
        value_name = "strings",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub origins: Vec<String>,
}

impl ServeFlags {
    /// What the request path needs of these and the global flags.
    pub fn web(&self, app: &AppFlags) -> Web {
        let origins = self
            .origins
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        Web {
            cors: pocketbun_http::cors::Cors::new(origins),
            public: Some(crate::public::PublicDir {
                root: app.public_dir(),
                index_fallback: app.index_fallback,
            }),
            dev: app.dev,
        }
    }
}

/// `--dev`'s console line for a request, as PocketBase prints its request logs there:
/// `INFO GET /path`, or `ERROR GET /path` and the error's message. Successful static files are
/// left out, as they are of the log.
pub fn print_request(line: &str, result: &crate::error::ApiResult, is_static: bool) {
    match result {
        Ok(_) if is_static => {}
        Ok(_) => eprintln!("INFO {line}"),
        Err(e) => match &e.source {
            // the internal failure behind the answer, which the client never sees
            Some(cause) => eprintln!("ERROR {line}\n└─ {}\n   cause: {cause}", e.message),
            None => eprintln!("ERROR {line}\n└─ {}", e.message),
        },
    }
}

/// PocketBase's global flags, listed under their own heading as `pocketbase --help` does.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global Flags")]
pub struct AppFlags {
    /// enable dev mode, aka. printing logs and sql statements to the console
    #[arg(long = "dev", global = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          value_parser = go_bool, value_name = "bool")]
    pub dev: bool,

    /// the env variable whose value of 32 characters will be used as encryption key for the
    /// app settings (default none)
    #[arg(long = "encryptionEnv", global = true, value_name = "string")]
    pub encryption_env: Option<String>,

    /// the directory with the JS app hooks (accepted; JS hooks are not run by PocketBun)
    #[arg(long = "hooksDir", global = true, value_name = "string")]
    pub hooks_dir: Option<PathBuf>,

    /// the total prewarm goja.Runtime instances for the JS app hooks execution (accepted; no
    /// effect)
    #[arg(
        long = "hooksPool",
        global = true,
        value_name = "int",
        default_value_t = 15
    )]
    pub hooks_pool: i64,

    /// auto restart the app on pb_hooks file change; it has no effect on Windows (accepted; no
    /// effect)
    #[arg(long = "hooksWatch", global = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = go_bool, value_name = "bool")]
    pub hooks_watch: bool,

    /// fallback the request to index.html on missing static path, e.g. when pretty urls are
    /// used with SPA
    #[arg(long = "indexFallback", global = true, action = ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_value = "true", default_missing_value = "true",
          value_parser = go_bool, value_name = "bool")]
    pub index_fallback: bool,

    /// the directory with the user defined migrations (accepted; JS migrations are not run by
    /// PocketBun)
    #[arg(long = "migrationsDir", global = true, value_name = "string")]
    pub migrations_dir: Option<PathBuf>,

    /// the directory to serve static files (default "pb_public" next to the executable, as
    /// PocketBase resolves it)
    #[arg(long = "publicDir", global = true, value_name = "string")]
    pub public_dir: Option<PathBuf>,

    /// the default SELECT queries timeout in seconds
    #[arg(
        long = "queryTimeout",
        global = true,
        value_name = "int",
        default_value_t = 30,
        allow_negative_numbers = true
    )]
    pub query_timeout: i64,
}

impl AppFlags {
    /// The read deadline of every SELECT; PocketBase takes 0 or less as its 30 s default.
    pub fn query_timeout(&self) -> Duration {
        if self.query_timeout <= 0 {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(self.query_timeout as u64)
        }
    }

    /// `--publicDir`, or PocketBase's default: `pb_public` beside the path the binary was
    /// started by (`./pb_public` when started by a bare name through `PATH`).
    pub fn public_dir(&self) -> PathBuf {
        if let Some(dir) = &self.public_dir {
            return dir.clone();
        }
        let argv0 = std::env::args_os().next().unwrap_or_default();
        default_beside(Path::new(&argv0), "pb_public")
    }

    /// `pb_hooks`/`pb_migrations` (or `--hooksDir`/`--migrationsDir`) beside the data dir.
    fn hooks_dir(&self, data_dir: &Path) -> PathBuf {
        self.hooks_dir
            .clone()
            .unwrap_or_else(|| beside(data_dir, "pb_hooks"))
    }

    fn migrations_dir(&self, data_dir: &Path) -> PathBuf {
        self.migrations_dir
            .clone()
            .unwrap_or_else(|| beside(data_dir, "pb_migrations"))
    }

    /// The warnings for what PocketBun accepts but does not do: JS hooks and JS migrations
    /// present on disk would silently not run otherwise.
    pub fn warnings(&self, data_dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for (dir, what) in [
            (self.hooks_dir(data_dir), "JS app hooks"),
            (self.migrations_dir(data_dir), "JS migrations"),
        ] {
            let files = count_files(&dir);
            if files > 0 {
                out.push(format!(
                    "Warning: {} holds {files} file(s), but PocketBun does not run {what} yet; \
                     they are ignored.",
                    dir.display()
                ));
            }
        }
        out
    }
}

/// PocketBase derives the directories beside the data dir from the data dir's parent
/// (`pb_data/../pb_hooks`).
fn beside(data_dir: &Path, name: &str) -> PathBuf {
    match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => PathBuf::from(name),
    }
}

/// `argv0/../name`, lexically, as Go's `filepath.Join` resolves it; a binary started from the
/// temp dir (as `go run` does, and PocketBase checks for) uses the working directory.
fn default_beside(argv0: &Path, name: &str) -> PathBuf {
    if argv0.starts_with(std::env::temp_dir()) {
        return PathBuf::from(name);
    }
    match argv0.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => PathBuf::from(name),
    }
}

/// Regular files directly or deeper in `dir` (0 when it does not exist). Stops counting at 1000:
/// only "any or not" and a rough figure are reported.
fn count_files(dir: &Path) -> usize {
    let mut stack = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
            if n >= 1000 {
                return n;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_beside_the_binary() {
        assert_eq!(
            default_beside(Path::new("/opt/pb/pocketbun"), "pb_public"),
            PathBuf::from("/opt/pb/pb_public")
        );
        assert_eq!(
            default_beside(Path::new("pocketbun"), "pb_public"),
            PathBuf::from("pb_public")
        );
        assert_eq!(
            default_beside(Path::new("./pocketbun"), "pb_public"),
            PathBuf::from("./pb_public")
        );
        let tmp = std::env::temp_dir().join("x/pocketbun");
        assert_eq!(
            default_beside(&tmp, "pb_public"),
            PathBuf::from("pb_public")
        );
        assert_eq!(
            beside(Path::new("/srv/app/pb_data"), "pb_hooks"),
            PathBuf::from("/srv/app/pb_hooks")
        );
        assert_eq!(
            beside(Path::new("pb_data"), "pb_hooks"),
            PathBuf::from("pb_hooks")
        );
    }
}
