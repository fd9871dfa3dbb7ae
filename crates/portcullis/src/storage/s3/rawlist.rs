//! A listing page read here, for when `object_store` refused it: its
//! client turns every key into a `Path` and fails the whole page on one
//! it cannot (`d/./x`, `d//x`, `d/../x`, a control character), so one key
//! put by another tool would make a directory unlistable. The same
//! ListObjectsV2 request is sent again through the signed client of
//! [`Markers`], and its answer read with those keys (and prefixes) left
//! out and returned apart, for the caller to count and name.

use std::time::UNIX_EPOCH;

use object_store::list::PaginatedListOptions;
use serde::Deserialize;

use super::marker::Markers;
use crate::storage::object::wire::{self, Listed};
use crate::storage::object::RawPage;
use crate::storage::{Result, StorageError};

/// A ListObjectsV2 answer: what a delimiter listing needs of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    common_prefixes: Vec<Prefix>,
    #[serde(default)]
    next_continuation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    size: u64,
    last_modified: String,
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Prefix {
    prefix: String,
}

/// The page `opts` names of the listing of `prefix`, as `object_store`
/// would have asked for it.
pub(super) async fn page(
    markers: &Markers,
    prefix: Option<&str>,
    opts: &PaginatedListOptions,
) -> Result<RawPage> {
    let (status, body) = markers.get_bucket(&query(prefix, opts)).await?;
    wire::listing(status, &body, read)
}

/// The request's query, its values encoded.
fn query(prefix: Option<&str>, opts: &PaginatedListOptions) -> String {
    let max_keys = opts.max_keys.map(|n| n.to_string());
    wire::query(&[
        ("list-type", Some("2")),
        ("continuation-token", opts.page_token.as_deref()),
        ("delimiter", opts.delimiter.as_deref()),
        ("prefix", prefix),
        ("start-after", opts.offset.as_deref()),
        ("max-keys", max_keys.as_deref()),
    ])
}

/// An answer's keys and prefixes, those that cannot be paths set apart.
fn read(body: &[u8]) -> Result<RawPage> {
    let answer: Answer = quick_xml::de::from_reader(body)
        .map_err(|e| StorageError::Unavailable(format!("listing answer not understood: {e}")))?;
    let prefixes = answer.common_prefixes.into_iter().map(|p| p.prefix);
    let objects = answer.contents.into_iter().map(|c| Listed {
        modified: humantime::parse_rfc3339_weak(&c.last_modified).unwrap_or(UNIX_EPOCH),
        key: c.key,
        size: c.size,
        e_tag: c.e_tag,
    });
    Ok(wire::page(
        prefixes.collect(),
        objects.collect(),
        answer.next_continuation_token,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_cannot_be_paths_are_set_apart() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>
<Contents><Key>a/d/</Key><LastModified>2026-12-03T22:10:23.000Z</LastModified><ETag>"m"</ETag><Size>0</Size></Contents>
<Contents><Key>a/d/./x</Key><LastModified>2026-12-03T22:10:23.000Z</LastModified><Size>3</Size></Contents>
<Contents><Key>a/d/b&amp;c</Key><LastModified>2026-12-03T22:10:23Z</LastModified><ETag>"e"</ETag><Size>5</Size></Contents>
<Contents><Key>a/d/x&#10;y</Key><LastModified>2026-12-03T22:10:23Z</LastModified><Size>1</Size></Contents>
<CommonPrefixes><Prefix>a/d//</Prefix></CommonPrefixes>
<CommonPrefixes><Prefix>a/d/sub/</Prefix></CommonPrefixes>
<NextContinuationToken>next+1</NextContinuationToken></ListBucketResult>"#;
        let page = read(xml).unwrap();
        let names: Vec<&str> = page
            .result
            .objects
            .iter()
            .map(|o| o.location.as_ref())
            .collect();
        assert_eq!(names, ["a/d", "a/d/b&c"]);
        assert_eq!(page.result.objects[1].size, 5);
        assert_eq!(page.result.objects[1].e_tag.as_deref(), Some("\"e\""));
        let prefixes: Vec<&str> = page
            .result
            .common_prefixes
            .iter()
            .map(|p| p.as_ref())
            .collect();
        assert_eq!(prefixes, ["a/d/sub"]);
        assert_eq!(page.skipped, ["a/d//", "a/d/./x", "a/d/x\ny"]);
        assert_eq!(page.token.as_deref(), Some("next+1"));
    }

    #[test]
    fn the_query_is_the_one_object_store_sends() {
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(1000),
            page_token: Some("a+b=".into()),
            ..Default::default()
        };
        assert_eq!(
            query(Some("alice/d e/"), &opts),
            "list-type=2&continuation-token=a%2Bb%3D&delimiter=%2F&prefix=alice%2Fd%20e%2F&max-keys=1000"
        );
    }
}
