//! Passive data connections from a balancer: without a PROXY protocol
//! header they are refused unless `proxy_protocol.data_without_header`
//! says to take them (weaker: the guard cannot tell the balancer's
//! clients apart); and a SIGHUP that turns `proxy_protocol.data` on
//! reaches the single passive port's listener too. The balancer is
//! 127.0.0.1, the test itself; the client 198.51.100.7 exists only in
//! the headers.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{read_all, Raw, Server, Setup};
use crate::proxy::{connect_with, login, v1, v2};

/// A session forwarded by 127.0.0.1 for 198.51.100.7, logged in as alice.
fn forwarded(server: &Server) -> Raw {
    let mut c = connect_with(server, &v1("198.51.100.7", "127.0.0.1", 21));
    login(&mut c);
    c
}

/// PASV's port (the address is the balancer's, 127.0.0.1 here).
fn pasv_port(c: &mut Raw) -> u16 {
    let r = c.cmd("PASV");
    assert!(r.starts_with("227 "), "{r}");
    let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    n[4] * 256 + n[5]
}

fn server(proxy: &'static str) -> Server {
    let server = Server::start_with(Setup {
        sections: proxy,
        accept_timeout: "3s",
        watch_log: true,
        xferlog: true,
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"through the balancer\n").unwrap();
    server
}

#[test]
fn data_without_header_from_the_balancer_is_taken_only_with_the_key() {
    let on = server("[proxy_protocol]\nfrom = [\"127.0.0.1\"]\ndata_without_header = true\n");
    let mut c = forwarded(&on);
    let port = pasv_port(&mut c);
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(c.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"through the balancer\n");
    assert!(c.reply().starts_with("226 "));
    // The record names the client from the control connection's header.
    let log = std::fs::read_to_string(on.xferlog()).unwrap();
    assert!(log.contains(" 198.51.100.7 "), "{log}");

    // Off (the default): the same connection is refused, with a line
    // that names both ways out.
    let off = server("[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n");
    let mut c = forwarded(&off);
    let port = pasv_port(&mut c);
    let data = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut r = c.cmd("RETR f.txt");
    if r.starts_with("150 ") {
        r = c.reply();
    }
    assert!(r.starts_with("425 "), "{r}");
    drop(data);
    off.wait_for_log(
        "from the balancer without a PROXY protocol header",
        0,
        Duration::from_secs(10),
    );
}

#[test]
fn sighup_gives_the_single_port_the_new_proxy_options() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let passive: &'static str = Box::leak(format!("single_port = {port}").into_boxed_str());
    let server = Server::start_with(Setup {
        passive_ports: String::new(),
        extra_passive: passive,
        accept_timeout: "3s",
        watch_log: true,
        sections: "[proxy_protocol]\nfrom = [\"127.0.0.1\"]\ntimeout = \"5s\"\n",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"one port\n").unwrap();
    let text = std::fs::read_to_string(server.config()).unwrap();
    let changed = text.replace("timeout = \"5s\"", "timeout = \"5s\"\ndata = true");
    assert_ne!(changed, text);
    std::fs::write(server.config(), changed).unwrap();
    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));

    // The data connection's header names the client: the single port
    // reads it now, and hands the connection to that client's session.
    let mut c = forwarded(&server);
    assert_eq!(pasv_port(&mut c), port);
    let dest = SocketAddr::from(([127, 0, 0, 1], port));
    let mut data = TcpStream::connect(dest).unwrap();
    data.write_all(&v2(1, Ipv4Addr::new(198, 51, 100, 7), dest))
        .unwrap();
    let r = c.cmd("RETR f.txt");
    assert!(r.starts_with("150 "), "{r}");
    assert_eq!(read_all(data), b"one port\n");
    let r = c.reply();
    assert!(r.starts_with("226 "), "{r}");
}
