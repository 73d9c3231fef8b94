//! Blocking resolution and the process-wide cache of successful lookups,
//! shared with the [`Resolver`](super::Resolver).

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::{Host, IpAddress, IpType, check_hostname};
use crate::SocketError;

/// Bound on the number of cached lookups. The cache never expires entries (as
/// Godot's), so without a bound a server resolving names chosen by its users
/// would grow it forever; when full it is emptied, which only costs a new lookup.
pub(super) const MAX_CACHED_LOOKUPS: usize = 1024;

/// Resolves `host` to its first address of type `ip_type`, blocking the caller
/// (use a [`Resolver`](super::Resolver) to avoid blocking).
///
/// Same rules as [`resolve_hostname_addresses`], of which this returns the
/// first element.
///
/// ```
/// use lunanet::{ip, IpAddress, IpType, SocketError};
///
/// assert_eq!(ip::resolve_hostname("localhost", IpType::Ipv4)?, IpAddress::new_v4(127, 0, 0, 1));
/// assert_eq!(ip::resolve_hostname("::1", IpType::Any)?, IpAddress::from("::1"));
/// assert_eq!(ip::resolve_hostname("::1", IpType::Ipv4), Err(SocketError::InvalidIpAddress));
/// # Ok::<(), SocketError>(())
/// ```
pub fn resolve_hostname(host: &str, ip_type: IpType) -> Result<IpAddress, SocketError> {
    let addresses = resolve_hostname_addresses(host, ip_type)?;
    // Never empty: an empty lookup is an error, and only non-empty ones are cached.
    addresses
        .first()
        .copied()
        .ok_or(SocketError::InvalidIpAddress)
}

/// Resolves `host` to all its addresses of type `ip_type`, blocking the caller
/// (use a [`Resolver`](super::Resolver) to avoid blocking).
///
/// - An IP literal is returned as is, without a lookup, if it is of the
///   requested type. IPv4-mapped IPv6 literals count as IPv4.
/// - A name is first checked as [`Host::check`] does, then looked up in the
///   process-wide cache, then resolved with the system resolver (`getaddrinfo`
///   through [`std::net::ToSocketAddrs`], so `/etc/hosts` applies). The
///   addresses keep the system's order (its preference, e.g. RFC 6724), without
///   duplicates, filtered by `ip_type` ([`IpType::None`] is [`IpType::Any`]).
///   Only successful lookups are cached, keyed by the ASCII-lowercased name and
///   the type; entries stay until [`clear_cache`].
///
/// Errors: [`SocketError::InvalidIpAddress`] for the wildcard, a literal of the
/// other family, an impossible name, a failed lookup, or a lookup that found no
/// address of the requested type.
///
/// ```
/// use lunanet::{ip, IpAddress, IpType};
///
/// let all = ip::resolve_hostname_addresses("localhost", IpType::Any)?;
/// assert!(all.iter().all(|a| a.to_ip_addr().is_some_and(|ip| ip.is_loopback())));
/// assert!(ip::resolve_hostname_addresses("localhost", IpType::Ipv4)?
///     .contains(&IpAddress::new_v4(127, 0, 0, 1)));
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub fn resolve_hostname_addresses(
    host: &str,
    ip_type: IpType,
) -> Result<Vec<IpAddress>, SocketError> {
    match resolve_without_lookup(host, ip_type)? {
        Some(addresses) => Ok(addresses),
        None => lookup(host, ip_type),
    }
}

/// Empties the process-wide resolution cache: the entries of `host` (all
/// types; the name is compared case-insensitively), or every entry for `None`.
///
/// The cache is shared by the blocking functions and every [`Resolver`](super::Resolver).
/// `Some("")` matches no entry (Godot uses `""` for "everything"; here that is
/// `None`).
///
/// ```
/// use lunanet::{ip, IpType};
///
/// ip::resolve_hostname("localhost", IpType::Any)?;
/// ip::clear_cache(Some("localhost")); // the next lookup asks the system again
/// ip::clear_cache(None);              // forget everything
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub fn clear_cache(host: Option<&str>) {
    let mut cache = cache();
    match host {
        None => cache.clear(),
        Some(host) => {
            for ip_type in [IpType::Ipv4, IpType::Ipv6, IpType::Any] {
                cache.remove(&cache_key(host, ip_type));
            }
        }
    }
}

/// Cache key: DNS names are case-insensitive (ASCII only), and `None` resolves
/// exactly like `Any`.
pub(super) type CacheKey = (String, IpType);

pub(super) fn cache_key(host: &str, ip_type: IpType) -> CacheKey {
    let ip_type = match ip_type {
        IpType::None => IpType::Any,
        t => t,
    };
    (host.to_ascii_lowercase(), ip_type)
}

/// The process-wide cache of successful lookups. A panic while it was locked
/// cannot leave it inconsistent (every update is a single map operation), so a
/// poisoned lock is simply taken over.
pub(super) fn cache() -> MutexGuard<'static, HashMap<CacheKey, Vec<IpAddress>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Vec<IpAddress>>>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Everything resolution can decide without asking the system: the answer for
/// literals and cache hits (`Some`), an error for impossible input, or `None`
/// when a real lookup is needed.
pub(super) fn resolve_without_lookup(
    host: &str,
    ip_type: IpType,
) -> Result<Option<Vec<IpAddress>>, SocketError> {
    match Host::from(host) {
        Host::Address(a) if a.is_of_type(ip_type) => Ok(Some(vec![a])),
        Host::Address(_) => Err(SocketError::InvalidIpAddress),
        Host::Name(name) => {
            check_hostname(&name)?;
            Ok(cache().get(&cache_key(&name, ip_type)).cloned())
        }
    }
}

/// Asks the system resolver (blocking, without holding any lock so that other
/// threads keep using the cache and the resolver queue) and caches a success.
fn lookup(host: &str, ip_type: IpType) -> Result<Vec<IpAddress>, SocketError> {
    let found = match (host, 0u16).to_socket_addrs() {
        Ok(found) => found,
        Err(e) => {
            log::debug!("resolving {host:?} failed: {e}");
            return Err(SocketError::InvalidIpAddress);
        }
    };
    let mut addresses: Vec<IpAddress> = Vec::new();
    for sa in found {
        let a = IpAddress::from(sa.ip());
        // getaddrinfo repeats an address once per socket type unless hinted,
        // and the list is short, so a linear scan is the cheapest dedup.
        if a.is_of_type(ip_type) && !addresses.contains(&a) {
            addresses.push(a);
        }
    }
    if addresses.is_empty() {
        log::debug!("resolving {host:?}: no {ip_type:?} address");
        return Err(SocketError::InvalidIpAddress);
    }
    let key = cache_key(host, ip_type);
    let mut cache = cache();
    if cache.len() >= MAX_CACHED_LOOKUPS && !cache.contains_key(&key) {
        cache.clear();
    }
    cache.insert(key, addresses.clone());
    Ok(addresses)
}
