//! The `[auth.http]` URL, which may carry credentials
//! (`https://USER:PASSWORD@host/path`, sent as HTTP Basic authentication):
//! they are kept apart from the URL, so that no log line, error or
//! `check-config` message can show them ([`redact`] for the text as
//! written, [`HookUrl`]'s `Display` and `Debug` for the parsed one).

use base64::Engine;

/// What stands in a shown URL for its credentials.
const HIDDEN: &str = "***";

/// A parsed hook URL without its credentials, and the Basic
/// `Authorization` value they make.
#[derive(Clone, PartialEq)]
pub struct HookUrl {
    /// The URL without `USER:PASSWORD@`.
    uri: hyper::Uri,
    /// `Basic BASE64(user:password)`, percent-decoded first (RFC 3986
    /// section 3.2.1, RFC 7617).
    basic: Option<String>,
}

impl HookUrl {
    /// An `http://` or `https://` URL with a host. The error shows the URL
    /// with its credentials hidden.
    pub fn parse(text: &str) -> Result<HookUrl, String> {
        let bad = || format!("{:?} is not an http:// or https:// URL", redact(text));
        let (userinfo, bare) = split_userinfo(text);
        let uri: hyper::Uri = bare.parse().map_err(|_| bad())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad());
        }
        let basic = match userinfo {
            None => None,
            Some(info) => {
                let decoded = percent_decode(info).ok_or_else(|| {
                    format!(
                        "{:?}: the credentials are not valid percent-encoded UTF-8",
                        redact(text)
                    )
                })?;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(decoded)
                ))
            }
        };
        Ok(HookUrl { uri, basic })
    }

    /// The URL requests go to (no credentials in it).
    pub fn uri(&self) -> &hyper::Uri {
        &self.uri
    }

    /// The `Authorization` header the credentials make, if there are any.
    pub fn basic(&self) -> Option<&str> {
        self.basic.as_deref()
    }
}

impl std::fmt::Display for HookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let hidden = if self.basic.is_some() { "***@" } else { "" };
        write!(f, "{scheme}://{hidden}{authority}{path}")
    }
}

impl std::fmt::Debug for HookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// `text` with anything between `scheme://` and an `@` in the authority
/// replaced by `***`: for messages about a URL as written, valid or not.
pub fn redact(text: &str) -> String {
    match split_userinfo(text) {
        (None, _) => text.to_owned(),
        (Some(_), bare) => {
            let (scheme, rest) = bare.split_once("://").unwrap_or(("", &bare));
            format!("{scheme}://{HIDDEN}@{rest}")
        }
    }
}

/// The userinfo of `scheme://USERINFO@host...` and the URL without it.
fn split_userinfo(text: &str) -> (Option<&str>, String) {
    let Some((scheme, rest)) = text.split_once("://") else {
        return (None, text.to_owned());
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        None => (None, text.to_owned()),
        Some(at) => (Some(&rest[..at]), format!("{scheme}://{}", &rest[at + 1..])),
    }
}

/// `%XX` sequences decoded; `None` for a broken one or bytes that are not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_are_never_shown() {
        let u = HookUrl::parse("https://ftp:s%40cret:x@auth.example.org:8443/login?a=1").unwrap();
        assert_eq!(
            u.uri().to_string(),
            "https://auth.example.org:8443/login?a=1"
        );
        assert_eq!(
            u.uri().authority().unwrap().as_str(),
            "auth.example.org:8443"
        );
        // base64("ftp:s@cret:x")
        assert_eq!(u.basic(), Some("Basic ZnRwOnNAY3JldDp4"));
        for shown in [u.to_string(), format!("{u:?}")] {
            assert_eq!(shown, "https://***@auth.example.org:8443/login?a=1");
        }
        let plain = HookUrl::parse("http://127.0.0.1:80/").unwrap();
        assert_eq!(plain.basic(), None);
        assert_eq!(plain.to_string(), "http://127.0.0.1:80/");
    }

    #[test]
    fn a_bad_url_is_named_without_its_credentials() {
        for bad in [
            "ftp://user:topsecret@host/",
            "https://user:topsecret@/",
            "https://user:topsecret@ho st/",
            "http://u:topsecret%zz@host/",
        ] {
            let e = HookUrl::parse(bad).unwrap_err();
            assert!(!e.contains("topsecret"), "{e}");
            assert!(e.contains("***@"), "{e}");
        }
        assert_eq!(redact("https://a:b@h/p@q"), "https://***@h/p@q");
        assert_eq!(redact("https://h/p@q"), "https://h/p@q");
        assert_eq!(redact("not a url"), "not a url");
    }
}
