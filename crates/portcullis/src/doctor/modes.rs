//! The four checks of `portcullis doctor`: a listing over PASV, EPSV, PORT
//! and EPRT, each with the cause of a failure in plain words.

use super::*;

/// PASV or EPSV: connect where the server says and list.
pub(super) async fn passive(ctl: &mut Control, mode: &'static str) -> ModeReport {
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
                    if let Some(cause) = lan_client_advice(advertised.ip(), host_ip) {
                        return fail(
                            mode,
                            format!("{r}; {advertised} unreachable ({e}), {direct} reachable"),
                            "lan_client",
                            cause,
                        );
                    }
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
                ("passive_filtered", format!("connecting to the passive port {} timed out: a firewall in front of the server drops it; open the server's passive ports, its range or its single port (`portcullis firewall` prints the rules)", advertised.port()))
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

/// The server was reached at a private address but advertises a public
/// one: this client is inside the server's network, and the public
/// address (right for outside clients) does not lead back in (no hairpin
/// NAT). Changing `passive.address` would break every outside client; a
/// per-network answer gives the local address to this network only.
pub(super) fn lan_client_advice(advertised: IpAddr, reached: IpAddr) -> Option<String> {
    let IpAddr::V4(lan) = reached.to_canonical() else {
        return None;
    };
    if !is_private(reached) || is_private(advertised) {
        return None;
    }
    let [a, b, ..] = lan.octets();
    let network = match (a, b) {
        (10, _) => "10.0.0.0/8",
        (172, _) => "172.16.0.0/12",
        (192, 168) => "192.168.0.0/16",
        (100, _) => "100.64.0.0/10",
        (127, _) => "127.0.0.0/8",
        _ => "169.254.0.0/16",
    };
    Some(format!(
        "the server advertises its public address {advertised} in its PASV reply, which is right for \
         clients outside, but this client reached it at {reached} from inside its network, where \
         {advertised} does not lead back (no hairpin NAT). Keep passive.address; give this network \
         the server's local address instead (portcullis: [[passive.address_by_network]] with \
         network = \"{network}\" and address = \"local\"; EPSV avoids the problem)"
    ))
}

/// PORT or EPRT: listen here and let the server connect.
pub(super) async fn active(ctl: &mut Control, mode: &'static str) -> ModeReport {
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
pub(super) async fn list_over(
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
pub(super) async fn abort_pending(ctl: &mut Control) -> std::io::Result<()> {
    let r = ctl.cmd("ABOR").await?;
    if r.code == 426 {
        ctl.reply().await?;
    }
    Ok(())
}

pub(super) async fn connect(addr: SocketAddr, t: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(t, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

pub(super) fn parse_227(text: &str) -> Option<SocketAddr> {
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

pub(super) fn parse_229(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..text.rfind(')')?];
    let d = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(d).collect();
    parts.get(3)?.parse().ok()
}
