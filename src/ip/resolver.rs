//! [`Resolver`]: Godot's non-blocking resolver queue, served by one
//! background thread. Items live in a `slab::Slab`; an id carries a
//! process-wide serial, checked on every lookup, so an erased item's id (or
//! another resolver's) never reaches a newer item in the same slot.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use slab::Slab;

use super::resolve::{clear_cache, resolve_hostname_addresses, resolve_without_lookup};
use super::{IpAddress, IpType};
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
    pub(super) slot: u32,
    /// Process-wide unique serial of the item, to detect stale ids.
    pub(super) serial: u64,
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
/// - Lookups share the process-wide cache with [`resolve_hostname`](super::resolve_hostname).
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
    pub(super) shared: Arc<Shared>,
}

/// What the resolver and its worker thread share.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Signalled when the worker has something to do (an item, or shutdown).
    pub(super) work: Condvar,
    /// Raised whenever an item completes, cleared by `has_completed`.
    pub(super) completed: AtomicBool,
}

pub(super) struct State {
    /// Item table, at most `RESOLVER_MAX_QUERIES` items; an item's id holds its
    /// slab key and its serial, checked by `item`.
    pub(super) items: Slab<Item>,
    /// Waiting items not yet picked up by the worker, in queue order. Erasing a
    /// waiting item removes it here, so this never outgrows the table.
    pub(super) pending: VecDeque<ResolverId>,
    /// Whether the worker thread was started.
    pub(super) worker: bool,
    /// Set by `Drop`: the worker exits instead of starting another lookup.
    pub(super) shutdown: bool,
    /// Called by the worker after each completion (see `set_notify`).
    pub(super) notify: Option<Arc<dyn Fn() + Send + Sync>>,
}

pub(super) struct Item {
    serial: u64,
    host: String,
    ip_type: IpType,
    status: ResolverStatus,
    addresses: Vec<IpAddress>,
}

impl State {
    /// The item of `id`: the one serial-checked lookup.
    fn item(&self, id: ResolverId) -> Option<&Item> {
        self.items
            .get(id.slot as usize)
            .filter(|item| item.serial == id.serial)
    }

    fn item_mut(&mut self, id: ResolverId) -> Option<&mut Item> {
        self.items
            .get_mut(id.slot as usize)
            .filter(|item| item.serial == id.serial)
    }

    /// Removes the item `id` refers to, if it still exists.
    fn remove(&mut self, id: ResolverId) -> Option<Item> {
        self.item(id)?;
        let item = self.items.remove(id.slot as usize);
        if item.status == ResolverStatus::Waiting {
            self.pending.retain(|p| *p != id);
        }
        Some(item)
    }
}

impl Shared {
    /// Locks the state, taking over a poisoned lock: every critical section
    /// leaves the state consistent before anything that could panic, and a
    /// network library must not turn someone else's panic into its own.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
                    items: Slab::new(),
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
    ///   without a lookup, exactly when [`resolve_hostname`](super::resolve_hostname) would reject it
    ///   without one: the wildcard, a literal of the other family, an
    ///   impossible name (see [`Host::check`](super::Host::check)). Reporting it here rather than
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
        if st.items.len() >= RESOLVER_MAX_QUERIES {
            log::warn!("resolver: {RESOLVER_MAX_QUERIES} items exist, erase some");
            return Err(SocketError::Busy);
        }
        let entry = st.items.vacant_entry();
        let id = ResolverId {
            // At most RESOLVER_MAX_QUERIES (256) items: the key fits.
            slot: entry.key() as u32,
            serial,
        };
        let waiting = ready.is_none();
        entry.insert(Item {
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

    /// Same as the module-level [`clear_cache`](super::clear_cache): the cache is process-wide,
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
            .items
            .iter()
            .filter(|(_, item)| item.status == ResolverStatus::Waiting)
            .count();
        f.debug_struct("Resolver")
            .field("items", &st.items.len())
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
