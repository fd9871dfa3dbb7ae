//! Integration tests: the real `portcullis` binary on 127.0.0.1, driven by a
//! real FTP client crate (suppaftp), by raw TCP for protocol edge cases, and
//! by the command-line clients operators use (curl, lftp, wget, Python's
//! ftplib, rclone) where they are installed.

mod accounts;
mod accounts_ldap;
mod accounts_ldap_more;
mod accounts_policy;
mod accounts_roots;
mod acme;
mod audit;
mod azure;
mod book;
mod cli;
mod client;
mod client_cert;
mod closing;
mod cluster;
mod cluster_limits;
mod cluster_quota;
mod cluster_registry;
mod cluster_review;
mod control;
mod control_page;
mod dashboard;
mod events;
mod first_hour;
mod fleet;
mod ftps;
mod haproxy;
mod harness;
mod hash;
mod hostile;
mod listings;
mod logs;
mod netns;
mod ops;
#[cfg(feature = "pam")]
mod pam;
mod permissions;
mod proxy;
mod proxy_data;
mod quota;
mod raw;
mod reload;
mod s3;
mod single_port;
mod site;
mod systemd;
mod tools;
mod tools_tls;
mod users_edit;
mod xferlog;
