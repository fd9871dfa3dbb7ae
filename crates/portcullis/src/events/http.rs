//! `action = "http"`: one POST of an event's JSON, signed with the hook's
//! `secret`: `X-Portcullis-Signature: t=UNIX_SECONDS,v1=HEX`, HEX being
//! the HMAC-SHA256 of `UNIX_SECONDS.` followed by the body, so that a
//! receiver can check who sent it and refuse an old one (a replay).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::AUTHORIZATION;

use crate::options::HttpHook;

/// The signature's header.
pub const SIGNATURE: &str = "x-portcullis-signature";

/// An http hook's client.
pub struct Poster {
    hook: HttpHook,
    client: crate::auth::http::Pooled,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").field("hook", &self.hook).finish()
    }
}

/// `X-Portcullis-Signature`'s value for `body` sent at `t` (UNIX seconds).
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

impl Poster {
    pub fn new(hook: HttpHook, key: &str) -> Result<Self, String> {
        let tls = if hook.url.uri().scheme_str() == Some("https") {
            Some(crate::auth::http::client_config(
                hook.ca_file.as_deref(),
                key,
            )?)
        } else {
            None
        };
        Ok(Poster {
            hook,
            client: crate::auth::http::Pooled::new(tls),
        })
    }

    /// One attempt, bounded by the hook's `timeout`: `Ok` on a 2xx answer,
    /// else what went wrong.
    pub async fn post(&self, body: &Bytes) -> Result<(), String> {
        match tokio::time::timeout(self.hook.timeout, self.exchange(body)).await {
            Err(_) => Err(format!("no answer within {:?}", self.hook.timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok((status, _))) if status.is_success() => Ok(()),
            Ok(Ok((status, _))) => Err(format!("answered {status}")),
        }
    }

    /// A pre-action's question: a 2xx answer allows, a 4xx refuses with
    /// its body's text; anything else is the hook's failure.
    pub async fn ask(&self, body: &Bytes) -> Result<super::hooks::Answer, String> {
        use super::hooks::Answer;
        match tokio::time::timeout(self.hook.timeout, self.exchange(body)).await {
            Err(_) => Err(format!("no answer within {:?}", self.hook.timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok((status, _))) if status.is_success() => Ok(Answer::Allow),
            Ok(Ok((status, text))) if status.is_client_error() => {
                Ok(Answer::Refuse(String::from_utf8_lossy(&text).into_owned()))
            }
            Ok(Ok((status, _))) => Err(format!("answered {status}")),
        }
    }

    async fn exchange(&self, body: &Bytes) -> Result<(hyper::StatusCode, Bytes), String> {
        let url = self.hook.url.uri();
        let mut request = crate::auth::http::json_post(url);
        if let Some(basic) = self.hook.url.basic() {
            request = request.header(AUTHORIZATION, basic);
        }
        for (name, value) in &self.hook.headers {
            request = request.header(name, value);
        }
        if let Some(secret) = &self.hook.secret {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request.header(SIGNATURE, signature(secret, t, body));
        }
        let request = request
            .body(Full::new(body.clone()))
            .map_err(|e| e.to_string())?;
        self.client.exchange(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231 has no such input; this value is Python's
        // hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest().
        assert_eq!(
            signature("key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
