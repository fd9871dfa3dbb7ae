//! The pre-actions (`pre_upload`, `pre_download`, `pre_delete`): the
//! hooks in force asked synchronously, on the session's path, before the
//! operation; a refusal's text made safe for the 550.

use super::{payload, Action, Hooks, Origin, Payload};

/// The longest refusal text a hook's answer gives the client.
const MAX_REFUSAL: usize = 200;

/// What a pre-action hook answered.
pub enum Answer {
    Allow,
    /// Refused, with the text for the 550 (not yet sanitised).
    Refuse(String),
}

impl Hooks {
    /// Ask every hook of the pre-action `kind` whose filters match, in
    /// order, once each, bounded by its `timeout`: `Err` with the text
    /// (sanitised: one line of printable characters, at most 200) of the
    /// first that refuses, or that failed with `on_failure = "deny"`.
    pub async fn ask(
        &self,
        kind: crate::options::EventKind,
        origin: &Origin,
        user: &str,
        path: &str,
    ) -> Result<(), String> {
        let mut question: Option<Payload> = None;
        let hooks = self.read().clone();
        for hook in hooks.iter() {
            if !hook.options.on.contains(&kind) {
                continue;
            }
            let q = question.get_or_insert_with(|| payload::question(kind, origin, user, path));
            if !hook.matches(q) {
                continue;
            }
            let answer = match &hook.action {
                Action::Http(p) => p.ask(&q.body).await,
                Action::Command(r) => r.ask(q).await,
            };
            let name = hook.options.name.as_str();
            match answer {
                Ok(Answer::Allow) => {}
                Ok(Answer::Refuse(text)) => {
                    let text = sanitise(&text);
                    tracing::info!(hook = name, event = kind.name(), path, reason = %text, "refused by a hook");
                    return Err(text);
                }
                Err(e) if hook.options.allow_on_failure => {
                    tracing::warn!(hook = name, event = kind.name(), path, error = %e, "pre-action hook failed; allowed (on_failure = \"allow\")");
                }
                Err(e) => {
                    tracing::warn!(hook = name, event = kind.name(), path, error = %e, "pre-action hook failed; refused (on_failure = \"deny\")");
                    return Err(
                        "Refused: the server could not check this operation; try again later."
                            .to_owned(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// A hook's text made safe for a reply line: its first line, control
/// characters dropped, at most [`MAX_REFUSAL`] characters; a default when
/// nothing is left.
fn sanitise(text: &str) -> String {
    let line: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REFUSAL)
        .collect();
    match line.trim() {
        "" => "Refused by the server's policy.".to_owned(),
        t => t.to_owned(),
    }
}
