//! `[auth.ldap]` against Debian's real `slapd`, started by the test on
//! 127.0.0.1 with a directory it builds (users, a group kept in their
//! `memberOf` by the memberof overlay, a disabled account), and stopped on
//! drop; logged in to over raw FTP.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{Raw, Server, Setup, PASSWORD};
use crate::tools::installed;

const SLAPD: &str = "/usr/sbin/slapd";
const ADMIN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PW: &str = "admin-secret";

const DIRECTORY: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=lena,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: lena
cn: Lena
sn: L
userPassword: lena-ldap-pw

dn: uid=max,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: max
cn: Max
sn: M
userPassword: max-ldap-pw

dn: uid=gone,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: gone
cn: Gone
sn: G
employeeType: disabled
userPassword: gone-ldap-pw

dn: cn=ftp-writers,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ftp-writers
member: uid=lena,ou=people,dc=example,dc=org
";

/// A running slapd, killed on drop (its temporary directory with it).
struct Slapd {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    /// `None` when slapd is not installed (outside CI).
    fn start() -> Option<Slapd> {
        Self::start_with(None)
    }

    /// With `tls` (certificate and key PEM files), StartTLS is offered.
    fn start_with(tls: Option<(&Path, &Path)>) -> Option<Slapd> {
        if !installed(Path::new(SLAPD).exists(), "slapd") || !crate::tools::have("ldapadd") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 moduleload memberof\n\
                 pidfile {dir}/slapd.pid\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"dc=example,dc=org\"\n\
                 rootdn \"{ADMIN}\"\n\
                 rootpw {ADMIN_PW}\n\
                 directory {db}\n\
                 overlay memberof\n{tls}",
                dir = dir.path().display(),
                db = db.display(),
                tls = tls.map_or(String::new(), |(cert, key)| format!(
                    "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    cert.display(),
                    key.display()
                )),
            ),
        )
        .unwrap();
        // A free port: bound, learned and released just before slapd takes it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ldap://127.0.0.1:{port}/");
        let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
        // -d keeps it in the foreground, a child of the test.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &url, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        let slapd = Slapd { child, url, dir };
        // Bounded wait for the listener (slapd says nothing when it is ready).
        let ready = (0..200).any(|_| {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(ready, "slapd did not listen: {:?}", slapd.log());
        let ldif = slapd.dir.path().join("directory.ldif");
        std::fs::write(&ldif, DIRECTORY).unwrap();
        let out = Command::new("ldapadd")
            .args(["-x", "-H", &slapd.url, "-D", ADMIN, "-w", ADMIN_PW, "-f"])
            .arg(&ldif)
            .output()
            .unwrap();
        assert!(out.status.success(), "ldapadd: {out:?} {:?}", slapd.log());
        Some(slapd)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }
}

fn try_login(server: &Server, user: &str, password: &str) -> (String, Raw) {
    let mut c = Raw::connect(server.addr);
    let r = c.cmd(&format!("USER {user}"));
    assert!(r.starts_with("331 "), "{r}");
    let r = c.cmd(&format!("PASS {password}"));
    (r, c)
}

/// Roots for the LDAP users under a directory of their own.
fn roots() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    for u in ["lena", "max", "gone"] {
        std::fs::create_dir(d.path().join(u)).unwrap();
    }
    let p = d.path().to_owned();
    (d, p)
}

/// STOR a small file; the final reply (550 when refused at once).
fn stor(c: &mut Raw, name: &str) -> String {
    let mut data = c.pasv();
    let r = c.cmd(&format!("STOR {name}"));
    if !r.starts_with("150 ") {
        return r;
    }
    data.write_all(b"from ldap\n").unwrap();
    drop(data);
    c.reply()
}

#[test]
fn accounts_ldap_search_then_bind_with_groups_and_a_disabled_account() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let sections: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"config\", \"ldap\"]\n\
             [auth.ldap]\nurl = \"{url}\"\ntimeout = \"2s\"\n\
             search_base = \"ou=people,dc=example,dc=org\"\n\
             search_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\n\
             service_dn = \"{ADMIN}\"\nservice_password = \"{ADMIN_PW}\"\n\
             disabled_filter = \"(employeeType=disabled)\"\n\
             root = \"{base}/{{user}}\"\npermissions = [\"read\"]\n\
             [auth.ldap.groups]\n\"cn=FTP-Writers,ou=groups,dc=example,dc=org\" = [\"write\"]\n",
            url = slapd.url,
            base = base.display(),
        )
        .into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections,
        limits: "max_login_failures = 0",
        ..Setup::default()
    });

    // In the writers group: may upload, into her own root.
    let (r, mut lena) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    let r = stor(&mut lena, "l.txt");
    assert!(r.starts_with("226 "), "{r}");
    assert!(base.join("lena/l.txt").exists());
    // Not in it: the defaults only.
    let (r, mut max) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert!(stor(&mut max, "m.txt").starts_with("550 "));

    assert!(try_login(&server, "lena", "wrong").0.starts_with("530 "));
    assert!(try_login(&server, "gone", "gone-ldap-pw")
        .0
        .starts_with("530 "));
    assert!(try_login(&server, "nobody", "x").0.starts_with("530 "));
    // Escaped into the filter: "*" matches no uid, rather than every entry
    // (which would be "more than one entry", a 421).
    assert!(try_login(&server, "*", "x").0.starts_with("530 "));
    // config comes first: alice is not looked up.
    assert!(try_login(&server, "alice", PASSWORD).0.starts_with("230 "));

    // The directory down: 421, not 530.
    let _ = slapd.child.kill();
    let _ = slapd.child.wait();
    let (r, mut c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    let log = server.log();
    assert!(log.contains("LDAP account disabled"), "{log}");
    assert!(
        !log.contains("lena-ldap-pw"),
        "a password in the log: {log}"
    );
    assert!(
        !log.contains(ADMIN_PW),
        "the service password in the log: {log}"
    );
}

#[test]
fn accounts_ldap_direct_bind_decides_for_every_name() {
    let Some(slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let sections: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"config\", \"ldap\"]\n\
             [auth.ldap]\nurl = \"{url}\"\n\
             bind_dn = \"uid={{user}},ou=people,dc=example,dc=org\"\n\
             root = \"{base}/{{user}}\"\n",
            url = slapd.url,
            base = base.display(),
        )
        .into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections,
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    let (r, mut max) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    assert!(max.cmd("PWD").starts_with("257 \"/\""));
    assert!(try_login(&server, "max", "wrong").0.starts_with("530 "));
    assert!(try_login(&server, "nobody", "x").0.starts_with("530 "));
    // A name with DN syntax in it stays one RDN value.
    assert!(try_login(&server, "max,ou=people", "max-ldap-pw")
        .0
        .starts_with("530 "));
}

#[test]
fn accounts_ldap_starttls_checks_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let out = Command::new(crate::harness::BIN)
        .args(["gen-cert", "--host", "127.0.0.1", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let Some(slapd) = Slapd::start_with(Some((&cert, &key))) else {
        return;
    };
    let (_roots, base) = roots();
    let config = |ca: &str| -> &'static str {
        Box::leak(
            format!(
                "[auth]\norder = [\"ldap\"]\n[auth.ldap]\nurl = \"{url}\"\nstarttls = true\n{ca}\n\
                 bind_dn = \"uid={{user}},ou=people,dc=example,dc=org\"\nroot = \"{base}/{{user}}\"\n",
                url = slapd.url,
                base = base.display(),
            )
            .into_boxed_str(),
        )
    };
    let trusted = config(&format!("ca_file = \"{}\"", cert.display()));
    let server = Server::start_with(Setup {
        sections: trusted,
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "max", "max-ldap-pw");
    assert!(
        r.starts_with("230 "),
        "{r} {} {}",
        server.log(),
        slapd.log()
    );
    drop(server);
    // Only the system's authorities: the certificate is refused, 421.
    let server = Server::start_with(Setup {
        sections: config(""),
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
}
