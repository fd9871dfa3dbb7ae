//! `[auth.ldap]` against Debian's real `slapd`, started by the test on
//! 127.0.0.1 with a directory it builds (users, a group kept in their
//! `memberOf` by the memberof overlay, a disabled account), and stopped on
//! drop; logged in to over raw FTP.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::accounts::try_login;
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
objectClass: posixAccount
uid: lena
cn: Lena
sn: L
uidNumber: 2001
gidNumber: 2001
homeDirectory: /nonexistent/lena
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

dn: cn=uploaders,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: uploaders
uniqueMember: uid=max,ou=people,dc=example,dc=org

dn: cn=makers,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: makers
gidNumber: 5000
memberUid: max
";

/// A running slapd, killed on drop (its temporary directory with it).
pub(crate) struct Slapd {
    child: Child,
    pub url: String,
    port: u16,
    conf: PathBuf,
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
    pub(crate) fn start() -> Option<Slapd> {
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
                 include /etc/ldap/schema/nis.schema\n\
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
        let child = Self::spawn(&conf, &url, dir.path());
        let mut slapd = Slapd {
            child,
            url,
            port,
            conf,
            dir,
        };
        slapd.wait_ready();
        slapd.ldif("ldapadd", DIRECTORY);
        Some(slapd)
    }

    /// slapd in the foreground (-d), a child of the test, logging its
    /// connections and operations (the "stats" level) to slapd.log.
    fn spawn(conf: &Path, url: &str, dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("slapd.log"))
            .unwrap();
        Command::new(SLAPD)
            .arg("-f")
            .arg(conf)
            .args(["-h", url, "-d", "256"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd")
    }

    /// Bounded wait for the listener (slapd says nothing when it is ready).
    fn wait_ready(&mut self) {
        let ready = (0..200).any(|_| {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(ready, "slapd did not listen: {:?}", self.log());
    }

    /// Stop it and start it again on the same port and database.
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.conf, &self.url, self.dir.path());
        self.wait_ready();
    }

    /// Kill it for good (the drop then has nothing left to do).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Run `tool` (ldapadd, ldapmodify) as the admin with `ldif`.
    pub(crate) fn ldif(&self, tool: &str, ldif: &str) {
        let file = self.dir.path().join("change.ldif");
        std::fs::write(&file, ldif).unwrap();
        let out = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ADMIN, "-w", ADMIN_PW, "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {out:?} {:?}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Binds as the admin (the tests' service account) so far.
    pub(crate) fn service_binds(&self) -> usize {
        self.log()
            .matches(&format!("BIND dn=\"{ADMIN}\" method="))
            .count()
    }

    /// `[auth]` and `[auth.ldap]` with this directory's URL, the order
    /// `order` and the lines `ldap`; roots below `base`.
    pub(crate) fn sections(&self, order: &str, base: &Path, ldap: &str) -> &'static str {
        Box::leak(
            format!(
                "[auth]\norder = {order}\n[auth.ldap]\nurl = \"{url}\"\n\
                 root = \"{base}/{{user}}\"\n{ldap}\n",
                url = self.url,
                base = base.display(),
            )
            .into_boxed_str(),
        )
    }
}

/// search-then-bind as the admin, under ou=people.
pub(crate) const SEARCH: &str = "search_base = \"ou=people,dc=example,dc=org\"\n\
     search_filter = \"(&(objectClass=inetOrgPerson)(uid={user}))\"\n\
     service_dn = \"cn=admin,dc=example,dc=org\"\nservice_password = \"admin-secret\"\n";

/// Roots for the LDAP users under a directory of their own.
pub(crate) fn roots() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    for u in ["lena", "max", "gone"] {
        std::fs::create_dir(d.path().join(u)).unwrap();
    }
    let p = d.path().to_owned();
    (d, p)
}

/// STOR a small file; the final reply (550 when refused at once).
pub(crate) fn stor(c: &mut Raw, name: &str) -> String {
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
    let sections = slapd.sections(
        r#"["config", "ldap"]"#,
        &base,
        &format!(
            "timeout = \"2s\"\n{SEARCH}\
             disabled_filter = \"(employeeType=disabled)\"\npermissions = [\"read\"]\n\
             [auth.ldap.groups]\n\"cn=FTP-Writers,ou=groups,dc=example,dc=org\" = [\"write\"]\n"
        ),
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
    slapd.stop();
    let (r, mut c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    let log = server.log();
    assert!(log.contains("LDAP account disabled"), "{log}");
    // Each failed login's line says who refused it and why; the replies
    // were the same 530.
    for (user, backend, reason) in [
        ("lena", "ldap", "wrong password"),
        ("gone", "ldap", "account disabled"),
        ("nobody", "none", "unknown user"),
    ] {
        assert!(
            crate::audit::failed_login_says(&log, user, backend, reason),
            "{user}: no {backend} {reason:?}: {log}"
        );
    }
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
    let sections = slapd.sections(
        r#"["config", "ldap"]"#,
        &base,
        "bind_dn = \"uid={user},ou=people,dc=example,dc=org\"\n\
         group_search_base = \"ou=groups,dc=example,dc=org\"\n\
         group_filter = \"(&(objectClass=posixGroup)(memberUid={user}))\"\n\
         [auth.ldap.groups]\n\"cn=makers,ou=groups,dc=example,dc=org\" = [\"mkdir\"]\n",
    );
    let server = Server::start_with(Setup {
        sections,
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    let (r, mut max) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    assert!(max.cmd("PWD").starts_with("257 \"/\""));
    // The group search, made as the user himself: mkdir from "makers".
    let r = max.cmd("MKD made");
    assert!(r.starts_with("257 "), "{r}");
    let (r, mut lena) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert!(lena.cmd("MKD made").starts_with("550 "));
    assert!(try_login(&server, "max", "wrong").0.starts_with("530 "));
    assert!(try_login(&server, "nobody", "x").0.starts_with("530 "));
    // A name with DN syntax in it stays one RDN value.
    assert!(try_login(&server, "max,ou=people", "max-ldap-pw")
        .0
        .starts_with("530 "));
    // A direct bind cannot tell a wrong password from a name that does
    // not exist, and the log says so.
    let log = server.log();
    for user in ["max", "nobody"] {
        assert!(
            crate::audit::failed_login_says(
                &log,
                user,
                "ldap",
                "unknown user or wrong password (the back end cannot tell)"
            ),
            "{user}: {log}"
        );
    }
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
    let config = |ca: &str| {
        slapd.sections(
            r#"["ldap"]"#,
            &base,
            &format!(
                "starttls = true\n{ca}\nbind_dn = \"uid={{user}},ou=people,dc=example,dc=org\"\n"
            ),
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
