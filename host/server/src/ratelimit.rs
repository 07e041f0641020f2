//! Per-client-address rate limiting of the endpoints that guess secrets (login, SSO login,
//! the IACT endpoints). The client address is the peer's, or — only when the peer is a
//! configured trusted proxy — the right-most `X-Forwarded-For` entry that is not itself a
//! trusted proxy. A client cannot dodge the limit by forging the header.

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct Limiter {
    inner: DefaultKeyedRateLimiter<IpAddr>,
    trusted: Vec<IpNet>,
    clock: DefaultClock,
    /// Per limited address: when its last "rate limited" log line was written and how many
    /// refusals went unlogged since (one line a minute per address, not one per request).
    logged: std::sync::Mutex<std::collections::HashMap<IpAddr, (std::time::Instant, u64)>>,
}

/// The client's address: the peer's, or — only when the peer is one of `trusted` — the
/// right-most `X-Forwarded-For` entry that is not itself trusted (a garbled header: the
/// peer's).
pub fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for part in text.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => chain.push(ip.to_canonical()),
                // A garbled header from a trusted proxy: fall back to the proxy itself.
                Err(_) => return peer,
            }
        }
    }
    chain
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// One "rate limited" log line per address per this long.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Addresses remembered for [`Limiter::log_refusal`]; past it the memory starts over.
const MAX_LOGGED: usize = 10_000;

impl Limiter {
    pub fn new(per_minute: u32, trusted: Vec<IpNet>) -> Limiter {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("non-zero"));
        Limiter {
            inner: RateLimiter::keyed(quota),
            trusted,
            clock: DefaultClock::default(),
            logged: Default::default(),
        }
    }

    /// The address the limit applies to.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(&self.trusted, peer, headers)
    }

    /// `Err(wait)` when `ip` has used up its attempts. IPv6 clients are counted per /64
    /// (what one subscriber usually holds), so rotating addresses inside it gains nothing.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.inner
            .check_key(&quota_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Whether a refusal of `ip` should be logged: `Some(n)` (with `n` refusals of it that
    /// were not logged since its last line) at most once a minute per address, `None`
    /// otherwise. A client hammering a limited endpoint costs one log line a minute.
    pub fn log_refusal(&self, ip: IpAddr) -> Option<u64> {
        let key = quota_key(ip);
        let now = std::time::Instant::now();
        let mut logged = self.logged.lock().expect("log lock");
        if logged.len() >= MAX_LOGGED && !logged.contains_key(&key) {
            logged.clear();
        }
        let entry = match logged.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((now, 0));
                return Some(0);
            }
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        };
        if now.duration_since(entry.0) >= LOG_EVERY {
            let unlogged = entry.1;
            *entry = (now, 0);
            Some(unlogged)
        } else {
            entry.1 += 1;
            None
        }
    }

    /// Forget addresses that have not been limited lately (keeps memory bounded).
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        let now = std::time::Instant::now();
        self.logged
            .lock()
            .expect("log lock")
            .retain(|_, (at, _)| now.duration_since(*at) < LOG_EVERY);
    }
}

/// The key a client's quota is counted under: IPv4 as is, IPv6 by its /64 prefix.
fn quota_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_client_is_logged_once_a_minute_not_per_request() {
        let l = super::Limiter::new(1, vec![]);
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(l.log_refusal(ip), Some(0));
        for _ in 0..1000 {
            assert_eq!(l.log_refusal(ip), None);
        }
        // Another address has its own line.
        assert_eq!(l.log_refusal("192.0.2.8".parse().unwrap()), Some(0));
    }

    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forged_headers_from_untrusted_peers_are_ignored() {
        let l = Limiter::new(10, vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(l.client_ip(peer, &headers("1.2.3.4")), peer);
        // From a trusted proxy: the right-most untrusted hop.
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            l.client_ip(proxy, &headers("1.2.3.4, 198.51.100.7, 10.0.0.9")),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_ip(proxy, &headers("garbage")), proxy);
        assert_eq!(l.client_ip(proxy, &HeaderMap::new()), proxy);
    }

    #[test]
    fn the_quota_runs_out_per_address() {
        let l = Limiter::new(3, vec![]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        assert!(l.check(a).is_err());
        assert!(l.check(b).is_ok());
    }

    #[test]
    fn ipv6_addresses_rotated_inside_one_64_share_a_quota() {
        let l = Limiter::new(2, vec![]);
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
            assert!(l.check(host.parse().unwrap()).is_ok());
        }
        assert!(l.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }
}
