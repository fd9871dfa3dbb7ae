//! `[[events.hooks]]`: a sink of the events that hands each one a hook
//! hears to that hook's bounded queue, so that a session never waits for
//! a receiver; each hook's worker delivers them, at most `concurrency` at
//! once, retrying with exponential backoff up to `max_attempts` and
//! `max_age`. Each step (queued, delivered, retried, dropped) is itself an
//! event ([`Event::Hook`]): the metrics count it, the log shows drops.
//! At shutdown the server waits for the queues within the grace
//! ([`Hooks::drain`]); what is still undelivered then is dropped, counted
//! and logged.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, Semaphore};

mod ask;
mod set;
pub use ask::Answer;

use super::http::Poster;
use super::payload::{self, Payload};
use super::{Direction, Event, EventSink, Events, HookStep, Origin, SessionId};
use crate::options::{EventKind, EventsOptions, HookOptions};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Every hook, as one sink, for the life of the process. A reload
/// replaces the set of hooks in force ([`Hooks::plan`], [`Hooks::install`]):
/// an entry that did not change keeps its hook (queue, worker, spool); one
/// that changed or went is retired, and its worker delivers what it had
/// queued (with its old settings) before it ends; new and changed entries
/// hear the events from then on.
pub struct Hooks {
    node: Arc<str>,
    /// Where the steps are reported (the log and the metrics).
    report: Arc<Events>,
    /// Told the name of each hook that starts (the metrics export its
    /// series at 0).
    declare: Box<dyn Fn(&str) + Send + Sync>,
    /// The hooks in force. An event is handed out under the read lock, and
    /// a reload swaps the set under the write lock, so that a hook it
    /// retires gets no event after the swap.
    current: RwLock<Arc<[Arc<Hook>]>>,
    /// Hooks a reload replaced or removed, until their queues are empty.
    retired: Mutex<Vec<Arc<Hook>>>,
    /// Uploads whose intent is journalled ([`Hooks::intend`]), by session
    /// and virtual path (a session runs one transfer at a time): the id
    /// their event takes, and the hooks that hold the intent.
    intents: Mutex<std::collections::HashMap<(SessionId, String), Intent>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("node", &self.node)
            .field("current", &*self.read())
            .finish_non_exhaustive()
    }
}

/// An upload's intent journalled in some hooks' spools.
#[derive(Debug)]
struct Intent {
    id: String,
    holders: Vec<Arc<Hook>>,
}

/// One hook: its queue and what is under way.
struct Hook {
    options: HookOptions,
    action: Action,
    queue: mpsc::Sender<Queued>,
    /// Events queued and not yet delivered or dropped.
    pending: AtomicUsize,
    /// Told whenever `pending` reaches 0, and when the hook is retired.
    idle: Notify,
    /// Replaced by a reload: its worker ends once `pending` is 0.
    retired: AtomicBool,
    /// Where the steps are reported (the log and the metrics; not the
    /// hooks).
    report: Arc<Events>,
    /// `events.spool_dir`'s directory for this hook.
    spool: Option<super::spool::Spool>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.options.name)
            .finish_non_exhaustive()
    }
}

enum Action {
    Http(Box<Poster>),
    Command(super::command::Runner),
}

/// An event waiting in a hook's queue.
struct Queued {
    payload: Arc<Payload>,
    born: Instant,
}

impl Hooks {
    /// The hooks of `options`, each with its worker task (none at all
    /// without hooks; a reload may add some). `report` hears each step;
    /// `declare` each hook's name as it starts.
    pub fn start(
        options: &EventsOptions,
        node: &str,
        report: Arc<Events>,
        declare: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Arc<Hooks>, String> {
        let hooks = Arc::new(Hooks {
            node: node.into(),
            report,
            declare,
            current: RwLock::new(Arc::new([])),
            retired: Default::default(),
            intents: Default::default(),
        });
        let plan = hooks.plan(options)?;
        hooks.install(plan);
        Ok(hooks)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Arc<[Arc<Hook>]>> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hooks {
    /// Does an upload need its intent journalled: a hook with a spool
    /// hears uploads? (Without, an upload costs no file operation.)
    pub fn journals_uploads(&self) -> bool {
        self.read()
            .iter()
            .any(|h| h.spool.is_some() && h.options.on.contains(&EventKind::Upload))
    }

    /// Before an upload's commit: journal its intent in the spool of each
    /// hook that hears uploads and whose `users` and `paths` filters match
    /// (`min_size` is not known yet), so that a crash between the commit
    /// and the event's journal cannot lose it. The transfer's event, which
    /// follows whatever the outcome, resolves it (see [`Hooks::offer`]).
    pub fn intend(&self, origin: &Origin, user: &str, path: &str) {
        let p = payload::intent(origin, user, path);
        let mut holders = Vec::new();
        for hook in self.read().iter() {
            let Some(spool) = &hook.spool else {
                continue;
            };
            if !hook.options.on.contains(&EventKind::Upload) || !hook.matches(&p) {
                continue;
            }
            match spool.write_intent(&p) {
                Ok(()) => holders.push(hook.clone()),
                Err(e) => {
                    tracing::warn!(hook = hook.options.name.as_str(), id = p.id.as_str(), error = %e, "cannot journal an upload's intent in events.spool_dir")
                }
            }
        }
        if !holders.is_empty() {
            let mut intents = self.intents.lock().unwrap_or_else(|e| e.into_inner());
            intents.insert(
                (origin.session, path.to_owned()),
                Intent { id: p.id, holders },
            );
        }
    }

    /// Hand `event` to every hook that hears it. An upload's event takes
    /// the id of its intent (a committed one) and is journalled before the
    /// intent is removed.
    fn offer(&self, origin: Option<&Origin>, event: &Event<'_>) {
        let intent = match (origin, event) {
            (Some(o), Event::Transfer(t)) if t.direction == Direction::Upload => {
                let mut intents = self.intents.lock().unwrap_or_else(|e| e.into_inner());
                intents.remove(&(o.session, t.path.clone()))
            }
            _ => None,
        };
        if let Some(kind) = payload::kind_of(event) {
            let hooks = self.read();
            let id = match kind {
                EventKind::Upload => intent.as_ref().map(|i| i.id.clone()),
                _ => None,
            };
            let mut built: Option<Arc<Payload>> = None;
            for hook in hooks.iter() {
                if !hook.options.on.contains(&kind) {
                    continue;
                }
                let p = built
                    .get_or_insert_with(|| {
                        Arc::new(payload::build(kind, &self.node, origin, event, id.clone()))
                    })
                    .clone();
                if hook.matches(&p) {
                    hook.enqueue(p);
                }
            }
        }
        if let Some(i) = intent {
            for h in i.holders {
                if let Some(spool) = &h.spool {
                    spool.remove_intent(&i.id);
                }
            }
        }
    }

    /// Wait until every queue is empty and every delivery done, at most
    /// `within`; what is still undelivered then is dropped (counted and
    /// logged, one line per hook with the number).
    pub async fn drain(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let current = self.read().clone();
        for hook in current.iter().chain(&retired) {
            loop {
                let idle = hook.idle.notified();
                if hook.pending.load(Ordering::SeqCst) == 0 {
                    break;
                }
                if tokio::time::timeout_at(deadline, idle).await.is_err() {
                    break;
                }
            }
            let left = hook.pending.swap(0, Ordering::SeqCst);
            if hook.spool.is_some() {
                if left > 0 {
                    tracing::warn!(
                        hook = hook.options.name.as_str(),
                        events = left,
                        "still undelivered when the shutdown grace ended: kept in the spool for the next start"
                    );
                }
                continue;
            }
            for _ in 0..left {
                hook.step(
                    HookStep::Dropped,
                    "",
                    Some("still undelivered when the shutdown grace ended"),
                );
            }
        }
    }
}

impl EventSink for Hooks {
    fn event(&self, event: &Event<'_>) {
        self.offer(None, event);
    }

    fn event_in(&self, origin: &Origin, event: &Event<'_>) {
        self.offer(Some(origin), event);
    }
}

impl Hook {
    /// Do the hook's filters let `p` through? `min_size` is about
    /// transfers; other events pass it.
    fn matches(&self, p: &Payload) -> bool {
        let f = &self.options.filter;
        if !f.users.is_empty() && !p.user.as_ref().is_some_and(|u| f.users.contains(u)) {
            return false;
        }
        if let Some(globs) = &f.paths {
            if !p.path.as_ref().is_some_and(|path| globs.is_match(path)) {
                return false;
            }
        }
        match (f.min_size, p.size) {
            (Some(min), Some(size)) => size >= min,
            _ => true,
        }
    }

    /// Journal (with a spool) and queue a new event. Runs on the
    /// session's task: the journal is written before its reply.
    fn enqueue(&self, payload: Arc<Payload>) {
        if let Some(s) = &self.spool {
            if let Err(e) = s.write(&payload) {
                tracing::warn!(hook = self.options.name.as_str(), id = payload.id.as_str(), error = %e, "cannot journal the event in events.spool_dir; kept in memory only");
            }
        }
        self.queue_up(payload);
    }

    fn queue_up(&self, payload: Arc<Payload>) {
        let id = payload.id.clone();
        self.pending.fetch_add(1, Ordering::SeqCst);
        let queued = Queued {
            payload,
            born: Instant::now(),
        };
        match self.queue.try_send(queued) {
            Ok(()) => self.step(HookStep::Queued, &id, None),
            Err(_) => {
                self.step(
                    HookStep::Dropped,
                    &id,
                    Some("the hook's queue is full (events.hooks.queue)"),
                );
                self.forget(&id);
                self.done();
            }
        }
    }

    fn step(&self, step: HookStep, id: &str, detail: Option<&str>) {
        self.report.emit(Event::Hook {
            hook: &self.options.name,
            step,
            id,
            detail,
        });
    }

    /// Out of the spool: delivered or dropped.
    fn forget(&self, id: &str) {
        if let Some(s) = &self.spool {
            s.remove(id);
        }
    }

    /// One event finished (delivered or dropped).
    fn done(&self) {
        // Not below 0: the drain may have counted it as dropped already.
        let was = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if was == Ok(1) {
            self.idle.notify_waiters();
        }
    }

    /// A reload replaced it: no event comes any more.
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.idle.notify_waiters();
    }

    /// Until the hook is retired and has nothing left to deliver.
    async fn finished(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.retired.load(Ordering::SeqCst) && self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Take events from the queue, at most `concurrency` under way, until
    /// the hook is retired and its last event delivered or dropped. A
    /// slot is taken before the event: one taken first would wait for
    /// the slot outside the queue, and the queue would hold `queue` + 1.
    async fn work(self: Arc<Self>, mut rx: mpsc::Receiver<Queued>) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let q = tokio::select! {
                q = rx.recv() => match q {
                    Some(q) => q,
                    None => return,
                },
                () = self.finished() => return,
            };
            let hook = self.clone();
            tokio::spawn(async move {
                hook.deliver(q).await;
                hook.done();
                drop(slot);
            });
        }
    }

    /// Attempts until one succeeds, or `max_attempts` or `max_age` is
    /// reached; then out of the spool, and the step reported.
    async fn deliver(&self, q: Queued) {
        let (step, detail) = self.attempts(&q).await;
        self.forget(&q.payload.id);
        self.step(step, &q.payload.id, detail.as_deref());
    }

    async fn attempts(&self, q: &Queued) -> (HookStep, Option<String>) {
        let id = &q.payload.id;
        let mut delay = self.options.retry_delay;
        let mut attempt = 1;
        loop {
            let result = match &self.action {
                Action::Http(p) => p.post(&q.payload.body).await,
                Action::Command(r) => r.run(&q.payload).await,
            };
            let error = match result {
                Ok(()) => return (HookStep::Delivered, None),
                Err(e) => e,
            };
            if attempt >= self.options.max_attempts {
                let why = format!("{error}; {attempt} attempts made (max_attempts)");
                return (HookStep::Dropped, Some(why));
            }
            if q.born.elapsed() + delay > self.options.max_age {
                let why = format!("{error}; older than max_age after {attempt} attempts");
                return (HookStep::Dropped, Some(why));
            }
            self.step(HookStep::Retried, id, Some(&error));
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}
