//! One server with alice's root on a kind of storage, for the tests that
//! run the same clients over each: a local directory, a prefix of a bucket
//! on moto's S3 server, or on s3s-fs, or of a container on Azurite.
//! Alice's files are read, written and looked for through the storage
//! itself (the directory, boto3, or the container's own requests).

use crate::azure::store::Container;
use crate::harness::Server;
use crate::s3::store::{Kind, Moto};
use crate::s3::{server as s3_server, BUCKET};

/// Where alice's root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Local,
    Moto,
    S3sFs,
    Azurite,
}

/// The store behind an object-store root.
enum Store {
    S3(Moto),
    Azure(Container),
}

/// A running server (and store) with alice's root on one kind of storage.
pub(crate) struct Site {
    pub server: Server,
    store: Option<Store>,
}

impl Site {
    /// `None` (with a note) where the store is not installed; under CI
    /// its absence fails the test.
    pub(crate) fn start(root: Root) -> Option<Site> {
        let kind = match root {
            Root::Local => {
                return Some(Site {
                    server: Server::start(),
                    store: None,
                })
            }
            Root::Moto => Kind::Moto,
            Root::S3sFs => Kind::S3sFs,
            Root::Azurite => {
                let c = Container::new("site")?;
                return Some(Site {
                    server: crate::azure::server(&c, ""),
                    store: Some(Store::Azure(c)),
                });
            }
        };
        let store = Moto::of(kind)?;
        Some(Site {
            server: s3_server(&store),
            store: Some(Store::S3(store)),
        })
    }

    /// An object store: no APPE or REST+STOR, no MFMT.
    pub(crate) fn is_object_store(&self) -> bool {
        self.store.is_some()
    }

    /// The bytes of `path` (relative to alice's root), if it is a file.
    pub(crate) fn read(&self, path: &str) -> Option<Vec<u8>> {
        match &self.store {
            None => std::fs::read(self.server.alice.join(path)).ok(),
            Some(Store::S3(s)) => s
                .keys(BUCKET)
                .contains(&format!("alice/{path}"))
                .then(|| s.get(BUCKET, &format!("alice/{path}"))),
            Some(Store::Azure(c)) => {
                let name = format!("alice/{path}");
                c.keys().contains(&name).then(|| c.get(&name))
            }
        }
    }

    /// Put a file at `path` straight into the storage.
    pub(crate) fn write(&self, path: &str, data: &[u8]) {
        match &self.store {
            None => std::fs::write(self.server.alice.join(path), data).unwrap(),
            Some(Store::S3(s)) => s.put_bytes(BUCKET, &format!("alice/{path}"), data),
            Some(Store::Azure(c)) => c.put(&format!("alice/{path}"), data),
        }
    }

    /// The files of alice's root, sorted; on S3 the store must hold no
    /// incomplete upload (Azure has none to abort: blocks never committed
    /// are never a blob).
    pub(crate) fn files(&self) -> Vec<String> {
        let keys = match &self.store {
            None => return walk(&self.server.alice, ""),
            Some(Store::S3(s)) => {
                assert!(s.uploads(BUCKET).is_empty(), "{:?}", s.uploads(BUCKET));
                s.keys(BUCKET)
            }
            Some(Store::Azure(c)) => c.keys(),
        };
        keys.iter()
            .filter_map(|k| k.strip_prefix("alice/"))
            .filter(|k| !k.ends_with('/'))
            .map(str::to_owned)
            .collect()
    }
}

/// The files below `dir`, as paths relative to it, sorted.
fn walk(dir: &std::path::Path, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = format!("{rel}{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path(), &format!("{name}/")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}
