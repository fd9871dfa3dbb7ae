//! The command line: `serve`, `hash-password`, `check-config`, `firewall`,
//! `gen-cert`, `doctor`, `ctl` (`cli/ctl.rs`, the control API's client).

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use crate::options::ServerOptions;

mod check;
mod ctl;
mod serve;
pub mod user;
use serve::{check_roots_as_server_user, serve, set_umask};

/// `--version`: the version and the optional features this build has, so
/// that `[auth.pam]` refused by a build without them is explained.
#[cfg(feature = "pam")]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (features: +pam)");
#[cfg(not(feature = "pam"))]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (features: -pam)");

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version = VERSION,
    about = "An FTP server that makes firewalls and NAT easy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server (without --config: anonymous read-only over --root, port 2121).
    Serve {
        /// Config file (TOML); the flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory to serve to anonymous users when no config file is given
        /// (default: the current directory; created if missing), or an
        /// object-store root "s3://BUCKET/PREFIX" (the store from
        /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP and the AWS
        /// credential variables) or "az://CONTAINER/PREFIX" (the account
        /// from AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT,
        /// AZURE_STORAGE_ALLOW_HTTP and the AZURE_STORAGE_* credentials).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Control listener ADDR:PORT (repeatable); replaces server.listen.
        #[arg(long)]
        listen: Vec<SocketAddr>,
        /// Passive data port range LO-HI; replaces passive.ports.
        #[arg(long, value_parser = config::parse_port_range)]
        passive_ports: Option<std::ops::RangeInclusive<u16>>,
        /// IPv4 address to advertise in PASV replies; replaces passive.address.
        #[arg(long)]
        passive_address: Option<IpAddr>,
        /// PEM certificate chain: turns on FTPS (AUTH TLS, optional) or
        /// replaces tls.cert (or [tls.acme]). Needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert; replaces tls.key.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Write a self-signed certificate and key (DIR/cert.pem, DIR/key.pem)
    /// for a quick FTPS start.
    GenCert {
        /// Host name or IP address the certificate is for (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Directory to write cert.pem and key.pem into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Run as root: the user the server runs as (server.user), who reads
        /// the key again at every reload; the key becomes readable by that
        /// user's group (0640). Default: nobody, whom `serve` without a
        /// config becomes when started as root.
        #[arg(long)]
        user: Option<String>,
    },
    /// Read a password (prompt, or one line of stdin) and print its argon2id hash.
    HashPassword {
        /// Memory cost in KiB (default 19456, the OWASP minimum for argon2id).
        #[arg(long, default_value_t = 19456)]
        m_cost: u32,
        /// Iterations (default 2).
        #[arg(long, default_value_t = 2)]
        t_cost: u32,
    },
    /// Print the firewall rules the configuration needs.
    Firewall {
        /// Config file (without one: the built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Rule syntax.
        #[arg(long, value_enum, default_value = "nftables")]
        format: crate::firewall::Format,
    },
    /// Validate a config file and explain each error; run as root, also
    /// check what the server's user must be able to read after the drop.
    CheckConfig {
        /// Config file (TOML).
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// Config file (TOML), as the other commands take it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Diagnose a server from the client side: log in, try PASV, EPSV, PORT
    /// and EPRT, and say which work and why the others do not.
    ///
    /// Exit status: 0 all modes work; otherwise the sum of 1 (PASV failed),
    /// 2 (EPSV), 4 (PORT), 8 (EPRT); 64 when connecting, TLS or login failed.
    /// The password comes from the URL, PORTCULLIS_PASSWORD, or a prompt.
    Doctor {
        /// ftp://[user[:password]@]host[:port]
        url: String,
        /// Use explicit FTPS (AUTH TLS, PROT P).
        #[arg(long)]
        tls: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for each connection and reply.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Ask a running server (its control socket): list and kick sessions,
    /// list, add and lift bans, reload, drain, status.
    Ctl(ctl::CtlArgs),
    /// The PAM helper that `serve` starts before dropping root
    /// (auth/pam/helper.rs); not for operators.
    #[cfg(feature = "pam")]
    #[command(hide = true)]
    PamHelper {
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
}

/// Parse the command line and run it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve {
            config,
            root,
            listen,
            passive_ports,
            passive_address,
            tls_cert,
            tls_key,
        } => {
            let quick_start = config.is_none();
            // Logged once the log is set up (in its format).
            let mut warnings = Vec::new();
            let mut options = match (config, root) {
                (Some(path), _) => match config::load(&path, &crate::server::SystemChecks) {
                    Ok((o, w)) => {
                        warnings = w;
                        o
                    }
                    Err(e) => {
                        eprintln!("error: {}:\n{e}", path.display());
                        return ExitCode::FAILURE;
                    }
                },
                (None, Some(root)) if crate::storage::RootSpec::is_object_store(&root) => {
                    // An object-store root: the store from the environment.
                    match crate::storage::RootSpec::parse(&root, None) {
                        Ok(spec) => {
                            let mut o = ServerOptions::with_anonymous_root(PathBuf::from("."));
                            o.stores = crate::storage::StoreOptions::from_env();
                            if let Some(a) = &mut o.anonymous {
                                a.root = spec;
                            }
                            o
                        }
                        Err(e) => {
                            eprintln!("error: --root: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                (None, root) => {
                    let root = root.unwrap_or_else(|| PathBuf::from("."));
                    // The default umask already, so that a --root made
                    // here is 0755 and readable by `nobody`.
                    set_umask(crate::options::DEFAULT_UMASK);
                    if !root.exists() {
                        match std::fs::create_dir_all(&root) {
                            Ok(()) => eprintln!("note: created {}", root.display()),
                            Err(e) => {
                                eprintln!("error: --root {}: {e}", root.display());
                                return ExitCode::FAILURE;
                            }
                        }
                    }
                    if !root.is_dir() {
                        eprintln!(
                            "error: --root {}: not an existing directory",
                            root.display()
                        );
                        return ExitCode::FAILURE;
                    }
                    ServerOptions::with_anonymous_root(root)
                }
            };
            if !listen.is_empty() {
                options.listen = listen;
            }
            if let Some(p) = passive_ports {
                options.passive.ports = p;
                options.passive.single_port = None;
            }
            if let Some(a) = passive_address {
                let IpAddr::V4(v4) = a else {
                    eprintln!("error: --passive-address must be IPv4 (PASV cannot carry IPv6)");
                    return ExitCode::FAILURE;
                };
                options.passive.address = Some(crate::options::PassiveAddress::Ip(v4));
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                if let Err(e) = crate::tls::CertResolver::load(&cert, &key) {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                match &mut options.tls {
                    Some(t) => {
                        // The files named replace [tls.acme] too.
                        t.cert = cert;
                        t.key = key;
                        t.acme = None;
                    }
                    None => options.tls = Some(crate::options::TlsOptions::optional(cert, key)),
                }
            }
            serve(options, &warnings, quick_start)
        }
        Cmd::HashPassword { m_cost, t_cost } => match read_password() {
            Ok(pw) => match crate::auth::users::hash_password_with(&pw, m_cost, t_cost) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Firewall { config, format } => {
            let options = match config {
                // Only the addresses and ports: the rules may be for
                // another host, whose directories and users are not here.
                Some(path) => match config::load(&path, &config::RulesOnly) {
                    Ok((o, _)) => o,
                    Err(e) => {
                        eprintln!("error: {}:\n{e}", path.display());
                        return ExitCode::FAILURE;
                    }
                },
                None => ServerOptions::with_anonymous_root(PathBuf::from(".")),
            };
            print!("{}", crate::firewall::rules(&options, format));
            ExitCode::SUCCESS
        }
        Cmd::GenCert { hosts, out, user } => match gen_cert(&hosts, &out, user.as_deref()) {
            Ok(notes) => {
                println!(
                    "wrote {0}/cert.pem and {0}/key.pem (self-signed for {1}); clients must be told to trust it",
                    out.display(),
                    hosts.join(", ")
                );
                for n in notes {
                    println!("{n}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Doctor {
            url,
            tls,
            json,
            timeout,
        } => doctor(&url, tls, json, timeout),
        Cmd::Ctl(args) => ctl::run(args),
        #[cfg(feature = "pam")]
        Cmd::PamHelper { workers } => crate::auth::pam::helper::run(workers),
        Cmd::CheckConfig { file, config } => match file.or(config) {
            Some(file) => check::check_config(&file),
            None => ExitCode::FAILURE,
        },
    }
}

fn doctor(url: &str, tls: bool, json: bool, timeout: u64) -> ExitCode {
    let mut target = match crate::doctor::parse_url(url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::doctor::EXIT_FATAL);
        }
    };
    if target.password.is_none() && target.user != "anonymous" {
        target.password = match std::env::var("PORTCULLIS_PASSWORD") {
            Ok(p) => Some(p),
            Err(_) if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("Password for {}: ", target.user)).ok()
            }
            Err(_) => None,
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(crate::doctor::EXIT_FATAL);
        }
    };
    let report = rt.block_on(crate::doctor::diagnose(
        &target,
        tls,
        std::time::Duration::from_secs(timeout.max(1)),
    ));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    ExitCode::from(report.exit_code())
}

/// Write DIR/cert.pem and DIR/key.pem: the key readable by its owner
/// only, or, run as root, also by the group of the server's user (`user`,
/// default nobody), who reads it again at every reload. Returns notes for
/// the operator: who may read the key, or why that user still cannot.
fn gen_cert(
    hosts: &[String],
    out: &std::path::Path,
    user: Option<&str>,
) -> Result<Vec<String>, String> {
    let reader = match (crate::privdrop::is_root(), user) {
        (true, u) => Some(
            crate::privdrop::resolve(u.unwrap_or("nobody"), None)
                .map_err(|e| format!("--user: {}", e.trim_start_matches("server.user: ")))?,
        ),
        (false, Some(_)) => {
            return Err("--user: only root can give the key to another user's group".into())
        }
        (false, None) => None,
    };
    let (cert, key) = crate::tls::self_signed(hosts)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, text: &str, mode: u32| -> Result<(), String> {
        let path = out.join(name);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = o
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // A file that existed keeps its mode through the open: the key
        // must become owner-only before it is written.
        #[cfg(unix)]
        if mode == 0o600 {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    write("cert.pem", &cert, 0o644)?;
    write("key.pem", &key, 0o600)?;
    let Some(id) = reader else {
        return Ok(Vec::new());
    };
    let path = out.join("key.pem");
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    // Owner-only until the group is the server's: then 0640.
    std::os::unix::fs::chown(&path, None, Some(id.gid)).map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).map_err(err)?;
    }
    let group = crate::privdrop::group_name(id.gid).unwrap_or_else(|| id.gid.to_string());
    let mut notes = vec![format!(
        "key.pem is readable by group {group}, so that user {} can reload it (SIGHUP){}",
        id.user,
        if user.is_none() {
            "; for another server.user, run again with --user NAME"
        } else {
            ""
        }
    )];
    // A directory above it may still be closed to that user (root's home).
    match crate::privdrop::on_thread_as(&id, || std::fs::File::open(&path).map(drop)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => notes.push(format!(
            "warning: user {} still cannot open {}: {e}: a directory above it is closed to \
             that user; put the certificate where the server's user can reach it, or a \
             reload will fail",
            id.user,
            path.display()
        )),
        Err(e) => notes.push(format!("warning: {e}")),
    }
    Ok(notes)
}

fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let b = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if a != b {
            return Err("the passwords differ".into());
        }
        if a.is_empty() {
            return Err("empty password".into());
        }
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            return Err("empty password on stdin".into());
        }
        Ok(pw)
    }
}
