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
//!
//! Layout: this file holds the address types ([`IpAddress`], [`IpType`],
//! [`Host`]); `resolve.rs` the blocking lookups and the process-wide cache;
//! `resolver.rs` the non-blocking [`Resolver`] queue and its worker thread.

mod resolve;
mod resolver;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::SocketError;

pub use resolve::{clear_cache, resolve_hostname, resolve_hostname_addresses};
pub use resolver::{RESOLVER_MAX_QUERIES, Resolver, ResolverId, ResolverStatus};

/// The longest hostname DNS can carry (RFC 1035: 255 octets on the wire, i.e.
/// 253 characters in text form without the trailing dot).
const MAX_NAME_LEN: usize = 253;

/// The longest label (the part between two dots) DNS can carry (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

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

#[cfg(test)]
mod tests {
    use super::resolve::{MAX_CACHED_LOOKUPS, cache, cache_key};
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::thread;
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

    /// Waits up to 10 s for `counter` to reach `n`, then checks it is exactly `n`.
    #[track_caller]
    fn wait_for_count(counter: &AtomicUsize, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while counter.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "count stuck at {} (waiting for {n})",
                counter.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(counter.load(Ordering::SeqCst), n);
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
    fn unresolvable_name_fails_within_the_system_resolver_timeout() {
        // `.invalid` is reserved (RFC 6761): it never resolves. How fast is up
        // to the system resolver, not lunanet, so the bound is its timeout
        // (the name says so; item 6 of the checks issue). Measured here:
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
        assert_eq!(
            r.shared.lock().items.len(),
            0,
            "rejected input creates no item"
        );
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
        // The worker updates the item, releases the lock, then calls the
        // hook: the count lags the status, so wait (bounded) for it rather
        // than reading it once.
        wait_for_count(&notified, 1);
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
        assert_eq!(st.items.len(), 0);
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
        assert_eq!(r.shared.lock().items.len(), RESOLVER_MAX_QUERIES);
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
        assert_eq!(r.shared.lock().items.len(), 0);
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
