//! `portcullis doctor ftp://user@host:port [--tls]`: a client-side diagnosis.
//! It logs in, then tries a listing over each kind of data connection (PASV,
//! EPSV, PORT, EPRT) and says for each whether it works and, when not, the
//! most likely cause in plain words. Works against any FTP server.

mod client;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};

use client::{close, drain, Control};

mod url;
pub use url::{parse_url, Target};

mod modes;
use modes::{active, passive};
#[cfg(test)]
use modes::{parse_227, parse_229};

/// The outcome of one data-connection mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub mode: &'static str,
    pub ok: bool,
    /// What happened, briefly (replies, addresses, timings).
    pub detail: String,
    /// When it failed: the most likely cause, in plain words.
    pub cause: Option<String>,
    /// A short machine-readable cause.
    pub cause_id: Option<&'static str>,
}

/// The whole diagnosis.
#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub tls: bool,
    /// Set when the session could not even start (connect, TLS, login).
    pub fatal: Option<String>,
    pub modes: Vec<ModeReport>,
    pub notes: Vec<String>,
}

/// Exit status bits: which modes failed (0 = all work).
pub const EXIT_PASV: u8 = 1;
pub const EXIT_EPSV: u8 = 2;
pub const EXIT_PORT: u8 = 4;
pub const EXIT_EPRT: u8 = 8;
/// Could not connect, start TLS or log in.
pub const EXIT_FATAL: u8 = 64;

impl Report {
    pub fn exit_code(&self) -> u8 {
        if self.fatal.is_some() {
            return EXIT_FATAL;
        }
        self.modes
            .iter()
            .filter(|m| !m.ok)
            .map(|m| match m.mode {
                "PASV" => EXIT_PASV,
                "EPSV" => EXIT_EPSV,
                "PORT" => EXIT_PORT,
                _ => EXIT_EPRT,
            })
            .fold(0, |a, b| a | b)
    }

    /// The report for people.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = format!(
            "portcullis doctor: {}{}\n",
            self.server,
            if self.tls { " (FTPS, AUTH TLS)" } else { "" }
        );
        if let Some(f) = &self.fatal {
            let _ = writeln!(s, "FAILED before any data connection: {f}");
        }
        for m in &self.modes {
            let _ = writeln!(
                s,
                "{:<5} {:<5} {}",
                m.mode,
                if m.ok { "ok" } else { "FAIL" },
                m.detail
            );
            if let Some(c) = &m.cause {
                let _ = writeln!(s, "      cause: {c}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }
}

fn fail(mode: &'static str, detail: String, id: &'static str, cause: String) -> ModeReport {
    ModeReport {
        mode,
        ok: false,
        detail,
        cause: Some(cause),
        cause_id: Some(id),
    }
}

/// The control connection failed under a mode's command.
fn control_lost(mode: &'static str, e: &std::io::Error) -> ModeReport {
    fail(
        mode,
        e.to_string(),
        "control_lost",
        format!("the control connection broke: {e}"),
    )
}

fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(a) => a.is_loopback() || (a.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Run the diagnosis.
pub async fn diagnose(target: &Target, tls: bool, timeout: Duration) -> Report {
    let server = format!("{}:{}", target.host, target.port);
    let mut report = Report {
        server: server.clone(),
        tls,
        fatal: None,
        modes: Vec::new(),
        notes: Vec::new(),
    };
    if tls {
        report.notes.push("with FTPS the PASV/PORT replies are encrypted, so a firewall's FTP helper (nf_conntrack_ftp and the like) cannot open data ports on the fly: the server's passive range must be open explicitly.".into());
        report
            .notes
            .push("the server's certificate is not verified by doctor.".into());
    }
    let addr = match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
        Ok(mut a) => match a.next() {
            Some(a) => a,
            None => {
                report.fatal = Some(format!("{} has no address", target.host));
                return report;
            }
        },
        Err(e) => {
            report.fatal = Some(format!("cannot resolve {}: {e}", target.host));
            return report;
        }
    };
    let mut ctl = match start(addr, target, tls, timeout).await {
        Ok(c) => c,
        Err(e) => {
            report.fatal = Some(e);
            return report;
        }
    };
    for mode in ["PASV", "EPSV", "PORT", "EPRT"] {
        let m = match mode {
            "PASV" | "EPSV" => passive(&mut ctl, mode).await,
            _ => active(&mut ctl, mode).await,
        };
        // After a failure the control connection may still be waiting for
        // a late reply; the next mode starts on a fresh one.
        let broken = !m.ok;
        report.modes.push(m);
        if broken && mode != "EPRT" {
            // Start over on a fresh control connection for the next mode.
            match start(addr, target, tls, timeout).await {
                Ok(c) => ctl = c,
                Err(e) => {
                    report.fatal = Some(e);
                    return report;
                }
            }
        }
    }
    let _ = ctl.cmd("QUIT").await;
    report
}

async fn start(
    addr: SocketAddr,
    t: &Target,
    tls: bool,
    timeout: Duration,
) -> Result<Control, String> {
    let mut c = Control::connect(addr, timeout).await.map_err(|e| {
        format!("cannot open the control connection to {addr}: {e} (is the server running, and is its control port open in the firewall?)")
    })?;
    let hello = c.reply().await.map_err(|e| format!("no greeting: {e}"))?;
    if hello.code != 220 {
        return Err(format!("the server refused the connection: {hello}"));
    }
    if tls {
        c = c
            .start_tls(&t.host)
            .await
            .map_err(|e| format!("FTPS: {e}"))?;
    }
    let r = c
        .cmd(&format!("USER {}", t.user))
        .await
        .map_err(|e| e.to_string())?;
    let r = match r.code {
        230 => r,
        331 => {
            let pw = t
                .password
                .clone()
                .unwrap_or_else(|| "doctor@portcullis".into());
            c.cmd(&format!("PASS {pw}"))
                .await
                .map_err(|e| e.to_string())?
        }
        _ => r,
    };
    if r.code != 230 {
        return Err(format!("login as {} failed: {r}", t.user));
    }
    let _ = c.cmd("TYPE I").await;
    Ok(c)
}

#[cfg(test)]
mod tests;
