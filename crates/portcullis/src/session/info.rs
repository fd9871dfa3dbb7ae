//! Information family: FEAT, OPTS, HELP, STAT, SITE (RFC 959, RFC 2389).

use portcullis_proto::command::{OptsArg, SiteCommand, TransferType};
use portcullis_proto::listing::{self, FileKind, MLST_FACTS};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;
use portcullis_proto::verbs;

use super::error::SessionError;
use super::Core;

/// Most entries STAT on a directory sends over the control connection.
/// (The capabilities FEAT and HELP offer come from [`Core::capabilities`].)
const STAT_MAX_ENTRIES: usize = 2000;

impl Core {
    /// FEAT (RFC 2389 section 3), from the verb table: what the server
    /// and the account's storage offer.
    pub(super) fn feat(&self) -> Reply {
        verbs::feat(
            self.shared.tls.is_some(),
            &|c| self.offers(c),
            &self.mlst_facts,
            self.hash_algorithm,
        )
    }

    pub(super) fn opts(&mut self, arg: OptsArg) -> Reply {
        match arg {
            OptsArg::Utf8(true) => Reply::new(ReplyCode::OK, "UTF8 mode is always on."),
            OptsArg::Utf8(false) => Reply::new(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                "UTF8 mode cannot be switched off.",
            ),
            OptsArg::Mlst(facts) => {
                // RFC 3659 7.9: unknown facts are ignored; the reply lists the
                // facts now enabled.
                self.mlst_facts = MLST_FACTS
                    .iter()
                    .filter(|f| facts.iter().any(|g| g == *f))
                    .copied()
                    .collect::<Vec<_>>()
                    .into();
                let mut list = String::new();
                for f in self.mlst_facts.iter() {
                    list.push_str(f);
                    list.push(';');
                }
                Reply::new(ReplyCode::OK, format!("MLST OPTS {list}"))
            }
            OptsArg::Hash(opt) => self.opts_hash(opt),
            OptsArg::Other(what) => Reply::new(
                ReplyCode::BAD_ARGUMENT,
                format!("Option not understood: {what}."),
            ),
        }
    }

    /// HELP (RFC 959 section 4.1.3), from the verb table: what the
    /// account's storage cannot do is not offered.
    pub(super) fn help(&self, topic: Option<String>) -> Reply {
        verbs::help(topic.as_deref(), &|c| self.offers(c))
    }

    /// STAT without an argument (RFC 959 section 4.1.3): the session's status.
    pub(super) fn stat_server(&self) -> Reply {
        let user = match &self.login {
            Login::LoggedIn(u) => format!(" Logged in as {}", u.account.name),
            _ => " Not logged in".to_owned(),
        };
        let ty = match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        };
        let mut lines = vec![
            "portcullis status:".to_owned(),
            format!(" Connected from {}", self.ends.peer.ip()),
            user,
        ];
        lines.extend(self.quota_status());
        lines.extend([
            format!(" TYPE: {ty}, MODE: Stream, STRU: File"),
            self.security.describe().to_owned(),
            format!(
                " Idle timeout: {}s",
                self.shared.options.idle_timeout.as_secs()
            ),
            " No data connection".to_owned(),
            "End of status".to_owned(),
        ]);
        Reply::multi(ReplyCode::SYSTEM_STATUS, lines)
    }

    /// STAT path: a LIST of it over the control connection.
    pub(super) async fn stat_path(&self, arg: &str) -> Result<Reply, SessionError> {
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "read")?;
        let meta = ctx.storage.metadata(&path).await?;
        let now = std::time::SystemTime::now();
        let mut lines = vec![format!("Status of {path}:")];
        if meta.kind == FileKind::Dir {
            use futures_util::StreamExt;
            let mut entries = ctx.storage.list(&path).await?;
            let mut n = 0;
            while let Some(entry) = entries.next().await {
                let Ok(entry) = entry else { continue };
                if n == STAT_MAX_ENTRIES {
                    lines.push(format!(
                        " (listing truncated at {STAT_MAX_ENTRIES} entries; use LIST)"
                    ));
                    break;
                }
                lines.push(format!(
                    " {}",
                    listing::list_line(&entry.name, entry.target.as_deref(), &entry.meta, now)
                ));
                n += 1;
            }
        } else {
            // A link is shown as the link (`name -> target`), as LIST does.
            let e = ctx.storage.entry(&path).await?;
            let line = listing::list_line(&e.name, e.target.as_deref(), &e.meta, now);
            lines.push(format!(" {line}"));
        }
        lines.push("End of status".to_owned());
        Ok(Reply::multi(ReplyCode::FILE_STATUS, lines))
    }

    pub(super) async fn site(&self, sub: SiteCommand) -> Result<Reply, SessionError> {
        match sub {
            SiteCommand::Help => Ok(Reply::multi(
                ReplyCode::HELP,
                vec![
                    "SITE commands recognized:".to_owned(),
                    " CHMOD HELP QUOTA".to_owned(),
                    "Help OK.".to_owned(),
                ],
            )),
            SiteCommand::Chmod { mode, path } => self.chmod(mode, &path).await,
            SiteCommand::Quota => self.site_quota().await,
            SiteCommand::Other(sub) => Ok(Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                format!("SITE {sub} not implemented."),
            )),
        }
    }
}
