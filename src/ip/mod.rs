//! IP addresses, hostnames and name resolution: Luna's `IpAddress` and Godot's
//! `IP` singleton (`resolve_hostname`, the resolver queue, the cache).
//!
//! - [`IpAddress`] is a concrete IPv4 or IPv6 address, the wildcard `"*"`, or
//!   invalid, with the implicit string conversion of Luna/Godot (an unparsable
//!   string gives an invalid address that the operation using it rejects).
//! - [`Host`] is what `StreamPeerTcp::connect_to_host` accepts: an address, or a
//!   hostname that still has to be resolved.
//! - [`resolve_hostname`] and [`resolve_hostname_addresses`] resolve a name,
//!   blocking the caller; [`Resolver`] does the same on a background thread so a
//!   reactor thread never waits for DNS. Both share one process-wide cache of
//!   successful lookups, emptied with [`clear_cache`].
//!
//! ```
//! use lunanet::{ip, IpAddress, IpType};
//!
//! let addr: IpAddress = "127.0.0.1".parse()?;
//! assert!(addr.is_valid() && addr.is_ipv4());
//! assert_eq!(ip::resolve_hostname("localhost", IpType::Ipv4)?, addr);
//! # Ok::<(), lunanet::SocketError>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;

use crate::SocketError;

/// How many items a [`Resolver`] holds at once (Godot's `RESOLVER_MAX_QUERIES`).
///
/// An item counts from [`Resolver::queue`] until it is erased
/// ([`Resolver::erase`] or [`Resolver::take_addresses`]); one more is refused
/// with [`SocketError::Busy`].
///
/// ```
/// assert_eq!(lunanet::ip::RESOLVER_MAX_QUERIES, 256);
/// ```
pub const RESOLVER_MAX_QUERIES: usize = 256;

/// The longest hostname DNS can carry (RFC 1035: 255 octets on the wire, i.e.
/// 253 characters in text form without the trailing dot).
const MAX_NAME_LEN: usize = 253;

/// The longest label (the part between two dots) DNS can carry (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Bound on the number of cached lookups. The cache never expires entries (as
/// Godot's), so without a bound a server resolving names chosen by its users
/// would grow it forever; when full it is emptied, which only costs a new lookup.
const MAX_CACHED_LOOKUPS: usize = 1024;

/// Which address family a lookup should return (Godot's `IP.Type`).
///
/// ```
/// use lunanet::{ip, IpType};
///
/// assert_eq!(IpType::default(), IpType::Any);
/// let v4 = ip::resolve_hostname_addresses("localhost", IpType::Ipv4)?;
/// assert!(v4.iter().all(|a| a.is_ipv4()));
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpType {
    /// No preference. Resolution treats it exactly like [`IpType::Any`] (as
    /// Godot's Unix backend, which asks `getaddrinfo` for `AF_UNSPEC` for
    /// anything but IPv4 and IPv6), and the two share cache entries.
    None,
    /// IPv4 addresses only (IPv4-mapped IPv6 addresses count as IPv4).
    Ipv4,
    /// IPv6 addresses only.
    Ipv6,
    /// Both families, in the order the system resolver returns them.
    #[default]
    Any,
}

/// An IP address with Luna/Godot semantics: a valid IPv4 address, a valid IPv6
/// address, the wildcard `"*"`, or invalid (the [`Default`]).
///
/// IPv4 addresses are stored as IPv4-mapped IPv6 addresses (as Godot does), so
/// `::ffff:1.2.3.4` *is* `1.2.3.4`: [`is_ipv4`](Self::is_ipv4) is true, it
/// compares and hashes equal to the plain IPv4 address, it displays as `1.2.3.4`
/// and [`to_ip_addr`](Self::to_ip_addr) gives an `IpAddr::V4`.
///
/// Differences from Godot, both because Rust's `Eq` must be reflexive and its
/// parsers are strict:
/// - two invalid addresses compare equal (in Godot `invalid != invalid`), and
///   the wildcard equals the wildcard;
/// - parsing uses the standard library's grammar, so inputs Godot would read
///   leniently (`"256.0.0.1"`, `"01.2.3.4"`, `"1.2.3"`) are invalid here
///   instead of silently becoming some other address.
///
/// ```
/// use std::net::Ipv4Addr;
/// use lunanet::IpAddress;
///
/// let a = IpAddress::from("10.0.0.1");
/// assert_eq!(a, IpAddress::from(Ipv4Addr::new(10, 0, 0, 1)));
/// assert_eq!(a, IpAddress::from("::ffff:10.0.0.1"));
/// assert_eq!(a.to_string(), "10.0.0.1");
///
/// // Luna's implicit conversion: not an address → invalid, rejected later.
/// assert!(!IpAddress::from("example.com").is_valid());
/// assert!(IpAddress::from("*").is_wildcard());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IpAddress(Repr);

/// The three states of an [`IpAddress`]; concrete addresses keep the 16 bytes
/// of the IPv6 form (IPv4 mapped), so equality and hashing of a mapped IPv6 and
/// the IPv4 address agree without special cases.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
enum Repr {
    #[default]
    Invalid,
    Wildcard,
    Ip([u8; 16]),
}

impl IpAddress {
    /// The invalid address (same as `IpAddress::default()`): displays as the
    /// empty string and is rejected by every operation that needs an address.
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert_eq!(IpAddress::invalid(), IpAddress::default());
    /// assert_eq!(IpAddress::invalid().to_string(), "");
    /// ```
    pub const fn invalid() -> IpAddress {
        IpAddress(Repr::Invalid)
    }

    /// The wildcard `"*"`: "any local address" when binding or listening (for
    /// `TcpServer::listen` it means dual-stack IPv6 + IPv4).
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert_eq!(IpAddress::wildcard(), "*".parse()?);
    /// assert_eq!(IpAddress::wildcard().to_string(), "*");
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub const fn wildcard() -> IpAddress {
        IpAddress(Repr::Wildcard)
    }

    /// The IPv4 address `a.b.c.d`.
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert_eq!(IpAddress::new_v4(127, 0, 0, 1).to_string(), "127.0.0.1");
    /// ```
    pub const fn new_v4(a: u8, b: u8, c: u8, d: u8) -> IpAddress {
        IpAddress(Repr::Ip(
            Ipv4Addr::new(a, b, c, d).to_ipv6_mapped().octets(),
        ))
    }

    /// Whether this is a concrete IPv4 or IPv6 address.
    ///
    /// False for invalid addresses **and for the wildcard**: as in Godot, where
    /// parsing `"*"` sets only the wildcard flag and `IPAddress::is_valid()`
    /// reports the separate `valid` flag, the wildcard is not an address one can
    /// connect to. Unspecified addresses (`0.0.0.0`, `::`) are valid.
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert!(IpAddress::from("::1").is_valid());
    /// assert!(IpAddress::from("0.0.0.0").is_valid());
    /// assert!(!IpAddress::wildcard().is_valid());
    /// assert!(!IpAddress::from("not an ip").is_valid());
    /// ```
    pub const fn is_valid(&self) -> bool {
        matches!(self.0, Repr::Ip(_))
    }

    /// Whether this is the wildcard `"*"`.
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert!(IpAddress::from("*").is_wildcard());
    /// assert!(!IpAddress::from("0.0.0.0").is_wildcard());
    /// ```
    pub const fn is_wildcard(&self) -> bool {
        matches!(self.0, Repr::Wildcard)
    }

    /// Whether this is a valid IPv4 address, including IPv4-mapped IPv6
    /// addresses (`::ffff:a.b.c.d`). False for invalid and wildcard addresses.
    ///
    /// ```
    /// use lunanet::IpAddress;
    /// assert!(IpAddress::from("192.168.1.1").is_ipv4());
    /// assert!(IpAddress::from("::ffff:192.168.1.1").is_ipv4());
    /// assert!(!IpAddress::from("::1").is_ipv4());
    /// assert!(!IpAddress::wildcard().is_ipv4());
    /// ```
    pub fn is_ipv4(&self) -> bool {
        matches!(self.to_ip_addr(), Some(IpAddr::V4(_)))
    }

    /// The standard-library address, or `None` for invalid and wildcard
    /// addresses. IPv4 (including IPv4-mapped IPv6) gives `IpAddr::V4`.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    /// use lunanet::IpAddress;
    ///
    /// assert_eq!(IpAddress::from("::ffff:1.2.3.4").to_ip_addr(),
    ///            Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
    /// assert_eq!(IpAddress::from("::1").to_ip_addr(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    /// assert_eq!(IpAddress::wildcard().to_ip_addr(), None);
    /// ```
    pub fn to_ip_addr(&self) -> Option<IpAddr> {
        match self.0 {
            Repr::Ip(b) => {
                let v6 = Ipv6Addr::from(b);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            Repr::Invalid | Repr::Wildcard => None,
        }
    }

    /// Whether this is a concrete address of the family `ip_type` asks for.
    pub(crate) fn is_of_type(&self, ip_type: IpType) -> bool {
        self.is_valid()
            && match ip_type {
                IpType::Ipv4 => self.is_ipv4(),
                IpType::Ipv6 => !self.is_ipv4(),
                IpType::None | IpType::Any => true,
            }
    }
}

impl FromStr for IpAddress {
    type Err = SocketError;

    /// Parses `"*"`, an IPv4 dotted quad or an IPv6 address, exactly as written
    /// (nothing is trimmed).
    ///
    /// Anything else is [`SocketError::InvalidIpAddress`], notably: the empty
    /// string, hostnames, brackets (`"[::1]"`), ports (`"1.2.3.4:80"`), zone
    /// ids (`"fe80::1%eth0"`: the scope would be lost, since an `IpAddress` has
    /// no room for it), and the non-canonical IPv4 forms `inet_aton` accepts
    /// (`"127.1"`, octets with leading zeros).
    fn from_str(s: &str) -> Result<IpAddress, SocketError> {
        if s == "*" {
            return Ok(IpAddress::wildcard());
        }
        s.parse::<IpAddr>()
            .map(IpAddress::from)
            .map_err(|_| SocketError::InvalidIpAddress)
    }
}

impl From<&str> for IpAddress {
    /// Luna's implicit string conversion: parses like [`FromStr`] and gives the
    /// invalid address when that fails.
    fn from(s: &str) -> IpAddress {
        s.parse().unwrap_or_default()
    }
}

impl From<String> for IpAddress {
    /// Same as `IpAddress::from(s.as_str())`.
    fn from(s: String) -> IpAddress {
        IpAddress::from(s.as_str())
    }
}

impl From<&String> for IpAddress {
    /// Same as `IpAddress::from(s.as_str())`.
    fn from(s: &String) -> IpAddress {
        IpAddress::from(s.as_str())
    }
}

impl From<Ipv4Addr> for IpAddress {
    fn from(a: Ipv4Addr) -> IpAddress {
        let [a, b, c, d] = a.octets();
        IpAddress::new_v4(a, b, c, d)
    }
}

impl From<Ipv6Addr> for IpAddress {
    /// IPv4-mapped addresses become IPv4 addresses (they have the same
    /// representation).
    fn from(a: Ipv6Addr) -> IpAddress {
        IpAddress(Repr::Ip(a.octets()))
    }
}

impl From<IpAddr> for IpAddress {
    fn from(a: IpAddr) -> IpAddress {
        match a {
            IpAddr::V4(a) => IpAddress::from(a),
            IpAddr::V6(a) => IpAddress::from(a),
        }
    }
}

impl From<IpAddress> for Option<IpAddr> {
    /// Same as [`IpAddress::to_ip_addr`].
    fn from(a: IpAddress) -> Option<IpAddr> {
        a.to_ip_addr()
    }
}

impl fmt::Display for IpAddress {
    /// As Godot: `*` for the wildcard, the empty string for an invalid address,
    /// dotted decimal for IPv4 (also when it was written as `::ffff:a.b.c.d`),
    /// and the standard compressed lowercase form for IPv6 (`2001:db8::1`).
    /// Width and alignment flags are honoured.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_ip_addr() {
            Some(a) => fmt::Display::fmt(&a, f),
            None if self.is_wildcard() => f.pad("*"),
            None => f.pad(""),
        }
    }
}

impl fmt::Debug for IpAddress {
    /// `IpAddress(127.0.0.1)`, `IpAddress(*)` or `IpAddress(<invalid>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Repr::Invalid = self.0 {
            f.write_str("IpAddress(<invalid>)")
        } else {
            write!(f, "IpAddress({self})")
        }
    }
}

/// A remote host as `StreamPeerTcp::connect_to_host` accepts it: an address
/// to use as is, or a name to resolve (without blocking the caller).
///
/// The `From` conversions classify strings: a string that parses as an
/// [`IpAddress`] (including `"*"`) becomes [`Host::Address`], the empty string
/// becomes `Address(IpAddress::invalid())`, anything else is a [`Host::Name`].
/// Nothing is rejected during conversion; [`Host::check`] says whether the host
/// can be connected to.
///
/// ```
/// use std::net::Ipv4Addr;
/// use lunanet::{Host, IpAddress};
///
/// assert_eq!(Host::from("127.0.0.1"), Host::Address(IpAddress::new_v4(127, 0, 0, 1)));
/// assert_eq!(Host::from(Ipv4Addr::LOCALHOST), Host::from("127.0.0.1"));
/// assert_eq!(Host::from("localhost"), Host::Name("localhost".to_string()));
/// assert!(Host::from("localhost").check().is_ok());
/// assert!(Host::from("*").check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal (possibly invalid or the wildcard, which [`Host::check`]
    /// rejects).
    Address(IpAddress),
    /// A hostname to resolve.
    Name(String),
}

impl Host {
    /// The address, when this host is an IP literal (even an invalid one or the
    /// wildcard; [`check`](Self::check) first to exclude those); `None` for a
    /// name that still has to be resolved.
    ///
    /// ```
    /// use lunanet::{Host, IpAddress};
    /// assert_eq!(Host::from("::1").literal(), Some(IpAddress::from("::1")));
    /// assert_eq!(Host::from("localhost").literal(), None);
    /// ```
    pub fn literal(&self) -> Option<IpAddress> {
        match self {
            Host::Address(a) => Some(*a),
            Host::Name(_) => None,
        }
    }

    /// Whether this host can be connected to (after resolution, for a name),
    /// checked without any lookup.
    ///
    /// Returns [`SocketError::InvalidIpAddress`] for an invalid address, the
    /// wildcard, and names that cannot resolve or would resolve surprisingly:
    /// - empty, longer than 253 characters, an empty label (`"a..b"`, `".a"`)
    ///   or a label longer than 63 characters (one trailing dot, marking a
    ///   fully-qualified name, is allowed);
    /// - whitespace or control characters;
    /// - `:` `[` `]` `/` `%`: an address with a port or brackets, a URL, or a
    ///   scoped IPv6 address, none of which `connect_to_host` takes;
    /// - an all-numeric last label, such as `"1.2.3"`, `"256.0.0.1"` or
    ///   `"010.0.0.1"`: not a hostname (top-level domains are never numeric)
    ///   but a malformed IPv4 address that the system resolver would read with
    ///   the legacy `inet_aton` rules (`"127.1"` → 127.0.0.1, octal `010` → 8).
    ///
    /// ```
    /// use lunanet::{Host, SocketError};
    /// assert_eq!(Host::from("localhost").check(), Ok(()));
    /// assert_eq!(Host::from("10.0.0.1").check(), Ok(()));
    /// assert_eq!(Host::from("").check(), Err(SocketError::InvalidIpAddress));
    /// assert_eq!(Host::from("1.2.3").check(), Err(SocketError::InvalidIpAddress));
    /// assert_eq!(Host::from("[::1]:80").check(), Err(SocketError::InvalidIpAddress));
    /// ```
    pub fn check(&self) -> Result<(), SocketError> {
        match self {
            Host::Address(a) if a.is_valid() => Ok(()),
            Host::Address(_) => Err(SocketError::InvalidIpAddress),
            Host::Name(name) => check_hostname(name),
        }
    }
}

/// The classification shared by the `From` impls of [`Host`]: `Some` for an
/// IP literal (or the empty string, which is no name), `None` for a name.
fn classify(s: &str) -> Option<IpAddress> {
    if s.is_empty() {
        return Some(IpAddress::invalid());
    }
    s.parse().ok()
}

impl From<&str> for Host {
    fn from(s: &str) -> Host {
        match classify(s) {
            Some(a) => Host::Address(a),
            None => Host::Name(s.to_owned()),
        }
    }
}

impl From<String> for Host {
    /// Like `Host::from(&str)`, reusing the string's allocation for a name.
    fn from(s: String) -> Host {
        match classify(&s) {
            Some(a) => Host::Address(a),
            None => Host::Name(s),
        }
    }
}

impl From<&String> for Host {
    fn from(s: &String) -> Host {
        Host::from(s.as_str())
    }
}

impl From<IpAddress> for Host {
    fn from(a: IpAddress) -> Host {
        Host::Address(a)
    }
}

impl From<IpAddr> for Host {
    fn from(a: IpAddr) -> Host {
        Host::Address(a.into())
    }
}

impl From<Ipv4Addr> for Host {
    fn from(a: Ipv4Addr) -> Host {
        Host::Address(a.into())
    }
}

impl From<Ipv6Addr> for Host {
    fn from(a: Ipv6Addr) -> Host {
        Host::Address(a.into())
    }
}

impl fmt::Display for Host {
    /// The address as [`IpAddress`] displays it, or the name as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Address(a) => fmt::Display::fmt(a, f),
            Host::Name(n) => f.pad(n),
        }
    }
}

/// The syntactic checks of [`Host::check`] for names.
fn check_hostname(name: &str) -> Result<(), SocketError> {
    // A single trailing dot marks a fully-qualified name and is not a label.
    let body = name.strip_suffix('.').unwrap_or(name);
    let bad_char =
        |c: char| c.is_whitespace() || c.is_control() || matches!(c, ':' | '[' | ']' | '/' | '%');
    if body.is_empty() || body.len() > MAX_NAME_LEN || body.chars().any(bad_char) {
        return Err(SocketError::InvalidIpAddress);
    }
    let mut last = "";
    for label in body.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(SocketError::InvalidIpAddress);
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SocketError::InvalidIpAddress);
    }
    Ok(())
}

/// Resolves `host` to its first address of type `ip_type`, blocking the caller
/// (use a [`Resolver`] to avoid blocking).
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
/// (use a [`Resolver`] to avoid blocking).
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
/// The cache is shared by the blocking functions and every [`Resolver`].
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
type CacheKey = (String, IpType);

fn cache_key(host: &str, ip_type: IpType) -> CacheKey {
    let ip_type = match ip_type {
        IpType::None => IpType::Any,
        t => t,
    };
    (host.to_ascii_lowercase(), ip_type)
}

/// The process-wide cache of successful lookups. A panic while it was locked
/// cannot leave it inconsistent (every update is a single map operation), so a
/// poisoned lock is simply taken over.
fn cache() -> MutexGuard<'static, HashMap<CacheKey, Vec<IpAddress>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Vec<IpAddress>>>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Everything resolution can decide without asking the system: the answer for
/// literals and cache hits (`Some`), an error for impossible input, or `None`
/// when a real lookup is needed.
fn resolve_without_lookup(
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

/// The state of a [`Resolver`] item (Godot's `IP.ResolverStatus`).
///
/// ```
/// use lunanet::{IpType, Resolver, ResolverStatus};
///
/// let resolver = Resolver::new();
/// let id = resolver.queue("127.0.0.1", IpType::Any)?;
/// assert_eq!(resolver.status(id), ResolverStatus::Done);
/// resolver.erase(id);
/// assert_eq!(resolver.status(id), ResolverStatus::None);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResolverStatus {
    /// No such item: never queued, erased, or taken.
    #[default]
    None,
    /// The lookup has not finished yet.
    Waiting,
    /// Resolved: [`Resolver::addresses`] has at least one address.
    Done,
    /// The lookup failed or found no address of the requested type. The item
    /// stays until erased.
    Error,
}

/// Identifies an item of a [`Resolver`].
///
/// Ids are never reused: once an item is erased its id reports
/// [`ResolverStatus::None`] forever, even after its slot holds a new item, and
/// an id given to another `Resolver` is unknown to this one.
///
/// ```
/// use lunanet::{IpType, Resolver, ResolverStatus};
///
/// let resolver = Resolver::new();
/// let old = resolver.queue("::1", IpType::Any)?;
/// resolver.erase(old);
/// let new = resolver.queue("::1", IpType::Any)?;
/// assert_ne!(old, new);
/// assert_eq!(resolver.status(old), ResolverStatus::None);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolverId {
    /// Index in the resolver's table.
    slot: u32,
    /// Process-wide unique serial of the item, to detect stale ids.
    serial: u64,
}

/// Non-blocking hostname resolution (Godot's `IP` resolver queue): queue a name,
/// poll its [`status`](Self::status), read or take its addresses, erase it.
///
/// - [`queue`](Self::queue) never blocks on a lookup. IP literals and cache hits
///   are [`ResolverStatus::Done`] at once; other names are resolved, one at a
///   time in queue order, by a background thread named `lunanet-resolver`,
///   started on the first lookup that needs it.
/// - At most [`RESOLVER_MAX_QUERIES`] items exist at once; an item lives until
///   [`erase`](Self::erase) or [`take_addresses`](Self::take_addresses).
/// - Lookups share the process-wide cache with [`resolve_hostname`].
/// - Every method takes `&self` and the resolver is `Send + Sync`.
/// - Dropping the resolver does not wait for a lookup in progress: the thread
///   finishes it (a `getaddrinfo` cannot be interrupted), drops the result and
///   exits.
///
/// ```
/// use std::time::{Duration, Instant};
/// use lunanet::{IpAddress, IpType, Resolver, ResolverStatus};
///
/// let resolver = Resolver::new();
/// let id = resolver.queue("localhost", IpType::Ipv4)?;
/// let deadline = Instant::now() + Duration::from_secs(10);
/// while resolver.status(id) == ResolverStatus::Waiting && Instant::now() < deadline {
///     std::thread::sleep(Duration::from_millis(1)); // a game would do a tick here
/// }
/// assert_eq!(resolver.status(id), ResolverStatus::Done);
/// assert_eq!(resolver.address(id), IpAddress::new_v4(127, 0, 0, 1));
/// assert_eq!(resolver.take_addresses(id), Some(vec![IpAddress::new_v4(127, 0, 0, 1)]));
/// assert_eq!(resolver.status(id), ResolverStatus::None);
/// # Ok::<(), lunanet::SocketError>(())
/// ```
pub struct Resolver {
    shared: Arc<Shared>,
}

/// What the resolver and its worker thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when the worker has something to do (an item, or shutdown).
    work: Condvar,
    /// Raised whenever an item completes, cleared by `has_completed`.
    completed: AtomicBool,
}

struct State {
    /// Item table; grows up to `RESOLVER_MAX_QUERIES` slots and reuses free ones.
    slots: Vec<Option<Item>>,
    /// Number of `Some` slots.
    live: usize,
    /// Waiting items not yet picked up by the worker, in queue order. Erasing a
    /// waiting item removes it here, so this never outgrows the table.
    pending: VecDeque<ResolverId>,
    /// Whether the worker thread was started.
    worker: bool,
    /// Set by `Drop`: the worker exits instead of starting another lookup.
    shutdown: bool,
    /// Called by the worker after each completion (see `set_notify`).
    notify: Option<Arc<dyn Fn() + Send + Sync>>,
}

struct Item {
    serial: u64,
    host: String,
    ip_type: IpType,
    status: ResolverStatus,
    addresses: Vec<IpAddress>,
}

impl State {
    fn item(&self, id: ResolverId) -> Option<&Item> {
        let item = self.slots.get(id.slot as usize)?.as_ref()?;
        (item.serial == id.serial).then_some(item)
    }

    fn item_mut(&mut self, id: ResolverId) -> Option<&mut Item> {
        let item = self.slots.get_mut(id.slot as usize)?.as_mut()?;
        (item.serial == id.serial).then_some(item)
    }

    /// Removes the item `id` refers to, if it still exists.
    fn remove(&mut self, id: ResolverId) -> Option<Item> {
        self.item(id)?;
        let item = self.slots[id.slot as usize].take()?;
        self.live -= 1;
        if item.status == ResolverStatus::Waiting {
            self.pending.retain(|p| *p != id);
        }
        Some(item)
    }

    /// A free slot index, growing the table if it has room.
    fn free_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            return Some(i);
        }
        if self.slots.len() < RESOLVER_MAX_QUERIES {
            self.slots.push(None);
            return Some(self.slots.len() - 1);
        }
        None
    }
}

impl Shared {
    /// Locks the state, taking over a poisoned lock: every critical section
    /// leaves the state consistent before anything that could panic, and a
    /// network library must not turn someone else's panic into its own.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Resolver {
    /// A resolver with no items. Cheap: the worker thread is only started by the
    /// first [`queue`](Self::queue) that needs a real lookup.
    ///
    /// ```
    /// use lunanet::{ResolverStatus, Resolver};
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("127.0.0.1", lunanet::IpType::Any)?;
    /// assert_eq!(resolver.status(id), ResolverStatus::Done); // literals need no lookup
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn new() -> Resolver {
        Resolver {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    slots: Vec::new(),
                    live: 0,
                    pending: VecDeque::new(),
                    worker: false,
                    shutdown: false,
                    notify: None,
                }),
                work: Condvar::new(),
                completed: AtomicBool::new(false),
            }),
        }
    }

    /// Queues the resolution of `host` to addresses of type `ip_type`, without
    /// blocking, and returns the item's id.
    ///
    /// An IP literal of the requested type, or a name in the cache, gives an
    /// item that is [`ResolverStatus::Done`] at once; another name gives a
    /// [`ResolverStatus::Waiting`] item resolved by the background thread.
    ///
    /// Errors (no item is created):
    /// - [`SocketError::InvalidIpAddress`] for input that can be rejected
    ///   without a lookup, exactly when [`resolve_hostname`] would reject it
    ///   without one: the wildcard, a literal of the other family, an
    ///   impossible name (see [`Host::check`]). Reporting it here rather than
    ///   as an item in [`ResolverStatus::Error`] keeps programming mistakes
    ///   apart from network failures.
    /// - [`SocketError::Busy`] when [`RESOLVER_MAX_QUERIES`] items exist: erase
    ///   finished ones and retry.
    /// - [`SocketError::InitFailed`] if the worker thread could not be started.
    ///
    /// ```
    /// use lunanet::{IpType, Resolver, ResolverStatus, SocketError};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("10.0.0.1", IpType::Ipv4)?;
    /// assert_eq!(resolver.status(id), ResolverStatus::Done);
    /// assert_eq!(resolver.queue("10.0.0.1", IpType::Ipv6), Err(SocketError::InvalidIpAddress));
    /// assert_eq!(resolver.queue("bad name", IpType::Any), Err(SocketError::InvalidIpAddress));
    /// # Ok::<(), SocketError>(())
    /// ```
    pub fn queue(&self, host: &str, ip_type: IpType) -> Result<ResolverId, SocketError> {
        // Before taking the state lock: the two locks are never held together.
        let ready = resolve_without_lookup(host, ip_type)?;
        static NEXT_SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);

        let mut st = self.shared.lock();
        let Some(slot) = st.free_slot() else {
            log::warn!("resolver: {RESOLVER_MAX_QUERIES} items exist, erase some");
            return Err(SocketError::Busy);
        };
        let id = ResolverId {
            slot: slot as u32,
            serial,
        };
        let waiting = ready.is_none();
        st.slots[slot] = Some(Item {
            serial,
            host: host.to_owned(),
            ip_type,
            status: if waiting {
                ResolverStatus::Waiting
            } else {
                ResolverStatus::Done
            },
            addresses: ready.unwrap_or_default(),
        });
        st.live += 1;

        if !waiting {
            // Raised for immediate completions too, so a reactor that only looks
            // at its resolving peers after `has_completed()` misses none.
            self.shared.completed.store(true, Ordering::Release);
            return Ok(id);
        }
        st.pending.push_back(id);
        if !st.worker {
            let shared = Arc::clone(&self.shared);
            let spawned = thread::Builder::new()
                .name("lunanet-resolver".to_owned())
                .spawn(move || worker(&shared));
            if let Err(e) = spawned {
                log::error!("resolver: cannot start the worker thread: {e}");
                st.remove(id);
                return Err(SocketError::InitFailed);
            }
            st.worker = true;
        }
        drop(st);
        self.shared.work.notify_one();
        Ok(id)
    }

    /// The item's status; [`ResolverStatus::None`] for an unknown or erased id.
    ///
    /// ```
    /// use lunanet::{IpType, Resolver, ResolverStatus};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("127.0.0.1", IpType::Any)?;
    /// assert_eq!(resolver.status(id), ResolverStatus::Done);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn status(&self, id: ResolverId) -> ResolverStatus {
        self.shared
            .lock()
            .item(id)
            .map_or(ResolverStatus::None, |item| item.status)
    }

    /// The first (preferred) address of a [`ResolverStatus::Done`] item; the
    /// invalid address in any other status (as Godot's
    /// `get_resolve_item_address`).
    ///
    /// ```
    /// use lunanet::{IpAddress, IpType, Resolver};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("::1", IpType::Any)?;
    /// assert_eq!(resolver.address(id), IpAddress::from("::1"));
    /// resolver.erase(id);
    /// assert!(!resolver.address(id).is_valid());
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn address(&self, id: ResolverId) -> IpAddress {
        self.shared
            .lock()
            .item(id)
            .filter(|item| item.status == ResolverStatus::Done)
            .and_then(|item| item.addresses.first().copied())
            .unwrap_or_default()
    }

    /// All addresses of a [`ResolverStatus::Done`] item, in preference order;
    /// empty in any other status. The item stays.
    ///
    /// ```
    /// use lunanet::{IpAddress, IpType, Resolver};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("127.0.0.1", IpType::Any)?;
    /// assert_eq!(resolver.addresses(id), vec![IpAddress::new_v4(127, 0, 0, 1)]);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn addresses(&self, id: ResolverId) -> Vec<IpAddress> {
        self.shared
            .lock()
            .item(id)
            .filter(|item| item.status == ResolverStatus::Done)
            .map(|item| item.addresses.clone())
            .unwrap_or_default()
    }

    /// Takes the addresses of a [`ResolverStatus::Done`] item and erases it, in
    /// one step (no copy, no second lock).
    ///
    /// Returns `None`, and leaves the item alone, in any other status: a
    /// `Waiting` item is still running and an `Error` item stays until
    /// [`erase`](Self::erase)d, so the caller can tell a failure from an
    /// unknown id.
    ///
    /// ```
    /// use lunanet::{IpAddress, IpType, Resolver, ResolverStatus};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("127.0.0.1", IpType::Any)?;
    /// assert_eq!(resolver.take_addresses(id), Some(vec![IpAddress::new_v4(127, 0, 0, 1)]));
    /// assert_eq!(resolver.status(id), ResolverStatus::None);
    /// assert_eq!(resolver.take_addresses(id), None);
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn take_addresses(&self, id: ResolverId) -> Option<Vec<IpAddress>> {
        let mut st = self.shared.lock();
        if st.item(id)?.status != ResolverStatus::Done {
            return None;
        }
        st.remove(id).map(|item| item.addresses)
    }

    /// Erases the item, freeing its slot; its id then reports
    /// [`ResolverStatus::None`]. Erasing a `Waiting` item cancels it: it will
    /// not be looked up, or its result is dropped if the lookup is running.
    /// Unknown ids are ignored.
    ///
    /// ```
    /// use lunanet::{IpType, Resolver, ResolverStatus};
    ///
    /// let resolver = Resolver::new();
    /// let id = resolver.queue("127.0.0.1", IpType::Any)?;
    /// resolver.erase(id);
    /// assert_eq!(resolver.status(id), ResolverStatus::None);
    /// resolver.erase(id); // no effect
    /// # Ok::<(), lunanet::SocketError>(())
    /// ```
    pub fn erase(&self, id: ResolverId) {
        self.shared.lock().remove(id);
    }

    /// Same as the module-level [`clear_cache`]: the cache is process-wide,
    /// shared by every resolver and the blocking functions. Items already
    /// queued keep their results.
    ///
    /// ```
    /// use lunanet::Resolver;
    /// Resolver::new().clear_cache(Some("localhost"));
    /// ```
    pub fn clear_cache(&self, host: Option<&str>) {
        clear_cache(host);
    }

    /// Sets the function the worker thread calls after each item it completes
    /// (`Done` or `Error`; not for erased items, nor for items that are `Done`
    /// inside [`queue`](Self::queue)), so that a reactor blocked in its poll can
    /// be woken. It runs on the worker thread without any resolver lock held; a
    /// panic in it is caught and logged. Replaces the previous function.
    #[allow(dead_code, reason = "called by the reactor")]
    pub(crate) fn set_notify(&self, f: Arc<dyn Fn() + Send + Sync>) {
        self.shared.lock().notify = Some(f);
    }

    /// Whether any item completed since the last call (including items that
    /// completed inside [`queue`](Self::queue)), clearing the flag: O(1), so a
    /// reactor can skip scanning its resolving peers on polls where nothing
    /// resolved.
    #[allow(dead_code, reason = "called by the reactor")]
    pub(crate) fn has_completed(&self) -> bool {
        self.shared.completed.swap(false, Ordering::AcqRel)
    }
}

impl Default for Resolver {
    /// Same as [`Resolver::new`].
    ///
    /// ```
    /// let resolver = lunanet::Resolver::default();
    /// # drop(resolver);
    /// ```
    fn default() -> Resolver {
        Resolver::new()
    }
}

impl fmt::Debug for Resolver {
    /// Counts only: `Resolver { items: 2, waiting: 1, worker: true }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        let waiting = st
            .slots
            .iter()
            .flatten()
            .filter(|item| item.status == ResolverStatus::Waiting)
            .count();
        f.debug_struct("Resolver")
            .field("items", &st.live)
            .field("waiting", &waiting)
            .field("worker", &st.worker)
            .finish()
    }
}

impl Drop for Resolver {
    /// Tells the worker thread to exit and returns at once; the thread does not
    /// call the notify function any more.
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.shutdown = true;
        st.pending.clear();
        // The callback may own a handle to the reactor; the detached thread must
        // not keep it alive or call it after its owner is gone.
        st.notify = None;
        drop(st);
        self.shared.work.notify_all();
    }
}

/// The worker thread: takes waiting items in queue order and resolves them, one
/// at a time, until the resolver is dropped.
fn worker(shared: &Shared) {
    loop {
        let (id, host, ip_type) = {
            let mut st = shared.lock();
            loop {
                if st.shutdown {
                    return;
                }
                match st.pending.pop_front() {
                    Some(id) => {
                        // Always found (erasing an item removes its pending
                        // entry); skipping a stale entry would be right anyway.
                        if let Some(item) = st.item(id) {
                            break (id, item.host.clone(), item.ip_type);
                        }
                    }
                    None => st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner),
                }
            }
        };

        // No lock held: the lookup may take seconds and must not block the
        // reactor's `status` calls. The name may have been cached meanwhile.
        let result = resolve_hostname_addresses(&host, ip_type);

        let notify = {
            let mut st = shared.lock();
            if st.shutdown {
                return;
            }
            // Erased while it was being resolved: nobody wants the result.
            let Some(item) = st.item_mut(id) else {
                continue;
            };
            match result {
                Ok(addresses) => {
                    item.status = ResolverStatus::Done;
                    item.addresses = addresses;
                }
                Err(_) => item.status = ResolverStatus::Error,
            }
            shared.completed.store(true, Ordering::Release);
            st.notify.clone()
        };
        // A panicking hook must not kill the thread every later item needs.
        if let Some(f) = notify
            && panic::catch_unwind(AssertUnwindSafe(|| f())).is_err()
        {
            log::error!("resolver: the notify function panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    /// Serialises the tests that depend on cache contents (the cache is
    /// process-wide and tests run in parallel).
    fn cache_test_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cache entry for a name that no resolver knows, to observe cache hits
    /// without the network.
    fn insert_fake(host: &str, ip_type: IpType, addresses: Vec<IpAddress>) {
        cache().insert(cache_key(host, ip_type), addresses);
    }

    fn is_cached(host: &str, ip_type: IpType) -> bool {
        cache().contains_key(&cache_key(host, ip_type))
    }

    /// Polls `r` until `id` leaves `Waiting` or 10 s pass.
    fn wait_while_waiting(r: &Resolver, id: ResolverId) -> ResolverStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = r.status(id);
            if status != ResolverStatus::Waiting || Instant::now() > deadline {
                return status;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddress {
        IpAddress::new_v4(a, b, c, d)
    }

    #[test]
    fn parsing_table() {
        // (input, valid, wildcard, ipv4, display)
        let valid = [
            ("*", false, true, false, "*"),
            ("127.0.0.1", true, false, true, "127.0.0.1"),
            ("0.0.0.0", true, false, true, "0.0.0.0"),
            ("255.255.255.255", true, false, true, "255.255.255.255"),
            ("::1", true, false, false, "::1"),
            ("::", true, false, false, "::"),
            ("::ffff:10.0.0.1", true, false, true, "10.0.0.1"),
            ("::FFFF:a00:1", true, false, true, "10.0.0.1"),
            (
                "2001:0DB8:0000:0000:0000:0000:0000:0001",
                true,
                false,
                false,
                "2001:db8::1",
            ),
            ("fe80::1", true, false, false, "fe80::1"),
        ];
        for (s, is_valid, is_wildcard, is_ipv4, shown) in valid {
            let a: IpAddress = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(a.is_valid(), is_valid, "{s:?}");
            assert_eq!(a.is_wildcard(), is_wildcard, "{s:?}");
            assert_eq!(a.is_ipv4(), is_ipv4, "{s:?}");
            assert_eq!(a.to_string(), shown, "{s:?}");
            assert_eq!(IpAddress::from(s), a, "{s:?}");
        }
        let invalid = [
            "",
            " 127.0.0.1",
            "127.0.0.1 ",
            "1.2.3",
            "1.2.3.4.5",
            "256.0.0.1",
            "01.2.3.4",
            "127.1",
            "[::1]",
            "1.2.3.4:80",
            "[::1]:80",
            "localhost",
            "fe80::1%eth0",
            "fe80::1%1",
            ":::",
            "1::2::3",
            "**",
            "0x7f.0.0.1",
        ];
        for s in invalid {
            assert_eq!(
                s.parse::<IpAddress>(),
                Err(SocketError::InvalidIpAddress),
                "{s:?}"
            );
            let a = IpAddress::from(s);
            assert!(!a.is_valid() && !a.is_wildcard() && !a.is_ipv4(), "{s:?}");
            assert_eq!(a, IpAddress::invalid(), "{s:?}");
            assert_eq!(a.to_string(), "", "{s:?}");
        }
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        let mapped = IpAddress::from("::ffff:10.0.0.1");
        let plain = v4(10, 0, 0, 1);
        assert_eq!(mapped, plain);
        let set: HashSet<IpAddress> = [mapped, plain].into_iter().collect();
        assert_eq!(set.len(), 1, "equal addresses must hash equally");
        assert_eq!(
            mapped.to_ip_addr(),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            IpAddress::from(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
            plain
        );
        // The deprecated IPv4-compatible form is a plain IPv6 address.
        assert!(!IpAddress::from("::10.0.0.1").is_ipv4());
        assert!(!IpAddress::from("::ffff:10.0.0.1").is_of_type(IpType::Ipv6));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "*",
            "0.0.0.0",
            "1.2.3.4",
            "::",
            "::1",
            "2001:db8::1",
            "2001:db8:1:2:3:4:5:6",
            "fe80::1:2",
        ] {
            let a = IpAddress::from(s);
            assert_eq!(a.to_string(), s);
            assert_eq!(a.to_string().parse::<IpAddress>(), Ok(a));
        }
        // The invalid address displays as "" which parses back to invalid.
        assert_eq!(
            IpAddress::from(IpAddress::invalid().to_string()),
            IpAddress::invalid()
        );
        // Width/alignment flags are honoured for every kind.
        assert_eq!(format!("[{:>9}]", v4(1, 2, 3, 4)), "[  1.2.3.4]");
        assert_eq!(format!("[{:>3}]", IpAddress::wildcard()), "[  *]");
        assert_eq!(format!("[{:>2}]", IpAddress::invalid()), "[  ]");
    }

    #[test]
    fn debug_format() {
        assert_eq!(format!("{:?}", v4(127, 0, 0, 1)), "IpAddress(127.0.0.1)");
        assert_eq!(format!("{:?}", IpAddress::from("::1")), "IpAddress(::1)");
        assert_eq!(format!("{:?}", IpAddress::wildcard()), "IpAddress(*)");
        assert_eq!(
            format!("{:?}", IpAddress::invalid()),
            "IpAddress(<invalid>)"
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(IpType::default(), IpType::Any);
        assert_eq!(IpAddress::default(), IpAddress::invalid());
        assert_eq!(ResolverStatus::default(), ResolverStatus::None);
        assert_ne!(IpAddress::invalid(), IpAddress::wildcard());
        assert_eq!(IpAddress::wildcard(), IpAddress::wildcard());
    }

    #[test]
    fn std_conversions() {
        let lo4 = Ipv4Addr::LOCALHOST;
        let lo6 = Ipv6Addr::LOCALHOST;
        assert_eq!(IpAddress::from(lo4), v4(127, 0, 0, 1));
        assert_eq!(IpAddress::from(IpAddr::V4(lo4)), v4(127, 0, 0, 1));
        assert_eq!(IpAddress::from(lo6), IpAddress::from("::1"));
        assert_eq!(IpAddress::from(IpAddr::V6(lo6)), IpAddress::from("::1"));
        assert_eq!(v4(127, 0, 0, 1).to_ip_addr(), Some(IpAddr::V4(lo4)));
        assert_eq!(IpAddress::from("::1").to_ip_addr(), Some(IpAddr::V6(lo6)));
        assert_eq!(
            Option::<IpAddr>::from(IpAddress::from("::1")),
            Some(IpAddr::V6(lo6))
        );
        assert_eq!(Option::<IpAddr>::from(IpAddress::wildcard()), None);
        assert_eq!(Option::<IpAddr>::from(IpAddress::invalid()), None);
        for ip in [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        ] {
            assert_eq!(IpAddress::from(ip).to_ip_addr(), Some(ip));
            assert_eq!(IpAddress::from(ip).to_string(), ip.to_string());
        }
        let owned = String::from("10.1.2.3");
        assert_eq!(IpAddress::from(&owned), v4(10, 1, 2, 3));
        assert_eq!(IpAddress::from(owned), v4(10, 1, 2, 3));
        assert_eq!(IpAddress::from(String::from("nope")), IpAddress::invalid());
    }

    #[test]
    fn type_filter() {
        let a4 = v4(1, 2, 3, 4);
        let a6 = IpAddress::from("::1");
        for t in [IpType::None, IpType::Any] {
            assert!(a4.is_of_type(t) && a6.is_of_type(t));
        }
        assert!(a4.is_of_type(IpType::Ipv4) && !a4.is_of_type(IpType::Ipv6));
        assert!(!a6.is_of_type(IpType::Ipv4) && a6.is_of_type(IpType::Ipv6));
        for t in [IpType::None, IpType::Ipv4, IpType::Ipv6, IpType::Any] {
            assert!(!IpAddress::wildcard().is_of_type(t));
            assert!(!IpAddress::invalid().is_of_type(t));
        }
    }

    #[test]
    fn host_classification() {
        let addr = |s: &str| Host::Address(IpAddress::from(s));
        let name = |s: &str| Host::Name(s.to_owned());
        let table = [
            ("127.0.0.1", addr("127.0.0.1")),
            ("::1", addr("::1")),
            ("::ffff:1.2.3.4", addr("1.2.3.4")),
            ("*", Host::Address(IpAddress::wildcard())),
            ("", Host::Address(IpAddress::invalid())),
            ("localhost", name("localhost")),
            ("example.com.", name("example.com.")),
            ("1.2.3", name("1.2.3")),
            ("[::1]", name("[::1]")),
            ("fe80::1%eth0", name("fe80::1%eth0")),
        ];
        for (s, want) in table {
            assert_eq!(Host::from(s), want, "{s:?}");
            assert_eq!(Host::from(s.to_owned()), want, "{s:?}");
            assert_eq!(Host::from(&s.to_owned()), want, "{s:?}");
        }
        assert_eq!(Host::from(v4(1, 2, 3, 4)), addr("1.2.3.4"));
        assert_eq!(Host::from(Ipv4Addr::new(1, 2, 3, 4)), addr("1.2.3.4"));
        assert_eq!(Host::from(Ipv6Addr::LOCALHOST), addr("::1"));
        assert_eq!(Host::from(IpAddr::V6(Ipv6Addr::LOCALHOST)), addr("::1"));
        assert_eq!(Host::from("::1").literal(), Some(IpAddress::from("::1")));
        assert_eq!(Host::from("*").literal(), Some(IpAddress::wildcard()));
        assert_eq!(Host::from("localhost").literal(), None);
        assert_eq!(Host::from("::1").to_string(), "::1");
        assert_eq!(Host::from("localhost").to_string(), "localhost");
    }

    #[test]
    fn host_check() {
        let long_label = "a".repeat(MAX_LABEL_LEN + 1);
        let ok_label = "a".repeat(MAX_LABEL_LEN);
        // 4 labels of 63 + 3 dots = 255 > 253.
        let too_long = [ok_label.as_str(); 4].join(".");
        let longest = format!("{}.{}", [ok_label.as_str(); 3].join("."), "a".repeat(61));
        assert_eq!(longest.len(), MAX_NAME_LEN);
        let good = [
            "localhost",
            "localhost.",
            "example.com",
            "my_host",
            "xn--bcher-kva.example",
            "host-1.example.org",
            "1.2.3.a",
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            ok_label.as_str(),
            longest.as_str(),
        ];
        for s in good {
            assert_eq!(Host::from(s).check(), Ok(()), "{s:?}");
        }
        let bad = [
            "",
            "*",
            ".",
            "..",
            "a..b",
            ".a",
            "a b",
            "a\tb",
            "a\nb",
            "a\0b",
            "a\u{7f}b",
            "1.2.3",
            "256.0.0.1",
            "010.0.0.1",
            "127.1",
            "1234",
            "[::1]",
            "[::1]:80",
            "1.2.3.4:80",
            "localhost:80",
            "fe80::1%eth0",
            "http://example.com",
            long_label.as_str(),
            too_long.as_str(),
        ];
        for s in bad {
            assert_eq!(
                Host::from(s).check(),
                Err(SocketError::InvalidIpAddress),
                "{s:?}"
            );
        }
        assert_eq!(
            Host::Address(IpAddress::invalid()).check(),
            Err(SocketError::InvalidIpAddress)
        );
    }

    #[test]
    fn resolve_literals_without_lookup() {
        let lo = v4(127, 0, 0, 1);
        assert_eq!(resolve_hostname("127.0.0.1", IpType::Any), Ok(lo));
        assert_eq!(resolve_hostname("127.0.0.1", IpType::None), Ok(lo));
        assert_eq!(resolve_hostname("127.0.0.1", IpType::Ipv4), Ok(lo));
        assert_eq!(resolve_hostname("::ffff:127.0.0.1", IpType::Ipv4), Ok(lo));
        assert_eq!(
            resolve_hostname("127.0.0.1", IpType::Ipv6),
            Err(SocketError::InvalidIpAddress)
        );
        assert_eq!(
            resolve_hostname("::1", IpType::Ipv6),
            Ok(IpAddress::from("::1"))
        );
        assert_eq!(
            resolve_hostname("::1", IpType::Ipv4),
            Err(SocketError::InvalidIpAddress)
        );
        assert_eq!(
            resolve_hostname_addresses("::1", IpType::Any),
            Ok(vec![IpAddress::from("::1")])
        );
        for bad in ["*", "", "1.2.3", "[::1]", "a b", "fe80::1%eth0"] {
            assert_eq!(
                resolve_hostname(bad, IpType::Any),
                Err(SocketError::InvalidIpAddress),
                "{bad:?}"
            );
        }
        // Literals never enter the cache.
        assert!(!is_cached("127.0.0.1", IpType::Any));
    }

    #[test]
    fn resolve_localhost() {
        let _serial = cache_test_lock();
        clear_cache(Some("localhost"));
        let any = resolve_hostname_addresses("localhost", IpType::Any).expect("localhost");
        assert!(!any.is_empty());
        assert!(
            any.iter()
                .all(|a| a.to_ip_addr().is_some_and(|ip| ip.is_loopback())),
            "{any:?}"
        );
        let unique: HashSet<_> = any.iter().collect();
        assert_eq!(unique.len(), any.len(), "duplicates in {any:?}");
        assert_eq!(resolve_hostname("localhost", IpType::Any), Ok(any[0]));
        assert_eq!(
            resolve_hostname("localhost", IpType::Ipv4),
            Ok(v4(127, 0, 0, 1))
        );
        assert_eq!(resolve_hostname("LOCALHOST", IpType::None), Ok(any[0]));
    }

    #[test]
    fn cache_hits_and_clear() {
        let _serial = cache_test_lock();
        // A real lookup is cached and a second one returns the same.
        clear_cache(Some("localhost"));
        assert!(!is_cached("localhost", IpType::Ipv4));
        let first = resolve_hostname_addresses("localhost", IpType::Ipv4).expect("localhost");
        assert!(is_cached("localhost", IpType::Ipv4));
        assert!(
            is_cached("LocalHost", IpType::Ipv4),
            "keys ignore ASCII case"
        );
        assert_eq!(
            resolve_hostname_addresses("localhost", IpType::Ipv4),
            Ok(first)
        );
        clear_cache(Some("LOCALHOST"));
        assert!(!is_cached("localhost", IpType::Ipv4));

        // A fake entry proves hits are served from the cache: the name does not
        // exist, so only the cache can answer.
        let fake = "lunanet-cache-test.invalid";
        let fake_addrs = vec![v4(192, 0, 2, 1), IpAddress::from("2001:db8::1")];
        insert_fake(fake, IpType::Any, fake_addrs.clone());
        assert_eq!(
            resolve_hostname_addresses(fake, IpType::Any),
            Ok(fake_addrs.clone())
        );
        assert_eq!(
            resolve_hostname(fake, IpType::None),
            Ok(v4(192, 0, 2, 1)),
            "None shares Any"
        );
        assert_eq!(
            resolve_hostname(&fake.to_uppercase(), IpType::Any),
            Ok(v4(192, 0, 2, 1))
        );
        clear_cache(Some(fake));
        assert_eq!(
            resolve_hostname(fake, IpType::Any),
            Err(SocketError::InvalidIpAddress)
        );

        // Some("") clears nothing; None clears everything.
        insert_fake(fake, IpType::Ipv6, vec![IpAddress::from("2001:db8::2")]);
        clear_cache(Some(""));
        assert!(is_cached(fake, IpType::Ipv6));
        clear_cache(None);
        assert!(!is_cached(fake, IpType::Ipv6));
        assert!(cache().is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        let _serial = cache_test_lock();
        clear_cache(None);
        for i in 0..MAX_CACHED_LOOKUPS {
            insert_fake(
                &format!("fake{i}.invalid"),
                IpType::Any,
                vec![v4(192, 0, 2, 1)],
            );
        }
        assert_eq!(cache().len(), MAX_CACHED_LOOKUPS);
        // One more real lookup empties the full cache before inserting.
        resolve_hostname("localhost", IpType::Ipv4).expect("localhost");
        assert_eq!(cache().len(), 1);
        clear_cache(None);
    }

    #[test]
    fn unresolvable_name_fails_quickly() {
        // `.invalid` is reserved (RFC 6761): it never resolves. Measured here:
        // a few milliseconds; the bound allows for glibc's 5 s DNS timeout
        // with a retry when no name server answers.
        let start = Instant::now();
        let r = resolve_hostname("nonexistent.invalid", IpType::Any);
        let took = start.elapsed();
        assert_eq!(r, Err(SocketError::InvalidIpAddress));
        assert!(took < Duration::from_secs(20), "took {took:?}");
        assert!(
            !is_cached("nonexistent.invalid", IpType::Any),
            "failures are not cached"
        );
        assert_eq!(
            resolve_hostname_addresses("nonexistent.invalid", IpType::Ipv6),
            Err(SocketError::InvalidIpAddress)
        );
    }

    #[test]
    fn resolver_resolves_localhost_on_the_worker() {
        let _serial = cache_test_lock();
        clear_cache(Some("localhost"));
        let r = Resolver::new();
        let id = r.queue("localhost", IpType::Ipv4).unwrap();
        assert!(r.shared.lock().worker, "a real lookup starts the worker");
        assert_eq!(wait_while_waiting(&r, id), ResolverStatus::Done);
        assert_eq!(r.address(id), v4(127, 0, 0, 1));
        assert_eq!(r.addresses(id), vec![v4(127, 0, 0, 1)]);
        assert_eq!(r.status(id), ResolverStatus::Done, "reading keeps the item");
        assert_eq!(r.take_addresses(id), Some(vec![v4(127, 0, 0, 1)]));
        assert_eq!(r.status(id), ResolverStatus::None);
        assert_eq!(r.take_addresses(id), None);
        assert!(
            is_cached("localhost", IpType::Ipv4),
            "the worker fills the shared cache"
        );
        // Now a cache hit: done at once.
        let again = r.queue("localhost", IpType::Ipv4).unwrap();
        assert_eq!(r.status(again), ResolverStatus::Done);
        assert_eq!(
            format!("{r:?}"),
            "Resolver { items: 1, waiting: 0, worker: true }"
        );
    }

    #[test]
    fn resolver_literals_and_cache_hits_complete_without_a_thread() {
        let _serial = cache_test_lock();
        let r = Resolver::new();
        assert!(!r.has_completed());
        let id = r.queue("::1", IpType::Any).unwrap();
        assert_eq!(r.status(id), ResolverStatus::Done);
        assert_eq!(r.address(id), IpAddress::from("::1"));
        assert!(r.has_completed(), "immediate completions raise the flag");
        assert!(!r.has_completed(), "and reading clears it");

        let fake = "lunanet-resolver-test.invalid";
        insert_fake(fake, IpType::Ipv6, vec![IpAddress::from("2001:db8::3")]);
        let hit = r.queue(fake, IpType::Ipv6).unwrap();
        assert_eq!(r.status(hit), ResolverStatus::Done);
        assert_eq!(r.addresses(hit), vec![IpAddress::from("2001:db8::3")]);
        clear_cache(Some(fake));
        assert!(
            !r.shared.lock().worker,
            "no thread for literals and cache hits"
        );
        assert_eq!(
            format!("{r:?}"),
            "Resolver { items: 2, waiting: 0, worker: false }"
        );
    }

    #[test]
    fn resolver_rejects_impossible_input() {
        let r = Resolver::new();
        for (host, t) in [
            ("", IpType::Any),
            ("*", IpType::Any),
            ("a b", IpType::Any),
            ("1.2.3", IpType::Any),
            ("[::1]:80", IpType::Any),
            ("::1", IpType::Ipv4),
            ("1.2.3.4", IpType::Ipv6),
        ] {
            assert_eq!(
                r.queue(host, t),
                Err(SocketError::InvalidIpAddress),
                "{host:?} {t:?}"
            );
        }
        assert_eq!(r.shared.lock().live, 0, "rejected input creates no item");
    }

    #[test]
    fn resolver_reports_lookup_failures_as_error_items() {
        let r = Resolver::new();
        let notified = Arc::new(AtomicUsize::new(0));
        let n = Arc::clone(&notified);
        r.set_notify(Arc::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        let id = r.queue("nonexistent.invalid", IpType::Any).unwrap();
        assert_eq!(wait_while_waiting(&r, id), ResolverStatus::Error);
        assert_eq!(r.address(id), IpAddress::invalid());
        assert!(r.addresses(id).is_empty());
        assert_eq!(r.take_addresses(id), None, "an Error item is not taken");
        assert_eq!(r.status(id), ResolverStatus::Error, "it stays until erased");
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        assert!(r.has_completed());
        r.erase(id);
        assert_eq!(r.status(id), ResolverStatus::None);
    }

    #[test]
    fn resolver_notify_hook_and_completion_flag() {
        let _serial = cache_test_lock();
        clear_cache(Some("localhost"));
        let r = Resolver::new();
        let notified = Arc::new(AtomicUsize::new(0));
        let n = Arc::clone(&notified);
        r.set_notify(Arc::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!r.has_completed());
        let id = r.queue("localhost", IpType::Any).unwrap();
        assert_eq!(wait_while_waiting(&r, id), ResolverStatus::Done);
        // The hook runs after the item is updated, so allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while notified.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        assert!(r.has_completed());
        assert!(!r.has_completed());
    }

    #[test]
    fn resolver_survives_a_panicking_notify_hook() {
        let r = Resolver::new();
        r.set_notify(Arc::new(|| panic!("hook panics (expected in this test)")));
        let first = r.queue("nonexistent.invalid", IpType::Any).unwrap();
        assert_eq!(wait_while_waiting(&r, first), ResolverStatus::Error);
        // The worker is still alive and serves the next item.
        let second = r.queue("nonexistent.invalid", IpType::Ipv4).unwrap();
        assert_eq!(wait_while_waiting(&r, second), ResolverStatus::Error);
    }

    #[test]
    fn erase_and_stale_ids() {
        let r = Resolver::new();
        let id = r.queue("127.0.0.1", IpType::Any).unwrap();
        r.erase(id);
        assert_eq!(r.status(id), ResolverStatus::None);
        assert!(!r.address(id).is_valid());
        assert!(r.addresses(id).is_empty());
        r.erase(id); // unknown ids are ignored

        // The slot is reused, the old id stays dead.
        let reused = r.queue("10.0.0.1", IpType::Any).unwrap();
        assert_eq!(reused.slot, id.slot);
        assert_ne!(reused, id);
        assert_eq!(r.status(id), ResolverStatus::None);
        r.erase(id);
        assert_eq!(
            r.status(reused),
            ResolverStatus::Done,
            "a stale erase does not hit the new item"
        );

        // Ids of another resolver are unknown here.
        let other = Resolver::new();
        let foreign = other.queue("10.0.0.2", IpType::Any).unwrap();
        assert_eq!(foreign.slot, reused.slot);
        assert_eq!(r.status(foreign), ResolverStatus::None);
        assert_eq!(r.address(reused), v4(10, 0, 0, 1));
    }

    #[test]
    fn erasing_a_waiting_item_cancels_it() {
        let r = Resolver::new();
        // Several waiting items; erase them at once. Whichever the worker has
        // started resolves into nothing, the others are never looked up.
        let ids: Vec<_> = (0..4)
            .map(|i| r.queue(&format!("cancel{i}.invalid"), IpType::Any).unwrap())
            .collect();
        for &id in &ids {
            r.erase(id);
            assert_eq!(r.status(id), ResolverStatus::None);
        }
        let st = r.shared.lock();
        assert_eq!(st.live, 0);
        assert!(st.pending.is_empty());
    }

    #[test]
    fn resolver_holds_at_most_256_items() {
        let r = Resolver::new();
        let ids: Vec<_> = (0..RESOLVER_MAX_QUERIES)
            .map(|i| {
                r.queue(&format!("10.0.{}.{}", i / 256, i % 256), IpType::Any)
                    .unwrap()
            })
            .collect();
        assert_eq!(r.queue("10.1.0.0", IpType::Any), Err(SocketError::Busy));
        // Done items still count until erased or taken.
        r.erase(ids[17]);
        let id = r.queue("10.1.0.0", IpType::Any).unwrap();
        assert_eq!(r.queue("10.1.0.1", IpType::Any), Err(SocketError::Busy));
        assert_eq!(r.take_addresses(id), Some(vec![v4(10, 1, 0, 0)]));
        r.queue("10.1.0.1", IpType::Any).unwrap();
        assert_eq!(r.shared.lock().slots.len(), RESOLVER_MAX_QUERIES);
        for id in &ids[..17] {
            assert_eq!(r.status(*id), ResolverStatus::Done);
        }
    }

    #[test]
    fn dropping_a_resolver_with_waiting_items_does_not_hang() {
        let r = Resolver::new();
        let called = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&called);
        r.set_notify(Arc::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        for i in 0..8 {
            r.queue(&format!("drop{i}.invalid"), IpType::Any).unwrap();
        }
        let shared = Arc::downgrade(&r.shared);
        let start = Instant::now();
        drop(r);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "drop must not join"
        );
        // The worker finishes at most its current lookup, then exits and
        // releases the shared state.
        let deadline = Instant::now() + Duration::from_secs(20);
        while shared.upgrade().is_some() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(shared.upgrade().is_none(), "the worker thread did not exit");
        assert!(
            called.load(Ordering::SeqCst) <= 1,
            "no notification after drop"
        );
    }

    #[test]
    fn resolver_is_send_sync_and_usable_from_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Resolver>();
        let r = Arc::new(Resolver::new());
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    for i in 0..16u8 {
                        let id = r.queue(&format!("10.{t}.0.{i}"), IpType::Ipv4).unwrap();
                        assert_eq!(r.take_addresses(id), Some(vec![v4(10, t, 0, i)]));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(r.shared.lock().live, 0);
    }

    #[test]
    fn poisoned_lock_does_not_panic_callers() {
        let r = Resolver::new();
        let shared = Arc::clone(&r.shared);
        let _ = thread::spawn(move || {
            let _guard = shared.state.lock().unwrap();
            panic!("poisoning the resolver lock (expected in this test)");
        })
        .join();
        assert!(r.shared.state.is_poisoned());
        let id = r.queue("127.0.0.1", IpType::Any).unwrap();
        assert_eq!(r.status(id), ResolverStatus::Done);
        r.erase(id);
        assert_eq!(
            format!("{r:?}"),
            "Resolver { items: 0, waiting: 0, worker: false }"
        );
    }
}
