//! `proxy_protocol.data_without_header`: the checks and the warning of
//! the key that takes passive data connections from a balancer that
//! sends no PROXY protocol header on its data ports.

use super::ProxyProtocolSection;

/// Refuse the combinations that cannot work, and say once, at every
/// start and `check-config`, what the key gives up.
pub(super) fn check_data_without_header(
    p: &ProxyProtocolSection,
    single_port: bool,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    if !p.data_without_header {
        return;
    }
    let key = "proxy_protocol.data_without_header";
    if p.from.is_empty() {
        errors.push(format!("{key}: needs proxy_protocol.from"));
    }
    if p.data {
        errors.push(format!(
            "{key}: contradicts proxy_protocol.data = true (which requires a header on every data connection from the balancers); choose one"
        ));
    }
    if single_port {
        errors.push(format!(
            "{key}: passive.single_port tells sessions apart by the client address in each connection's header; use proxy_protocol.data = true"
        ));
    }
    warnings.push(format!(
        "{key}: passive data connections from the balancer are taken without a PROXY protocol header, so the passive-hijack guard cannot tell the balancer's clients apart (any of them that reaches a session's passive port first gets its data); prefer proxy_protocol.data = true (HAProxy: send-proxy-v2 on the passive ports)"
    ));
}
