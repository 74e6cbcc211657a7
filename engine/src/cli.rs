//! The `pocketbun` command line, with PocketBase's command and flag names so existing scripts
//! and service files keep working.

use crate::app::App;
use crate::ctx::Shared;
use crate::offload::CpuPool;
use crate::schema::SchemaState;
use crate::state::Core;
use crate::superuser::SuperuserAction;
use clap::{Args, Parser, Subcommand};
use pocketbun_http::{Driver, Server, ServerConfig};
use pocketbun_storage::collections::Collections;
use pocketbun_storage::{Store, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "pocketbun",
    version = crate::serve_options::VERSION_LINE,
    disable_version_flag = true,
    // PocketBase's layout: each flag with its help on the same line, however long the flag
    term_width = 0,
    about = "PocketBun: PocketBase's Web API, several times faster",
    long_about = "PocketBun serves PocketBase's Web API from a PocketBase pb_data directory, \
                  so PocketBase SDKs and existing data work unchanged."
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct GlobalArgs {
    /// The PocketBase data directory (data.db, auxiliary.db, storage/); created if missing.
    #[arg(long, global = true, default_value = "pb_data")]
    dir: PathBuf,
    #[command(flatten)]
    app: crate::serve_options::AppFlags,
    /// version for pocketbun (and the PocketBase Web API version it follows)
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    #[allow(dead_code)] // clap prints the version and exits; the field is never read
    version: Option<bool>,
}

// parsed once at start-up and matched at once: the size of the `serve` variant costs nothing
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Starts the web server (default address 127.0.0.1:8090).
    Serve(ServeArgs),
    /// Rebuilds a pb_data directory (--dir, which must be missing or empty) from a Litestream
    /// replica written by `serve --replicate`.
    Restore(RestoreArgs),
    /// Manages superusers from the command line.
    Superuser {
        #[command(subcommand)]
        action: SuperuserCommand,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Domain names to serve over HTTPS with certificates from Let's Encrypt (ACME), cached in
    /// pb_data/.autocert_cache; HTTP then redirects to HTTPS.
    domains: Vec<String>,
    /// TCP address to listen for the HTTP server (if domain args are specified: default
    /// 0.0.0.0:80, otherwise 127.0.0.1:8090).
    #[arg(long)]
    http: Option<String>,
    /// TCP address to listen for the HTTPS server (if domain args are specified: default
    /// 0.0.0.0:443, otherwise none, aka. no TLS). HTTP traffic is then redirected to HTTPS.
    #[arg(long)]
    https: Option<String>,
    /// Worker threads: one event loop and one listener per core. Default: all cores.
    #[arg(long)]
    workers: Option<usize>,
    /// Use the epoll driver even where io_uring is available.
    #[arg(long)]
    epoll: bool,
    /// Gzip responses for clients that accept it (off by default, as in PocketBase).
    #[arg(long)]
    gzip: bool,
    /// Turn off the fresh-read cache (repeated record lists and views answered from memory
    /// while no commit touched what they read).
    #[arg(long)]
    no_cache: bool,
    /// Accepted for command-line compatibility with PocketBase; PocketBun writes no migration files.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    automigrate: Option<String>,
    /// How new passwords are hashed. `bcrypt` (at the collection's cost) is what PocketBase
    /// reads, so the data stays usable by it; `argon2id` is stronger but PocketBase cannot
    /// log those users in. Either way a stored hash of the other kind (or a weaker bcrypt
    /// cost) is replaced at the user's next successful login.
    #[arg(long, value_enum, default_value_t = crate::auth::password::Scheme::Bcrypt)]
    password_hash: crate::auth::password::Scheme,
    /// Seconds after which an idle realtime client is disconnected (PocketBase: 300).
    #[arg(long, hide = true, default_value_t = 300.0)]
    realtime_idle_timeout: f64,
    /// Continuous backup: run Litestream (supervised) to replicate data.db and auxiliary.db to
    /// this URL, e.g. s3://bucket/path (S3 credentials from the AWS_* env) or file:///path.
    /// PocketBun then leaves WAL checkpoints to Litestream.
    #[arg(long, value_name = "url")]
    replicate: Option<String>,
    /// The litestream binary for --replicate and --replica (default: env LITESTREAM_BIN,
    /// else PATH).
    #[arg(long, value_name = "path")]
    litestream: Option<PathBuf>,
    /// Read replica: the primary's base URL (e.g. http://10.0.0.1:8090). Reads are served
    /// from a copy of data.db kept current from --replica; writes are forwarded to the
    /// primary. Crons, auto-backups and request logs run on the primary only.
    #[arg(
        long,
        value_name = "url",
        requires = "replica",
        conflicts_with = "replicate"
    )]
    replica_of: Option<String>,
    /// Read replica: the Litestream replica URL the primary writes with --replicate.
    #[arg(long, value_name = "url", requires = "replica_of")]
    replica: Option<String>,
    /// Realtime across nodes: the NATS server (e.g. nats://10.0.0.5:4222), given to the
    /// primary and every replica. The primary publishes its record and schema changes; each
    /// replica delivers them to its own SSE clients once its copy has them.
    #[arg(long, value_name = "url")]
    nats: Option<String>,
    /// The NATS subject prefix of this cluster (default: pocketbun); clusters sharing one
    /// NATS server need different ones.
    #[arg(long, value_name = "prefix")]
    nats_prefix: Option<String>,
    #[command(flatten)]
    web: crate::serve_options::ServeFlags,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The replica URL given to `serve --replicate`.
    #[arg(long, value_name = "url")]
    from: String,
    /// Point in time to restore (RFC 3339, e.g. 2026-12-07T02:31:38Z); default: the latest.
    #[arg(long, value_name = "time")]
    timestamp: Option<String>,
    /// The litestream binary (default: env LITESTREAM_BIN, else PATH).
    #[arg(long, value_name = "path")]
    litestream: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum SuperuserCommand {
    /// Creates the superuser EMAIL with PASSWORD, or changes its password if it exists.
    Upsert {
        #[arg(value_name = "EMAIL PASSWORD")]
        args: Vec<String>,
    },
    /// Creates a new superuser: EMAIL PASSWORD.
    Create {
        #[arg(value_name = "EMAIL PASSWORD")]
        args: Vec<String>,
    },
    /// Changes the password of an existing superuser: EMAIL PASSWORD.
    Update {
        #[arg(value_name = "EMAIL PASSWORD")]
        args: Vec<String>,
    },
    /// Deletes the superuser EMAIL.
    Delete {
        #[arg(value_name = "EMAIL")]
        args: Vec<String>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and succeed; a usage error exits 1, as PocketBase 0.40
        // exits from any failed command (clap's own code would be 2)
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match cli.command {
        Command::Serve(args) => serve(&cli.global, args),
        Command::Restore(args) => restore(&cli.global, args),
        Command::Superuser { action } => superuser(&cli.global, action),
    }
}

/// `--encryptionEnv`'s key for the stored settings.
fn settings_key(global: &GlobalArgs) -> crate::encryption::SettingsKey {
    crate::encryption::SettingsKey::from_env(global.app.encryption_env.as_deref())
}

fn serve(global: &GlobalArgs, args: ServeArgs) -> i32 {
    let listen = match crate::tls::plan(
        &global.dir,
        &args.domains,
        args.http.as_deref(),
        args.https.as_deref(),
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let addr = listen.main;
    // --replicate: a missing litestream or a malformed URL stops the start-up here
    let litestream = match &args.replicate {
        Some(url) => match crate::replicate::check_url(url)
            .and_then(|_| crate::replicate::locate(args.litestream.as_deref()))
        {
            Ok(bin) => Some((bin, url.clone())),
            Err(e) => {
                eprintln!("Error: --replicate: {e}");
                return 1;
            }
        },
        None => None,
    };
    // --nats: a malformed URL or prefix stops the start-up here
    let nats = args.nats.as_ref().map(|url| crate::cluster::Options {
        url: url.clone(),
        prefix: (args.nats_prefix.clone()).unwrap_or_else(|| crate::cluster::DEFAULT_PREFIX.into()),
    });
    if let Some(Err(e)) = nats.as_ref().map(crate::cluster::Options::check) {
        eprintln!("Error: --nats: {e}");
        return 1;
    }
    // --replica-of: the follower copy of data.db must exist before the store opens it
    let replica = args.replica_of.is_some();
    // Litestream's child, a primary's positions, a replica's follower: owned by Core below
    let replication = Arc::new(crate::replicate::Replication::default());
    if let (Some(primary), Some(url)) = (&args.replica_of, &args.replica) {
        if let Err(e) = start_follower(
            &replication,
            global,
            primary,
            url,
            args.litestream.as_deref(),
        ) {
            eprintln!("Error: --replica: {e}");
            crate::replicate::supervisor::stop(&replication);
            return 1;
        }
    }
    // read tracking (the fresh-read cache) is decided when the store opens its connections.
    // A replica's data.db changes under it (Litestream applies the primary's commits, not our
    // writer), so no generation would be stamped: no cache there.
    let read_tracking = !args.no_cache && !replica;
    let store = match open_store(global, litestream.is_some(), replica, read_tracking) {
        Ok(s) => s,
        Err(code) => {
            crate::replicate::supervisor::stop(&replication);
            return code;
        }
    };
    let mut config = ServerConfig::new(addr);
    if let Some(n) = args.workers {
        config.workers = n.max(1);
    }
    if args.epoll {
        config.driver = Driver::Epoll;
    }
    config.gzip = args.gzip;
    config.tls = listen.tls.as_ref().map(|acme| acme.tls_config());
    for warning in global.app.warnings(&global.dir) {
        eprintln!("{warning}");
    }
    let hub = Arc::new(crate::realtime::Hub::new(crate::realtime::RealtimeConfig {
        idle_timeout: std::time::Duration::from_secs_f64(args.realtime_idle_timeout.max(0.001)),
        ..Default::default()
    }));
    let core = Arc::new(Core {
        body_limit: config.limits.default_body_bytes,
        replication,
        store: store.clone(),
        schema: match load_schema(&store) {
            Ok(schema) => schema,
            Err(e) => {
                eprintln!("Error: cannot load the collections: {e}");
                return 1;
            }
        },
        cpu: match CpuPool::new(config.workers) {
            Ok(pool) => pool,
            Err(e) => {
                eprintln!("Error: cannot start the CPU pool: {e}");
                return 1;
            }
        },
        settings: match crate::settings::SettingsCell::load(&store, settings_key(global)) {
            Ok(settings) => settings,
            Err(e) => {
                eprintln!("Error: cannot load the settings: {e}");
                return 1;
            }
        },
        app_store: Default::default(),
        backup_slot: Default::default(),
        password_scheme: args.password_hash,
        logs: Default::default(),
        files: Default::default(),
    });
    let node_tag = nats.as_ref().map(|_| crate::cluster::new_tag());
    if let Some(tag) = &node_tag {
        hub.set_node_tag(tag.clone());
    }
    // scratch files of an earlier backup/restore; then the log writer and the cron jobs
    crate::backups::remove_temp_dir(store.dir());
    let settings = core.clone();
    let max_data_size = move || settings.settings.get().logs.max_data_size;
    let crons = if replica {
        // the primary runs crons, backups and log retention, and logs the requests it is
        // forwarded; the replica writes no request log (its auxiliary.db stays local)
        watch_follower(&global.dir, core.clone()).map(|()| None)
    } else {
        (core.logs.start(&store, max_data_size))
            .and_then(|_| crate::crons::start(core.clone()))
            .map(Some)
    };
    let crons = match crons {
        Ok(crons) => crons,
        Err(e) => {
            eprintln!("Error: cannot start the log writer and the cron scheduler: {e}");
            return 1;
        }
    };
    let cluster = match nats.zip(node_tag) {
        Some((opts, tag)) => {
            let node = Arc::new(crate::cluster::Node {
                core: core.clone(),
                hub: hub.clone(),
            });
            match crate::cluster::start(opts, tag, node, replica) {
                Ok(link) => Some(link),
                Err(e) => {
                    eprintln!("Error: --nats: {e}");
                    store.close();
                    crate::replicate::supervisor::stop(&core.replication);
                    return 1;
                }
            }
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        core,
        record_hooks: Arc::new({
            let mut hooks = crate::records::event::RecordHooks::default();
            hooks.add(hub.clone());
            if let Some(link) = cluster.as_ref().filter(|_| !replica) {
                hooks.add(Arc::new(crate::cluster::Publisher(link.clone())));
            }
            hooks
        }),
        cluster,
        realtime: hub,
        web: args.web.web(&global.app),
        rate_windows: Default::default(),
        crons,
    });
    if let Some((bin, url)) = litestream {
        if !shared.settings.get().s3.enabled {
            eprintln!(
                "Warning: --replicate copies data.db and auxiliary.db only; uploaded files are \
                 on local storage ({}), so a restore from the replica will lack them. Use S3 \
                 file storage for a full recovery.",
                store.dir().join("storage").display()
            );
        }
        let config = crate::replicate::supervisor::Config {
            bin,
            dir: global.dir.clone(),
            url,
            verbose: global.app.dev,
            mode: crate::replicate::supervisor::Mode::Replicate,
        };
        if let Err(e) = crate::replicate::supervisor::start(&shared.replication, config) {
            eprintln!("Error: --replicate: {e}");
            store.close();
            return 1;
        }
    }
    let shared_core = shared.core.clone();
    // a worker that cannot open its read connection cannot serve: fail loudly at start-up
    let (www_redirects, https) = (listen.www_redirects.clone(), listen.tls.is_some());
    let factory = move |id| {
        let app = App::new(shared.clone())
            .unwrap_or_else(|e| panic!("worker {id}: cannot open a read connection: {e}"));
        // the factory runs on the worker's own runtime
        app.start_idle_tick();
        crate::tls::WwwRedirect {
            inner: app,
            hosts: www_redirects.clone(),
            https,
        }
    };
    let handle = match Server::start(config.clone(), factory) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("Error: cannot listen on {addr}: {e}");
            return 1;
        }
    };
    if let Err(e) = handle.shutdown_on_signals() {
        eprintln!("Error: cannot install signal handlers: {e}");
        return 1;
    }
    let redirect = crate::tls::start_redirect(&listen);
    let base_url = match listen.tls {
        Some(_) => listen.base_url.clone(),
        None => format!("http://{}", handle.local_addr()),
    };
    println!(
        "Server started at {base_url}\n├─ REST API:  {base_url}/api/\n├─ Dashboard: {base_url}/_/\n└─ {} workers, {} driver",
        config.workers,
        handle.driver()
    );
    // first start: the one-time link to the dashboard's "create the first superuser" page
    match installer_token(&store) {
        Ok(Some(token)) => println!(
            "\n(!) Launch the URL below in the browser to create your first superuser account:\n\
             {base_url}/_/#/pbinstall/{token}\n\
             (you can also create your first superuser by running: pocketbun superuser upsert EMAIL PASS)\n"
        ),
        Ok(None) => {}
        Err(e) => eprintln!("Error: cannot prepare the installer link: {e}"),
    }
    let busy = handle.busy_meter();
    let served = handle.join();
    // the watchdog's figure of how close the workers came to a stall (tests read it)
    eprintln!(
        "pocketbun: longest busy stretch of a worker: {} ms",
        busy.longest().as_millis()
    );
    if let Some(r) = redirect {
        r.shutdown().trigger();
        let _ = r.join();
    }
    // workers are gone: write the queued logs, let the writer commit what is queued, stop it
    shared_core.logs.flush(std::time::Duration::from_secs(2));
    store.close();
    // after the last commit: Litestream's final sync, then it stops
    crate::replicate::supervisor::stop(&shared_core.replication);
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn load_schema(store: &Store) -> Result<SchemaState, pocketbun_storage::StorageError> {
    let collections = store.reader()?.read(Collections::load)?;
    Ok(SchemaState::new(collections))
}

/// Starts `litestream restore -f` for a read replica and waits for its first copy of
/// `data.db` (up to 2 minutes: a first restore downloads the whole database).
fn start_follower(
    replication: &Arc<crate::replicate::Replication>,
    global: &GlobalArgs,
    primary: &str,
    url: &str,
    litestream: Option<&std::path::Path>,
) -> Result<(), String> {
    if !(primary.starts_with("http://") || primary.starts_with("https://")) {
        return Err(format!(
            "invalid primary URL {primary:?} for --replica-of: expected http://host:port"
        ));
    }
    crate::replicate::check_url(url)?;
    let bin = crate::replicate::locate(litestream)?;
    std::fs::create_dir_all(&global.dir)
        .map_err(|e| format!("cannot create {}: {e}", global.dir.display()))?;
    crate::replicate::follower::check_dir(&replication.follower, &global.dir, primary)?;
    crate::replicate::supervisor::start(
        replication,
        crate::replicate::supervisor::Config {
            bin,
            dir: global.dir.clone(),
            url: url.to_string(),
            verbose: global.app.dev,
            mode: crate::replicate::supervisor::Mode::Follow,
        },
    )?;
    crate::replicate::follower::wait_ready(
        &replication.follower,
        &global.dir,
        std::time::Duration::from_secs(120),
    )?;
    crate::replicate::ryw::watch_primary(replication.clone(), primary.to_string())
        .map_err(|e| format!("cannot start the primary's position poll: {e}"))
}

/// A read replica's watcher: after the follower applied transactions, the collections and
/// settings snapshots are reloaded when their rows changed (one small query per advance).
fn watch_follower(dir: &std::path::Path, core: Arc<Core>) -> std::io::Result<()> {
    let reader = core
        .store
        .reader()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut last = reader
        .read(crate::replicate::follower::fingerprint)
        .unwrap_or_default();
    let replication = core.replication.clone();
    replication.follower.watch(dir.to_path_buf(), move || {
        let fp = match reader.read(crate::replicate::follower::fingerprint) {
            Ok(fp) => fp,
            Err(e) => return eprintln!("replica: cannot read the collections: {e}"),
        };
        if fp == last {
            return;
        }
        if let Err(e) = crate::cluster::reload_snapshots(&core, &reader) {
            return eprintln!("replica: {e}");
        }
        last = fp;
    })
}

/// Opens `--dir`; `replicated`: Litestream owns the WAL checkpoints; `follower`: data.db is
/// a read replica's follower copy; `read_tracking`: for the fresh-read cache. `--dev` prints
/// every statement the store's connections run (its request lines follow
/// [`crate::serve_options::Web::dev`]).
fn open_store(
    global: &GlobalArgs,
    replicated: bool,
    follower: bool,
    read_tracking: bool,
) -> Result<Arc<Store>, i32> {
    let opts = StoreOptions {
        follower_data: follower,
        read_timeout: global.app.query_timeout(),
        external_checkpoints: replicated || follower,
        read_tracking,
        sql_log: global.app.dev,
        aux_thread_start: Some(crate::offload::yield_to_request_workers),
        ..StoreOptions::default()
    };
    match Store::open(&global.dir, opts) {
        Ok(store) => Ok(Arc::new(store)),
        Err(e) => {
            eprintln!("Error: cannot open {}: {e}", global.dir.display());
            Err(1)
        }
    }
}

fn superuser(global: &GlobalArgs, command: SuperuserCommand) -> i32 {
    let (action, args) = match command {
        SuperuserCommand::Upsert { args } => (SuperuserAction::Upsert, args),
        SuperuserCommand::Create { args } => (SuperuserAction::Create, args),
        SuperuserCommand::Update { args } => (SuperuserAction::Update, args),
        SuperuserCommand::Delete { args } => (SuperuserAction::Delete, args),
    };
    let email = args.first().map_or("", String::as_str);
    // PocketBase wants exactly EMAIL PASSWORD; anything else counts as a missing password
    let password = match (action, args.len()) {
        (SuperuserAction::Delete, _) => None,
        (_, 2) => Some(args[1].as_str()),
        _ => None,
    };
    let store = match open_store(global, false, false, false) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let outcome = crate::superuser::run(&store, action, email, password);
    store.close();
    match outcome {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            // PocketBase 0.40 reports a failed command through Go's `log`: a
            // `2006/01/02 15:04:05 ` prefix (UTC here), then the message
            let now = pocketbun_storage::time::now_datetime();
            eprintln!("{} {e}", now[..19].replace('-', "/"));
            1
        }
    }
}

fn restore(global: &GlobalArgs, args: RestoreArgs) -> i32 {
    let outcome = crate::replicate::locate(args.litestream.as_deref()).and_then(|bin| {
        crate::replicate::restore::run(&bin, &args.from, args.timestamp.as_deref(), &global.dir)
    });
    match outcome {
        Ok(()) => {
            println!("Restored {} from {}", global.dir.display(), args.from);
            0
        }
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// The installer link's token: the installer's claims signed for 30 minutes.
fn installer_token(store: &Store) -> Result<Option<String>, String> {
    let Some(installer) = crate::superuser::installer_claims(store)? else {
        return Ok(None);
    };
    crate::auth::token::issue(
        &installer.claims,
        &installer.signing_key,
        crate::superuser::INSTALLER_TOKEN_SECS,
    )
    .map(Some)
    .map_err(|e| format!("cannot sign the installer token: {e:?}"))
}
