//! Accepting: one task per listener, each connection admitted (bans,
//! limits, the PROXY header from a balancer) and given a [`Session`] task,
//! until the drain; then the wait for sessions within
//! `server.shutdown_grace` (see [`crate::lifecycle`]).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::Live;
use crate::endpoints::{Endpoints, Listener};
use crate::lifecycle::Phase;
use crate::session::{Session, Shared};

/// Accept on every listener until SIGTERM or SIGINT ([`Phase::Closing`]),
/// close them all, then start the drain ([`Phase::Draining`]: idle
/// sessions get 421) and wait for the sessions: at
/// most `server.shutdown_grace`, after which ([`Phase::Stopping`]) the
/// sessions still transferring cut their transfers and close. Connections
/// on `implicit` listeners start with a TLS handshake (implicit FTPS).
/// Each session starts with the config `live` holds at its accept.
pub async fn run(listeners: Vec<TcpListener>, implicit: Vec<TcpListener>, live: Arc<Live>) {
    let sessions = TaskTracker::new();
    let mut tasks = tokio::task::JoinSet::new();
    let kinds = listeners
        .into_iter()
        .map(|l| (l, Listener::Explicit))
        .chain(implicit.into_iter().map(|l| (l, Listener::ImplicitTls)));
    for (listener, kind) in kinds {
        tasks.spawn(accept_loop(listener, kind, live.clone(), sessions.clone()));
    }
    // Bound since `prepare`, accepting from here on: systemd may start
    // what comes after this unit.
    live.get().lifecycle.ready();
    // Each loop returns at `Closing`, and its listener is closed with it.
    while tasks.join_next().await.is_some() {}
    sessions.close();
    let shared = live.get();
    // Only now: whoever sees a 421 of the drain finds the ports closed.
    shared.lifecycle.advance(Phase::Draining);
    let grace = shared.options.shutdown_grace;
    info!(
        sessions = sessions.len(),
        grace_secs = grace.as_secs_f64(),
        "draining: listeners closed, waiting for transfers in flight"
    );
    let why = tokio::select! {
        _ = sessions.wait() => return info!("drained: every session has ended"),
        _ = tokio::time::sleep(grace) => "shutdown grace over",
        _ = shared.lifecycle.reached(Phase::Stopping) => "second signal",
    };
    warn!(
        sessions = sessions.len(),
        "{why}: cutting the transfers still running"
    );
    shared.lifecycle.advance(Phase::Stopping);
    // Cutting a transfer takes a moment (an upload's temporary file is
    // removed); a session stuck past that is dropped with the runtime.
    if tokio::time::timeout(CUT_TIMEOUT, sessions.wait())
        .await
        .is_err()
    {
        warn!(sessions = sessions.len(), "sessions still open at exit");
    }
}

/// How long sessions have to end once their transfers are cut.
const CUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn accept_loop(
    listener: TcpListener,
    kind: Listener,
    live: Arc<Live>,
    sessions: TaskTracker,
) {
    let implicit = kind == Listener::ImplicitTls;
    // One for every config (reloads share it).
    let lifecycle = live.get().lifecycle.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = lifecycle.reached(Phase::Closing) => return,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = live.get();
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        if let Some(p) = shared
            .options
            .proxy
            .as_ref()
            .filter(|p| p.trusts(peer.ip()))
        {
            // The header comes first, within its timeout, in a task of
            // its own so that a slow balancer holds up no one else;
            // tracked as the sessions are, so that the drain waits for a
            // header still on its way (its session is told the server is
            // shutting down) instead of exiting under it.
            let limit = p.timeout;
            let tracker = sessions.clone();
            sessions.spawn(async move {
                let sessions = tracker;
                let mut stream = stream;
                match crate::proxy::read_header(&mut stream, limit).await {
                    Ok(portcullis_proto::proxy::Header::Proxied {
                        source,
                        destination,
                    }) => {
                        let ends =
                            Endpoints::proxied(source, destination, local, peer.ip()).on(kind);
                        admit(shared, stream, ends, &sessions);
                    }
                    Ok(portcullis_proto::proxy::Header::Unknown) => {
                        // A client the balancer could not describe: served
                        // with the connection's own addresses (the PROXY
                        // specification, 2.1 and 2.2), so bans, limits and
                        // logs see the balancer.
                        info!(
                            balancer = %peer,
                            "PROXY protocol header without a client address (v1 UNKNOWN, or v2 from a non-IP socket): the client address is unknown; served with the connection's own addresses"
                        );
                        admit(
                            shared,
                            stream,
                            Endpoints::unknown(peer, local).on(kind),
                            &sessions,
                        );
                    }
                    Ok(portcullis_proto::proxy::Header::Local) => {
                        // The balancer's health check: greeted, not a session.
                        debug!(balancer = %peer, "PROXY protocol LOCAL connection (health check)");
                        if !implicit {
                            greet_and_close(stream, &shared.options.banner).await;
                        }
                    }
                    Err(e) => info!(
                        balancer = %peer,
                        error = %e,
                        "connection from a proxy_protocol.from address closed: no valid PROXY protocol header"
                    ),
                }
            });
            continue;
        }
        admit(
            shared,
            stream,
            Endpoints::direct(peer, local).on(kind),
            &sessions,
        );
    }
}

/// Admit a connection (421 if refused: limits, bans, networks) and start
/// its session, tracked so that the drain can wait for it, with a span
/// that names the client.
fn admit(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    ends: Endpoints,
    sessions: &TaskTracker,
) {
    let (peer, implicit) = (ends.peer, ends.listener == Listener::ImplicitTls);
    let permit = match shared.guard.admit(ends.peer_ip) {
        Ok(p) => p,
        Err(refusal) => {
            shared.events.emit(crate::events::Event::Refused {
                peer,
                reason: &refusal,
            });
            // Tracked: the drain waits for the refusal (bounded) to go out.
            sessions.spawn(refuse(stream, refusal, implicit));
            return;
        }
    };
    // Replies are small and a client waits for each: send them at once.
    let _ = stream.set_nodelay(true);
    let id = crate::events::SessionId::random();
    let span = info_span!("session", id = %id, peer = %peer, user = tracing::field::Empty);
    // It ends itself when the drain reaches it (session/driver.rs).
    //
    // Chained with `then`, not written as one async block: an async
    // block keeps everything it captured (the stream, the endpoints, the
    // permit) for its whole life even once moved into the session, and
    // every idle session would pay for the copies (rust-lang/rust issue
    // 62958). Here the first step's state is dropped when the session
    // starts, and the session's future is the task's.
    use futures_util::future::{Either, FutureExt};
    let fleet_check = {
        let shared = shared.clone();
        let ip = ends.peer_ip;
        // The fleet's count of this address (a round trip to Redis, here
        // rather than in the accept loop). Boxed: its state is not kept
        // beside the session's.
        Box::pin(async move { shared.guard.admit_fleet(ip).await })
    };
    let session = fleet_check.then(move |admitted| match admitted {
        Ok(fleet) => Either::Left(
            start_session(shared, stream, ends, id, implicit).map(move |()| drop((permit, fleet))),
        ),
        Err(refusal) => {
            shared.events.emit(crate::events::Event::Refused {
                peer,
                reason: &refusal,
            });
            Either::Right(Box::pin(refuse(stream, refusal, implicit)))
        }
    });
    sessions.spawn(session.instrument(span));
}

/// A 220 and the end of the connection (a balancer's health check).
async fn greet_and_close(mut stream: tokio::net::TcpStream, banner: &str) {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    portcullis_proto::reply::Reply::new(portcullis_proto::reply::ReplyCode::READY, banner)
        .encode(&mut out);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Tell a refused client why (421, RFC 959 section 4.2, chosen with the
/// session's errors in `session/error.rs`) and close. On an
/// implicit-TLS port a plain-text reply would only confuse the client's TLS
/// stack, so the connection is just closed.
async fn refuse(
    mut stream: tokio::net::TcpStream,
    refusal: crate::limits::Refusal,
    implicit: bool,
) {
    use tokio::io::AsyncWriteExt;
    if !implicit {
        let mut out = Vec::new();
        crate::session::refusal_reply(refusal).encode(&mut out);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}

/// Run one session; on an implicit-TLS listener, handshake first (bounded by
/// `tls.handshake_timeout`, so a silent or plain-text client cannot hold
/// the task).
///
/// Not an `async fn`: a plain session's future is its driver's alone,
/// without this function's arguments and the TLS branch's state beside it
/// (an implicit-TLS session's is boxed instead).
fn start_session(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    ends: crate::endpoints::Endpoints,
    id: crate::events::SessionId,
    implicit: bool,
) -> impl std::future::Future<Output = ()> + Send {
    use futures_util::future::Either;
    let tls = match (&shared.tls, implicit) {
        (Some(tls), true) => tls.clone(),
        _ => return Either::Left(Session::plain(shared, ends, id, stream).run()),
    };
    Either::Right(Box::pin(async move {
        let config = tls.session_configs(ends.peer_ip);
        let limit = tls.options.handshake_timeout;
        // Boxed: the handshake's state is not kept in the session's
        // future for the session's whole life.
        match Box::pin(crate::tls::ControlTls::accept(
            config.control(),
            stream,
            limit,
        ))
        .await
        {
            Ok(s) => {
                Session::implicit_tls(shared, ends, id, s, config)
                    .run()
                    .await
            }
            Err(crate::tls::TlsError::AcmeValidation) => tracing::info!(
                peer = %ends.peer,
                "ACME TLS-ALPN-01 validation handshake answered and closed"
            ),
            Err(e) => match crate::tls::certificate_refused(&e) {
                Some(why) => tracing::info!(
                    peer = %ends.peer,
                    reason = why,
                    "client certificate refused: TLS handshake ended with an alert"
                ),
                None => tracing::info!(error = %e, "implicit TLS connection refused"),
            },
        }
    }))
}
