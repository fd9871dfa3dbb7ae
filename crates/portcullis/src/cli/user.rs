//! `portcullis ctl user ...`: the `[[users]]` of the config file, edited
//! as the calling user (config/edit.rs: comments kept, validated first,
//! written atomically), then the running server asked to reload.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::edit::{self, Change};

/// The config file `ctl` edits when `--config` is not given: the package's.
pub const DEFAULT_CONFIG: &str = "/etc/portcullis/portcullis.toml";

#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Add a [[users]] entry; the password is prompted (or read from stdin)
    /// and stored as an argon2id hash.
    Add {
        /// Login name.
        name: String,
        /// The user's `/`: a directory, or "s3://BUCKET/PREFIX".
        #[arg(long)]
        root: String,
        /// Comma-separated: read, write, overwrite, delete, rename, mkdir.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        permissions: Vec<String>,
        /// Read the password from the first line of standard input instead
        /// of prompting for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (prompted, or read from stdin).
    Passwd {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Refuse every login of a user (`disabled = true`) until enabled.
    Disable { name: String },
    /// Let a disabled user log in again (removes `disabled`).
    Enable { name: String },
    /// Delete a user's [[users]] entry (its files stay).
    Del { name: String },
}

/// Run `ctl user ...` on the config file of `args` (`--config`, else
/// the default), then ask the server `args` names to reload.
pub fn run(command: UserCommand, args: &super::ctl::CtlArgs) -> ExitCode {
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match change_of(command).and_then(|c| apply(&config, &c, args)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The change a command asks for (reading the password it needs).
fn change_of(command: UserCommand) -> Result<Change, String> {
    Ok(match command {
        UserCommand::Add {
            name,
            root,
            permissions,
            password_stdin,
        } => Change::Add {
            password_hash: crate::auth::users::hash_password(&read_password(password_stdin)?),
            name,
            root,
            permissions,
        },
        UserCommand::Passwd {
            name,
            password_stdin,
        } => Change::Passwd {
            password_hash: crate::auth::users::hash_password(&read_password(password_stdin)?),
            name,
        },
        UserCommand::Disable { name } => Change::Disabled {
            name,
            disabled: true,
        },
        UserCommand::Enable { name } => Change::Disabled {
            name,
            disabled: false,
        },
        UserCommand::Del { name } => Change::Delete { name },
    })
}

/// Edit, validate and write the file, then ask the server to reload.
fn apply(config: &Path, change: &Change, args: &super::ctl::CtlArgs) -> Result<String, String> {
    let options = edit::edit_file(config, change, &crate::server::SystemChecks)?;
    let reload = ask_reload(&options, args);
    Ok(format!("{}: {}; {reload}", config.display(), change.done()))
}

/// Ask the running server to read its config again, and say what
/// happened: through its control API (the socket of `--config`'s
/// `[control] socket`, or `--socket`/`--url`), which answers with the
/// reload's result; failing that, SIGHUP to the pid in `server.pid_file`.
fn ask_reload(options: &crate::options::ServerOptions, args: &super::ctl::CtlArgs) -> String {
    const BY_HAND: &str =
        "reload the running server for it to take effect (portcullis ctl reload, systemctl reload portcullis, or kill -HUP its pid)";
    let api = match super::ctl::send(args, "POST", "/v1/reload", None) {
        Ok(v) => {
            let said = super::ctl::render(&super::ctl::CtlCmd::Reload, &v, false);
            return format!("the server reloaded: {}", said.trim().replace('\n', "; "));
        }
        Err(e) => e,
    };
    let Some(path) = &options.pid_file else {
        return format!("no reload through the control API ({api}); {BY_HAND}");
    };
    let pid = match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => pid,
            _ => return format!("{}: not a process id; {BY_HAND}", path.display()),
        },
        Err(e) => return format!("server.pid_file {}: {e}; {BY_HAND}", path.display()),
    };
    match hup(pid) {
        Ok(()) => format!(
            "no reload through the control API ({api}); sent SIGHUP to the server (pid {pid} from {}): it reloads the config now",
            path.display()
        ),
        Err(e) => format!(
            "cannot signal pid {pid} (from {}): {e}; {BY_HAND}",
            path.display()
        ),
    }
}

#[cfg(target_os = "linux")]
fn hup(pid: i32) -> Result<(), String> {
    use rustix::process::{kill_process, Pid, Signal};
    let pid = Pid::from_raw(pid).ok_or("not a process id")?;
    kill_process(pid, Signal::HUP).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn hup(_pid: i32) -> Result<(), String> {
    Err("signals are sent on Linux only".into())
}

/// The password: one line of stdin with `--password-stdin`, else prompted
/// twice without echo on a terminal.
fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("stdin: {e}"))?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            return Err("empty password on stdin".into());
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        return Err("no terminal to prompt for the password on: use --password-stdin".into());
    }
    let a = rpassword::prompt_password("New password: ").map_err(|e| e.to_string())?;
    let b = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
    if a != b {
        return Err("the passwords differ".into());
    }
    if a.is_empty() {
        return Err("empty password".into());
    }
    Ok(a)
}
