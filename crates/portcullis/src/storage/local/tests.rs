//! Tests of the local storage back-end.
use super::*;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

fn vp(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s).unwrap()
}

fn setup() -> (tempfile::TempDir, LocalStorage) {
    let d = tempfile::tempdir().unwrap();
    let st = LocalStorage::new(d.path()).unwrap();
    (d, st)
}

async fn write(st: &LocalStorage, p: &str, mode: WriteMode, data: &[u8], commit: bool) {
    let mut u = st.open_write(&vp(p), mode).await.unwrap();
    u.write_all(data).await.unwrap();
    if commit {
        u.commit().await.unwrap();
    }
}

async fn read(st: &LocalStorage, p: &str, off: u64) -> Vec<u8> {
    let mut r = st.open_read(&vp(p), off).await.unwrap();
    let mut v = Vec::new();
    r.read_to_end(&mut v).await.unwrap();
    v
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn read_write_round_trip() {
    let (d, st) = setup();
    write(&st, "a", WriteMode::Replace, b"hello", true).await;
    assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"hello");
    assert_eq!(read(&st, "a", 0).await, b"hello");
    assert_eq!(read(&st, "a", 1).await, b"ello");
    assert_eq!(read(&st, "a", 99).await, b"");
    let m = st.metadata(&vp("a")).await.unwrap();
    assert_eq!((m.kind, m.size, m.nlink), (FileKind::File, 5, 1));
    assert_eq!(st.metadata(&vp("/")).await.unwrap().kind, FileKind::Dir);
    assert!(matches!(
        st.open_read(&vp("missing"), 0).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn open_read_refuses_directories_and_special_files() {
    let (d, st) = setup();
    st.mkdir(&vp("sub")).await.unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(d.path().join("sock")).unwrap();
    for p in ["sub", "/"] {
        assert!(matches!(
            st.open_read(&vp(p), 0).await,
            Err(StorageError::IsADirectory)
        ));
    }
    assert!(matches!(
        st.open_read(&vp("sock"), 0).await,
        Err(StorageError::PermissionDenied)
    ));
    assert_eq!(
        st.metadata(&vp("sock")).await.unwrap().kind,
        FileKind::Other
    );
    assert!(matches!(
        st.open_write(&vp("sock"), WriteMode::Append).await,
        Err(StorageError::PermissionDenied)
    ));
}

/// Opening a FIFO for reading would wait for a writer forever without
/// `O_NONBLOCK`; with it the open returns and the type check refuses it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn fifos_are_refused_without_blocking() {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    let (d, st) = setup();
    let fifo = d.path().join("fifo");
    mknodat(CWD, &fifo, FileType::Fifo, Mode::from(0o600), 0).unwrap();
    for mode in [WriteMode::Append, WriteMode::Resume(0)] {
        assert!(matches!(
            st.open_write(&vp("fifo"), mode).await,
            Err(StorageError::PermissionDenied)
        ));
    }
    let path = vp("fifo");
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), st.open_read(&path, 0));
    assert!(matches!(
        read.await.expect("open_read blocked on a FIFO"),
        Err(StorageError::PermissionDenied)
    ));
}

#[tokio::test]
async fn abandoned_replace_keeps_old_content_and_no_temp_file() {
    let (d, st) = setup();
    write(&st, "a", WriteMode::Replace, b"hello", true).await;
    let mut u = st.open_write(&vp("a"), WriteMode::Replace).await.unwrap();
    u.write_all(b"XXXXXXXX").await.unwrap();
    u.flush().await.unwrap();
    // In progress: the target is untouched and the temp file is hidden.
    assert_eq!(names(d.path()).len(), 2);
    assert_eq!(read(&st, "a", 0).await, b"hello");
    let listed: Vec<_> = st.list(&vp("/")).await.unwrap().collect().await;
    assert_eq!(listed.len(), 1);
    drop(u);
    assert_eq!(names(d.path()), ["a"]);
    assert_eq!(read(&st, "a", 0).await, b"hello");
    // A new name is not created by an abandoned upload either.
    write(&st, "b", WriteMode::Replace, b"x", false).await;
    assert_eq!(names(d.path()), ["a"]);
}

#[tokio::test]
async fn replace_onto_a_directory_is_refused() {
    let (d, st) = setup();
    st.mkdir(&vp("sub")).await.unwrap();
    for p in ["sub", "/"] {
        for mode in [WriteMode::Replace, WriteMode::Append, WriteMode::CreateNew] {
            assert!(matches!(
                st.open_write(&vp(p), mode).await,
                Err(StorageError::IsADirectory)
            ));
        }
    }
    assert_eq!(names(d.path()), ["sub"]);
}

#[tokio::test]
async fn create_new_refuses_existing_and_aborts_cleanly() {
    let (d, st) = setup();
    write(&st, "a", WriteMode::CreateNew, b"one", true).await;
    assert!(matches!(
        st.open_write(&vp("a"), WriteMode::CreateNew).await,
        Err(StorageError::AlreadyExists)
    ));
    assert_eq!(read(&st, "a", 0).await, b"one");
    write(&st, "n", WriteMode::CreateNew, b"partial", false).await;
    assert_eq!(names(d.path()), ["a"]);
}

#[tokio::test]
async fn append_creates_and_appends() {
    let (_d, st) = setup();
    write(&st, "a", WriteMode::Append, b"hello", true).await;
    write(&st, "a", WriteMode::Append, b" world", true).await;
    assert_eq!(read(&st, "a", 0).await, b"hello world");
    // An abandoned append keeps what it wrote; the upload's writer thread
    // puts the last bytes in place just after the abandon.
    write(&st, "a", WriteMode::Append, b"!", false).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while read(&st, "a", 0).await != b"hello world!" {
        assert!(std::time::Instant::now() < deadline, "abandoned bytes lost");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn resume_replaces_the_tail() {
    let (_d, st) = setup();
    write(&st, "a", WriteMode::Replace, b"hello world", true).await;
    write(&st, "a", WriteMode::Resume(5), b"!", true).await;
    assert_eq!(read(&st, "a", 0).await, b"hello!");
    write(&st, "a", WriteMode::Resume(6), b"?", true).await;
    assert_eq!(read(&st, "a", 0).await, b"hello!?");
    match st.open_write(&vp("a"), WriteMode::Resume(100)).await {
        Err(StorageError::Io(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("resume past the end accepted"),
    }
    assert_eq!(read(&st, "a", 0).await, b"hello!?");
    assert!(matches!(
        st.open_write(&vp("b"), WriteMode::Resume(3)).await,
        Err(StorageError::NotFound)
    ));
    write(&st, "b", WriteMode::Resume(0), b"new", true).await;
    assert_eq!(read(&st, "b", 0).await, b"new");
}

#[tokio::test]
async fn list_streams_many_entries_and_hides_temp_files() {
    let (d, st) = setup();
    st.mkdir(&vp("d")).await.unwrap();
    for i in 0..1000 {
        std::fs::write(d.path().join(format!("d/f{i}")), b"x").unwrap();
    }
    std::fs::write(d.path().join("d/.portcullis-upload.zz"), b"x").unwrap();
    std::fs::write(d.path().join("d/.hidden"), b"x").unwrap();
    let entries: Vec<DirEntry> = st
        .list(&vp("d"))
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    let mut got: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    got.sort();
    let mut want: Vec<String> = (0..1000).map(|i| format!("f{i}")).collect();
    want.push(".hidden".into());
    want.sort();
    assert_eq!(got, want);
    assert!(entries
        .iter()
        .all(|e| e.meta.kind == FileKind::File && e.meta.size == 1));
    // Dropping a listing part-way stops the reader without error.
    let mut partial = st.list(&vp("d")).await.unwrap();
    assert!(partial.next().await.unwrap().is_ok());
    drop(partial);
    assert!(matches!(
        st.list(&vp("missing")).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn directories_rename_and_remove() {
    let (d, st) = setup();
    st.mkdir(&vp("d")).await.unwrap();
    assert!(matches!(
        st.mkdir(&vp("d")).await,
        Err(StorageError::AlreadyExists)
    ));
    write(&st, "d/f", WriteMode::Replace, b"x", true).await;
    assert!(matches!(
        st.rmdir(&vp("d")).await,
        Err(StorageError::DirectoryNotEmpty)
    ));
    assert!(matches!(
        st.remove_file(&vp("d")).await,
        Err(StorageError::IsADirectory)
    ));
    assert!(matches!(
        st.rmdir(&vp("d/f")).await,
        Err(StorageError::NotADirectory)
    ));
    st.rename(&vp("d/f"), &vp("g"), RenameMode::Replace)
        .await
        .unwrap();
    assert_eq!(read(&st, "g", 0).await, b"x");
    st.rmdir(&vp("d")).await.unwrap();
    st.remove_file(&vp("g")).await.unwrap();
    assert!(matches!(
        st.metadata(&vp("g")).await,
        Err(StorageError::NotFound)
    ));
    assert!(st.rmdir(&vp("/")).await.is_err());
    assert!(names(d.path()).is_empty());
}

#[tokio::test]
async fn reserved_temp_names_are_refused() {
    let (d, st) = setup();
    std::fs::write(d.path().join(".portcullis-upload.zz"), b"x").unwrap();
    let t = vp(".portcullis-upload.zz");
    let ok = vp("ok");
    assert!(matches!(st.metadata(&t).await, Err(StorageError::BadName)));
    assert!(matches!(st.list(&t).await, Err(StorageError::BadName)));
    assert!(matches!(
        st.open_read(&t, 0).await,
        Err(StorageError::BadName)
    ));
    assert!(matches!(
        st.open_write(&t, WriteMode::Append).await,
        Err(StorageError::BadName)
    ));
    assert!(matches!(st.mkdir(&t).await, Err(StorageError::BadName)));
    assert!(matches!(st.rmdir(&t).await, Err(StorageError::BadName)));
    assert!(matches!(
        st.remove_file(&t).await,
        Err(StorageError::BadName)
    ));
    assert!(matches!(
        st.rename(&t, &ok, RenameMode::Replace).await,
        Err(StorageError::BadName)
    ));
    assert!(matches!(
        st.rename(&ok, &t, RenameMode::NoClobber).await,
        Err(StorageError::BadName)
    ));
    assert_eq!(names(d.path()), [".portcullis-upload.zz"]);
}

#[tokio::test]
async fn symlinks_cannot_escape_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s").unwrap();
    let (d, st) = setup();
    std::os::unix::fs::symlink(outside.path(), d.path().join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("s")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", d.path().join("up")).unwrap();

    for p in ["s", "out/secret", "up/etc/passwd"] {
        assert!(st.open_read(&vp(p), 0).await.is_err(), "{p}");
    }
    for p in ["s", "out", "out/secret"] {
        assert!(st.metadata(&vp(p)).await.is_err(), "{p}");
    }
    for p in ["out", "up", "up/etc"] {
        assert!(st.list(&vp(p)).await.is_err(), "{p}");
    }
    for mode in [
        WriteMode::Replace,
        WriteMode::CreateNew,
        WriteMode::Append,
        WriteMode::Resume(0),
    ] {
        assert!(st.open_write(&vp("out/new"), mode).await.is_err());
        if mode != WriteMode::Replace {
            assert!(st.open_write(&vp("s"), mode).await.is_err());
        }
    }
    assert!(st.mkdir(&vp("out/dir")).await.is_err());
    assert!(st
        .rename(&vp("out/secret"), &vp("stolen"), RenameMode::Replace)
        .await
        .is_err());
    assert!(st.remove_file(&vp("out/secret")).await.is_err());
    assert_eq!(names(outside.path()), ["secret"]);
    assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s");
    // The escape is reported as such, not as a local error.
    assert!(matches!(
        st.open_read(&vp("out/secret"), 0).await,
        Err(StorageError::OutsideRoot)
    ));
    assert!(matches!(
        st.entry(&vp("out")).await,
        Err(StorageError::OutsideRoot)
    ));
}

#[tokio::test]
async fn symlinks_inside_the_root_work_and_list_as_links() {
    let (d, st) = setup();
    std::fs::write(d.path().join("in"), b"inside").unwrap();
    std::fs::create_dir(d.path().join("dir")).unwrap();
    std::os::unix::fs::symlink("in", d.path().join("ok")).unwrap();
    std::os::unix::fs::symlink("dir", d.path().join("dl")).unwrap();
    std::os::unix::fs::symlink("/nowhere", d.path().join("abs")).unwrap();
    assert_eq!(read(&st, "ok", 2).await, b"side");
    assert_eq!(st.metadata(&vp("ok")).await.unwrap().kind, FileKind::File);
    assert_eq!(st.metadata(&vp("dl")).await.unwrap().kind, FileKind::Dir);
    write(&st, "dl/f", WriteMode::Replace, b"x", true).await;
    assert_eq!(std::fs::read(d.path().join("dir/f")).unwrap(), b"x");
    std::os::unix::fs::symlink("gone", d.path().join("dir/broken")).unwrap();
    // A temporary upload is hidden from both kinds of listing.
    let mut pending = st.open_write(&vp("up"), WriteMode::Replace).await.unwrap();
    pending.write_all(b"x").await.unwrap();
    let s = |x: &str| x.to_string();
    for names_only in [false, true] {
        let listed = match names_only {
            false => st.list(&vp("/")).await,
            true => st.list_names(&vp("/")).await,
        };
        let mut kinds: Vec<(String, FileKind, Option<String>)> = listed
            .unwrap()
            .map(|e| e.map(|e| (e.name, e.meta.kind, e.target)).unwrap())
            .collect()
            .await;
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        // The absolute link is left out: it leads out of the root. A
        // names-only listing has the same entries, kinds and targets.
        assert_eq!(
            kinds,
            [
                (s("dir"), FileKind::Dir, None),
                (s("dl"), FileKind::Symlink, Some(s("dir"))),
                (s("in"), FileKind::File, None),
                (s("ok"), FileKind::Symlink, Some(s("in"))),
            ],
            "names only: {names_only}"
        );
    }
    drop(pending);
    let e = st.entry(&vp("dl/broken")).await.unwrap();
    assert_eq!(
        (e.meta.kind, e.target),
        (FileKind::Symlink, Some(s("gone")))
    );
    assert_eq!(st.entry(&vp("in")).await.unwrap().target, None);
    assert!(matches!(
        st.metadata(&vp("abs")).await,
        Err(StorageError::OutsideRoot)
    ));
    // Removing a link removes the link only.
    st.remove_file(&vp("ok")).await.unwrap();
    assert_eq!(read(&st, "in", 0).await, b"inside");
}

#[tokio::test]
async fn non_atomic_replace_truncates_in_place() {
    let (d, st) = setup();
    let st = st.with_atomic_uploads(false);
    write(&st, "a", WriteMode::Replace, b"first version", true).await;
    write(&st, "a", WriteMode::Replace, b"second", true).await;
    assert_eq!(read(&st, "a", 0).await, b"second");
    // No temporary name is involved, and an abandoned upload stays
    // (truncated) in place: that is what the operator chose.
    write(&st, "a", WriteMode::Replace, b"par", false).await;
    assert_eq!(names(d.path()), ["a"]);
}

#[tokio::test]
async fn no_clobber_never_replaces_a_file_that_appeared_meanwhile() {
    let (d, st) = setup();
    st.mkdir(&vp("sub")).await.unwrap();
    for p in ["n", "sub/n"] {
        // A new name is published as usual.
        write(&st, p, WriteMode::NoClobber, b"first", true).await;
        assert_eq!(read(&st, p, 0).await, b"first");
        // An existing one is refused at once...
        assert!(matches!(
            st.open_write(&vp(p), WriteMode::NoClobber).await,
            Err(StorageError::AlreadyExists)
        ));
        // ...and one created by someone else during the upload is kept.
        let late = format!("{p}.late");
        let mut u = st
            .open_write(&vp(&late), WriteMode::NoClobber)
            .await
            .unwrap();
        u.write_all(b"upload").await.unwrap();
        std::fs::write(d.path().join(&late), b"theirs").unwrap();
        assert!(matches!(u.commit().await, Err(StorageError::AlreadyExists)));
        assert_eq!(read(&st, &late, 0).await, b"theirs");
    }
    // No temporary file is left behind.
    assert_eq!(names(d.path()), ["n", "n.late", "sub"]);
    assert_eq!(names(&d.path().join("sub")), ["n", "n.late"]);
}

#[tokio::test]
async fn without_fsync_uploads_are_still_published_whole() {
    let (d, st) = setup();
    let st = st.with_fsync(false);
    // Small (written and renamed inline) and large (through the writer
    // thread) uploads, replacing and resuming.
    write(&st, "small", WriteMode::Replace, b"tiny", true).await;
    assert_eq!(read(&st, "small", 0).await, b"tiny");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut u = st.open_write(&vp("big"), WriteMode::Replace).await.unwrap();
    for part in big.chunks(700_000) {
        u.write_owned(part.to_vec()).await.unwrap();
    }
    u.commit().await.unwrap();
    assert_eq!(read(&st, "big", 0).await, big);
    write(&st, "small", WriteMode::Resume(2), b"ny!", true).await;
    assert_eq!(read(&st, "small", 0).await, b"tiny!");
    // An abandoned upload leaves nothing, a drop box still refuses to clobber.
    write(&st, "gone", WriteMode::Replace, b"x", false).await;
    assert!(matches!(
        st.open_write(&vp("small"), WriteMode::NoClobber).await,
        Err(StorageError::AlreadyExists)
    ));
    assert_eq!(names(d.path()), ["big", "small"]);
}

#[cfg(target_os = "linux")]
#[test]
fn fsync_is_skipped_only_in_memory_file_systems() {
    // /proc is neither tmpfs nor ramfs.
    let proc = std::fs::File::open("/proc/self/status").unwrap();
    assert!(!fsync_is_noop(&proc));
    // /dev/shm is a tmpfs wherever the mount table says so.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let shm_is_tmpfs = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[1] == "/dev/shm" && f[2] == "tmpfs"
    });
    if shm_is_tmpfs {
        let d = tempfile::tempdir_in("/dev/shm").unwrap();
        let f = std::fs::File::create(d.path().join("f")).unwrap();
        assert!(fsync_is_noop(&f));
    }
}

#[tokio::test]
async fn an_explicit_abort_removes_the_upload_and_keeps_the_old_file() {
    let (d, st) = setup();
    std::fs::write(d.path().join("f"), b"old").unwrap();
    for mode in [WriteMode::Replace, WriteMode::CreateNew] {
        let target = if mode == WriteMode::Replace {
            "f"
        } else {
            "new"
        };
        let mut up = st.open_write(&vp(target), mode).await.unwrap();
        up.write_all(b"partial").await.unwrap();
        up.abort().await.unwrap();
        assert_eq!(names(d.path()), ["f"], "{mode:?}");
    }
    assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
}

#[tokio::test]
async fn the_factory_hands_out_roots_opened_before_and_opens_others() {
    let (d, st) = setup();
    let other = tempfile::tempdir().unwrap();
    let policy = crate::storage::LocalPolicy {
        atomic: true,
        fsync: false,
    };
    let kept: Arc<dyn Storage> = Arc::new(st);
    let spec = crate::storage::RootSpec::Local(d.path().to_owned());
    let f =
        crate::storage::Factory::new(policy, Default::default(), [(spec.clone(), kept.clone())]);
    assert!(Arc::ptr_eq(&f.open(&spec).unwrap(), &kept));
    std::fs::write(other.path().join("x"), b"x").unwrap();
    let opened = f
        .open(&crate::storage::RootSpec::Local(other.path().to_owned()))
        .unwrap();
    assert_eq!(opened.metadata(&vp("x")).await.unwrap().size, 1);
    assert_eq!(opened.capabilities(), crate::storage::Capabilities::ALL);
    assert!(f
        .open(&crate::storage::RootSpec::Local(
            other.path().join("missing")
        ))
        .is_err());
}

/// RNTO without `overwrite`: never replaces, across directories too, and
/// with it replaces as rename(2) does.
#[tokio::test]
async fn renames_replace_only_when_asked() {
    let (d, st) = setup();
    write(&st, "victim", WriteMode::Replace, b"theirs", true).await;
    write(&st, "mine", WriteMode::Replace, b"mine", true).await;
    st.mkdir(&vp("sub")).await.unwrap();
    write(&st, "sub/other", WriteMode::Replace, b"other", true).await;
    for (from, to) in [
        ("mine", "victim"),
        ("sub/other", "victim"),
        ("mine", "sub/other"),
    ] {
        assert!(matches!(
            st.rename(&vp(from), &vp(to), RenameMode::NoClobber).await,
            Err(StorageError::AlreadyExists)
        ));
    }
    assert_eq!(read(&st, "victim", 0).await, b"theirs");
    assert_eq!(read(&st, "sub/other", 0).await, b"other");
    st.rename(&vp("mine"), &vp("sub/new"), RenameMode::NoClobber)
        .await
        .unwrap();
    assert_eq!(read(&st, "sub/new", 0).await, b"mine");
    st.rename(&vp("sub/new"), &vp("victim"), RenameMode::Replace)
        .await
        .unwrap();
    assert_eq!(read(&st, "victim", 0).await, b"mine");
    assert_eq!(names(d.path()), ["sub", "victim"]);
}

/// The client's mistakes are told apart from I/O failures: a directory
/// moved beneath itself, a name longer than the filesystem takes.
#[tokio::test]
async fn client_mistakes_are_not_io_errors() {
    let (d, st) = setup();
    st.mkdir(&vp("dir")).await.unwrap();
    for mode in [RenameMode::Replace, RenameMode::NoClobber] {
        for to in ["dir/sub", "dir/a/b"] {
            let r = st.rename(&vp("dir"), &vp(to), mode).await;
            let expected = match to {
                // The parent does not exist: that is what rename(2) says.
                "dir/a/b" => matches!(r, Err(StorageError::NotFound)),
                _ => matches!(r, Err(StorageError::IntoItself)),
            };
            assert!(expected, "{to} {mode:?}: {r:?}");
        }
    }
    let long = "x".repeat(256);
    for r in [
        st.mkdir(&vp(&long)).await,
        st.rename(&vp("dir"), &vp(&long), RenameMode::NoClobber)
            .await,
        // An upload is written under a short temporary name: the long
        // one is refused when it is published.
        match st.open_write(&vp(&long), WriteMode::Replace).await {
            Ok(u) => u.commit().await,
            Err(e) => Err(e),
        },
    ] {
        assert!(matches!(r, Err(StorageError::NameTooLong)), "{r:?}");
    }
    assert_eq!(st.metadata(&vp("dir")).await.unwrap().kind, FileKind::Dir);
    assert_eq!(names(d.path()), ["dir"]);
}

/// A write in place (APPE, REST + STOR) removes the digest kept by
/// `hash_on_upload`: the file's size and time can be those it covers
/// again (the same number of bytes rewritten within the clock's tick, or
/// the time set back), and HASH would then answer the old file's digest.
#[tokio::test]
async fn a_write_in_place_drops_the_kept_digest() {
    let (_d, st) = setup();
    for mode in [WriteMode::Resume(1), WriteMode::Append] {
        write(&st, "a", WriteMode::Replace, b"hello", true).await;
        let m = st.metadata(&vp("a")).await.unwrap();
        let kept = crate::storage::KeptDigest {
            sha256: "ab".repeat(32),
            size: m.size,
            modified: m.modified,
        };
        if st.keep_digest(&vp("a"), &kept).await.is_err() {
            // A file system without user attributes keeps no digest.
            println!("SKIP user xattrs");
            return;
        }
        assert_eq!(st.kept_digest(&vp("a")).await, Some(kept.clone()));
        let data: &[u8] = match mode {
            WriteMode::Append => b"",
            _ => b"ELLO",
        };
        write(&st, "a", mode, data, true).await;
        st.set_modified(&vp("a"), m.modified).await.unwrap();
        let now = st.metadata(&vp("a")).await.unwrap();
        assert_eq!((now.size, now.modified), (kept.size, kept.modified));
        assert_eq!(st.kept_digest(&vp("a")).await, None, "{mode:?}");
    }
}
