//! What a hook delivers: the JSON document of one event (`id`, `event`,
//! `time`, `node`, `session`, `user`, `client`, `path`, `target`, `size`,
//! `duration_ms`, `outcome`), made once per event whichever hooks hear it,
//! with the fields the hooks' filters read.

use hyper::body::Bytes;

use super::{Direction, Event, Origin};
use crate::options::EventKind;

/// One event as the hooks see it.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Its own id (32 hex digits): a receiver deduplicates by it.
    pub id: String,
    pub user: Option<String>,
    pub path: Option<String>,
    pub size: Option<u64>,
    /// The JSON document.
    pub body: Bytes,
    /// Its fields as `PORTCULLIS_FIELD` variables, for a command.
    pub env: Vec<(String, String)>,
}

/// The kind of hook event `event` is, if any: only what really happened
/// (a file operation that succeeded, an upload committed under its final
/// name) or a failure that a hook may be told of.
pub fn kind_of(event: &Event<'_>) -> Option<EventKind> {
    Some(match event {
        Event::LoggedIn { .. } => EventKind::Login,
        Event::LoginFailed { .. } => EventKind::LoginFailed,
        Event::Ended { user: Some(_), .. } => EventKind::Logout,
        Event::Banned { .. } => EventKind::Ban,
        Event::FileOp { verb, code, .. } if code.0 / 100 == 2 => match *verb {
            "DELE" => EventKind::Delete,
            "RMD" => EventKind::Rmdir,
            "MKD" => EventKind::Mkdir,
            "RNTO" => EventKind::Rename,
            _ => return None,
        },
        Event::Transfer(t) => match (t.direction, &t.outcome) {
            (Direction::Upload, Ok(())) => EventKind::Upload,
            (Direction::Upload, Err(_)) => EventKind::UploadFailed,
            (Direction::Download, Ok(())) => EventKind::Download,
            _ => return None,
        },
        _ => return None,
    })
}

/// The question of a pre-action hook (`pre_upload`, ...): its payload,
/// with the user and the virtual path.
pub fn question(kind: EventKind, origin: &Origin, user: &str, path: &str) -> Payload {
    let (id, mut doc) = head(kind, &origin.node, Some(origin), None);
    doc.insert("user".into(), user.into());
    doc.insert("path".into(), path.into());
    if let Some(o) = object(Some(origin), Some(path)) {
        doc.insert("object".into(), o.into());
    }
    finish(id, doc, Some(user.to_owned()), Some(path.to_owned()), None)
}

/// The object's URL of `path` on an object-store root: the root's URL
/// followed by the virtual path.
fn object(origin: Option<&Origin>, path: Option<&str>) -> Option<String> {
    let root = origin?.object_root.as_deref()?;
    Some(format!("{}{}", root.trim_end_matches('/'), path?))
}

/// An upload's intent (`events.spool_dir`), journalled before its
/// commit: the upload event as far as it is known before the commit
/// (`id`, `event`, `time`, `node`, `session`, `client`, `user`, `path`,
/// `object`) with `"recovered": true`. Delivered as it is only when a
/// crash left it (the commit may or may not have happened); otherwise the
/// committed upload's event takes its `id` and replaces it.
pub fn intent(origin: &Origin, user: &str, path: &str) -> Payload {
    let (id, mut doc) = head(EventKind::Upload, &origin.node, Some(origin), None);
    doc.insert("user".into(), user.into());
    doc.insert("path".into(), path.into());
    if let Some(o) = object(Some(origin), Some(path)) {
        doc.insert("object".into(), o.into());
    }
    doc.insert("recovered".into(), true.into());
    finish(id, doc, Some(user.to_owned()), Some(path.to_owned()), None)
}

/// The fields every payload has; `id` is a new one unless given.
fn head(
    kind: EventKind,
    node: &str,
    origin: Option<&Origin>,
    id: Option<String>,
) -> (String, serde_json::Map<String, serde_json::Value>) {
    let id = id.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let mut doc = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        doc.insert(k.to_owned(), v);
    };
    put("id", id.clone().into());
    put("event", kind.name().into());
    put(
        "time",
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .into(),
    );
    put("node", origin.map_or(node, |o| &o.node).into());
    if let Some(o) = origin {
        put("session", o.session.to_string().into());
        put("client", o.client.to_string().into());
    }
    (id, doc)
}

/// The payload of `event`, of kind `kind` (from [`kind_of`]), with the
/// `id` of its intent if it had one (else a new one).
pub fn build(
    kind: EventKind,
    node: &str,
    origin: Option<&Origin>,
    event: &Event<'_>,
    id: Option<String>,
) -> Payload {
    let (id, mut doc) = head(kind, node, origin, id);
    let mut put = |k: &str, v: serde_json::Value| {
        doc.insert(k.to_owned(), v);
    };
    let (mut user, mut path, mut size) = (None, None, None);
    match event {
        Event::LoggedIn { user: u, .. } => user = Some(u.to_string()),
        Event::LoginFailed { user: u, peer, .. } => {
            user = Some(u.to_string());
            put("client", peer.ip().to_string().into());
        }
        Event::Ended { user: u, secs, .. } => {
            user = u.map(str::to_owned);
            put("duration_ms", ((secs * 1000.0) as u64).into());
        }
        Event::Banned { ip, secs } => {
            put("client", ip.to_string().into());
            put("ban_secs", (*secs).into());
        }
        Event::FileOp {
            user: u,
            path: p,
            target,
            code,
            ..
        } => {
            user = Some(u.to_string());
            path = Some(p.to_string());
            if let Some(t) = target {
                put("target", (*t).into());
            }
            put("code", code.0.into());
        }
        Event::Transfer(t) => {
            user = Some(t.user.clone());
            path = Some(t.path.clone());
            size = Some(t.bytes);
            put("client", t.peer.to_string().into());
            put("duration_ms", (t.duration.as_millis() as u64).into());
            put(
                "outcome",
                match &t.outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => e.clone(),
                }
                .into(),
            );
            if let Some(h) = &t.sha256 {
                put("sha256", h.clone().into());
            }
        }
        _ => {}
    }
    if let Some(u) = &user {
        put("user", u.clone().into());
    }
    if let Some(p) = &path {
        put("path", p.clone().into());
    }
    if let Some(o) = object(origin, path.as_deref()) {
        put("object", o.into());
    }
    if let Some(s) = size {
        put("size", s.into());
    }
    finish(id, doc, user, path, size)
}

/// A payload read back from the spool: its JSON document.
pub fn from_body(body: &[u8]) -> Option<Payload> {
    let serde_json::Value::Object(doc) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let id = doc.get("id")?.as_str()?.to_owned();
    let text = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let (user, path) = (text("user"), text("path"));
    let size = doc.get("size").and_then(|v| v.as_u64());
    Some(finish(id, doc, user, path, size))
}

fn finish(
    id: String,
    doc: serde_json::Map<String, serde_json::Value>,
    user: Option<String>,
    path: Option<String>,
    size: Option<u64>,
) -> Payload {
    let env = doc
        .iter()
        .map(|(k, v)| {
            // A NUL cannot be in an environment variable (the spawn would
            // fail at every attempt, and the event never be delivered): a
            // client can put one in its USER name. Written as `\0`; the
            // JSON on stdin keeps the value as it was.
            let value = match v {
                serde_json::Value::String(s) => s.replace('\0', "\\0"),
                other => other.to_string(),
            };
            (format!("PORTCULLIS_{}", k.to_ascii_uppercase()), value)
        })
        .collect();
    let body = Bytes::from(serde_json::Value::Object(doc).to_string());
    Payload {
        env,
        id,
        user,
        path,
        size,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_object_store_root_names_the_object() {
        let mut origin = Origin {
            node: "n1".into(),
            session: super::super::SessionId::random(),
            client: "192.0.2.7".parse().unwrap(),
            object_root: None,
        };
        let event = Event::FileOp {
            user: "alice",
            verb: "DELE",
            path: "/in/a b.csv",
            target: None,
            code: portcullis_proto::reply::ReplyCode::FILE_ACTION_OK,
        };
        let kind = kind_of(&event).unwrap();
        let local = build(kind, "n1", Some(&origin), &event, None);
        let doc: serde_json::Value = serde_json::from_slice(&local.body).unwrap();
        assert_eq!(doc["event"], "delete");
        assert_eq!(doc["node"], "n1");
        assert_eq!(doc["client"], "192.0.2.7");
        assert!(doc.get("object").is_none());
        origin.object_root = Some(Arc::from("s3://bucket/home/alice/"));
        let p = build(kind, "n1", Some(&origin), &event, None);
        let doc: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(doc["object"], "s3://bucket/home/alice/in/a b.csv");
        assert_ne!(p.id, local.id);
        assert!(p
            .env
            .contains(&("PORTCULLIS_PATH".into(), "/in/a b.csv".into())));
        // A NUL (a client's USER name can hold one) cannot reach the
        // environment, where it would make every spawn fail.
        let failed = Event::LoginFailed {
            user: "a\0b",
            peer: "192.0.2.7:2000".parse().unwrap(),
            reason: super::super::LoginFailure::Credentials(crate::auth::Denied::new(
                crate::auth::Decider::Config,
                crate::auth::Why::WrongPassword,
            )),
            detail: None,
        };
        if let Some(kind) = kind_of(&failed) {
            let p = build(kind, "n1", Some(&origin), &failed, None);
            assert!(p.env.iter().all(|(_, v)| !v.contains('\0')), "{:?}", p.env);
            assert!(p.env.contains(&("PORTCULLIS_USER".into(), "a\\0b".into())));
        } else {
            panic!("login_failed is a hook event");
        }
        // A refused operation is no hook event.
        let refused = Event::FileOp {
            user: "alice",
            verb: "DELE",
            path: "/x",
            target: None,
            code: portcullis_proto::reply::ReplyCode::FILE_UNAVAILABLE,
        };
        assert!(kind_of(&refused).is_none());
    }

    #[test]
    fn an_intent_is_a_recovered_upload_whose_id_the_event_takes() {
        let origin = Origin {
            node: "n1".into(),
            session: super::super::SessionId::random(),
            client: "192.0.2.7".parse().unwrap(),
            object_root: Some(Arc::from("s3://bucket/")),
        };
        let i = intent(&origin, "alice", "/in/x.csv");
        let doc: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
        assert_eq!(doc["event"], "upload");
        assert_eq!(doc["recovered"], true);
        assert_eq!(doc["path"], "/in/x.csv");
        assert_eq!(doc["object"], "s3://bucket/in/x.csv");
        assert!(doc.get("size").is_none());
        let back = from_body(&i.body).unwrap();
        assert_eq!(back.id, i.id);
        let event = Event::FileOp {
            user: "alice",
            verb: "DELE",
            path: "/in/x.csv",
            target: None,
            code: portcullis_proto::reply::ReplyCode::FILE_ACTION_OK,
        };
        let p = build(
            EventKind::Delete,
            "n1",
            Some(&origin),
            &event,
            Some(i.id.clone()),
        );
        assert_eq!(p.id, i.id);
        let doc: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(doc["id"], i.id.as_str());
        assert!(doc.get("recovered").is_none());
    }
}
