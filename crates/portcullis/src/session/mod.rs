//! One control connection, in two halves. The session core ([`Core`],
//! this file and the handler files beside it) decides: it takes one line
//! and gives back a [`Step`], a reply and what the connection must do
//! next (start or end TLS, run a transfer, abort one, close). It holds no
//! control stream and makes no data connection, so its decisions are
//! unit-tested without either (`tests.rs`). The driver (`driver.rs`) owns
//! the control stream, the line decoder, the commands deferred behind a
//! transfer and the running transfer, and carries out each step.
//!
//! The control connection is read while a transfer runs (the transfer is a
//! future that the session's own task polls alongside the control socket),
//! so ABOR, STAT and NOOP are answered at once; other commands that arrive
//! meanwhile wait, in order, until the transfer's final reply has been sent.
//! What each line does then is the core's decision too (`during.rs`).

mod channel;
mod copy;
mod digest;
mod driver;
mod during;
mod error;
mod fastpath;
mod files;
mod hash;
mod info;
mod intent;
mod job;
mod listing;
mod login;
mod quota;
mod route;
mod security;
mod setup;
mod start;
mod step;
#[cfg(test)]
mod tests;
mod transfer;

pub use driver::Session;

use std::sync::Arc;
use std::time::Instant;

use portcullis_proto::command::{Command, TransferType};
use portcullis_proto::framing::Frame;
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::{self as seq, Login};

use crate::auth::{Account, Authenticator};
use crate::data::{DataSetup, PortPool};
use crate::endpoints::Endpoints;
use crate::events::{Event, Origin, SessionId};
use crate::options::ServerOptions;
use crate::storage::Storage;
use crate::tls::TlsContext;
pub(crate) use error::refusal_reply;
use error::{parse_error_reply, reply_for, Phase, SessionError};
use security::Security;
pub(crate) use start::Transfer;
pub(crate) use step::Step;

/// What all sessions of one server share.
#[derive(Debug)]
pub struct Shared {
    pub options: ServerOptions,
    pub auth: Arc<dyn Authenticator>,
    pub ports: PortPool,
    /// `None` when FTPS is off.
    pub tls: Option<Arc<TlsContext>>,
    /// What PASV advertises to whom.
    pub advertiser: Arc<crate::data::Advertiser>,
    /// Session limits, bans and server-wide bandwidth.
    pub guard: Arc<crate::limits::Guard>,
    /// Where sessions report what happens (the log, later metrics).
    pub events: Arc<crate::events::Events>,
    /// Opens an account's storage from its root spec (roots opened at
    /// start-up, before dropping privileges, are kept there).
    pub storage: crate::storage::Factory,
    /// `[proxy_protocol]` with `data = true`: passive data connections
    /// from the balancers carry a header.
    pub proxy_data: Option<Arc<crate::options::ProxyOptions>>,
    /// `passive.single_port`: the one data port every session shares.
    pub single_port: Option<Arc<crate::data::single::SinglePort>>,
    /// Serving, draining or stopping: the driver closes sessions on a drain.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// `server.node_name`, in every session's events.
    pub node: Arc<str>,
    /// `[[events.hooks]]`, asked before uploads, downloads and deletes
    /// when a hook names `pre_upload`, `pre_download` or `pre_delete`:
    /// always there when serving (one for the process, whose hooks follow
    /// a reload); `None` in the core's unit tests.
    pub hooks: Option<Arc<crate::events::hooks::Hooks>>,
    /// What each quota account's root holds (kept across reloads).
    pub quotas: Arc<crate::quota::Quotas>,
    /// The live sessions, for the control plane (one for the process,
    /// kept across reloads).
    pub registry: Arc<crate::registry::LocalRegistry>,
    /// `[cluster]`: the fleet's shared state (one for the process, kept
    /// across reloads); `None`: this node's own only.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// What the session keeps about a logged-in user.
#[derive(Debug)]
pub(crate) struct UserCtx {
    /// Shared with the account's other sessions where the back end made it
    /// once (`[[users]]`, anonymous): an idle session holds a pointer.
    account: Arc<Account>,
    storage: Arc<dyn Storage>,
    /// Its quota, `None` when it has none (nothing counted).
    quota: Option<crate::quota::AccountQuota>,
    /// Its place among the account's `max_sessions`, freed with the session.
    _slot: crate::limits::accounts::Slot,
}

/// State armed by one command for the next one (RFC 959 RNFR/RNTO, RFC 3659
/// REST). RNFR is for the very next command only; REST also survives the
/// commands that prepare a transfer (PASV, EPSV, PORT, EPRT, TYPE, MODE,
/// STRU, PBSZ, PROT) and is used by RETR and STOR. Any other command, or a
/// line that does not parse, disarms both.
#[derive(Debug, Default)]
enum Armed {
    #[default]
    None,
    RenameFrom(VirtualPath),
    Restart(u64),
}

/// The names a command that changes a name is about.
struct FileOpTarget {
    verb: &'static str,
    path: String,
    target: Option<String>,
}

/// The session core: the state of one control connection that a command
/// can change, and the one `dispatch`.
pub(crate) struct Core {
    shared: Arc<Shared>,
    /// This node, this session's id and the client, for its events.
    origin: Origin,
    /// The client and this server's addresses, as learnt at accept.
    ends: Endpoints,
    login: Login<UserCtx>,
    cwd: VirtualPath,
    transfer_type: TransferType,
    armed: Armed,
    data: DataSetup,
    /// After EPSV ALL only EPSV may set up data connections (RFC 2428 section 4).
    epsv_all: bool,
    /// The MLSx facts shown (OPTS MLST); all of them, unallocated, until
    /// the client chooses.
    mlst_facts: std::borrow::Cow<'static, [&'static str]>,
    /// Where the control connection is with TLS.
    security: Security,
    started: Instant,
    /// This session's own bandwidth buckets.
    buckets: crate::limits::Buckets,
    /// The algorithm HASH uses (OPTS HASH).
    hash_algorithm: portcullis_proto::hash::HashAlgorithm,
    /// The range HASH covers (RANG start end, both included), until
    /// `RANG 1 0`.
    hash_range: Option<(u64, u64)>,
}

impl Core {
    /// A session's core; `security` is [`Security::Plain`] or, on an
    /// implicit-TLS listener, [`Security::implicit`].
    pub(crate) fn new(
        shared: Arc<Shared>,
        ends: Endpoints,
        id: SessionId,
        security: Security,
    ) -> Self {
        Core {
            origin: Origin {
                node: shared.node.clone(),
                session: id,
                client: ends.peer_ip,
                object_root: None,
            },
            ends,
            login: Login::Start,
            cwd: VirtualPath::root(),
            transfer_type: TransferType::default(),
            armed: Armed::None,
            data: DataSetup::None,
            epsv_all: false,
            mlst_facts: std::borrow::Cow::Borrowed(portcullis_proto::listing::MLST_FACTS),
            security,
            started: Instant::now(),
            buckets: crate::limits::Buckets::new(&shared.options.limits),
            hash_algorithm: Default::default(),
            hash_range: None,
            shared,
        }
    }

    /// The step for a command's error, reported first (storage errors are
    /// events): its reply, and the connection's end if the error says so.
    fn fail(&self, e: SessionError) -> Step {
        if let SessionError::Storage(error) = &e {
            self.emit(Event::Storage { error });
        }
        let reply = reply_for(&e, Phase::Command);
        match e.closes() {
            true => Step::Close(reply),
            false => Step::Reply(reply),
        }
    }

    /// Parse, sequence-check and dispatch one line.
    pub(crate) async fn handle(&mut self, frame: Frame) -> Step {
        #[cfg(debug_assertions)]
        if let Frame::Line(line) = &frame {
            test_panic(line);
        }
        let (verb, step) = match frame {
            Frame::TooLong => (
                "other",
                Step::Reply(Reply::new(
                    ReplyCode::SYNTAX_ERROR,
                    "Command line too long.",
                )),
            ),
            // A balancer's header on a connection from an address not in
            // `proxy_protocol.from`: never believed.
            Frame::Line(line) if line.starts_with(b"PROXY ") && !self.logged_in() => {
                tracing::warn!(
                    peer = %self.ends.peer,
                    "PROXY protocol header as a command (from an address not in proxy_protocol.from, or a second header): not believed, connection closed"
                );
                return self.fail(SessionError::ProxyHeaderRefused);
            }
            Frame::Line(line) => match Command::parse(&line) {
                Ok(cmd) => {
                    let verb = cmd.verb();
                    match seq::check(&self.login, &cmd) {
                        Ok(()) => (verb, self.dispatch(cmd).await),
                        Err(r) => {
                            self.armed = Armed::None;
                            (verb, Step::Reply(r))
                        }
                    }
                }
                Err(e) => {
                    self.armed = Armed::None;
                    ("other", Step::Reply(parse_error_reply(&e)))
                }
            },
        };
        let code = match &step {
            Step::Reply(r) | Step::Close(r) | Step::StartTls(r, _) | Step::EndTls(r) => r.code,
            Step::Transfer(t) => t.opening.code,
            // The driver reports ABOR with the reply it sends, and a hash
            // reports itself with its reply once it is done.
            Step::Abort | Step::Hash(_) => return step,
        };
        self.emit(Event::Command { verb, code });
        step
    }

    /// The one dispatch `match`.
    async fn dispatch(&mut self, cmd: Command) -> Step {
        use Command as C;
        let armed = std::mem::take(&mut self.armed);
        // REST stays armed across the commands that only prepare the
        // transfer it is for (as vsftpd and ProFTPD keep it): a client may
        // send REST before PASV or TYPE, and the RETR or STOR that follows
        // must start at the offset, never at 0.
        let restart = match armed {
            Armed::Restart(n) => Some(n),
            _ => None,
        };
        let prepares = matches!(
            cmd,
            C::Pasv
                | C::Epsv(_)
                | C::Port(_)
                | C::Eprt(_)
                | C::Type(_)
                | C::Mode
                | C::Stru
                | C::Pbsz(_)
                | C::Prot(_)
        );
        if let (true, Some(n)) = (prepares, restart) {
            self.armed = Armed::Restart(n);
        }
        let op = self.file_op(&cmd, &armed);
        // What the verb's row says it needs of the storage (APPE, MFMT),
        // after the permission: 550, then 502.
        let reply = match self.capable(&cmd) {
            Err(e) => Err(e),
            Ok(()) => match cmd {
                C::User(name) => self.user(name),
                C::Pass(pw) => self.pass(pw).await,
                C::Acct(_) => Ok(Reply::new(
                    ReplyCode::SUPERFLUOUS,
                    "ACCT not needed on this server.",
                )),
                C::Quit => return self.quit(),
                C::Noop => Ok(Reply::new(ReplyCode::OK, "NOOP ok.")),
                C::Syst => Ok(Reply::new(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8")),
                C::Feat => Ok(self.feat()),
                C::Opts(o) => Ok(self.opts(o)),
                C::Help(topic) => Ok(self.help(topic)),
                C::Stat(None) => Ok(self.stat_server()),
                C::Stat(Some(path)) => self.stat_path(&path).await,
                C::Site(sub) => self.site(sub).await,
                C::Pwd => Ok(self.pwd()),
                C::Cwd(path) => self.cwd(&path).await,
                C::Cdup => self.cwd("..").await,
                C::Mkd(path) => self.mkd(&path).await,
                C::Rmd(path) => self.rmd(&path).await,
                C::Dele(path) => self.dele(&path).await,
                C::Rnfr(path) => self.rnfr(&path).await,
                C::Rnto(path) => self.rnto(&path, armed).await,
                C::Size(path) => self.size(&path).await,
                C::Mdtm(path) => self.mdtm(&path).await,
                C::Mfmt { time, path } => self.mfmt(time, &path).await,
                C::Type(t) => Ok(self.set_type(t)),
                C::Mode => Ok(Reply::new(ReplyCode::OK, "Mode set to S.")),
                C::Stru => Ok(Reply::new(ReplyCode::OK, "Structure set to F.")),
                C::Port(addr) => Ok(self.port(addr.into(), "PORT")),
                C::Eprt(addr) => Ok(self.port(addr, "EPRT")),
                C::Pasv => self.pasv().await,
                C::Epsv(arg) => self.epsv(arg).await,
                C::List(args) => {
                    let r = self.list(args, transfer::ListKind::Long).await;
                    return self.started(r);
                }
                C::Nlst(args) => {
                    let r = self.list(args, transfer::ListKind::Names).await;
                    return self.started(r);
                }
                C::Mlsd(path) => {
                    let r = self.mlsd(path).await;
                    return self.started(r);
                }
                C::Mlst(path) => self.mlst(path).await,
                C::Retr(path) => {
                    let r = self.retr(&path, armed).await;
                    return self.started(r);
                }
                C::Stor(path) => {
                    let r = self.stor(&path, armed).await;
                    let step = self.started(r);
                    self.audit(op.as_ref(), &step);
                    return step;
                }
                // Where an appended or uniquely named upload would resume is
                // not defined (RFC 3659 section 5.5 names only RETR and STOR).
                C::Stou(_) | C::Appe(_) if restart.is_some() => Ok(Reply::new(
                    ReplyCode::BAD_SEQUENCE,
                    "REST applies to RETR and STOR only; the restart offset was cleared.",
                )),
                C::Stou(name) => {
                    let r = self.stou(name).await;
                    let step = self.started(r);
                    self.audit(op.as_ref(), &step);
                    return step;
                }
                C::Appe(path) => {
                    let r = self.appe(&path).await;
                    let step = self.started(r);
                    self.audit(op.as_ref(), &step);
                    return step;
                }
                C::Rest(n) => {
                    self.armed = Armed::Restart(n);
                    Ok(Reply::new(
                        ReplyCode::PENDING,
                        format!("Restarting at {n}. Send STOR or RETR to continue."),
                    ))
                }
                C::Abor => {
                    // Whatever PASV or PORT armed goes with the transfer.
                    self.data = DataSetup::None;
                    return Step::Abort;
                }
                C::Allo(bytes) => self.allo(bytes).await,
                C::Avbl(path) => self.avbl(path).await,
                C::Auth(mech) => return self.auth(mech),
                C::Pbsz(n) => Ok(self.pbsz(n)),
                C::Prot(level) => Ok(self.prot(level)),
                C::Ccc => return self.ccc(),
                C::Hash(path) => return self.hash(path).await,
                C::Rang(r) => Ok(self.rang(r)),
                C::Xcrc(_) | C::Xmd5(_) | C::Xsha1(_) | C::Xsha256(_) | C::Xsha512(_) => {
                    let verb = cmd.verb();
                    let Some((algorithm, args)) = cmd.x_hash() else {
                        unreachable!("an X-hash verb");
                    };
                    return self.x_hash(verb, algorithm, args.clone()).await;
                }
            },
        };
        let step = match reply {
            Ok(r) => Step::Reply(r),
            Err(e) => self.fail(e),
        };
        self.audit(op.as_ref(), &step);
        step
    }

    /// The audit line ([`Event::FileOp`]) of a command that changes the
    /// file tree, done or refused: the one place it is emitted for a
    /// command answered at once. An upload that starts is reported by its
    /// transfer with the final reply (`job.rs`); an RNFR only when it is
    /// refused (its RNTO's line names both paths).
    fn audit(&self, op: Option<&FileOpTarget>, step: &Step) {
        let (Some(op), Step::Reply(r) | Step::Close(r)) = (op, step) else {
            return;
        };
        if op.verb == "RNFR" && r.code == ReplyCode::PENDING {
            return;
        }
        if let Some(user) = self.user_name() {
            self.emit(Event::FileOp {
                user,
                verb: op.verb,
                path: &op.path,
                target: op.target.as_deref(),
                code: r.code,
            });
        }
    }

    /// What a command that changes the file tree is about, for its audit
    /// line ([`Event::FileOp`]): its verb and resolved virtual path(s).
    /// (The handler resolves the same argument against the same
    /// directory.) An argument that does not resolve (a name that leaves
    /// the root, a bad byte) is logged as sent: it is refused, and the
    /// log says what was asked.
    fn file_op(&self, cmd: &Command, armed: &Armed) -> Option<FileOpTarget> {
        use portcullis_proto::command::SiteCommand;
        use Command as C;
        let resolved = |arg: &str| {
            self.resolve(arg)
                .map_or_else(|_| arg.to_owned(), |p| p.to_string())
        };
        let (verb, arg) = match cmd {
            C::Mkd(p)
            | C::Rmd(p)
            | C::Dele(p)
            | C::Mfmt { path: p, .. }
            | C::Stor(p)
            | C::Appe(p)
            | C::Rnfr(p) => (cmd.verb(), p.as_str()),
            C::Stou(name) => (cmd.verb(), name.as_deref().unwrap_or(".")),
            C::Site(SiteCommand::Chmod { path, .. }) => ("SITE CHMOD", path.as_str()),
            C::Rnto(to) => {
                let Armed::RenameFrom(from) = armed else {
                    // Refused for its sequence (503): no rename was asked.
                    return None;
                };
                return Some(FileOpTarget {
                    verb: "RNTO",
                    path: from.to_string(),
                    target: Some(resolved(to)),
                });
            }
            _ => return None,
        };
        Some(FileOpTarget {
            verb,
            path: resolved(arg),
            target: None,
        })
    }

    /// The step of a transfer command: its transfer, or the reply that
    /// ends it now.
    fn started(&self, r: Result<start::Started, SessionError>) -> Step {
        match r {
            Ok(start::Started::Transfer(t)) => Step::Transfer(t),
            Ok(start::Started::Reply(r)) => Step::Reply(r),
            Err(e) => self.fail(e),
        }
    }

    /// The logged-in user. `seq::check` ran before any handler that calls
    /// this, so the `Err` arm only guards against a sequencing bug.
    fn user_ctx(&self) -> Result<&UserCtx, SessionError> {
        match &self.login {
            Login::LoggedIn(u) => Ok(u),
            _ => Err(SessionError::NotLoggedIn),
        }
    }

    /// What the logged-in account's storage can do; before login, what
    /// the server offers at all (every account's storage is local today).
    fn capabilities(&self) -> crate::storage::Capabilities {
        match &self.login {
            Login::LoggedIn(u) => u.storage.capabilities(),
            _ => crate::storage::Capabilities::ALL,
        }
    }

    /// Resolve a client path against the working directory.
    fn resolve(&self, arg: &str) -> Result<VirtualPath, SessionError> {
        Ok(self.cwd.resolve(arg)?)
    }

    /// The control connection has used TLS (it is TLS, or was until CCC).
    pub(crate) fn tls_used(&self) -> bool {
        !matches!(self.security, Security::Plain)
    }

    /// Logged in (the login and idle timeouts differ).
    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.login, Login::LoggedIn(_))
    }

    /// Report one of this session's events.
    pub(crate) fn emit(&self, event: Event<'_>) {
        self.shared.events.emit_in(&self.origin, event);
    }

    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Ask the pre-action hooks of `kind` about `path`: `Err` (550 with
    /// their text) when one refuses.
    pub(crate) async fn ask_hooks(
        &self,
        kind: crate::options::EventKind,
        path: &VirtualPath,
    ) -> Result<(), SessionError> {
        let (Some(hooks), Some(user)) = (&self.shared.hooks, self.user_name()) else {
            return Ok(());
        };
        hooks
            .ask(kind, &self.origin, user, &path.to_string())
            .await
            .map_err(SessionError::HookRefused)
    }

    /// The logged-in user's name.
    pub(crate) fn user_name(&self) -> Option<&str> {
        self.user_ctx().ok().map(|u| u.account.name.as_str())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn ends(&self) -> &Endpoints {
        &self.ends
    }

    pub(crate) fn started_at(&self) -> Instant {
        self.started
    }
}

/// Tests only (debug builds; release builds have no such line): a session
/// panics on the command line `PORTCULLIS_TEST_PANIC_ON` names, so the
/// suite can show that a panic ends that session alone.
#[cfg(debug_assertions)]
fn test_panic(line: &[u8]) {
    static ON: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let on = ON.get_or_init(|| {
        std::env::var_os("PORTCULLIS_TEST_PANIC_ON").map(|v| v.into_encoded_bytes())
    });
    if on.as_deref() == Some(line) {
        panic!(
            "PORTCULLIS_TEST_PANIC_ON: {}",
            String::from_utf8_lossy(line)
        );
    }
}
