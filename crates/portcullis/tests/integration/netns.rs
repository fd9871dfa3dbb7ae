//! Real firewalls and NAT: network namespaces joined by veth pairs, nftables
//! rules inside them, the server in one namespace and `portcullis doctor` in
//! another. Needs root, `ip` and `nft`; elsewhere the tests say so and pass,
//! except under CI (CI=true), where they must run. Addresses come from
//! 198.51.100.0/24 and 203.0.113.0/24 only; every namespace is deleted when
//! its test ends, pass or fail.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{password_hash, BIN, PASSWORD};

fn available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    let tools = ["ip", "nft"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if !(root && tools) {
        assert!(
            std::env::var("CI").is_err(),
            "netns tests need root, ip and nft (CI installs iproute2 and nftables and runs as root)"
        );
        crate::harness::skip("root, ip and nft (network namespaces)");
    }
    root && tools
}

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces made for one test; deleted on drop.
struct Lab {
    names: Vec<String>,
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    servers: Vec<Child>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        Lab {
            names: Vec::new(),
            _dir: dir,
            dir: path,
            servers: Vec::new(),
        }
    }

    /// A namespace with loopback up; returns its name.
    fn ns(&mut self, role: &str) -> String {
        let n = format!(
            "pc{}-{}-{role}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {n} && ip -n {n} link set lo up"));
        self.names.push(n.clone());
        n
    }

    /// A veth pair between two namespaces with an address on each end.
    fn link(&mut self, a: &str, a_addr: &str, b: &str, b_addr: &str) {
        let i = SEQ.fetch_add(1, Ordering::Relaxed);
        let (va, vb) = (format!("pcv{i}a"), format!("pcv{i}b"));
        sh(&format!(
            "ip link add {va} netns {a} type veth peer name {vb} netns {b} && \
             ip -n {a} addr add {a_addr} dev {va} && ip -n {a} link set {va} up && \
             ip -n {b} addr add {b_addr} dev {vb} && ip -n {b} link set {vb} up"
        ));
    }

    fn nft(&self, ns: &str, ruleset: &str) {
        let mut c = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), ruleset.as_bytes()).unwrap();
        drop(c.stdin.take());
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Write a config and start the server inside `ns`; `extra` goes into
    /// its `[passive]` section.
    fn server(&mut self, ns: &str, listen: &str, extra: &str) -> std::path::PathBuf {
        self.server_with(ns, listen, extra, "")
    }

    /// [`Lab::server`] with lines for the `[passive]` and `[active]` sections.
    fn server_with(
        &mut self,
        ns: &str,
        listen: &str,
        passive: &str,
        active: &str,
    ) -> std::path::PathBuf {
        let root = self.dir.join("alice");
        let _ = std::fs::create_dir(&root);
        std::fs::write(root.join("hello.txt"), b"hello").unwrap();
        let cfg = self.dir.join(format!("{ns}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[server]\nlisten = [\"{listen}\"]\nallow_root = true\n\
                 [passive]\nports = \"40000-40099\"\n{passive}\n\
                 [active]\nconnect_timeout = \"2s\"\n{active}\n\
                 [[users]]\nname = \"alice\"\npassword_hash = \"{}\"\nroot = \"{}\"\n",
                password_hash(),
                root.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        for _ in 0..20 {
            let mut l = String::new();
            if out.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            banner.push_str(&l);
            if l.starts_with("passive mode") {
                break;
            }
        }
        assert!(
            banner.contains("listening on"),
            "server did not start: {banner}"
        );
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        self.servers.push(child);
        cfg
    }

    /// Stop the servers started so far.
    fn stop_servers(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.servers.clear();
    }

    /// Run `portcullis doctor --json` in `ns`; returns (exit code, report).
    fn doctor(&self, ns: &str, url: &str) -> (i32, serde_json::Value) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                BIN,
                "doctor",
                "--json",
                "--timeout",
                "2",
                url,
            ])
            .env("PORTCULLIS_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_servers();
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn mode<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// What the doctor must find of one mode.
#[derive(Clone, Copy)]
enum Expect {
    Works,
    /// It fails, for this `cause_id`.
    Fails(&'static str),
}
use Expect::{Fails, Works};

impl Lab {
    /// Run the doctor from `ns` and check what it says of PASV, EPSV, PORT
    /// and EPRT (in that order) and its exit code; the report, for more.
    fn expect_modes(&self, ns: &str, expect: [Expect; 4], code: i32) -> serde_json::Value {
        let (got, report) = self.doctor(ns, &url());
        for (name, e) in ["PASV", "EPSV", "PORT", "EPRT"].into_iter().zip(expect) {
            let m = mode(&report, name);
            match e {
                Works => assert_eq!(m["ok"], true, "{name}: {m}"),
                Fails(cause) => {
                    assert_eq!(m["ok"], false, "{name}: {m}");
                    assert_eq!(m["cause_id"], cause, "{name}: {m}");
                }
            }
        }
        assert_eq!(got, code, "{report}");
        report
    }
}

fn url() -> String {
    "ftp://alice@198.51.100.1:2121".to_owned()
}

/// Two namespaces on one link: server 198.51.100.1, client 198.51.100.2.
fn pair(lab: &mut Lab) -> (String, String) {
    let srv = lab.ns("srv");
    let cli = lab.ns("cli");
    lab.link(&srv, "198.51.100.1/24", &cli, "198.51.100.2/24");
    (srv, cli)
}

/// Which end of [`routed`] sits behind the router.
enum Behind {
    Server,
    Client,
}

/// Three namespaces (server, router, client) in a row. The end that is
/// `behind` has 203.0.113.2 on a private link to the router (203.0.113.1,
/// its default route); the router and the other end share 198.51.100.0/24,
/// where 198.51.100.1 is the address the client dials (the router's when
/// the server is behind it). The router forwards; its nftables rules are
/// the test's. Returns (server, router, client).
fn routed(lab: &mut Lab, behind: Behind) -> (String, String, String) {
    let srv = lab.ns("srv");
    let rtr = lab.ns("rtr");
    let cli = lab.ns("cli");
    let (private, public) = match behind {
        Behind::Server => (&srv, &cli),
        Behind::Client => (&cli, &srv),
    };
    let (rtr_pub, other) = match behind {
        Behind::Server => ("198.51.100.1/24", "198.51.100.2/24"),
        Behind::Client => ("198.51.100.2/24", "198.51.100.1/24"),
    };
    lab.link(public, other, &rtr, rtr_pub);
    lab.link(&rtr, "203.0.113.1/24", private, "203.0.113.2/24");
    sh(&format!(
        "ip -n {private} route add default via 203.0.113.1"
    ));
    sh(&format!(
        "ip netns exec {rtr} sysctl -qw net.ipv4.ip_forward=1"
    ));
    (srv, rtr, cli)
}

#[test]
fn firewall_blocking_the_passive_range() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let (srv, cli) = pair(&mut lab);
    lab.server(&srv, "198.51.100.1:2121", "");
    lab.nft(
        &srv,
        "table inet t {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 40000-40099 drop\n }\n}\n",
    );
    lab.expect_modes(
        &cli,
        [
            Fails("passive_filtered"),
            Fails("passive_filtered"),
            Works,
            Works,
        ],
        3,
    );
}

#[test]
fn client_firewall_blocking_active_mode() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let (srv, cli) = pair(&mut lab);
    lab.server(&srv, "198.51.100.1:2121", "");
    lab.nft(
        &cli,
        "table inet t {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ct state established,related accept\n  tcp flags syn drop\n }\n}\n",
    );
    lab.expect_modes(
        &cli,
        [
            Works,
            Works,
            Fails("active_blocked"),
            Fails("active_blocked"),
        ],
        12,
    );
}

/// client 198.51.100.2 -- router (198.51.100.1 | 203.0.113.1) -- server
/// 203.0.113.2. The router forwards the control port and the passive range
/// to the server (DNAT) and masquerades the server's outgoing connections;
/// nothing else reaches the private side.
#[test]
fn server_behind_nat() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let (srv, rtr, cli) = routed(&mut lab, Behind::Server);
    lab.nft(
        &rtr,
        "table ip nat {\n chain pre {\n  type nat hook prerouting priority -100;\n  ip daddr 198.51.100.1 tcp dport { 2121, 40000-40099 } dnat to 203.0.113.2\n }\n chain post {\n  type nat hook postrouting priority 100;\n  ip saddr 203.0.113.0/24 ip daddr 198.51.100.0/24 masquerade\n }\n}\ntable inet f {\n chain forwarding {\n  type filter hook forward priority 0; policy drop;\n  ct state established,related accept\n  ct status dnat accept\n  ip saddr 203.0.113.0/24 accept\n }\n}\n",
    );
    lab.server(&srv, "203.0.113.2:2121", "");
    let r = lab.expect_modes(&cli, [Fails("nat_address"), Works, Works, Works], 1);
    let cause = mode(&r, "PASV")["cause"].as_str().unwrap().to_owned();
    assert!(cause.contains("passive.address"), "{cause}");
    // With the public address configured, PASV works too.
    lab.stop_servers();
    lab.server(&srv, "203.0.113.2:2121", "address = \"198.51.100.1\"");
    let (code, r) = lab.doctor(&cli, &url());
    assert_eq!(code, 0, "{r}");
}

/// server 192.168.77.1 and client 192.168.77.2 on one LAN; the server's
/// passive.address is its public address 198.51.100.1, which does not lead
/// back in from the LAN (no hairpin NAT; here, no route at all). The doctor
/// sees a client inside the network and advises a per-network answer
/// rather than a new passive.address, which would break outside clients;
/// with that answer, every mode works.
#[test]
fn client_inside_the_lan_of_a_server_with_a_public_passive_address() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let srv = lab.ns("srv");
    let cli = lab.ns("cli");
    lab.link(&srv, "192.168.77.1/24", &cli, "192.168.77.2/24");
    let lan_url = "ftp://alice@192.168.77.1:2121";
    lab.server(&srv, "192.168.77.1:2121", "address = \"198.51.100.1\"");
    let (code, r) = lab.doctor(&cli, lan_url);
    let pasv = mode(&r, "PASV");
    assert_eq!(pasv["cause_id"], "lan_client", "{r}");
    let cause = pasv["cause"].as_str().unwrap();
    assert!(cause.contains("Keep passive.address"), "{cause}");
    assert!(
        cause.contains("network = \"192.168.0.0/16\" and address = \"local\""),
        "{cause}"
    );
    assert_eq!(mode(&r, "EPSV")["ok"], true, "{r}");
    assert_eq!(code, 1, "{r}");
    // The advice taken: PASV works from the LAN too.
    lab.stop_servers();
    lab.server(
        &srv,
        "192.168.77.1:2121",
        "address = \"198.51.100.1\"\n[[passive.address_by_network]]\n\
         network = \"192.168.0.0/16\"\naddress = \"local\"",
    );
    let (code, r) = lab.doctor(&cli, lan_url);
    assert_eq!(code, 0, "{r}");
}

/// A hardened distribution's `inet filter` table: everything dropped but
/// loopback.
const DROP_ALL: &str = "table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n  iif lo accept\n }\n chain output {\n  type filter hook output priority 0; policy drop;\n  oif lo accept\n }\n}\n";

/// What `portcullis firewall --format FORMAT` prints for a config file.
fn firewall(cfg: &std::path::Path, format: &str) -> String {
    let out = Command::new(BIN)
        .args(["firewall", "--format", format, "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A host whose firewall drops everything, plus exactly the rules that
/// `portcullis firewall --format nftables` prints for the configuration.
#[test]
fn generated_rules_open_what_the_config_needs() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let (srv, cli) = pair(&mut lab);
    for (extra, expect_passive, expect_active) in
        [("", true, true), ("enabled = false", false, true)]
    {
        lab.nft(&srv, "flush ruleset\n");
        lab.nft(&srv, DROP_ALL);
        let cfg = lab.server(&srv, "198.51.100.1:2121", extra);
        let script = firewall(&cfg, "nftables");
        let out = Command::new("ip")
            .args(["netns", "exec", &srv, "sh", "-e", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, r) = lab.doctor(&cli, &url());
        assert_eq!(mode(&r, "EPSV")["ok"], expect_passive, "{extra}: {r}");
        assert_eq!(mode(&r, "PASV")["ok"], expect_passive, "{extra}: {r}");
        assert_eq!(mode(&r, "PORT")["ok"], expect_active, "{extra}: {r}");
        assert_eq!(mode(&r, "EPRT")["ok"], expect_active, "{extra}: {r}");
        lab.stop_servers();
    }
}

/// Download hello.txt from the server of [`pair`] with curl inside `ns`, in
/// passive (EPSV) or active (EPRT from the control connection's address)
/// mode: its contents, or curl's error. Bounded by curl's timeouts.
fn curl_hello(ns: &str, active: bool) -> Result<String, String> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "curl", "-sS", "--fail"])
        .args(["--connect-timeout", "2", "--max-time", "10"])
        .args(["--user", &format!("alice:{PASSWORD}")]);
    if active {
        c.args(["--ftp-port", "-"]);
    }
    let out = c.arg("ftp://198.51.100.1:2121/hello.txt").output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A hardened distribution's `inet filter` table (policy drop, a final drop
/// rule) and the file `portcullis firewall --format nftables-file` prints,
/// loaded with `nft -f`: passive and active transfers (active from port 20)
/// fail before, work after it, after loading it a second time, and passive
/// stops working when the rules are flushed as the file's comments say.
#[test]
fn nftables_file_opens_a_hardened_filter_table() {
    if !available() || !crate::tools::have("curl") {
        return;
    }
    let mut lab = Lab::new();
    let (srv, cli) = pair(&mut lab);
    lab.nft(&srv, DROP_ALL);
    lab.nft(&srv, "add rule inet filter input counter drop\n");
    let cfg = lab.server_with(&srv, "198.51.100.1:2121", "", "source_port = 20");
    for active in [false, true] {
        assert!(
            curl_hello(&cli, active).is_err(),
            "active={active}: open before the file"
        );
    }
    let file = lab.dir.join("portcullis.nft");
    std::fs::write(&file, firewall(&cfg, "nftables-file")).unwrap();
    let load = format!("ip netns exec {srv} nft -f {}", file.display());
    for _ in 0..2 {
        sh(&load);
        for active in [false, true] {
            assert_eq!(
                curl_hello(&cli, active).as_deref(),
                Ok("hello"),
                "active={active}"
            );
        }
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &srv, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    let ruleset = String::from_utf8_lossy(&out.stdout);
    assert_eq!(ruleset.matches("policy drop").count(), 2, "{ruleset}");
    assert!(
        ruleset.contains("tcp sport 20 tcp dport 1024-65535"),
        "{ruleset}"
    );
    sh(&format!(
        "ip netns exec {srv} nft flush chain inet filter portcullis_input"
    ));
    assert!(
        curl_hello(&cli, false).is_err(),
        "passive open after the flush"
    );
}

/// client 203.0.113.2 -- router (203.0.113.1 | 198.51.100.2, masquerade)
/// -- server 198.51.100.1. Passive works; PORT/EPRT announce the client's
/// own address, which the server does not see and refuses.
#[test]
fn client_behind_nat() {
    if !available() {
        return;
    }
    let mut lab = Lab::new();
    let (srv, rtr, cli) = routed(&mut lab, Behind::Client);
    lab.nft(
        &rtr,
        "table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n  ip saddr 203.0.113.0/24 ip daddr 198.51.100.0/24 masquerade\n }\n}\n",
    );
    lab.server(&srv, "198.51.100.1:2121", "");
    let r = lab.expect_modes(
        &cli,
        [
            Works,
            Works,
            Fails("active_address"),
            Fails("active_address"),
        ],
        12,
    );
    let cause = mode(&r, "PORT")["cause"].as_str().unwrap().to_owned();
    assert!(
        cause.contains("behind NAT") && cause.contains("passive"),
        "{cause}"
    );
}
