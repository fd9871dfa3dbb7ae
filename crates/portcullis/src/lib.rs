//! portcullis: an FTP(S) server that makes firewalls and NAT easy.
//!
//! The protocol itself (framing, commands, replies, paths, listings) lives in
//! the sans-io `portcullis-proto` crate; this crate adds the sockets: the accept
//! loop ([`server`]), the control connection and its handlers ([`session`]),
//! data connections ([`data`]), storage back-ends ([`storage`]), authentication
//! ([`auth`]) and configuration ([`config`], [`options`], [`cli`]).

pub mod access;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data;
pub mod doctor;
pub mod endpoints;
pub mod events;
pub mod firewall;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod options;
pub mod privdrop;
pub mod proxy;
pub mod rootcheck;
pub mod server;
pub mod session;
pub mod storage;
pub mod systemd;
pub mod tls;
pub mod xferlog;
