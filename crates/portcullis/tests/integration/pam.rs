//! `[auth.pam]` against the machine's real PAM: local accounts and groups
//! made by the test (useradd, chpasswd, groupadd) and removed after, a
//! PAM service of the test's own in /etc/pam.d (the packaged
//! `packaging/pam.d/portcullis`, under a unique name) removed after, and
//! the server started as root and running as `nobody`, so that the
//! passwords are checked by the privileged helper. Needs root (CI is);
//! skipped with a note otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::harness::{Raw, Server, Setup, PASSWORD};

/// useradd and friends lock /etc/passwd: one at a time in this process.
static ACCOUNTS: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&out.stdout).trim() == "0";
    if !root {
        crate::harness::skip("root (the PAM tests make system accounts)");
    }
    root
}

/// Run a command that changes the account files; bounded retries while
/// another program holds their lock.
pub(crate) fn admin(program: &str, args: &[&str], stdin: Option<&str>) {
    let _one = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    for _ in 0..10 {
        let mut c = Command::new(program);
        c.args(args);
        let out = match stdin {
            None => c.output().unwrap(),
            Some(text) => {
                use std::io::Write;
                let mut child = c
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        };
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !err.contains("lock") {
            panic!("{program} {args:?}: {err}");
        }
        last = Some(err);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{program} {args:?}: {last:?}");
}

fn unique(what: &str) -> String {
    format!(
        "pcpam_{}_{what}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A local group, removed on drop.
pub(crate) struct Group(String);

impl Group {
    fn new() -> Group {
        let name = unique("g");
        admin("groupadd", &[&name], None);
        Group(name)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _one = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = Command::new("groupdel").arg(&self.0).status();
    }
}

/// A local account with a password, removed on drop (userdel -r).
pub(crate) struct Account {
    pub name: String,
    pub password: String,
}

impl Account {
    pub(crate) fn new(shell: &str, groups: &[&Group]) -> Account {
        let name = unique("u");
        let mut args = vec!["-M", "-s", shell];
        let list = groups
            .iter()
            .map(|g| g.0.as_str())
            .collect::<Vec<_>>()
            .join(",");
        if !list.is_empty() {
            args.extend(["-G", &list]);
        }
        args.push(&name);
        admin("useradd", &args, None);
        let account = Account {
            password: format!("pw of {name}!"),
            name,
        };
        admin(
            "chpasswd",
            &[],
            Some(&format!("{}:{}\n", account.name, account.password)),
        );
        account
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _one = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = Command::new("userdel")
            .args(["-r", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The packaged PAM service installed under a unique name, removed on drop.
pub(crate) struct Service(pub String);

impl Service {
    pub(crate) fn new() -> Service {
        Service::with("")
    }

    /// The packaged service with `extra` lines after it.
    fn with(extra: &str) -> Service {
        let name = unique("svc");
        let packaged =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/pam.d/portcullis");
        let text = std::fs::read_to_string(packaged).unwrap();
        std::fs::write(Path::new("/etc/pam.d").join(&name), text + extra).unwrap();
        Service(name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new("/etc/pam.d").join(&self.0));
    }
}

/// `auth.order` config then pam, `[auth.pam]` with `service` and roots
/// in `base`, and nothing else.
fn plain_pam(service: &Service, base: &Path) -> &'static str {
    leak(format!(
        "[auth]\norder = [\"config\", \"pam\"]\n\
         [auth.pam]\nservice = \"{}\"\nroot = \"{}/{{user}}\"\n",
        service.0,
        base.display(),
    ))
}

/// A directory for the PAM accounts' roots, which the server (as nobody)
/// can reach and write in: roots are created there at the first login.
pub(crate) fn roots() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("ftp");
    std::fs::create_dir(&base).unwrap();
    let ok = Command::new("chmod")
        .args(["755"])
        .arg(d.path())
        .status()
        .unwrap()
        .success()
        && Command::new("chown")
            .arg("nobody")
            .arg(&base)
            .status()
            .unwrap()
            .success();
    assert!(ok);
    (d, base)
}

pub(crate) fn try_login(server: &Server, user: &str, password: &str) -> String {
    let mut c = Raw::connect(server.addr);
    let r = c.cmd(&format!("USER {user}"));
    assert!(r.starts_with("331 "), "{r}");
    c.cmd(&format!("PASS {password}"))
}

/// The helper's pid, from its "PAM helper started" log line.
fn helper_pid(log: &str) -> u32 {
    log.lines()
        .find(|l| l.contains("PAM helper started"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no helper pid in the log: {log}"))
}

pub(crate) fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn pam_accounts_log_in_with_their_root_and_groups_and_are_refused_as_configured() {
    if !is_root() || !crate::tools::have("curl") {
        return;
    }
    let writers = Group::new();
    let denied = Group::new();
    let writer = Account::new("/bin/bash", &[&writers]);
    let reader = Account::new("/bin/sh", &[]);
    let locked = Account::new("/bin/bash", &[]);
    let expired = Account::new("/bin/bash", &[]);
    let listed = Account::new("/bin/bash", &[]);
    let in_denied = Account::new("/bin/bash", &[&denied]);
    let no_shell = Account::new("/usr/sbin/nologin", &[]);
    admin("usermod", &["-L", &locked.name], None);
    admin("chage", &["-E", "0", &expired.name], None);
    let service = Service::new();
    let (_dir, base) = roots();
    let ftpusers = base.parent().unwrap().join("ftpusers");
    std::fs::write(&ftpusers, format!("# refused\nroot\n{}\n", listed.name)).unwrap();
    let sections = leak(format!(
        "[auth]\norder = [\"config\", \"pam\"]\n\
         [auth.pam]\nservice = \"{service}\"\nroot = \"{base}/{{user}}\"\n\
         permissions = [\"read\"]\nftpusers = \"{ftpusers}\"\n\
         deny_groups = [\"{denied}\"]\n\
         [auth.pam.groups]\n\"{writers}\" = [\"write\", \"mkdir\"]\n",
        service = service.0,
        base = base.display(),
        ftpusers = ftpusers.display(),
        denied = denied.0,
        writers = writers.0,
    ));
    let server = Server::start_with(Setup {
        sections,
        run_as: Some("nobody"),
        limits: "max_login_failures = 0",
        watch_log: true,
        ..Setup::default()
    });
    server.wait_for_log("PAM helper started", 0, Duration::from_secs(30));

    // A real client: the writers' group may upload, into the root made
    // for the account at its first login, owned by the server's user.
    let url = format!(
        "ftp://{}:{}@{}/",
        writer.name,
        writer.password.replace(' ', "%20").replace('!', "%21"),
        server.addr
    );
    let src = base.parent().unwrap().join("upload.txt");
    std::fs::write(&src, b"through PAM\n").unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-T"])
        .arg(&src)
        .arg(format!("{url}up.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {out:?} {}", server.log());
    let root = base.join(&writer.name);
    assert_eq!(
        std::fs::read(root.join("up.txt")).unwrap(),
        b"through PAM\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), 65534);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-l", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "up.txt");

    // No such group: the defaults (read) only, in a root of its own.
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd(&format!("USER {}", reader.name)).starts_with("331 "));
    let r = c.cmd(&format!("PASS {}", reader.password));
    assert!(r.starts_with("230 "), "{r}");
    assert!(c.cmd("PWD").starts_with("257 \"/\""));
    assert!(c.cmd("MKD nope").starts_with("550 "));
    assert!(base.join(&reader.name).is_dir());

    // Refused: a wrong password, a locked and an expired account (the
    // right passwords), a name in the ftpusers file, a group denied, a
    // shell not in /etc/shells, root, and names the system does not know.
    let refused = [
        (&writer.name, "wrong"),
        (&locked.name, locked.password.as_str()),
        (&expired.name, expired.password.as_str()),
        (&listed.name, listed.password.as_str()),
        (&in_denied.name, in_denied.password.as_str()),
        (&no_shell.name, no_shell.password.as_str()),
    ];
    let refused = refused
        .iter()
        .map(|(u, p)| (u.as_str(), *p))
        .chain([("root", "x"), ("pcpam_nobody_here", "x")]);
    // At once: each waits out PAM's delay after a failure.
    std::thread::scope(|s| {
        let server = &server;
        let tries: Vec<_> = refused
            .map(|(user, password)| s.spawn(move || (user, try_login(server, user, password))))
            .collect();
        for t in tries {
            let (user, r) = t.join().unwrap();
            assert!(r.starts_with("530 "), "{user}: {r} {}", server.log());
        }
    });
    // config first: alice is still the config file's.
    assert!(try_login(&server, "alice", PASSWORD).starts_with("230 "));

    let log = server.log();
    for (user, why) in [
        (&expired.name, "pam_acct_mgmt"),
        (&listed.name, "listed in"),
        (&in_denied.name, "deny_groups"),
        (&no_shell.name, "/etc/shells"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("PAM account refused")
                && l.contains(user.as_str())
                && l.contains(why)),
            "no refusal of {user} for {why}: {log}"
        );
    }
    assert!(log.contains("below auth.pam.min_uid"), "{log}");
    assert!(
        !log.contains(&writer.password) && !log.contains(&locked.password),
        "a password in the log: {log}"
    );
}

#[test]
fn pam_wrong_passwords_count_toward_a_ban_and_a_dead_helper_answers_421() {
    if !is_root() {
        return;
    }
    let account = Account::new("/bin/bash", &[]);
    let service = Service::new();
    let (_dir, base) = roots();
    let sections = plain_pam(&service, &base);
    let server = Server::start_with(Setup {
        sections,
        run_as: Some("nobody"),
        limits: "max_login_failures = 2\nban_time = \"60s\"",
        watch_log: true,
        ..Setup::default()
    });
    let log = server.wait_for_log("PAM helper started", 0, Duration::from_secs(30));
    let pid = helper_pid(&log);

    assert!(try_login(&server, &account.name, &account.password).starts_with("230 "));
    // One wrong password: 530, the first failure of two.
    assert!(try_login(&server, &account.name, "wrong").starts_with("530 "));
    // The system has the account: the log says the password was wrong
    // (its line may follow the reply: waited for).
    let log = server.wait_for_log("wrong password", 0, Duration::from_secs(10));
    assert!(
        crate::audit::failed_login_says(&log, &account.name, "pam", "wrong password"),
        "{log}"
    );

    // The helper killed: PAM logins answer 421, however many, and none
    // counts toward the ban.
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    server.wait_for_log("the PAM helper has exited", 0, Duration::from_secs(30));
    for _ in 0..3 {
        let mut c = Raw::connect(server.addr);
        assert!(c.cmd(&format!("USER {}", account.name)).starts_with("331 "));
        let r = c.cmd(&format!("PASS {}", account.password));
        assert!(r.starts_with("421 "), "{r}");
        assert!(c.closed());
    }
    // A config user's wrong password is the second failure: the PAM one
    // counted, the 421s did not.
    let r = try_login(&server, "alice", "wrong");
    assert!(r.starts_with("421 ") && r.contains("banned"), "{r}");
}

/// PAM modules see where the login comes from (PAM_RHOST, the client's
/// address) and "ftp" as its terminal (PAM_TTY), as vsftpd sets them, so
/// that pam_access and pam_time rules can name them: pam_exec writes both
/// down.
#[test]
fn pam_modules_see_the_clients_address_and_ftp_as_the_tty() {
    if !is_root() {
        return;
    }
    let account = Account::new("/bin/bash", &[]);
    let seen = tempfile::tempdir().unwrap();
    let file = seen.path().join("items");
    let service = Service::with(&format!(
        "account optional pam_exec.so quiet log={} /usr/bin/printenv PAM_RHOST PAM_TTY\n",
        file.display()
    ));
    let (_dir, base) = roots();
    let sections = plain_pam(&service, &base);
    let server = Server::start_with(Setup {
        sections,
        run_as: Some("nobody"),
        watch_log: true,
        ..Setup::default()
    });
    server.wait_for_log("PAM helper started", 0, Duration::from_secs(30));
    assert!(try_login(&server, &account.name, &account.password).starts_with("230 "));
    let items = std::fs::read_to_string(&file).unwrap();
    assert!(
        items.lines().any(|l| l == "127.0.0.1") && items.lines().any(|l| l == "ftp"),
        "{items:?}"
    );
}

/// The helper is started with the server only (root is gone after): a
/// reload that adds "pam" keeps the running config and says to restart.
#[test]
fn pam_added_by_a_reload_needs_a_restart() {
    let server = Server::start_with(Setup {
        watch_log: true,
        ..Setup::default()
    });
    let mut config = std::fs::read_to_string(server.config()).unwrap();
    config.push_str("\n[auth]\norder = [\"config\", \"pam\"]\n[auth.pam]\n");
    std::fs::write(server.config(), config).unwrap();
    server.signal("HUP");
    let log = server.wait_for_log(
        "config reload failed; keeping the running config",
        0,
        Duration::from_secs(30),
    );
    assert!(
        log.contains("the PAM helper is started with the server only; restart it"),
        "{log}"
    );
    assert!(!log.contains("PAM helper started"), "{log}");
    // The running config still serves.
    assert!(try_login(&server, "alice", PASSWORD).starts_with("230 "));
}

/// The per-account policy keys of `[[users]]` hold for every PAM account:
/// here a network the account may not log in from; and `allow_groups`.
#[test]
fn pam_policy_keys_and_allow_groups_apply_to_pam_accounts() {
    if !is_root() {
        return;
    }
    let allowed = Group::new();
    let account = Account::new("/bin/bash", &[&allowed]);
    let outsider = Account::new("/bin/bash", &[]);
    let service = Service::new();
    let (_dir, base) = roots();
    let sections = leak(format!(
        "[auth]\norder = [\"pam\", \"config\"]\n\
         [auth.pam]\nservice = \"{}\"\nroot = \"{}/{{user}}\"\ndeny_from = [\"127.0.0.0/8\"]\n\
         allow_groups = [\"{}\"]\n",
        service.0,
        base.display(),
        allowed.0,
    ));
    let server = Server::start_with(Setup {
        sections,
        run_as: Some("nobody"),
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    let r = try_login(&server, &account.name, &account.password);
    assert!(r.starts_with("530 "), "{r} {}", server.log());
    assert!(!base.join(&account.name).exists());
    assert!(
        server
            .log()
            .contains("login refused: user may not log in from this address"),
        "{}",
        server.log()
    );
    // In none of allow_groups: refused before PAM.
    let r = try_login(&server, &outsider.name, &outsider.password);
    assert!(r.starts_with("530 "), "{r}");
    // The refusal's line may reach the watched log just after the reply.
    let refused = |l: &str| {
        l.contains("PAM account refused")
            && l.contains(&outsider.name)
            && l.contains("allow_groups")
    };
    let mut log = server.log();
    for _ in 0..100 {
        if log.lines().any(refused) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        log = server.log();
    }
    assert!(log.lines().any(refused), "{log}");
    // The config file's users are not PAM's: after it in the order, and
    // without its deny_from.
    assert!(try_login(&server, "alice", PASSWORD).starts_with("230 "));

    // The server gone (killed, so nothing of its own shuts the helper
    // down): its end of the socket closes, and the helper exits.
    let pid = helper_pid(&server.log());
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    drop(server);
    let gone = (0..200).any(|_| {
        // A zombie until reaped by init: its state is Z.
        let state = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        if state.is_empty() || state.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(gone, "the PAM helper {pid} outlived the server");
}
