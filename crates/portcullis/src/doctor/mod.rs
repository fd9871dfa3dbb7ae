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

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
}

/// Parse `ftp://[user[:password]@]host[:port][/]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ftp://")
        .ok_or_else(|| format!("{url:?}: expected ftp://[user[:password]@]host[:port]"))?;
    let rest = rest.split('/').next().unwrap_or("");
    let (cred, hostport) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let (user, password) = match cred {
        None => ("anonymous".to_owned(), None),
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
            None => (percent_decode(c)?, None),
        },
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or("unclosed [ in the host")?;
        (h.to_owned(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let port = match port {
        None | Some("") => 21,
        Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
    };
    Ok(Target {
        host,
        port,
        user,
        password,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad %-escape in the URL")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in the URL")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's user or password is not UTF-8".to_owned())
}

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

/// PASV or EPSV: connect where the server says and list.
async fn passive(ctl: &mut Control, mode: &'static str) -> ModeReport {
    let started = Instant::now();
    let r = match ctl.cmd(mode).await {
        Ok(r) => r,
        Err(e) => return control_lost(mode, &e),
    };
    let host_ip = ctl.peer.ip();
    let advertised: SocketAddr = match (mode, r.code) {
        ("PASV", 227) => match parse_227(&r.text) {
            Some(a) => a,
            None => return fail(mode, r.to_string(), "bad_reply", "the server's PASV reply could not be parsed".into()),
        },
        ("EPSV", 229) => match parse_229(&r.text) {
            Some(p) => SocketAddr::new(host_ip, p),
            None => return fail(mode, r.to_string(), "bad_reply", "the server's EPSV reply could not be parsed".into()),
        },
        _ => {
            return fail(mode, r.to_string(), "refused", format!("the server refuses {mode}: {r} (passive mode may be switched off, or PASV is not possible on an IPv6 connection)"))
        }
    };
    let t = ctl.timeout;
    let first = connect(advertised, t).await;
    let (tcp, via) = match first {
        Ok(s) => (s, advertised),
        Err(e) => {
            let kind = e.kind();
            // PASV named another address than the one we reached: NAT?
            if advertised.ip() != host_ip {
                let direct = SocketAddr::new(host_ip, advertised.port());
                if let Ok(s) = connect(direct, t).await {
                    drop(s);
                    let _ = abort_pending(ctl).await;
                    return fail(
                        mode,
                        format!("{r}; {advertised} unreachable ({e}), {direct} reachable"),
                        "nat_address",
                        format!(
                            "the server advertises {} in its PASV reply, but it is reached at {}: it is behind NAT without its public address configured (portcullis: set passive.address = \"{}\"; EPSV avoids the problem)",
                            advertised.ip(),
                            host_ip,
                            host_ip
                        ),
                    );
                }
                if is_private(advertised.ip()) && !is_private(host_ip) {
                    return fail(mode, format!("{r}; connecting to {advertised}: {e}"), "nat_address", format!("the server advertises the private address {}, not the address you reached it at ({host_ip}): it is behind NAT without its public address configured (portcullis: passive.address)", advertised.ip()));
                }
            }
            let (id, cause) = if kind == std::io::ErrorKind::TimedOut {
                ("passive_filtered", format!("connecting to the passive port {} timed out: a firewall in front of the server drops it; open the server's passive port range (`portcullis firewall` prints the rules)", advertised.port()))
            } else if kind == std::io::ErrorKind::ConnectionRefused {
                ("passive_refused", format!("the connection to the passive port {} was refused: a firewall rejects it, or a NAT/port forward does not lead to the server's passive ports", advertised.port()))
            } else {
                (
                    "passive_unreachable",
                    format!("cannot reach {advertised}: {e}"),
                )
            };
            let _ = abort_pending(ctl).await;
            return fail(
                mode,
                format!("{r}; connecting to {advertised}: {e}"),
                id,
                cause,
            );
        }
    };
    list_over(ctl, mode, tcp, started, format!("{r}; data via {via}")).await
}

/// PORT or EPRT: listen here and let the server connect.
async fn active(ctl: &mut Control, mode: &'static str) -> ModeReport {
    let started = Instant::now();
    let local_ip = ctl.local.ip();
    let listener = match TcpListener::bind(SocketAddr::new(local_ip, 0)).await {
        Ok(l) => l,
        Err(e) => {
            return fail(
                mode,
                e.to_string(),
                "local",
                format!("cannot listen on {local_ip} here: {e}"),
            )
        }
    };
    let here = listener.local_addr().expect("bound");
    let arg = match (mode, here) {
        ("PORT", SocketAddr::V4(a)) => {
            let [a1, a2, a3, a4] = a.ip().octets();
            format!(
                "PORT {a1},{a2},{a3},{a4},{},{}",
                a.port() >> 8,
                a.port() & 0xff
            )
        }
        ("PORT", SocketAddr::V6(_)) => {
            return fail(
                mode,
                "IPv6 control connection".into(),
                "refused",
                "PORT cannot carry an IPv6 address; EPRT can".into(),
            )
        }
        (_, a) => format!(
            "EPRT |{}|{}|{}|",
            if a.is_ipv4() { 1 } else { 2 },
            a.ip(),
            a.port()
        ),
    };
    let r = match ctl.cmd(&arg).await {
        Ok(r) => r,
        Err(e) => return control_lost(mode, &e),
    };
    if r.code != 200 {
        // 502/504: the command or mode is off. Other refusals of a
        // well-formed PORT/EPRT mostly mean the server does not accept the
        // address it names: the one this client has, not the one the
        // server sees when a NAT sits in between (bounce protection).
        if r.code == 502 || r.code == 504 || r.code == 522 {
            return fail(mode, r.to_string(), "refused", format!("the server refuses {mode}: {r} (active mode is switched off there, or not for this address family)"));
        }
        return fail(
            mode,
            r.to_string(),
            "active_address",
            format!(
                "the server refuses the address {here} that {mode} announced: {r}. If this client is behind NAT, the server sees another address and refuses to connect to this one (bounce protection); use passive mode"
            ),
        );
    }
    if let Err(e) = ctl.send("NLST").await {
        return control_lost(mode, &e);
    }
    let t = ctl.timeout;
    // The server connects as soon as it has the command; its 150 (or 425)
    // may come before or after.
    let accepted = tokio::time::timeout(t * 2, listener.accept()).await;
    match accepted {
        Ok(Ok((tcp, from))) => {
            list_over(
                ctl,
                mode,
                tcp,
                started,
                format!("{r}; server connected from {from} to {here}"),
            )
            .await
        }
        _ => {
            let why = match ctl.reply().await {
                Ok(r1) if r1.code == 150 || r1.code == 125 => match ctl.reply().await {
                    Ok(r2) => format!("{r1}, then {r2}"),
                    Err(e) => format!("{r1}, then {e}"),
                },
                Ok(r1) => r1.to_string(),
                Err(e) => e.to_string(),
            };
            fail(
                mode,
                format!("listening on {here}: no connection from the server ({why})"),
                "active_blocked",
                format!("the server could not connect back to this client at {here}: a firewall or NAT in front of this client blocks incoming connections (use passive mode), or the server's own firewall blocks its outgoing connections"),
            )
        }
    }
}

/// NLST over an open data connection; expect 150 then 226.
async fn list_over(
    ctl: &mut Control,
    mode: &'static str,
    tcp: TcpStream,
    started: Instant,
    what: String,
) -> ModeReport {
    let active = mode == "PORT" || mode == "EPRT";
    if !active {
        if let Err(e) = ctl.send("NLST").await {
            return control_lost(mode, &e);
        }
    }
    let mut data = match ctl.data(tcp).await {
        Ok(d) => d,
        Err(e) => {
            let _ = ctl.reply().await;
            let _ = ctl.reply().await;
            return fail(
                mode,
                format!("{what}; {e}"),
                "data_tls",
                format!("the data connection opened but its TLS handshake failed: {e}"),
            );
        }
    };
    let t = ctl.timeout;
    let r1 = ctl.reply().await;
    let got = drain(&mut data, t, 64 << 20).await;
    close(&mut data).await;
    let r2 = ctl.reply().await;
    match (r1, got, r2) {
        (Ok(a), Ok(n), Ok(b)) if (a.code == 150 || a.code == 125) && b.code == 226 => ModeReport {
            mode,
            ok: true,
            detail: format!(
                "{what}; listing of {n} bytes in {} ms",
                started.elapsed().as_millis()
            ),
            cause: None,
            cause_id: None,
        },
        (a, n, b) => fail(
            mode,
            format!(
                "{what}; replies {:?} / {:?}, data {:?}",
                a.map(|r| r.to_string()),
                b.map(|r| r.to_string()),
                n.map_err(|e| e.to_string())
            ),
            "transfer",
            "the data connection opened but the listing did not complete".into(),
        ),
    }
}

/// After a failed passive connect, the server is still waiting: ABOR, and
/// read what comes back.
async fn abort_pending(ctl: &mut Control) -> std::io::Result<()> {
    let r = ctl.cmd("ABOR").await?;
    if r.code == 426 {
        ctl.reply().await?;
    }
    Ok(())
}

async fn connect(addr: SocketAddr, t: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(t, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn parse_227(text: &str) -> Option<SocketAddr> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    if nums.len() != 6 {
        return None;
    }
    let ip = std::net::Ipv4Addr::new(nums[0], nums[1], nums[2], nums[3]);
    Some(SocketAddr::from((
        ip,
        u16::from(nums[4]) << 8 | u16::from(nums[5]),
    )))
}

fn parse_229(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..text.rfind(')')?];
    let d = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(d).collect();
    parts.get(3)?.parse().ok()
}

#[cfg(test)]
mod tests;
