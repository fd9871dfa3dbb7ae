//! portcullis-proto: the sans-io FTP protocol engine of portcullis.
//!
//! Bytes in, typed values out; no sockets, no async runtime. The server crate
//! feeds control-connection bytes to [`framing::LineDecoder`], parses each line
//! with [`command::Command::parse`], asks [`session`] whether the command is
//! allowed in the current state, and writes the [`reply::Reply`] it gets back.
//! [`verbs`] is the one table of the verbs it knows.

pub mod ascii;
pub mod command;
pub mod framing;
pub mod hash;
pub mod listing;
pub mod path;
pub mod proxy;
pub mod reply;
pub mod session;
pub mod verbs;
