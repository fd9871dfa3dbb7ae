//! The bearer tokens of the TCP control listener (`control.token_file`):
//! one `NAME TOKEN [read-only]` per line, `#` comments and blank lines
//! left out. A token is kept only as its SHA-256 digest, and a request's
//! is compared with every one in time that does not depend on where they
//! differ; the name goes into the audit lines, and a read-only token may
//! only read (GET).

use sha2::{Digest, Sha256};

/// The shortest token taken: guessing 16 characters over the network,
/// with failures counting toward the address's ban, is out of reach.
pub const MIN_TOKEN: usize = 16;

/// One line of the file.
#[derive(Debug)]
struct Token {
    name: String,
    digest: [u8; 32],
    read_only: bool,
}

/// Who a request's token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub read_only: bool,
}

/// The tokens of the file.
#[derive(Debug)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// Read and parse `path`; every problem with its line.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("control.token_file: {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("control.token_file: {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let read_only = match words.get(2) {
                None => false,
                Some(&"read-only") if words.len() == 3 => true,
                Some(_) => {
                    problems.push(format!("line {}: expected NAME TOKEN [read-only]", i + 1));
                    continue;
                }
            };
            let (Some(name), Some(token)) = (words.first(), words.get(1)) else {
                problems.push(format!("line {}: expected NAME TOKEN [read-only]", i + 1));
                continue;
            };
            if token.len() < MIN_TOKEN {
                problems.push(format!(
                    "line {}: the token of {name:?} is shorter than {MIN_TOKEN} characters",
                    i + 1
                ));
                continue;
            }
            tokens.push(Token {
                name: (*name).to_owned(),
                digest: Sha256::digest(token.as_bytes()).into(),
                read_only,
            });
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        if tokens.is_empty() {
            return Err("no token in the file".into());
        }
        Ok(Tokens(tokens))
    }

    /// The caller an `Authorization` header names (`Bearer TOKEN`), if
    /// its token is one of the file's. Every token is compared, each in
    /// constant time.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<Caller> {
        let token = authorization?.strip_prefix(b"Bearer ")?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for t in &self.0 {
            let diff = t
                .digest
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(Caller {
                    name: t.name.clone(),
                    read_only: t.read_only,
                });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_checks_tokens() {
        let t = Tokens::parse(
            "# who\nadmin 0123456789abcdef0123\n\nviewer fedcba9876543210fedc read-only\n",
        )
        .unwrap();
        let admin = t.check(Some(b"Bearer 0123456789abcdef0123")).unwrap();
        assert_eq!((admin.name.as_str(), admin.read_only), ("admin", false));
        let viewer = t.check(Some(b"Bearer fedcba9876543210fedc")).unwrap();
        assert!(viewer.read_only);
        assert_eq!(t.check(Some(b"Bearer 0123456789abcdef012")), None);
        assert_eq!(t.check(Some(b"0123456789abcdef0123")), None);
        assert_eq!(t.check(None), None);
        assert!(Tokens::parse("a short").unwrap_err().contains("shorter"));
        assert!(Tokens::parse("a 0123456789abcdef0123 rw")
            .unwrap_err()
            .contains("line 1"));
        assert!(Tokens::parse("# none\n").is_err());
    }
}
