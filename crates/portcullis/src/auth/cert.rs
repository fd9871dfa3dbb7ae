//! Whether a client certificate belongs to an account: one decision,
//! asked by the session at login for every back end's account and by the
//! config users' back end for `password_with_cert = "optional"`.
//!
//! A certificate reaches here verified (the TLS layer refused any other
//! at the handshake); what is left is whose it is: its SHA-256
//! fingerprint listed in `tls_client_cert_fingerprints`, or its subject
//! CN (`tls_client_cert_match = "cn"`, the default) or one of its SAN
//! e-mail addresses (`"san_email"`, compared without regard to ASCII
//! case) equal to the account's name.

use crate::options::{CertMatch, CertUse, ClientCertRule};
use crate::tls::ClientIdentity;

/// What the account's rule says of the control connection's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertVerdict {
    /// The account does not use certificates (`off`), or may go without
    /// one (`allowed`) and none was presented: the password decides.
    NotUsed,
    /// The certificate belongs to the account.
    Belongs,
    /// `required`, and the client presented no certificate: 530, counted.
    Missing,
    /// The certificate is another's (`allowed` or `required`): 530, counted.
    Foreign,
}

impl CertVerdict {
    /// Why the login is refused, for the log line; `None` if it is not.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            CertVerdict::NotUsed | CertVerdict::Belongs => None,
            CertVerdict::Missing => {
                Some("the account requires a client certificate and none was presented")
            }
            CertVerdict::Foreign => Some("the client certificate does not belong to the account"),
        }
    }
}

/// Decide for the account `name` with `rule` and the certificate `cert`.
pub fn verdict(rule: &ClientCertRule, name: &str, cert: Option<&ClientIdentity>) -> CertVerdict {
    if rule.use_cert == CertUse::Off {
        return CertVerdict::NotUsed;
    }
    let Some(cert) = cert else {
        return match rule.use_cert {
            CertUse::Required => CertVerdict::Missing,
            _ => CertVerdict::NotUsed,
        };
    };
    let named = match rule.matching {
        CertMatch::Cn => cert.cn.as_deref() == Some(name),
        CertMatch::SanEmail => cert.emails.iter().any(|e| e.eq_ignore_ascii_case(name)),
    };
    if named || rule.fingerprints.contains(&cert.sha256) {
        CertVerdict::Belongs
    } else {
        CertVerdict::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(cn: &str, email: &str, fp: u8) -> ClientIdentity {
        ClientIdentity {
            cn: Some(cn.into()),
            emails: vec![email.into()],
            sha256: [fp; 32],
        }
    }

    #[test]
    fn each_rule() {
        let mut rule = ClientCertRule::default();
        let alice = id("alice", "alice@example.com", 1);
        assert_eq!(
            verdict(&rule, "bob", Some(&alice)),
            CertVerdict::NotUsed,
            "off"
        );
        rule.use_cert = CertUse::Allowed;
        assert_eq!(verdict(&rule, "bob", None), CertVerdict::NotUsed);
        assert_eq!(verdict(&rule, "alice", Some(&alice)), CertVerdict::Belongs);
        assert_eq!(verdict(&rule, "bob", Some(&alice)), CertVerdict::Foreign);
        rule.use_cert = CertUse::Required;
        assert_eq!(verdict(&rule, "alice", None), CertVerdict::Missing);
        assert_eq!(
            verdict(&rule, "Alice", Some(&alice)),
            CertVerdict::Foreign,
            "CN is exact"
        );
        rule.matching = CertMatch::SanEmail;
        assert_eq!(verdict(&rule, "alice", Some(&alice)), CertVerdict::Foreign);
        assert_eq!(
            verdict(&rule, "ALICE@example.com", Some(&alice)),
            CertVerdict::Belongs
        );
        rule.fingerprints.push([1; 32]);
        assert_eq!(
            verdict(&rule, "bob", Some(&alice)),
            CertVerdict::Belongs,
            "fingerprint"
        );
        assert!(CertVerdict::Missing.refusal().is_some());
        assert!(CertVerdict::Belongs.refusal().is_none());
    }
}
