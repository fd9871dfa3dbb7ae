//! A listing page read here, for when `object_store` refused it: its
//! client turns every blob name into a `Path` and fails the whole page on
//! one it cannot (`d/./x`, `d//x`, a control character), so one blob put
//! by another tool would make a directory unlistable. The same List Blobs
//! request is sent again through the signed client of [`Requests`], and
//! its answer read with those names left out and returned apart.

use std::time::UNIX_EPOCH;

use object_store::list::PaginatedListOptions;
use serde::Deserialize;

use super::requests::Requests;
use crate::storage::object::wire::{self, Listed};
use crate::storage::object::RawPage;
use crate::storage::{Result, StorageError};

/// A List Blobs answer: what a delimiter listing needs of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    blobs: Blobs,
    #[serde(default)]
    next_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Blobs {
    #[serde(default)]
    blob_prefix: Vec<Named>,
    #[serde(rename = "Blob", default)]
    blobs: Vec<Blob>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Blob {
    name: String,
    properties: Properties,
}

#[derive(Debug, Deserialize)]
struct Properties {
    #[serde(rename = "Content-Length")]
    size: u64,
    #[serde(rename = "Last-Modified")]
    last_modified: String,
    #[serde(rename = "Etag")]
    e_tag: Option<String>,
}

/// The page `opts` names of the listing of `prefix`, as `object_store`
/// would have asked for it.
pub(super) async fn page(
    requests: &Requests,
    prefix: Option<&str>,
    opts: &PaginatedListOptions,
) -> Result<RawPage> {
    let (status, body) = requests.get_container(&query(prefix, opts)).await?;
    wire::listing(status, &body, read)
}

/// The request's query, its values encoded.
fn query(prefix: Option<&str>, opts: &PaginatedListOptions) -> String {
    let max = opts.max_keys.map(|n| n.to_string());
    wire::query(&[
        ("restype", Some("container")),
        ("comp", Some("list")),
        ("prefix", prefix),
        ("delimiter", opts.delimiter.as_deref()),
        ("marker", opts.page_token.as_deref()),
        ("maxresults", max.as_deref()),
    ])
}

/// An answer's blobs and prefixes, those that cannot be paths set apart
/// (the prefix's own marker kept: the generic listing sets it apart).
fn read(body: &[u8]) -> Result<RawPage> {
    let answer: Answer = quick_xml::de::from_reader(body)
        .map_err(|e| StorageError::Unavailable(format!("listing answer not understood: {e}")))?;
    let prefixes = answer.blobs.blob_prefix.into_iter().map(|p| p.name);
    let objects = answer.blobs.blobs.into_iter().map(|b| Listed {
        modified: httpdate(&b.properties.last_modified).unwrap_or(UNIX_EPOCH),
        key: b.name,
        size: b.properties.size,
        e_tag: b.properties.e_tag,
    });
    Ok(wire::page(
        prefixes.collect(),
        objects.collect(),
        answer.next_marker.filter(|m| !m.is_empty()),
    ))
}

/// An RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`), as Azure writes
/// `Last-Modified`.
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_paths_are_set_apart() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://x/" ContainerName="c">
<Prefix>d/</Prefix><Delimiter>/</Delimiter>
<Blobs>
<Blob><Name>d/</Name><Properties><Last-Modified>Sun, 06 Nov 1994 08:49:37 GMT</Last-Modified><Etag>0x1</Etag><Content-Length>0</Content-Length></Properties></Blob>
<Blob><Name>d/a</Name><Properties><Last-Modified>Sun, 06 Nov 1994 08:49:37 GMT</Last-Modified><Etag>0x2</Etag><Content-Length>5</Content-Length></Properties></Blob>
<BlobPrefix><Name>d/sub/</Name></BlobPrefix>
<Blob><Name>d//x</Name><Properties><Last-Modified>Sun, 06 Nov 1994 08:49:37 GMT</Last-Modified><Content-Length>1</Content-Length></Properties></Blob>
<BlobPrefix><Name>d/./</Name></BlobPrefix>
</Blobs>
<NextMarker>m2</NextMarker>
</EnumerationResults>"#;
        let p = read(body).unwrap();
        let names: Vec<_> = p
            .result
            .objects
            .iter()
            .map(|o| o.location.to_string())
            .collect();
        assert_eq!(names, ["d", "d/a"]);
        assert_eq!(p.result.objects[1].size, 5);
        assert_eq!(p.result.objects[1].last_modified.timestamp(), 784111777);
        assert_eq!(p.result.common_prefixes.len(), 1);
        assert_eq!(p.token.as_deref(), Some("m2"));
        assert_eq!(p.skipped, ["d/./", "d//x"]);
    }

    #[test]
    fn the_query_is_the_one_object_store_sends() {
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            page_token: Some("a b".into()),
            max_keys: Some(1000),
            ..Default::default()
        };
        assert_eq!(
            query(Some("d/"), &opts),
            "restype=container&comp=list&prefix=d%2F&delimiter=%2F&marker=a%20b&maxresults=1000"
        );
    }
}
