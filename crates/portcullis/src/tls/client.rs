//! Client certificates (`[tls.client_auth]`): the verifier that checks a
//! presented chain at the handshake (rustls' `WebPkiClientVerifier`: the
//! CAs of `ca_file`, the revocation lists of `crl_files`), and what the
//! login reads of a verified certificate ([`ClientIdentity`]).
//!
//! The handshake decides whether a certificate is valid; the login decides
//! whether it belongs to the account (`auth::cert`). A certificate that
//! fails verification (another CA, expired, revoked) ends the handshake
//! with a TLS alert, so an invalid certificate never reaches a login.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use sha2::Digest;

use super::TlsError;
use crate::options::{ClientAuthMode, ClientAuthOptions};

/// What a verified client certificate says of its holder.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's common name, if it has one (the first).
    pub cn: Option<String>,
    /// The subject alternative name's e-mail addresses (rfc822Name).
    pub emails: Vec<String>,
    /// SHA-256 of the certificate's DER encoding.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cn", &self.cn)
            .field("emails", &self.emails)
            .field("sha256", &self.fingerprint())
            .finish()
    }
}

impl ClientIdentity {
    /// Read the names of a DER certificate (already verified by rustls).
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut emails = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::RFC822Name(e) = name {
                    emails.push((*e).to_owned());
                }
            }
        }
        Ok(ClientIdentity {
            cn,
            emails,
            sha256: sha2::Sha256::digest(der).into(),
        })
    }

    /// The end-entity certificate of a finished handshake, if the client
    /// presented one (`conn`: a buffered or unbuffered connection's
    /// common state).
    pub fn of(conn: &rustls::CommonState) -> Option<Arc<Self>> {
        let der = conn.peer_certificates()?.first()?;
        match Self::from_der(der) {
            Ok(id) => Some(Arc::new(id)),
            Err(e) => {
                // rustls verified it, so it parses; should it not, the
                // session goes on as if no certificate had been presented.
                tracing::warn!(error = %e, "client certificate not readable");
                None
            }
        }
    }

    /// The fingerprint as `openssl x509 -fingerprint -sha256` writes it.
    pub fn fingerprint(&self) -> String {
        let hex: Vec<String> = self.sha256.iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }
}

/// The verifier of `[tls.client_auth]`: the chain must lead to a CA of
/// `ca_file`, be within its validity and, with `crl_files`, not be revoked
/// (the end-entity certificate is checked against the lists; its CA must
/// have one among them). With `mode = "optional"` a client may present none.
pub fn client_verifier(o: &ClientAuthOptions) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let ca = o.ca_file.display();
    let mut roots = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&o.ca_file)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Load(format!("ca_file: {ca}: {e}")))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::Load(format!(
            "ca_file: {ca}: no usable CERTIFICATE in the PEM file"
        )));
    }
    let mut crls = Vec::new();
    for path in &o.crl_files {
        crls.extend(load_crls(path)?);
    }
    let mut b = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(provider::default_provider()),
    );
    if !crls.is_empty() {
        b = b.with_crls(crls).only_check_end_entity_revocation();
    }
    if o.mode == ClientAuthMode::Optional {
        b = b.allow_unauthenticated();
    }
    b.build()
        .map_err(|e| TlsError::Load(format!("ca_file: {ca}: {e}")))
}

/// The lists of one file: PEM (`X509 CRL` blocks) or one DER list.
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TlsError::Load(format!("crl_files: {}: {e}", path.display())))?;
    if !bytes.starts_with(b"-----") {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Load(format!("crl_files: {}: {e}", path.display())))?;
    if crls.is_empty() {
        return Err(TlsError::Load(format!(
            "crl_files: {}: no X509 CRL in the PEM file",
            path.display()
        )));
    }
    Ok(crls)
}

/// Whether a failed handshake was the client certificate's fault (missing
/// where required, another CA, expired, revoked): such a failure is logged
/// as a refusal, not as noise.
pub fn certificate_refused(e: &TlsError) -> Option<String> {
    let TlsError::Handshake(io) = e else {
        return None;
    };
    let inner = io.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(c) => Some(format!("{c:?}")),
        rustls::Error::NoCertificatesPresented => Some("no certificate presented".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fingerprint() {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "partner");
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(
            "ops@partner.example".try_into().unwrap(),
        )];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let id = ClientIdentity::from_der(cert.der()).unwrap();
        assert_eq!(id.cn.as_deref(), Some("partner"));
        assert_eq!(id.emails, vec!["ops@partner.example".to_owned()]);
        assert_eq!(id.fingerprint().len(), 32 * 3 - 1);
        assert!(ClientIdentity::from_der(b"not a certificate").is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let o = |crl_files| ClientAuthOptions {
            ca_file: ca.clone(),
            mode: ClientAuthMode::Optional,
            crl_files,
        };
        assert!(client_verifier(&o(vec![])).is_err());
        std::fs::write(&ca, "").unwrap();
        let e = client_verifier(&o(vec![])).err().unwrap().to_string();
        assert!(e.contains("no usable CERTIFICATE"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&ca, p.self_signed(&key).unwrap().pem()).unwrap();
        assert!(client_verifier(&o(vec![])).is_ok());
        let crl = dir.path().join("crl.pem");
        std::fs::write(
            &crl,
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        assert!(client_verifier(&o(vec![crl])).is_err());
    }
}
