//! The client's address: the connection's peer, or, when the peer is a proxy the operator
//! trusts (`trusted_proxies`: a load balancer in front of several processes, ADR 0024), the
//! address the proxies say they forwarded for (`X-Forwarded-For`, read from the right past
//! every trusted proxy; what a client writes itself sits further left and is never reached).
//! The rate limit, the login throttle and the audit entries all use it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The client's address, as [`resolve`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// One network: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    bits: u128,
    prefix: u32,
    v4: bool,
}

/// The proxies whose `X-Forwarded-For` is believed (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

/// An address as 128 bits (IPv4 in the low 32), and whether it is IPv4.
fn bits(ip: IpAddr) -> (u128, bool) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), true),
        IpAddr::V6(v6) => (u128::from(v6), false),
    }
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks (`10.0.0.0/8`, `::1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an address or a network"))?;
            let (bits, v4) = bits(ip);
            let max = if v4 { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix must be 0 to {max}"))?,
            };
            out.push(Network { bits, prefix, v4 });
        }
        Ok(TrustedProxies(out))
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let (b, v4) = bits(ip);
        self.0.iter().any(|n| {
            let width = if n.v4 { 32 } else { 128 };
            n.v4 == v4 && (n.prefix == 0 || (b ^ n.bits) >> (width - n.prefix) == 0)
        })
    }

    /// The client behind `peer`, given the `X-Forwarded-For` values in the order received.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let hops: Vec<&str> = forwarded
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// Middleware: finds the client's address and puts it in the request's extensions.
/// Requests without a known peer (in-process tests) have none.
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = trusted.client(peer, forwarded);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_by_their_prefix() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7, fd00::/8").unwrap();
        assert!(t.trusts(ip("10.200.3.4")));
        assert!(t.trusts(ip("::ffff:10.1.1.1")), "IPv4-mapped");
        assert!(!t.trusts(ip("11.0.0.1")));
        assert!(t.trusts(ip("192.168.1.7")));
        assert!(!t.trusts(ip("192.168.1.8")));
        assert!(t.trusts(ip("fd12::1")));
        assert!(!t.trusts(ip("fe80::1")));
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .trusts(ip("8.8.8.8"))
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }

    #[test]
    fn the_client_is_the_first_hop_from_the_right_that_is_not_a_trusted_proxy() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // A client that writes its own header is not believed past the proxy's entry.
        let xff = ["6.6.6.6, 203.0.113.9", "10.0.0.2"];
        assert_eq!(t.client(ip("10.0.0.1"), xff.into_iter()), ip("203.0.113.9"));
        // From an untrusted peer the header is ignored.
        assert_eq!(
            t.client(ip("198.51.100.1"), xff.into_iter()),
            ip("198.51.100.1")
        );
        // Nothing trusted: the peer.
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), xff.into_iter()), ip("10.0.0.1"));
        // A garbled entry stops the walk at the proxy that wrote it.
        assert_eq!(
            t.client(ip("10.0.0.1"), ["junk"].into_iter()),
            ip("10.0.0.1")
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client(ip("10.0.0.1"), ["203.0.113.5:8080"].into_iter()),
            ip("203.0.113.5")
        );
    }
}
