use std::time::Duration;

use super::*;
use crate::access::NetList;

fn opts() -> LimitsOptions {
    LimitsOptions {
        max_sessions: 3,
        max_sessions_per_ip: 2,
        max_login_failures: 3,
        login_failure_window: Duration::from_secs(60),
        ban_time: Duration::from_secs(10),
        ..LimitsOptions::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn session_counts_total_and_per_ip() {
    let g = Guard::new(opts());
    let a1 = g.admit(ip("198.51.100.1")).unwrap();
    let _a2 = g.admit(ip("198.51.100.1")).unwrap();
    assert_eq!(g.admit(ip("198.51.100.1")).unwrap_err(), Refusal::IpFull(2));
    // IPv4-mapped IPv6 is the same client.
    assert_eq!(
        g.admit(ip("::ffff:198.51.100.1")).unwrap_err(),
        Refusal::IpFull(2)
    );
    let _b = g.admit(ip("198.51.100.2")).unwrap();
    assert_eq!(
        g.admit(ip("198.51.100.3")).unwrap_err(),
        Refusal::ServerFull(3)
    );
    drop(a1);
    assert!(g.admit(ip("198.51.100.1")).is_ok(), "slot freed on drop");
}

#[tokio::test]
async fn bans_after_failures_and_grow() {
    let g = Guard::new(opts());
    let bad = ip("203.0.113.9");
    assert_eq!(g.login_failed(bad).await, None);
    assert_eq!(g.login_failed(bad).await, None);
    assert_eq!(g.login_failed(bad).await, Some(Duration::from_secs(10)));
    assert!(g.banned(bad).is_some());
    assert!(matches!(g.admit(bad), Err(Refusal::Banned(_))));
    assert!(g.admit(ip("203.0.113.10")).is_ok(), "others unaffected");
    // The next ban of the same address is twice as long.
    g.login_failed(bad).await;
    g.login_failed(bad).await;
    assert_eq!(g.login_failed(bad).await, Some(Duration::from_secs(20)));
    let off = Guard::new(LimitsOptions {
        max_login_failures: 0,
        ..opts()
    });
    for _ in 0..10 {
        assert_eq!(off.login_failed(bad).await, None);
    }
}

#[test]
fn networks() {
    let l = NetList {
        allow: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        deny: vec!["10.9.0.0/16".parse().unwrap()],
    };
    assert!(l.permits(ip("10.1.2.3")));
    assert!(l.permits(ip("::ffff:10.1.2.3")));
    assert!(!l.permits(ip("10.9.1.1")), "deny wins");
    assert!(!l.permits(ip("198.51.100.1")), "not in allow");
    assert!(l.permits(ip("::1")));
    assert!(NetList::default().permits(ip("198.51.100.1")));
}

#[tokio::test(start_paused = true)]
async fn bucket_paces_to_its_rate() {
    let b = Bucket::new(1_000_000).unwrap();
    let t = Throttle(vec![b]);
    let start = tokio::time::Instant::now();
    for _ in 0..30 {
        t.consume(100_000).await;
    }
    // 3 MB at 1 MB/s, less the initial burst of 100 kB.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(2800) && took <= Duration::from_millis(3000),
        "{took:?}"
    );
    assert!(Throttle::default().is_unlimited());
}

#[tokio::test]
async fn reconfigure_keeps_counts_and_bans() {
    let g = Guard::new(opts());
    let _a = g.admit(ip("198.51.100.1")).unwrap();
    let _b = g.admit(ip("198.51.100.2")).unwrap();
    for _ in 0..2 {
        assert_eq!(g.login_failed(ip("198.51.100.9")).await, None);
    }
    assert!(g.login_failed(ip("198.51.100.9")).await.is_some(), "banned");
    let rates_differ = g.reconfigure(LimitsOptions {
        max_sessions: 2,
        max_login_failures: 1,
        ..opts()
    });
    assert!(!rates_differ);
    // The two sessions admitted before still count against the new limit.
    assert_eq!(
        g.admit(ip("198.51.100.3")).unwrap_err(),
        Refusal::ServerFull(2)
    );
    assert!(g.banned(ip("198.51.100.9")).is_some(), "the ban stays");
    // The new ban setting: one failure bans.
    assert!(g.login_failed(ip("198.51.100.4")).await.is_some());
    assert!(g.reconfigure(LimitsOptions {
        upload_rate: 1000,
        ..opts()
    }));
}

#[test]
fn a_users_bucket_is_shared_across_reloads_and_renewed_when_its_rate_changes() {
    let g = Guard::new(opts());
    let none = Buckets::default();
    let bucket = |t: &Throttle| t.0.last().cloned().expect("the user's bucket");
    let first = bucket(&g.throttle("bob", (1000, 0), &none, false));
    let second = bucket(&g.throttle("bob", (1000, 0), &none, false));
    assert!(Arc::ptr_eq(&first, &second), "one bucket for the user");
    // A reload that leaves bob's rate as it was: transfers before and
    // after it still share one bucket (not twice the rate).
    g.reconfigure(opts());
    let after = bucket(&g.throttle("bob", (1000, 0), &none, false));
    assert!(Arc::ptr_eq(&first, &after), "kept across the reload");
    let changed = bucket(&g.throttle("bob", (2000, 0), &none, false));
    assert!(!Arc::ptr_eq(&first, &changed) && changed.rate == 2000);
    assert!(g.throttle("bob", (0, 0), &none, false).is_unlimited());
    assert!(g.throttle("bob", (0, 0), &none, true).is_unlimited());
}
