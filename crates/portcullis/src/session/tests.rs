//! The session core's decisions, without a control connection: lines go
//! in through [`Core::handle`], and each test looks at the [`Step`] that
//! comes out (the reply, and what the driver would do next).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::stream::BoxStream;
use portcullis_proto::path::VirtualPath;
use portcullis_proto::session::Login;

use portcullis_proto::framing::Frame;
use portcullis_proto::reply::ReplyCode;

use super::job::Job;
use super::security::Security;
use super::{Core, Shared, Step};
use crate::auth::users::{hash_password_with, ConfigAuthenticator};
use crate::auth::Permissions;
use crate::data::DataSetup;
use crate::endpoints::Endpoints;
use crate::options::{DataProtection, ServerOptions, TlsOptions, UserEntry};
use crate::storage::{DirEntry, Metadata, ReadStream, RenameMode, WriteMode};

/// A server on `dir` (anonymous read-only there, and `alice` with password
/// `pw` and every permission) with `tls` if given, and a core for a client
/// at 127.0.0.1.
pub(super) fn core(dir: &std::path::Path, tls: Option<TlsOptions>) -> Core {
    let (shared, ends) = server(options(dir, tls));
    Core::new(
        shared,
        ends,
        crate::events::SessionId::random(),
        Security::Plain,
    )
}

/// The options of [`core`]'s server, to adjust before [`server`].
pub(super) fn options(dir: &std::path::Path, tls: Option<TlsOptions>) -> ServerOptions {
    let mut o = ServerOptions::with_anonymous_root(dir.to_owned());
    o.users.push(UserEntry {
        name: "alice".into(),
        password_hash: hash_password_with("pw", 8, 1).unwrap(),
        root: crate::storage::RootSpec::Local(dir.to_owned()),
        policy: crate::options::AccountPolicy {
            permissions: Permissions::ALL,
            ..Default::default()
        },
        password_optional_with_cert: false,
        disabled: false,
    });
    o.tls = tls;
    o.failed_login_delay = std::time::Duration::ZERO;
    o
}

/// What the sessions of a server with options `o` share, and the ends of
/// a client at 127.0.0.1.
pub(super) fn server(o: ServerOptions) -> (Arc<Shared>, Endpoints) {
    let shared = Arc::new(Shared {
        advertiser: Arc::new(crate::data::Advertiser::new(&o.passive)),
        auth: Arc::new(ConfigAuthenticator::new(&o)),
        ports: crate::data::PortPool::new(o.passive.ports.clone()),
        guard: crate::limits::Guard::new(o.limits.clone()),
        events: Arc::new(crate::events::Events::new(Vec::new())),
        tls: o
            .tls
            .clone()
            .map(|t| Arc::new(crate::tls::TlsContext::new(t).unwrap())),
        storage: crate::storage::Factory::new(
            crate::storage::LocalPolicy {
                atomic: true,
                fsync: false,
            },
            Default::default(),
            std::iter::empty(),
        ),
        proxy_data: None,
        single_port: None,
        lifecycle: Arc::default(),
        node: "test".into(),
        hooks: None,
        quotas: Arc::default(),
        registry: Default::default(),
        cluster: None,
        options: o,
    });
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:2121".parse().unwrap();
    (shared, Endpoints::direct(peer, local))
}

/// TLS options with a fresh self-signed certificate in `dir`.
pub(super) fn tls_in(dir: &std::path::Path) -> TlsOptions {
    let (cert, key) = crate::tls::self_signed(&["localhost".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    TlsOptions::optional(c, k)
}

async fn step(core: &mut Core, line: &str) -> Step {
    core.handle(Frame::Line(line.as_bytes().to_vec())).await
}

/// The reply of a line that must be answered with a plain reply.
async fn reply(core: &mut Core, line: &str) -> (u16, String) {
    match step(core, line).await {
        Step::Reply(r) => (r.code.0, r.lines.join("\n")),
        other => panic!("{line}: expected a reply, got {}", name(&other)),
    }
}

async fn code(core: &mut Core, line: &str) -> u16 {
    reply(core, line).await.0
}

fn name(s: &Step) -> &'static str {
    match s {
        Step::Reply(_) => "Reply",
        Step::Close(_) => "Close",
        Step::StartTls(..) => "StartTls",
        Step::EndTls(_) => "EndTls",
        Step::Transfer(_) => "Transfer",
        Step::Hash(_) => "Hash",
        Step::Abort => "Abort",
    }
}

pub(super) async fn login(core: &mut Core) {
    assert_eq!(code(core, "USER alice").await, 331);
    assert_eq!(code(core, "PASS pw").await, 230);
}

#[tokio::test]
async fn login_sequence_and_its_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = core(dir.path(), None);
    assert_eq!(code(&mut c, "PWD").await, 530);
    assert_eq!(code(&mut c, "PASS pw").await, 503);
    assert_eq!(code(&mut c, "USER alice").await, 331);
    assert_eq!(code(&mut c, "PASS wrong").await, 530);
    assert!(!c.logged_in());
    login(&mut c).await;
    assert!(c.logged_in());
    assert_eq!(
        reply(&mut c, "PWD").await,
        (257, "\"/\" is the current directory.".into())
    );
    assert_eq!(code(&mut c, "USER bob").await, 530);
    match step(&mut c, "QUIT").await {
        Step::Close(r) => assert_eq!(r.code.0, 221),
        other => panic!("QUIT gave {}", name(&other)),
    }
}

#[tokio::test]
async fn rest_survives_the_commands_that_prepare_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    let mut c = core(dir.path(), None);
    login(&mut c).await;
    assert_eq!(code(&mut c, "REST 4").await, 350);
    assert_eq!(code(&mut c, "TYPE I").await, 200);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    match step(&mut c, "RETR f").await {
        Step::Transfer(t) => {
            assert_eq!(t.opening.code, ReplyCode::OPENING_DATA);
            assert!(t.opening.lines[0].contains("(6 bytes)"), "{:?}", t.opening);
            assert!(matches!(t.plan.job, Job::Retr { offset: 4, .. }));
            let to: SocketAddr = "127.0.0.1:51210".parse().unwrap();
            assert!(matches!(t.plan.setup, DataSetup::Active(a) if a == to));
            assert!(!t.upload() && t.plan.data.tls.is_none());
        }
        other => panic!("RETR gave {}", name(&other)),
    }
    // The data connection went with that transfer, and the offset too.
    assert_eq!(code(&mut c, "RETR f").await, 425);
    // Anything else disarms REST; STOU and APPE refuse it.
    assert_eq!(code(&mut c, "REST 4").await, 350);
    assert_eq!(code(&mut c, "PWD").await, 257);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    match step(&mut c, "RETR f").await {
        Step::Transfer(t) => assert!(matches!(t.plan.job, Job::Retr { offset: 0, .. })),
        other => panic!("RETR gave {}", name(&other)),
    }
    assert_eq!(code(&mut c, "REST 4").await, 350);
    assert_eq!(code(&mut c, "STOU").await, 503);
    // REST past the end of the file.
    assert_eq!(code(&mut c, "REST 11").await, 350);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    assert_eq!(code(&mut c, "RETR f").await, 554);
}

#[tokio::test]
async fn data_connection_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = core(dir.path(), None);
    login(&mut c).await;
    // Only the client's own address, and no privileged port (bounce).
    assert_eq!(code(&mut c, "PORT 10,0,0,1,200,10").await, 501);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,0,21").await, 501);
    assert_eq!(code(&mut c, "EPRT |2|::1|5000|").await, 522);
    assert_eq!(code(&mut c, "EPSV 2").await, 522);
    assert_eq!(code(&mut c, "EPSV ALL").await, 200);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 503);
    assert_eq!(code(&mut c, "PASV").await, 503);
    // ABOR is carried out by the driver, which owns the transfer.
    assert!(matches!(step(&mut c, "ABOR").await, Step::Abort));
}

#[tokio::test]
async fn uploads_follow_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = core(dir.path(), None);
    assert_eq!(code(&mut c, "USER anonymous").await, 331);
    assert_eq!(code(&mut c, "PASS a@b").await, 230);
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    // Anonymous is read-only here: refused before any data connection.
    assert_eq!(code(&mut c, "STOR x").await, 550);
    let mut c = core(dir.path(), None);
    login(&mut c).await;
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    match step(&mut c, "STOR x").await {
        Step::Transfer(t) => assert!(t.upload() && t.verb() == "STOR"),
        other => panic!("STOR gave {}", name(&other)),
    }
}

/// The account's `tls_client_cert` decides at PASS with the certificate
/// the handshake after AUTH left in `Security`, kept across CCC.
#[tokio::test]
async fn a_required_client_certificate_is_checked_at_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = tls_in(dir.path());
    tls.allow_ccc = true;
    let mut o = options(dir.path(), Some(tls));
    o.users[0].policy.client_cert.use_cert = crate::options::CertUse::Required;
    let (shared, ends) = server(o);
    let cert = |cn: &str| {
        Arc::new(crate::tls::ClientIdentity {
            cn: Some(cn.into()),
            emails: Vec::new(),
            sha256: [7; 32],
        })
    };
    for (presented, want) in [(Some("alice"), 230), (Some("bob"), 530), (None, 530)] {
        let id = crate::events::SessionId::random();
        let mut c = Core::new(shared.clone(), ends, id, Security::Plain);
        assert!(matches!(step(&mut c, "AUTH TLS").await, Step::StartTls(..)));
        c.tls_established(presented.map(cert));
        assert_eq!(code(&mut c, "USER alice").await, 331);
        assert_eq!(code(&mut c, "PASS pw").await, want, "{presented:?}");
        if want == 230 {
            assert!(matches!(step(&mut c, "CCC").await, Step::EndTls(_)));
            assert_eq!(
                c.security.client_cert().unwrap().cn.as_deref(),
                Some("alice")
            );
        }
    }
}

#[tokio::test]
async fn tls_stage_and_protection() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = tls_in(dir.path());
    tls.allow_ccc = true;
    let mut c = core(dir.path(), Some(tls));
    assert_eq!(code(&mut c, "PBSZ 0").await, 503);
    assert_eq!(code(&mut c, "PROT P").await, 503);
    assert_eq!(code(&mut c, "CCC").await, 533);
    assert_eq!(code(&mut c, "USER alice").await, 331);
    match step(&mut c, "AUTH TLS").await {
        Step::StartTls(r, _) => assert_eq!(r.code.0, 234),
        other => panic!("AUTH gave {}", name(&other)),
    }
    // The USER before AUTH does not count.
    assert_eq!(code(&mut c, "PASS pw").await, 503);
    assert_eq!(code(&mut c, "AUTH TLS").await, 503);
    assert_eq!(code(&mut c, "PROT P").await, 503);
    assert_eq!(code(&mut c, "PBSZ 0").await, 200);
    assert_eq!(code(&mut c, "PROT P").await, 200);
    login(&mut c).await;
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    match step(&mut c, "LIST").await {
        Step::Transfer(t) => assert!(t.plan.data.tls.is_some(), "PROT P"),
        other => panic!("LIST gave {}", name(&other)),
    }
    assert!(matches!(step(&mut c, "CCC").await, Step::EndTls(_)));
    assert!(matches!(c.security, Security::Cleared { .. }));
    // Data connections keep PROT P after CCC.
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    match step(&mut c, "LIST").await {
        Step::Transfer(t) => assert!(t.plan.data.tls.is_some(), "PROT P after CCC"),
        other => panic!("LIST gave {}", name(&other)),
    }
    assert_eq!(code(&mut c, "AUTH TLS").await, 503);
}

#[tokio::test]
async fn required_data_protection_refuses_plain_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = tls_in(dir.path());
    tls.data_protection = DataProtection::Required;
    let mut c = core(dir.path(), Some(tls));
    login(&mut c).await;
    assert_eq!(code(&mut c, "PORT 127,0,0,1,200,10").await, 200);
    assert_eq!(code(&mut c, "LIST").await, 521);
}

/// Replies that end the session come back as [`Step::Close`], chosen by
/// the error's mapping (no flag in the core): the ban at the failure that
/// crosses `limits.max_login_failures`, and a second session from the
/// banned address at USER.
#[tokio::test]
async fn a_ban_closes_through_the_error_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = core(dir.path(), None);
    for _ in 1..c.shared.options.limits.max_login_failures {
        assert_eq!(code(&mut c, "USER alice").await, 331);
        assert_eq!(code(&mut c, "PASS wrong").await, 530);
    }
    assert_eq!(code(&mut c, "USER alice").await, 331);
    match step(&mut c, "PASS wrong").await {
        Step::Close(r) => {
            assert_eq!(r.code.0, 421);
            assert!(r.lines[0].starts_with("Login incorrect. Too many failed logins: banned for "));
        }
        other => panic!("the banning PASS gave {}", name(&other)),
    }
    let ends = c.ends;
    let mut again = Core::new(
        c.shared.clone(),
        ends,
        crate::events::SessionId::random(),
        Security::Plain,
    );
    match step(&mut again, "USER alice").await {
        Step::Close(r) => {
            assert_eq!(r.code.0, 421);
            assert!(r.lines[0].starts_with("Too many failed logins from your address"));
        }
        other => panic!("USER while banned gave {}", name(&other)),
    }
    assert!(matches!(step(&mut again, "QUIT").await, Step::Close(_)));
}

/// An exhausted passive port pool is `SessionError::NoPassivePort`: 425,
/// and the session goes on.
#[tokio::test]
async fn an_exhausted_port_pool_is_425() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = core(dir.path(), None);
    // The pool's only port, held here.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    Arc::get_mut(&mut c.shared).unwrap().ports = crate::data::PortPool::new(port..=port);
    login(&mut c).await;
    assert_eq!(
        reply(&mut c, "EPSV").await,
        (425, "No free passive port; try again later.".to_owned())
    );
    assert_eq!(
        reply(&mut c, "PASV").await,
        (425, "No free passive port; try again later.".to_owned())
    );
    assert_eq!(code(&mut c, "NOOP").await, 200);
}

/// A storage that delegates to another but can neither append nor set
/// times (as an object store), and fails the test if asked to.
#[derive(Debug)]
struct NoAppendNoTimes(Arc<dyn crate::storage::Storage>);

#[async_trait::async_trait]
impl crate::storage::Storage for NoAppendNoTimes {
    fn capabilities(&self) -> crate::storage::Capabilities {
        crate::storage::Capabilities {
            append: false,
            set_times: false,
            ..crate::storage::Capabilities::ALL
        }
    }
    async fn metadata(&self, p: &VirtualPath) -> crate::storage::Result<Metadata> {
        self.0.metadata(p).await
    }
    async fn entry(&self, p: &VirtualPath) -> crate::storage::Result<DirEntry> {
        self.0.entry(p).await
    }
    async fn list(
        &self,
        p: &VirtualPath,
    ) -> crate::storage::Result<BoxStream<'static, crate::storage::Result<DirEntry>>> {
        self.0.list(p).await
    }
    async fn open_read(&self, p: &VirtualPath, at: u64) -> crate::storage::Result<ReadStream> {
        self.0.open_read(p, at).await
    }
    async fn open_write(
        &self,
        p: &VirtualPath,
        mode: WriteMode,
    ) -> crate::storage::Result<Box<dyn crate::storage::Upload>> {
        assert!(
            !matches!(mode, WriteMode::Append),
            "APPE reached a storage that cannot append"
        );
        self.0.open_write(p, mode).await
    }
    async fn mkdir(&self, p: &VirtualPath) -> crate::storage::Result<()> {
        self.0.mkdir(p).await
    }
    async fn rmdir(&self, p: &VirtualPath) -> crate::storage::Result<()> {
        self.0.rmdir(p).await
    }
    async fn remove_file(&self, p: &VirtualPath) -> crate::storage::Result<()> {
        self.0.remove_file(p).await
    }
    async fn rename(
        &self,
        from: &VirtualPath,
        to: &VirtualPath,
        mode: RenameMode,
    ) -> crate::storage::Result<()> {
        self.0.rename(from, to, mode).await
    }
    async fn set_modified(&self, _: &VirtualPath, _: SystemTime) -> crate::storage::Result<()> {
        panic!("MFMT reached a storage that cannot set times")
    }
    async fn set_mode(&self, p: &VirtualPath, mode: u32) -> crate::storage::Result<()> {
        self.0.set_mode(p, mode).await
    }
}

/// The logged-in session's storage, swapped for one that cannot append
/// or set times.
fn without_append_and_times(core: &mut Core) {
    let Login::LoggedIn(u) = &mut core.login else {
        panic!("not logged in")
    };
    u.storage = Arc::new(NoAppendNoTimes(u.storage.clone()));
}

/// APPE and MFMT need a capability (their row in the verb table): where
/// the storage lacks it, dispatch answers 502 before the handler asks the
/// storage, but the permission answer comes first (550 for an account
/// that may not make the change at all), and FEAT, HELP and the other
/// verbs are unaffected.
#[tokio::test]
async fn a_missing_capability_is_502_after_the_permission_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"x").unwrap();
    // Every permission, a storage that cannot: 502, naming the verb.
    let mut c = core(dir.path(), None);
    login(&mut c).await;
    without_append_and_times(&mut c);
    let (n, text) = reply(&mut c, "APPE f.txt").await;
    assert_eq!((n, text.starts_with("APPE is not available")), (502, true));
    let (n, text) = reply(&mut c, "MFMT 20200101000000 f.txt").await;
    assert_eq!((n, text.starts_with("MFMT is not available")), (502, true));
    // The same storage still answers the other verbs.
    assert_eq!(code(&mut c, "SIZE f.txt").await, 213);
    let (_, feat) = reply(&mut c, "FEAT").await;
    assert!(!feat.contains("MFMT"), "{feat}");
    // The read-only anonymous account: 550 whatever the storage can do.
    let mut c = core(dir.path(), None);
    assert_eq!(code(&mut c, "USER anonymous").await, 331);
    assert_eq!(code(&mut c, "PASS a@b").await, 230);
    without_append_and_times(&mut c);
    assert_eq!(code(&mut c, "APPE f.txt").await, 550);
    assert_eq!(code(&mut c, "MFMT 20200101000000 f.txt").await, 550);
    // With the capability, the handler runs: MFMT sets the time.
    let mut c = core(dir.path(), None);
    login(&mut c).await;
    assert_eq!(code(&mut c, "MFMT 20200101000000 f.txt").await, 213);
    assert_eq!(
        reply(&mut c, "MDTM f.txt").await,
        (213, "20200101000000".into())
    );
}
