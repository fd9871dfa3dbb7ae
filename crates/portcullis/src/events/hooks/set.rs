//! A reload's hooks: made first ([`Hooks::plan`], where anything that
//! can fail fails), then put in force ([`Hooks::install`]), which keeps
//! the running hooks whose entry did not change and retires the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use super::{Action, Hook, Hooks, Payload, Poster, Queued};
use crate::options::{EventsOptions, HookAction};

/// The hooks a config names, made but not yet in force ([`Hooks::plan`]).
pub struct Plan {
    entries: Vec<Entry>,
}

enum Entry {
    /// Unchanged: the running hook goes on.
    Kept(Arc<Hook>),
    /// New or changed: started by [`Hooks::install`], with what a
    /// previous run left in its spool.
    New {
        hook: Arc<Hook>,
        rx: mpsc::Receiver<Queued>,
        left: Vec<Payload>,
    },
}

impl Hooks {
    /// Make the hooks `options` names without putting them in force:
    /// everything that can fail (a CA file, the spool's directory) fails
    /// here, so that a reload refused later changes nothing. An entry equal
    /// to a running hook's (with the same spool) is that hook.
    pub fn plan(&self, options: &EventsOptions) -> Result<Plan, String> {
        let current = self.read().clone();
        let retired: Vec<Arc<Hook>> = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut entries = Vec::new();
        for o in &options.hooks {
            let dir = options.spool_dir.as_ref().map(|root| root.join(&o.name));
            let same_spool = |h: &Hook| match (&h.spool, &dir) {
                (None, None) => true,
                (Some(s), Some(d)) => s.dir() == d && s.syncs() == options.spool_sync,
                _ => false,
            };
            if let Some(h) = current.iter().find(|h| h.options == *o && same_spool(h)) {
                entries.push(Entry::Kept(h.clone()));
                continue;
            }
            let action = match &o.action {
                HookAction::Http(h) => Action::Http(Box::new(Poster::new(
                    h.clone(),
                    &format!("events.hooks.{}", o.name),
                )?)),
                HookAction::Command(c) => {
                    Action::Command(crate::events::command::Runner::new(c.clone()))
                }
            };
            let spool = match &options.spool_dir {
                None => None,
                Some(root) => Some(
                    crate::events::spool::Spool::open(root, &o.name, options.spool_sync).map_err(
                        |e| format!("events.spool_dir: {}: {e}", root.join(&o.name).display()),
                    )?,
                ),
            };
            // What a running or retired hook holds in this directory is
            // its own to deliver: only a directory no hook uses is read.
            let in_use = |d: &std::path::Path| {
                current
                    .iter()
                    .chain(&retired)
                    .any(|h| h.spool.as_ref().is_some_and(|s| s.dir() == d))
            };
            let left = match &spool {
                Some(s) if !in_use(s.dir()) => s.load(),
                _ => Vec::new(),
            };
            // Room for what a previous run left, beyond the usual queue.
            let (tx, rx) = mpsc::channel(o.queue + left.len());
            let hook = Arc::new(Hook {
                spool,
                options: o.clone(),
                action,
                queue: tx,
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
                retired: AtomicBool::new(false),
                report: self.report.clone(),
            });
            entries.push(Entry::New { hook, rx, left });
        }
        Ok(Plan { entries })
    }

    /// Put `plan` in force: its new hooks start; the running hooks it does
    /// not keep are retired (they deliver what they hold, then end).
    pub fn install(&self, plan: Plan) {
        let hooks: Vec<Arc<Hook>> = plan
            .entries
            .iter()
            .map(|e| match e {
                Entry::Kept(h) | Entry::New { hook: h, .. } => h.clone(),
            })
            .collect();
        let old = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *current, hooks.clone().into())
        };
        let (mut started, mut kept) = (0, 0);
        for e in plan.entries {
            let Entry::New { hook, rx, left } = e else {
                kept += 1;
                continue;
            };
            started += 1;
            (self.declare)(&hook.options.name);
            if !left.is_empty() {
                tracing::info!(
                    hook = hook.options.name.as_str(),
                    events = left.len(),
                    "undelivered events from the spool queued again"
                );
            }
            for p in left {
                hook.queue_up(Arc::new(p));
            }
            tokio::spawn(hook.clone().work(rx));
        }
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        retired.retain(|h| h.pending.load(Ordering::SeqCst) > 0);
        let mut gone = 0;
        for h in old.iter() {
            if !hooks.iter().any(|n| Arc::ptr_eq(n, h)) {
                gone += 1;
                h.retire();
                retired.push(h.clone());
            }
        }
        if gone > 0 || !old.is_empty() {
            tracing::info!(
                kept,
                started,
                retired = gone,
                "[[events.hooks]] in force: retired hooks deliver what they had queued"
            );
        }
    }
}
