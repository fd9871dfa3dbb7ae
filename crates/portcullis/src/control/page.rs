//! The control plane's web page, served by the TCP control listener
//! (`control.listen`) at `/` with its two assets: plain HTML, CSS and a
//! little JavaScript built into the binary (no build step, nothing
//! fetched from elsewhere). The page itself needs no token: it holds no
//! data. It asks for a token, keeps it in the tab's `sessionStorage` and
//! sends it as `Authorization: Bearer` on every API call (no cookie, so
//! no cross-site request can borrow it). Every answer of this listener
//! carries a strict Content-Security-Policy (scripts from this origin
//! only, none inline, no framing) and `nosniff`; the script shows data
//! with `textContent` alone, since user names are the clients' words.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

/// The page's files: path, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    (
        "/page.js",
        "text/javascript; charset=utf-8",
        include_str!("page/page.js"),
    ),
    (
        "/page.css",
        "text/css; charset=utf-8",
        include_str!("page/page.css"),
    ),
    // Browsers ask for an icon unprompted: an answer without a token,
    // or each page load would count as a failed login of its address.
    (
        "/favicon.ico",
        "image/svg+xml",
        include_str!("page/favicon.svg"),
    ),
];

/// The policy: this origin's script, style and API only; no inline
/// script or style, no plugins, no framing, forms nowhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's file at `path` for a GET (or HEAD), if it is one.
pub fn asset(method: &Method, path: &str) -> Option<Response<Full<Bytes>>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = if path == "/index.html" { "/" } else { path };
    let (_, kind, body) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    // (hyper sends no body to a HEAD, and keeps the length.)
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    Some(r)
}

/// The headers every answer of the TCP listener carries, the API's JSON
/// too (a JSON answer opened as a page must not run or be framed).
pub fn secure(r: &mut Response<Full<Bytes>>) {
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        hyper::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        hyper::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_its_files_and_nothing_else() {
        for path in ["/", "/index.html", "/page.js", "/page.css", "/favicon.ico"] {
            let r = asset(&Method::GET, path).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        assert!(asset(&Method::GET, "/v1/status").is_none());
        assert!(asset(&Method::GET, "/page.js/x").is_none());
        assert!(asset(&Method::POST, "/").is_none());
    }

    /// Nothing inline (the policy would block it) and nothing fetched
    /// from elsewhere; data is never written as HTML.
    #[test]
    fn the_page_keeps_to_its_policy() {
        let html = include_str!("page/index.html");
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "inline"
        );
        // No inline handler (` onclick=` and the like).
        for (i, _) in html.match_indices(" on") {
            let rest = &html[i + 3..];
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            assert!(
                name.is_empty() || !rest[name.len()..].starts_with('='),
                "inline handler at {i}"
            );
        }
        for (path, _, body) in ASSETS {
            // (An SVG names its namespace, which is not fetched.)
            let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "{path}"
            );
        }
        let js = include_str!("page/page.js");
        assert!(!js.contains("innerHTML") && !js.contains("outerHTML"));
        assert!(!js.contains("eval(") && !js.contains("document.write"));
        assert!(!js.contains("cookie"));
    }
}
