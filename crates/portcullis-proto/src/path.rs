//! Virtual paths: what a client names, normalised against its working
//! directory into a path that cannot leave the user's root.
//!
//! A [`VirtualPath`] is a list of plain components with no `.`, `..`, empty,
//! NUL or backslash parts. `..` at the root stays at the root (as vsftpd and
//! ProFTPD do in a chroot), so no sequence of client input can name anything
//! above it. Symlinks are the storage layer's business: this module never
//! touches a filesystem.

use std::fmt;

/// A normalised absolute path inside a user's virtual root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VirtualPath {
    parts: Vec<String>,
}

/// Why a client-supplied path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The argument contains a NUL byte (RFC 959 pathnames cannot).
    #[error("path contains a NUL byte")]
    Nul,
    /// The argument contains a backslash, which some clients use as a
    /// separator; it is refused rather than guessed at.
    #[error("path contains a backslash")]
    Backslash,
    /// The argument is empty where a name is required.
    #[error("empty path")]
    Empty,
    /// The path is longer than [`MAX_PATH_LEN`] or has too many components.
    #[error("path too long")]
    TooLong,
}

/// Longest path (in bytes, joined) that a client may name.
pub const MAX_PATH_LEN: usize = 4096;
/// Deepest path a client may name.
pub const MAX_DEPTH: usize = 256;

impl VirtualPath {
    /// The root, `/`.
    pub fn root() -> Self {
        VirtualPath { parts: Vec::new() }
    }

    /// Resolve a client's argument against `self` (the working directory).
    /// Absolute arguments start again from the root.
    pub fn resolve(&self, arg: &str) -> Result<VirtualPath, PathError> {
        if arg.is_empty() {
            return Err(PathError::Empty);
        }
        if arg.contains('\0') {
            return Err(PathError::Nul);
        }
        if arg.contains('\\') {
            return Err(PathError::Backslash);
        }
        if arg.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let mut parts = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.parts.clone()
        };
        for comp in arg.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name.to_owned()),
            }
        }
        if parts.len() > MAX_DEPTH {
            return Err(PathError::TooLong);
        }
        Ok(VirtualPath { parts })
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The components, outermost first; none is empty, `.` or `..`.
    pub fn components(&self) -> &[String] {
        &self.parts
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The parent directory (the root is its own parent).
    pub fn parent(&self) -> VirtualPath {
        let mut parts = self.parts.clone();
        parts.pop();
        VirtualPath { parts }
    }

    /// The path relative to the root, without a leading slash ("" for the root),
    /// ready to be joined under a real directory.
    pub fn relative(&self) -> String {
        self.parts.join("/")
    }

    /// Where a symbolic link in the directory `self` whose contents are
    /// `target` leads, read as the storage layer follows links: a relative
    /// target, taken component by component from `self`, that never goes
    /// above the root on the way. `None` for an absolute target (it would
    /// name a host path), one that climbs above the root even if it comes
    /// back, and one the client could not name (NUL, backslash, too long).
    /// Only the words are checked: whether the target exists, or leads
    /// further through other links, is for the storage layer to find out.
    pub fn follow_link(&self, target: &str) -> Option<VirtualPath> {
        if target.is_empty()
            || target.starts_with('/')
            || target.contains(['\0', '\\'])
            || target.len() > MAX_PATH_LEN
        {
            return None;
        }
        let mut parts = self.parts.clone();
        for comp in target.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    parts.pop()?;
                }
                name => parts.push(name.to_owned()),
            }
        }
        (parts.len() <= MAX_DEPTH).then_some(VirtualPath { parts })
    }

    /// Append one plain name (no separators), as used for STOU's unique names.
    pub fn join_name(&self, name: &str) -> Result<VirtualPath, PathError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(PathError::Empty);
        }
        self.resolve(name)
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for p in &self.parts {
            f.write_str("/")?;
            f.write_str(p)?;
        }
        Ok(())
    }
}

/// Quote a path for a 257 reply: RFC 959 appendix II doubles embedded quotes.
pub fn quote_257(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_only_beneath_the_root() {
        let dir = VirtualPath::root().resolve("/a/b").unwrap();
        let f = |t: &str| dir.follow_link(t).map(|p| p.to_string());
        assert_eq!(f("c.txt").as_deref(), Some("/a/b/c.txt"));
        assert_eq!(f("../x/./y").as_deref(), Some("/a/x/y"));
        assert_eq!(f("../..").as_deref(), Some("/"));
        assert_eq!(f("../../.."), None, "climbs above the root");
        assert_eq!(f("../../../a/b/c"), None, "above the root and back");
        assert_eq!(f("/a/b/c"), None, "absolute: a host path");
        assert_eq!(f(""), None);
        assert_eq!(f("x\\y"), None);
    }

    fn r(cwd: &str, arg: &str) -> String {
        VirtualPath::root()
            .resolve(cwd)
            .unwrap()
            .resolve(arg)
            .unwrap()
            .to_string()
    }

    #[test]
    fn resolves_relative_and_absolute() {
        assert_eq!(r("/", "a/b"), "/a/b");
        assert_eq!(r("/a", "b"), "/a/b");
        assert_eq!(r("/a", "/c"), "/c");
        assert_eq!(r("/a/b", ".."), "/a");
        assert_eq!(r("/a/b", "./c//d/"), "/a/b/c/d");
    }

    #[test]
    fn dotdot_cannot_leave_root() {
        assert_eq!(r("/", ".."), "/");
        assert_eq!(r("/a", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(r("/", "/../../.."), "/");
    }

    #[test]
    fn refuses_nul_backslash_empty_and_long() {
        let root = VirtualPath::root();
        assert_eq!(root.resolve("a\0b"), Err(PathError::Nul));
        assert_eq!(root.resolve("..\\..\\x"), Err(PathError::Backslash));
        assert_eq!(root.resolve(""), Err(PathError::Empty));
        assert_eq!(root.resolve(&"a/".repeat(300)), Err(PathError::TooLong));
        assert_eq!(root.resolve(&"a".repeat(5000)), Err(PathError::TooLong));
    }

    #[test]
    fn parent_name_relative() {
        let p = VirtualPath::root().resolve("/x/y/z").unwrap();
        assert_eq!(p.file_name(), Some("z"));
        assert_eq!(p.parent().to_string(), "/x/y");
        assert_eq!(p.relative(), "x/y/z");
        assert_eq!(VirtualPath::root().parent(), VirtualPath::root());
        assert!(VirtualPath::root().join_name("..").is_err());
    }

    #[test]
    fn quotes_for_257() {
        assert_eq!(quote_257("/a\"b"), "\"/a\"\"b\"");
    }
}
