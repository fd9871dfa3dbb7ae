use std::net::SocketAddr;
use std::time::Duration;

use portcullis_proto::reply::ReplyCode;

use super::*;
use crate::events::TransferRecord;
use crate::storage::StorageError;

fn peer() -> SocketAddr {
    "192.0.2.7:40000".parse().unwrap()
}

fn record(direction: Direction, bytes: u64, ok: bool) -> TransferRecord {
    TransferRecord {
        user: "mallory\"} 1\nportcullis_fake 2".into(),
        peer: peer().ip(),
        verb: match direction {
            Direction::Download => "RETR",
            Direction::Upload => "STOR",
            Direction::Listing => "LIST",
        },
        path: "/a path/with\nnewline".into(),
        direction,
        passive: true,
        tls: false,
        ascii: false,
        anonymous: false,
        bytes,
        duration: Duration::from_millis(30),
        outcome: if ok { Ok(()) } else { Err("broken".into()) },
        sha256: None,
    }
}

/// The value of the sample `series` (name and labels as rendered).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counts_events_with_fixed_labels_only() {
    let m = Metrics::new();
    m.event(&Event::Connected {
        listener: Listener::Explicit,
    });
    m.event(&Event::Connected {
        listener: Listener::ImplicitTls,
    });
    m.event(&Event::Ended {
        reason: "quit",
        user: None,
        secs: 1.0,
        listener: Listener::ImplicitTls,
        tls: true,
        encrypted: true,
    });
    // An explicit session that went TLS (AUTH), then one that went TLS and
    // back (CCC) and ended in plain text.
    for ccc in [false, true] {
        m.event(&Event::Connected {
            listener: Listener::Explicit,
        });
        m.event(&Event::ControlTls {
            listener: Listener::Explicit,
            on: true,
        });
        if ccc {
            m.event(&Event::ControlTls {
                listener: Listener::Explicit,
                on: false,
            });
            m.event(&Event::Ended {
                reason: "quit",
                user: None,
                secs: 1.0,
                listener: Listener::Explicit,
                tls: true,
                encrypted: false,
            });
        }
    }
    m.event(&Event::LoggedIn {
        user: "alice",
        anonymous: false,
        client_cert: None,
    });
    m.event(&Event::LoginFailed {
        user: "eve",
        peer: peer(),
        reason: LoginFailure::Credentials(crate::auth::Denied::new(
            crate::auth::Decider::Config,
            crate::auth::Why::WrongPassword,
        )),
        detail: None,
    });
    m.event(&Event::Banned {
        ip: peer().ip(),
        secs: 60,
    });
    m.event(&Event::Refused {
        peer: peer(),
        reason: &Refusal::IpFull(3),
    });
    for (verb, code) in [
        ("RETR", ReplyCode::FILE_UNAVAILABLE),
        ("RETR", ReplyCode::TRANSFER_COMPLETE),
        ("other", ReplyCode::SYNTAX_ERROR),
        ("NOT-A-VERB", ReplyCode::SYNTAX_ERROR),
    ] {
        m.event(&Event::Command { verb, code });
    }
    m.event(&Event::PassivePortsExhausted);
    m.event(&Event::Storage {
        error: &StorageError::NoSpace,
    });
    m.event(&Event::Transfer(&record(Direction::Download, 1000, true)));
    m.event(&Event::Transfer(&record(Direction::Listing, 24, true)));
    m.event(&Event::Transfer(&record(Direction::Upload, 77, false)));
    m.event(&Event::ConfigReload { ok: false });
    let page = m.render(3);
    let v = |s: &str| value(&page, s).unwrap_or_else(|| panic!("no {s} in\n{page}"));
    assert_eq!(
        v("portcullis_sessions{listener=\"explicit\",tls=\"no\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_sessions{listener=\"explicit\",tls=\"yes\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_sessions{listener=\"implicit_tls\",tls=\"yes\"}"),
        0.0
    );
    assert_eq!(
        v("portcullis_sessions_total{listener=\"implicit_tls\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_sessions_ended_total{listener=\"implicit_tls\",tls=\"yes\"}"),
        1.0
    );
    assert_eq!(v("portcullis_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(v("portcullis_logins_total{outcome=\"credentials\"}"), 1.0);
    assert_eq!(v("portcullis_logins_total{outcome=\"backend\"}"), 0.0);
    assert_eq!(v("portcullis_bans_total{reason=\"login_failures\"}"), 1.0);
    assert_eq!(v("portcullis_refusals_total{reason=\"ip_full\"}"), 1.0);
    assert_eq!(v("portcullis_refusals_total{reason=\"banned\"}"), 0.0);
    assert_eq!(
        v("portcullis_commands_total{class=\"5xx\",verb=\"RETR\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_commands_total{class=\"2xx\",verb=\"RETR\"}"),
        1.0
    );
    // A verb outside the table counts as other, with the unparsable lines.
    assert_eq!(
        v("portcullis_commands_total{class=\"5xx\",verb=\"other\"}"),
        2.0
    );
    assert_eq!(v("portcullis_passive_ports_exhausted_total"), 1.0);
    assert_eq!(v("portcullis_passive_ports_in_use"), 3.0);
    assert_eq!(v("portcullis_storage_errors_total{kind=\"no_space\"}"), 1.0);
    assert_eq!(
        v("portcullis_sent_bytes_total{mode=\"passive\",tls=\"no\"}"),
        1024.0
    );
    assert_eq!(
        v("portcullis_received_bytes_total{mode=\"passive\",tls=\"no\"}"),
        77.0
    );
    assert_eq!(
        v("portcullis_transfers_total{direction=\"upload\",mode=\"passive\",outcome=\"failed\",tls=\"no\",verb=\"STOR\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_transfer_duration_seconds_bucket{direction=\"download\",le=\"0.1\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_transfer_duration_seconds_bucket{direction=\"download\",le=\"0.025\"}"),
        0.0
    );
    assert_eq!(
        v("portcullis_config_reloads_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(v("portcullis_config_reloads_total{outcome=\"ok\"}"), 0.0);
    assert_eq!(v("portcullis_config_last_reload_successful"), 0.0);
    let build = format!(
        "portcullis_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(v(&build), 1.0);
    for secret in [
        "mallory",
        "fake",
        "a path",
        "newline",
        "192.0.2.7",
        "eve",
        "alice",
    ] {
        assert!(!page.contains(secret), "{secret} leaked into\n{page}");
    }
}
