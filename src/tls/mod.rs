//! TLS over lunanet streams (feature `tls`): [`StreamPeerTls`] (Godot 4's
//! `StreamPeerTLS`) and [`TlsOptions`] (Godot's `TLSOptions`).
//!
//! rustls 0.23 with the ring provider, TLS 1.3 and TLS 1.2 (Godot 3.x and
//! Godot 4.0-4.3 speak only 1.2). No thread and no async runtime: a TLS peer
//! wraps a [`StreamPeerTcp`](crate::StreamPeerTcp) (or any [`TlsTransport`])
//! and is driven by the same reactor passes, so TCP and TLS peers mix freely
//! in one tick loop. Because `StreamPeerTls` implements
//! [`StreamPeer`](crate::StreamPeer) and `io::Read`/`io::Write`, the typed
//! helpers, `put_var` and [`PacketPeerStream`](crate::PacketPeerStream) work
//! over it unchanged.
//!
//! | Godot 4                          | lunanet                                    |
//! |----------------------------------|--------------------------------------------|
//! | `StreamPeerTLS.connect_to_stream`| [`StreamPeerTls::connect_to_stream`]       |
//! | `StreamPeerTLS.accept_stream`    | [`StreamPeerTls::accept_stream`]           |
//! | `poll`                           | [`StreamPeerTls::poll`] / [`StreamPeerTls::process`] |
//! | `get_status`                     | [`StreamPeerTls::status`] ([`TlsStatus`])  |
//! | `get_stream`                     | [`StreamPeerTls::get_stream`]              |
//! | `disconnect_from_stream`         | [`StreamPeerTls::disconnect_from_stream`]  |
//! | `TLSOptions.client()`            | [`TlsOptions::client`] / [`TlsOptions::client_with_roots`] |
//! | `TLSOptions.client_unsafe()`     | [`TlsOptions::client_unsafe`]              |
//! | `TLSOptions.server(key, cert)`   | [`TlsOptions::server`] (certificate chain first) |
//!
//! Certificates and keys are read from PEM with `rustls-pki-types`.
//! [`rustls`] is re-exported so code can match on [`TlsError::rustls_error`]
//! or build a [`TlsOptions::from_server_config`] with the exact version.

mod options;
mod peer;

pub use options::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_TLS_READ_LIMIT, DEFAULT_TLS_WRITE_LIMIT, TlsConfigError,
    TlsOptions,
};
pub use peer::{StreamPeerTls, TlsError, TlsStatus, TlsTransport};
pub use rustls;
