//! The LIST, NLST and MLSD output of one transfer: how each entry is
//! rendered ([`ListFormat`]) and in which order it goes out ([`Listing`]).
//!
//! LIST and NLST are sorted by name in byte order (code point order for
//! UTF-8 names), as `ls`, vsftpd and ProFTPD sort them: people read them in
//! terminal clients, and some client libraries take the first entry for the
//! first name. Sorting needs the whole directory in memory, so it is bounded
//! twice: at most [`SORT_MAX_ENTRIES`] entries per listing, and at most
//! [`SORT_BUDGET`] bytes for all listings being sorted at once. A listing
//! past either goes out unsorted, streamed as the directory is read (what
//! was held first, then the rest), and its memory stops growing. MLSD,
//! read by programs, is always streamed unsorted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use portcullis_proto::listing::{self, FileKind, Metadata, MlsxRole};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::files::perm_fact;
use crate::auth::Permissions;
use crate::limits::Throttle;
use crate::storage::DirEntry;

/// Listing lines are gathered to about this many bytes per write.
const LIST_CHUNK: usize = 16 * 1024;
/// Most entries one listing holds to sort them.
pub const SORT_MAX_ENTRIES: usize = 100_000;
/// Most bytes (names, link targets and the entries themselves, roughly)
/// that all the listings being sorted at a time may hold.
pub const SORT_BUDGET: usize = 64 << 20;

/// How LIST-family output is rendered.
#[derive(Debug)]
pub(super) enum ListFormat {
    /// LIST: `ls -l` lines.
    Long { now: SystemTime },
    /// NLST: names only, each after `prefix` (the directory as the client
    /// named it, or nothing).
    Names { prefix: String },
    /// MLSD: fact lines, with a `cdir` line first.
    Mlsd {
        facts: std::borrow::Cow<'static, [&'static str]>,
        perm: PermFacts,
        cdir: Option<Metadata>,
    },
}

impl ListFormat {
    /// Append one line (without the line end) to `out`; `target` is a
    /// symbolic link's, shown by LIST and MLSD.
    pub(super) fn write_line(
        &self,
        out: &mut String,
        name: &str,
        target: Option<&str>,
        meta: &Metadata,
    ) {
        match self {
            ListFormat::Long { now } => listing::write_list_line(out, name, target, meta, *now),
            ListFormat::Names { prefix } => {
                out.push_str(prefix);
                out.push_str(name);
            }
            ListFormat::Mlsd { facts, perm, .. } => {
                let p = perm.of(meta);
                listing::write_mlsx_line(out, name, target, meta, MlsxRole::Entry, p, facts)
            }
        }
    }

    /// LIST and NLST are sorted; MLSD is not.
    fn sorted(&self) -> bool {
        !matches!(self, ListFormat::Mlsd { .. })
    }
}

/// The MLSx `perm` facts of one listing: they depend on the user and on
/// whether the entry is a directory, so they are worked out once per
/// listing, not once per entry.
#[derive(Debug)]
pub(super) struct PermFacts {
    dir: String,
    other: String,
}

impl PermFacts {
    pub(super) fn new(permissions: &Permissions, anonymous: bool) -> Self {
        PermFacts {
            dir: perm_fact(permissions, anonymous, FileKind::Dir),
            other: perm_fact(permissions, anonymous, FileKind::File),
        }
    }

    fn of(&self, meta: &Metadata) -> &str {
        match meta.kind {
            FileKind::Dir => &self.dir,
            _ => &self.other,
        }
    }
}

/// The memory that listings being sorted hold, server-wide.
#[derive(Debug)]
pub struct SortBudget {
    left: AtomicUsize,
}

impl SortBudget {
    pub const fn new(bytes: usize) -> Self {
        SortBudget {
            left: AtomicUsize::new(bytes),
        }
    }

    /// The one budget that every session's listings share.
    pub fn global() -> &'static SortBudget {
        static BUDGET: SortBudget = SortBudget::new(SORT_BUDGET);
        &BUDGET
    }

    /// Take `n` more bytes for `held`, if the budget has them.
    fn take(&'static self, held: &mut Held, n: usize) -> bool {
        let ok = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .is_ok();
        if ok {
            held.bytes += n;
        }
        ok
    }
}

/// The bytes one listing holds of the budget, given back when it ends.
struct Held {
    budget: &'static SortBudget,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.left.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

/// What a listing transfer sends.
pub(super) struct Listing {
    pub entries: BoxStream<'static, crate::storage::Result<DirEntry>>,
    pub format: ListFormat,
    /// Include dot files (`LIST -a`).
    pub all: bool,
    pub budget: &'static SortBudget,
}

/// Lines gathered into chunks and written to the data connection.
struct Sink<'a, S> {
    chunk: String,
    conn: &'a mut S,
    progress: &'a AtomicU64,
    throttle: &'a Throttle,
}

impl<S: AsyncWrite + Unpin> Sink<'_, S> {
    async fn line(&mut self, format: &ListFormat, e: &DirEntry) -> std::io::Result<()> {
        format.write_line(&mut self.chunk, &e.name, e.target.as_deref(), &e.meta);
        self.chunk.push_str("\r\n");
        if self.chunk.len() >= LIST_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.write_all(self.chunk.as_bytes()).await?;
        self.progress
            .fetch_add(self.chunk.len() as u64, Ordering::Relaxed);
        self.throttle.consume(self.chunk.len()).await;
        self.chunk.clear();
        Ok(())
    }
}

/// What holding one entry to sort it costs, roughly.
fn cost(e: &DirEntry) -> usize {
    std::mem::size_of::<DirEntry>() + e.name.len() + e.target.as_ref().map_or(0, String::len)
}

/// The indices of `list` in the byte order of the names. Each name's first
/// 16 bytes make a key (zero-padded, big-endian: a key that compares lower
/// belongs to a name that does); the keys are radix-sorted, a byte at a
/// time from the last, skipping the bytes that all keys share (a common
/// prefix, the padding: found with one AND and one OR over all keys), and
/// only names whose keys tie are compared whole.
/// A comparison sort of the same keys cost about 400 instructions an
/// entry; this is a few dozen.
fn byte_order(list: &[DirEntry]) -> Vec<u32> {
    let mut keys: Vec<(u128, u32)> = list
        .iter()
        .zip(0u32..)
        .map(|(e, i)| {
            let mut k = [0u8; 16];
            let n = e.name.len().min(16);
            k[..n].copy_from_slice(&e.name.as_bytes()[..n]);
            (u128::from_be_bytes(k), i)
        })
        .collect();
    radix_sort(&mut keys);
    let name = |i: u32| list[i as usize].name.as_bytes();
    for run in keys.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|(_, a), (_, b)| name(*a).cmp(name(*b)));
        }
    }
    keys.into_iter().map(|(_, i)| i).collect()
}

/// Sort by key, least significant byte first (stable at each pass, so the
/// result is in key order).
fn radix_sort(keys: &mut Vec<(u128, u32)>) {
    let n = keys.len();
    // The bits where keys differ: a byte with none is the same in all.
    let (and, or) = keys
        .iter()
        .fold((u128::MAX, 0u128), |(a, o), (k, _)| (a & k, o | k));
    let varies = and ^ or;
    let mut other = vec![(0u128, 0u32); n];
    for b in (0..16).filter(|b| (varies >> (8 * b)) & 0xff != 0) {
        let byte = |k: u128| ((k >> (8 * b)) & 0xff) as usize;
        let mut at = [0usize; 256];
        for (k, _) in keys.iter() {
            at[byte(*k)] += 1;
        }
        let mut sum = 0;
        for slot in at.iter_mut() {
            let m = *slot;
            *slot = sum;
            sum += m;
        }
        for &(k, i) in keys.iter() {
            let d = byte(k);
            other[at[d]] = (k, i);
            at[d] += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

impl Listing {
    /// Write the listing to `conn`.
    pub(super) async fn send<S>(
        self,
        conn: &mut S,
        progress: &AtomicU64,
        throttle: &Throttle,
    ) -> std::io::Result<()>
    where
        S: AsyncWrite + Unpin,
    {
        let Listing {
            mut entries,
            format,
            all,
            budget,
        } = self;
        let mut sink = Sink {
            chunk: String::with_capacity(LIST_CHUNK + 512),
            conn,
            progress,
            throttle,
        };
        if let ListFormat::Mlsd {
            cdir: Some(meta),
            facts,
            perm,
        } = &format
        {
            let (p, role) = (perm.of(meta), MlsxRole::Current);
            listing::write_mlsx_line(&mut sink.chunk, ".", None, meta, role, p, facts);
            sink.chunk.push_str("\r\n");
        }
        // Entries held to be sorted; `None` once the listing streams.
        let mut held = format
            .sorted()
            .then(|| (Vec::new(), Held { budget, bytes: 0 }));
        while let Some(entry) = entries.next().await {
            // An entry that vanished or cannot be read is skipped, as ls does.
            let Ok(entry) = entry else { continue };
            if !all && entry.name.starts_with('.') {
                continue;
            }
            if let Some((list, bytes)) = &mut held {
                if list.len() < SORT_MAX_ENTRIES && budget.take(bytes, cost(&entry)) {
                    list.push(entry);
                    continue;
                }
            }
            // Too big to sort (or streaming already): what was held goes out
            // as it came, its memory counted until then, and the rest
            // follows as it is read.
            if let Some((list, _reserved)) = held.take() {
                for e in &list {
                    sink.line(&format, e).await?;
                }
            }
            sink.line(&format, &entry).await?;
        }
        if let Some((list, _bytes)) = held {
            for i in byte_order(&list) {
                sink.line(&format, &list[i as usize]).await?;
            }
        }
        sink.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> DirEntry {
        DirEntry {
            name: name.to_owned(),
            meta: Metadata {
                kind: FileKind::File,
                size: 1,
                modified: SystemTime::UNIX_EPOCH,
                mode: 0o644,
                nlink: 1,
            },
            target: None,
        }
    }

    async fn names(list: &[&str], budget: &'static SortBudget, all: bool) -> Vec<String> {
        let entries: Vec<_> = list.iter().map(|n| Ok(entry(n))).collect();
        let listing = Listing {
            entries: futures_util::stream::iter(entries).boxed(),
            format: ListFormat::Names {
                prefix: String::new(),
            },
            all,
            budget,
        };
        let mut out = Vec::new();
        let progress = AtomicU64::new(0);
        listing
            .send(&mut out, &progress, &Throttle::default())
            .await
            .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn sorted_in_byte_order_and_the_budget_is_given_back() {
        static BUDGET: SortBudget = SortBudget::new(1 << 20);
        let got = names(&["b", "Z", "ä", "a", ".h", "a b", "ab"], &BUDGET, false).await;
        assert_eq!(got, ["Z", "a", "a b", "ab", "b", "ä"]);
        assert_eq!(BUDGET.left.load(Ordering::Acquire), 1 << 20);
    }

    #[test]
    fn the_sort_key_keeps_byte_order() {
        // Names that tie on their first 16 bytes, prefixes of each other,
        // bytes above 0x7f, and a NUL that pads like the key's zeros.
        let names = [
            "0123456789abcdefZ",
            "0123456789abcdef",
            "0123456789abcdefA",
            "0123456789abcde",
            "0123456789abcdf",
            "a\0b",
            "a",
            "a\0",
            "\u{e4}",
            "z",
            "",
        ];
        let list: Vec<DirEntry> = names.iter().map(|n| entry(n)).collect();
        let got: Vec<&str> = byte_order(&list)
            .into_iter()
            .map(|i| names[i as usize])
            .collect();
        let mut want = names.to_vec();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, want);
    }

    #[test]
    fn the_radix_sort_agrees_with_a_comparison_sort() {
        // Pseudo-random names over a small alphabet (many shared prefixes,
        // ties past 16 bytes), lengths 0 to 24.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let names: Vec<String> = (0..3000)
            .map(|_| {
                let len = (next() % 25) as usize;
                (0..len)
                    .map(|_| b"ab\xc3\xa4z"[(next() % 3) as usize] as char)
                    .collect()
            })
            .collect();
        let list: Vec<DirEntry> = names.iter().map(|n| entry(n)).collect();
        let got: Vec<&str> = byte_order(&list)
            .into_iter()
            .map(|i| names[i as usize].as_str())
            .collect();
        let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, want);
        assert!(byte_order(&[]).is_empty());
    }

    #[tokio::test]
    async fn past_the_budget_the_listing_streams_as_read() {
        // Room for two entries: the third sends all as they came.
        static BUDGET: SortBudget = SortBudget::new(2 * std::mem::size_of::<DirEntry>() + 2);
        let got = names(&["c", "b", "a", "d"], &BUDGET, true).await;
        assert_eq!(got, ["c", "b", "a", "d"]);
        let got = names(&["b", "a"], &BUDGET, true).await;
        assert_eq!(got, ["a", "b"], "the budget came back");
    }
}
