//! The sessions of a whole fleet (`[cluster]`), for the control API: a
//! listing or a kick asked on any node is put to every live node over the
//! cluster's bus, and each node answers from its own [`LocalRegistry`].
//! Nothing about live sessions is copied into Redis: a listing is always
//! the owners' word, at the time of the question.
//!
//! The exchange: the asker publishes a [`Request`] (a random id, its node
//! name, what it wants) on the bus channel `registry`; every other node
//! answers on `registry.reply.{asker}` with the same id. The asker waits
//! for the nodes that [`Cluster::nodes`] names as live, at most twice
//! `cluster.timeout`; a node that did not answer by then is named as
//! missing. Without `[cluster]`, or while Redis is down, the answer is
//! this node's own sessions, marked partial with a note saying why.
//!
//! Session ids are 64 random bits (`events::SessionId`): in a fleet two
//! sessions share one with odds of about n²/2⁶⁵ (n sessions at once), so a
//! kick by id goes to every node and the one holding it acts.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use super::{LocalRegistry, SessionRegistry};
use crate::cluster::Cluster;
use crate::events::SessionId;

/// The bus channel the questions go on.
const REQUESTS: &str = "registry";

/// Why an answer holds this node's sessions only.
const REDIS_DOWN: &str = "Redis is unavailable: only this node's sessions (other nodes not asked)";

/// The bus channel where `node`'s answers come.
fn reply_channel(node: &str) -> String {
    format!("registry.reply.{node}")
}

/// A question to the fleet's nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    /// The asking node's name: where the answer goes.
    from: String,
    #[serde(flatten)]
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    List,
    Kick { session: String },
    KickUser { user: String },
}

/// One node's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    node: String,
    #[serde(default)]
    sessions: Vec<Value>,
    #[serde(default)]
    kicked: usize,
}

/// How complete an answer is.
#[derive(Debug, Default, Serialize)]
pub struct Coverage {
    /// Some node's sessions may be left out (see `missing` and `note`).
    pub partial: bool,
    /// Live nodes that did not answer in time.
    pub missing: Vec<String>,
    /// Why the answer is partial, for people.
    pub note: Option<String>,
}

/// `GET /v1/sessions`.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Every session, oldest first, each with its `node`.
    pub sessions: Vec<Value>,
    #[serde(flatten)]
    pub coverage: Coverage,
}

/// A kick's outcome.
#[derive(Debug, Serialize)]
pub struct Kicked {
    pub kicked: usize,
    /// The node that held the session (a kick by id that found it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(flatten)]
    pub coverage: Coverage,
}

/// What nodes answered one question.
#[derive(Debug, Default)]
struct Asked {
    replies: Vec<Reply>,
    coverage: Coverage,
}

/// The control plane's view of the sessions: this node's, and with
/// `[cluster]` every live node's.
#[derive(Debug)]
pub struct Sessions {
    local: Arc<LocalRegistry>,
    node: Arc<str>,
    cluster: Option<Arc<Cluster>>,
}

impl Sessions {
    pub fn new(local: Arc<LocalRegistry>, node: Arc<str>, cluster: Option<Arc<Cluster>>) -> Self {
        Sessions {
            local,
            node,
            cluster,
        }
    }

    /// Answer the other nodes' questions for the process's life (with
    /// `[cluster]`; nothing to do without).
    pub fn serve(local: Arc<LocalRegistry>, cluster: Option<Arc<Cluster>>) {
        if let Some(c) = cluster {
            tokio::spawn(answer_loop(local, c));
        }
    }

    /// Every session of every live node, oldest first.
    pub async fn list(&self) -> Listing {
        let mut sessions = local_values(&*self.local, &self.node);
        let asked = match &self.cluster {
            Some(c) => ask(c, Op::List, |_| false).await,
            None => Asked::default(),
        };
        for r in asked.replies {
            sessions.extend(r.sessions);
        }
        // RFC 3339 at one precision, in UTC: the text sorts as the time.
        sessions.sort_by(|a, b| {
            let key = |v: &Value| {
                (
                    v["since"].as_str().map(str::to_owned),
                    v["node"].to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
        Listing {
            sessions,
            coverage: asked.coverage,
        }
    }

    /// Close the session `id`, on whichever node holds it.
    pub async fn kick(&self, id: SessionId) -> Kicked {
        if self.local.kick(id) {
            return Kicked {
                kicked: 1,
                node: Some(self.node.to_string()),
                coverage: Coverage::default(),
            };
        }
        let Some(c) = &self.cluster else {
            return Kicked {
                kicked: 0,
                node: None,
                coverage: Coverage::default(),
            };
        };
        let asked = ask(
            c,
            Op::Kick {
                session: id.to_string(),
            },
            |r| r.kicked > 0,
        )
        .await;
        let owner = asked.replies.iter().find(|r| r.kicked > 0);
        Kicked {
            kicked: owner.map_or(0, |r| r.kicked),
            node: owner.map(|r| r.node.clone()),
            coverage: if owner.is_some() {
                Coverage::default()
            } else {
                asked.coverage
            },
        }
    }

    /// Close every session logged in as `user`, on every live node.
    pub async fn kick_user(&self, user: &str) -> Kicked {
        let mut kicked = self.local.kick_user(user);
        let asked = match &self.cluster {
            Some(c) => {
                ask(
                    c,
                    Op::KickUser {
                        user: user.to_owned(),
                    },
                    |_| false,
                )
                .await
            }
            None => Asked::default(),
        };
        kicked += asked.replies.iter().map(|r| r.kicked).sum::<usize>();
        Kicked {
            kicked,
            node: None,
            coverage: asked.coverage,
        }
    }
}

/// This node's sessions as JSON, each with its `node`.
fn local_values(local: &dyn SessionRegistry, node: &str) -> Vec<Value> {
    local
        .list()
        .into_iter()
        .filter_map(|s| {
            let mut v = serde_json::to_value(s).ok()?;
            v.as_object_mut()?
                .insert("node".to_owned(), Value::String(node.to_owned()));
            Some(v)
        })
        .collect()
}

/// Put `op` to the other live nodes and gather their answers until each
/// has answered, `enough` says a reply settles it, or twice
/// `cluster.timeout` has passed.
async fn ask(c: &Cluster, op: Op, mut enough: impl FnMut(&Reply) -> bool) -> Asked {
    let mut asked = Asked::default();
    let down = |mut a: Asked| {
        a.coverage.partial = true;
        a.coverage.note = Some(REDIS_DOWN.to_owned());
        a
    };
    let Ok(nodes) = c.nodes().await else {
        return down(asked);
    };
    let mut waiting: BTreeSet<String> = nodes.into_iter().filter(|n| n != c.node()).collect();
    if waiting.is_empty() {
        return asked;
    }
    let id: u64 = rand::random();
    // Listening before asking: no answer can come before it.
    let mut answers = c.subscribe(&reply_channel(c.node()));
    let request = Request {
        id,
        from: c.node().to_owned(),
        op,
    };
    let Ok(payload) = serde_json::to_vec(&request) else {
        return down(asked);
    };
    if c.publish(REQUESTS, payload).await.is_err() {
        return down(asked);
    }
    let deadline = tokio::time::Instant::now() + c.timeout() * 2;
    let mut answered = BTreeSet::new();
    while !waiting.is_empty() {
        let bytes = match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Ok(b)) => b,
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        };
        let Ok(reply) = serde_json::from_slice::<Reply>(&bytes) else {
            continue;
        };
        // Another question's answer, or a second answer from one node.
        if reply.id != id || !answered.insert(reply.node.clone()) {
            continue;
        }
        waiting.remove(&reply.node);
        let settled = enough(&reply);
        asked.replies.push(reply);
        if settled {
            return asked;
        }
    }
    if !waiting.is_empty() {
        asked.coverage.partial = true;
        asked.coverage.missing = waiting.into_iter().collect();
        asked.coverage.note = Some(format!(
            "no answer within {} from: {}",
            humantime::format_duration(c.timeout() * 2),
            asked.coverage.missing.join(", ")
        ));
    }
    asked
}

/// Answer each question from another node with this node's own
/// registry, one at a time (each answer a publish bounded by
/// `cluster.timeout`).
async fn answer_loop(local: Arc<LocalRegistry>, c: Arc<Cluster>) {
    let mut questions = c.subscribe(REQUESTS);
    loop {
        let bytes = match questions.recv().await {
            Ok(b) => b,
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "cluster: session questions came faster than answered; some went unanswered"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let request: Request = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "cluster: a session question not understood");
                continue;
            }
        };
        if request.from == c.node() {
            continue;
        }
        let mut reply = Reply {
            id: request.id,
            node: c.node().to_owned(),
            sessions: Vec::new(),
            kicked: 0,
        };
        match &request.op {
            Op::List => reply.sessions = local_values(&*local, c.node()),
            Op::Kick { session } => {
                if SessionId::parse(session).is_some_and(|id| local.kick(id)) {
                    reply.kicked = 1;
                    info!(session = %session, by = %request.from, "control: session kicked at another node's request");
                }
            }
            Op::KickUser { user } => {
                reply.kicked = local.kick_user(user);
                if reply.kicked > 0 {
                    info!(user = %user, sessions = reply.kicked, by = %request.from, "control: user's sessions kicked at another node's request");
                }
            }
        }
        if let Ok(payload) = serde_json::to_vec(&reply) {
            let _ = c.publish(&reply_channel(&request.from), payload).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let r = Request {
            id: 7,
            from: "n1".into(),
            op: Op::KickUser {
                user: "alice".into(),
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"id":7,"from":"n1","op":"kick_user","user":"alice"}"#
        );
        let back: Request = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.op, Op::KickUser { user } if user == "alice"));
        let reply: Reply = serde_json::from_str(r#"{"id":7,"node":"n2","kicked":2}"#).unwrap();
        assert_eq!((reply.kicked, reply.sessions.len()), (2, 0));
    }

    #[tokio::test]
    async fn without_a_cluster_the_nodes_own_sessions_are_all() {
        let local = Arc::new(LocalRegistry::default());
        let reg = local.register(
            SessionId::random(),
            "127.0.0.1:5000".parse().unwrap(),
            crate::endpoints::Listener::Explicit,
            false,
        );
        reg.entry.user(Some("alice"));
        let s = Sessions::new(local.clone(), "n1".into(), None);
        let l = s.list().await;
        assert_eq!(l.sessions.len(), 1);
        assert_eq!(l.sessions[0]["node"], "n1");
        assert!(!l.coverage.partial);
        assert_eq!(s.kick(SessionId::random()).await.kicked, 0);
        let k = s.kick_user("alice").await;
        assert_eq!(k.kicked, 1);
        assert!(reg.entry.is_kicked());
    }
}
