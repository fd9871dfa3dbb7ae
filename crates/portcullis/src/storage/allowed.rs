//! `auth.allowed_roots`: where a root that an account back end answered
//! (the HTTP hook, LDAP, PAM) may be. The back ends' roots come from
//! outside the config file (a hook's JSON, a directory attribute, a passwd
//! entry), so a wrong or hostile answer must not hand out the host's whole
//! tree: `/` itself and a path that climbs with `..` are always refused,
//! and with `allowed_roots` set a root must lie at or under one of its
//! entries. Containment is decided on components, never on string
//! prefixes (`/srv/ftpx` is not under `/srv/ftp`), and on the bucket and
//! the key prefix's segments for `s3://` and `az://` roots (a bucket never
//! holds a container's root nor the reverse), whichever profile reaches
//! the bucket. Paths are compared as written: a symbolic link inside an
//! allowed directory is the administrator's to vouch for.

use std::path::{Component, Path};

use super::{AzureRoot, RootSpec, S3Root};

/// The roots a back end other than the config file may give an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRoots {
    /// `None`: anywhere but `/` and a path with `..`.
    within: Option<Vec<RootSpec>>,
}

impl AllowedRoots {
    /// The entries of `auth.allowed_roots` as the config file writes them
    /// (absolute paths, `s3://BUCKET[/PREFIX]` or `az://CONTAINER[/PREFIX]`
    /// URLs); every problem goes
    /// to `errors` with `key[i]` in it. `None`: no list, no restriction
    /// beyond `/` and `..`.
    pub fn parse(key: &str, entries: Option<&[String]>, errors: &mut Vec<String>) -> AllowedRoots {
        let Some(entries) = entries else {
            return AllowedRoots::default();
        };
        if entries.is_empty() {
            errors.push(format!(
                "{key}: empty, so no account of http, ldap or pam could log in; leave it out for no restriction"
            ));
        }
        let mut within = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let store = S3Root::parse(entry, None)
                .map(|r| r.map(RootSpec::S3))
                .and_then(|r| match r {
                    Some(r) => Ok(Some(r)),
                    None => AzureRoot::parse(entry, None).map(|r| r.map(RootSpec::Azure)),
                });
            match store {
                Ok(Some(r)) => within.push(r),
                Err(e) => errors.push(format!("{key}[{i}]: {e}")),
                Ok(None) => {
                    let path = Path::new(entry);
                    if !path.is_absolute() {
                        errors.push(format!(
                            "{key}[{i}]: {entry:?} is neither an absolute path nor an s3:// or az:// URL"
                        ));
                    } else if climbs(path) {
                        errors.push(format!("{key}[{i}]: {entry:?} has a \"..\" component"));
                    } else {
                        within.push(RootSpec::Local(path.to_owned()));
                    }
                }
            }
        }
        AllowedRoots {
            within: Some(within),
        }
    }

    /// The entries, when `auth.allowed_roots` is set.
    pub fn within(&self) -> Option<&[RootSpec]> {
        self.within.as_deref()
    }

    /// Whether an account may have `root`; `Err`: why not, without the
    /// root itself (the caller names it).
    pub fn admit(&self, root: &RootSpec) -> Result<(), String> {
        if let RootSpec::Local(path) = root {
            if !path.is_absolute() {
                return Err("not an absolute path".into());
            }
            if climbs(path) {
                return Err("it climbs with \"..\"".into());
            }
            if path.components().all(|c| c == Component::RootDir) {
                return Err("it is the whole filesystem (\"/\")".into());
            }
        }
        match &self.within {
            Some(within) if !within.iter().any(|base| lies_under(root, base)) => {
                Err("not under any of auth.allowed_roots".into())
            }
            _ => Ok(()),
        }
    }
}

/// Whether `path` has a `..` component.
fn climbs(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

/// Whether `root` is `base` or below it: the same kind, and `base`'s
/// components (its bucket and key segments) the first of `root`'s.
pub fn lies_under(root: &RootSpec, base: &RootSpec) -> bool {
    match (root, base) {
        // Component-wise, and `.` and repeated `/` do not count.
        (RootSpec::Local(root), RootSpec::Local(base)) => root.starts_with(base),
        (RootSpec::S3(root), RootSpec::S3(base)) => {
            root.bucket == base.bucket && prefix_under(&root.prefix, &base.prefix)
        }
        (RootSpec::Azure(root), RootSpec::Azure(base)) => {
            root.container == base.container && prefix_under(&root.prefix, &base.prefix)
        }
        _ => false,
    }
}

/// Whether key prefix `root` is `base` or below it, segment by segment.
fn prefix_under(root: &str, base: &str) -> bool {
    let segments = |p: &str| {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    segments(root).starts_with(&segments(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> RootSpec {
        RootSpec::parse(Path::new(s), None).unwrap()
    }

    fn allowed(entries: &[&str]) -> AllowedRoots {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let mut errors = Vec::new();
        let a = AllowedRoots::parse("auth.allowed_roots", Some(&entries), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        a
    }

    #[test]
    fn local_roots_are_contained_by_components() {
        let base = spec("/srv/ftp");
        for inside in ["/srv/ftp", "/srv/ftp/", "/srv/ftp/carol", "/srv//ftp/./a/b"] {
            assert!(lies_under(&spec(inside), &base), "{inside}");
        }
        for outside in [
            "/srv/ftpx",
            "/srv/ftpx/carol",
            "/srv",
            "/",
            "/etc",
            "srv/ftp/a",
        ] {
            assert!(!lies_under(&spec(outside), &base), "{outside}");
        }
        assert!(lies_under(&spec("/anything"), &spec("/")));
    }

    #[test]
    fn s3_roots_are_contained_by_bucket_and_key_segments() {
        let base = spec("s3://bucket/home");
        for inside in [
            "s3://bucket/home",
            "s3://bucket/home/",
            "s3://bucket/home/carol/x",
        ] {
            assert!(lies_under(&spec(inside), &base), "{inside}");
        }
        for outside in [
            "s3://bucket/homex",
            "s3://bucket/homex/carol",
            "s3://bucket",
            "s3://bucket/other/home",
            "s3://other/home/carol",
            "/home/carol",
        ] {
            assert!(!lies_under(&spec(outside), &base), "{outside}");
        }
        // A whole bucket holds every prefix of it, and only of it.
        assert!(lies_under(&spec("s3://bucket/a/b"), &spec("s3://bucket")));
        assert!(!lies_under(&spec("s3://bucket2/a"), &spec("s3://bucket")));
        // A local directory never holds an object-store root, nor the reverse.
        assert!(!lies_under(&spec("s3://srv/ftp"), &spec("/srv/ftp")));
        assert!(!lies_under(&spec("/srv/ftp"), &spec("s3://srv")));
    }

    #[test]
    fn azure_roots_are_contained_by_container_and_name_segments() {
        let base = spec("az://ctr/home");
        for inside in ["az://ctr/home", "az://ctr/home/carol/x"] {
            assert!(lies_under(&spec(inside), &base), "{inside}");
        }
        for outside in [
            "az://ctr/homex",
            "az://ctr",
            "az://other/home/carol",
            "s3://ctr/home/carol",
            "/ctr/home",
        ] {
            assert!(!lies_under(&spec(outside), &base), "{outside}");
        }
        assert!(!lies_under(&spec("az://ctr/a"), &spec("s3://ctr")));
        let a = allowed(&["az://ctr/home"]);
        assert_eq!(a.admit(&spec("az://ctr/home/carol")), Ok(()));
        assert!(a.admit(&spec("s3://ctr/home/carol")).is_err());
        let mut errors = Vec::new();
        let entries = ["az://Bad".to_string()];
        AllowedRoots::parse("auth.allowed_roots", Some(&entries), &mut errors);
        assert!(
            errors[0].starts_with("auth.allowed_roots[0]: "),
            "{errors:?}"
        );
    }

    #[test]
    fn the_whole_tree_and_climbing_are_refused_even_without_a_list() {
        let anywhere = AllowedRoots::default();
        for bad in [
            "/",
            "//",
            "/.",
            "/srv/../etc",
            "/srv/ftp/..",
            "/../srv",
            "relative/x",
        ] {
            assert!(anywhere.admit(&spec(bad)).is_err(), "{bad}");
        }
        assert!(anywhere
            .admit(&spec("/"))
            .unwrap_err()
            .contains("whole filesystem"));
        assert!(anywhere
            .admit(&spec("/srv/../etc"))
            .unwrap_err()
            .contains(".."));
        for good in [
            "/srv/ftp/carol",
            "/home/carol/ftp",
            "s3://bucket",
            "s3://bkt/x",
        ] {
            assert_eq!(anywhere.admit(&spec(good)), Ok(()), "{good}");
        }
    }

    #[test]
    fn with_a_list_a_root_must_lie_under_one_entry() {
        let a = allowed(&["/srv/ftp", "s3://bucket/home"]);
        for good in ["/srv/ftp/carol", "/srv/ftp", "s3://bucket/home/carol"] {
            assert_eq!(a.admit(&spec(good)), Ok(()), "{good}");
        }
        for bad in [
            "/srv/ftpx/carol",
            "/etc",
            "/srv/ftp/../../etc",
            "/",
            "s3://bucket/homes/carol",
            "s3://bucket",
            "s3://other/home/carol",
        ] {
            assert!(a.admit(&spec(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            a.admit(&spec("/etc")).unwrap_err(),
            "not under any of auth.allowed_roots"
        );
        // "/" as an entry allows any directory, but never "/" itself.
        let all = allowed(&["/"]);
        assert_eq!(all.admit(&spec("/home/x")), Ok(()));
        assert!(all.admit(&spec("/")).is_err());
    }

    #[test]
    fn bad_entries_name_their_key() {
        let entries: Vec<String> = [
            "srv/ftp",
            "/srv/../etc",
            "s3://Bad_Bucket/x",
            "s3://bkt/a/../c",
            "/ok",
        ]
        .iter()
        .map(|e| e.to_string())
        .collect();
        let mut errors = Vec::new();
        AllowedRoots::parse("auth.allowed_roots", Some(&entries), &mut errors);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("auth.allowed_roots[0]: \"srv/ftp\" is neither"));
        assert!(errors[1].starts_with("auth.allowed_roots[1]: \"/srv/../etc\" has a \"..\""));
        assert!(errors[2].starts_with("auth.allowed_roots[2]: "));
        assert!(errors[3].starts_with("auth.allowed_roots[3]: "));
        let mut errors = Vec::new();
        AllowedRoots::parse("auth.allowed_roots", Some(&[]), &mut errors);
        assert!(
            errors[0].starts_with("auth.allowed_roots: empty"),
            "{errors:?}"
        );
        let mut errors = Vec::new();
        assert_eq!(
            AllowedRoots::parse("auth.allowed_roots", None, &mut errors),
            AllowedRoots::default()
        );
        assert!(errors.is_empty());
    }
}
