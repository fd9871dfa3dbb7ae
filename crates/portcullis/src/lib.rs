//! portcullis: an FTP(S) server that makes firewalls and NAT easy.
//!
//! The protocol itself (framing, commands, replies, paths, listings) lives in
//! the sans-io `portcullis-proto` crate; this crate adds the sockets: the accept
//! loop ([`server`]), the control connection and its handlers ([`session`]),
//! data connections ([`data`]), storage back-ends ([`storage`]), authentication
//! ([`auth`]) and configuration ([`config`], [`options`], [`cli`]).
//!
//! Only [`cli`] is public: the binary calls [`cli::run`], and the
//! integration tests drive that binary. The other modules are
//! `pub(crate)`, so that the dead-code lint sees what nothing uses.

pub(crate) mod access;
pub(crate) mod auth;
pub mod cli;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod data;
pub(crate) mod doctor;
pub(crate) mod endpoints;
pub(crate) mod events;
pub(crate) mod firewall;
pub(crate) mod lifecycle;
pub(crate) mod limits;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod options;
pub(crate) mod privdrop;
pub(crate) mod proxy;
pub(crate) mod quota;
pub(crate) mod registry;
pub(crate) mod rootcheck;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod storage;
pub(crate) mod systemd;
pub(crate) mod tls;
pub(crate) mod xferlog;
