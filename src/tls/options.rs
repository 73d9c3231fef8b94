//! [`TlsOptions`]: what a TLS peer trusts (client) or presents (server), Godot's
//! `TLSOptions`, plus the buffer limits and the handshake timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// Default [`TlsOptions::handshake_timeout`]: a peer that has not finished the
/// handshake after this long is dropped to `TlsStatus::Error`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`TlsOptions::read_buffer_limit`] (decrypted bytes held per peer).
pub const DEFAULT_TLS_READ_LIMIT: usize = 64 * 1024;
/// Default [`TlsOptions::write_buffer_limit`] (plaintext one `put_*` may hand
/// over beyond what the transport takes at once).
pub const DEFAULT_TLS_WRITE_LIMIT: usize = 256 * 1024;

/// The one crypto provider lunanet uses: ring (see the crate's `tls` feature
/// comment for why). Passing it explicitly, instead of relying on the
/// process-wide default, keeps lunanet working when another crate in the
/// same binary enables aws-lc-rs (then rustls cannot pick a default and its
/// `builder()` panics).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[derive(Clone)]
pub(crate) enum Role {
    Client(Arc<ClientConfig>),
    Server(Arc<ServerConfig>),
}

/// TLS settings for [`StreamPeerTls`](crate::tls::StreamPeerTls) (Godot 4's
/// `TLSOptions`): built with [`client`](Self::client),
/// [`client_with_roots`](Self::client_with_roots),
/// [`client_unsafe`](Self::client_unsafe) or [`server`](Self::server), then
/// tuned with the `with_*` methods. Cheap to clone (the rustls configuration is
/// shared), so build it once and reuse it for every peer: a shared server
/// configuration also shares its session-resumption cache.
///
/// TLS 1.3 and TLS 1.2 are both enabled (Godot 3.x and Godot 4.0-4.3 speak
/// only TLS 1.2), with rustls' ring provider.
///
/// ```
/// use lunanet::tls::TlsOptions;
/// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
/// let server = TlsOptions::server(cert_pem.as_bytes(), key_pem.as_bytes())?;
/// assert!(server.is_server());
/// let client = TlsOptions::client_with_roots(cert_pem.as_bytes())?;
/// assert!(!client.is_server());
/// # Ok::<(), lunanet::tls::TlsConfigError>(())
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    pub(crate) role: Role,
    pub(crate) handshake_timeout: Duration,
    pub(crate) read_limit: usize,
    pub(crate) write_limit: usize,
}

impl TlsOptions {
    fn with_role(role: Role) -> TlsOptions {
        TlsOptions {
            role,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            read_limit: DEFAULT_TLS_READ_LIMIT,
            write_limit: DEFAULT_TLS_WRITE_LIMIT,
        }
    }

    fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
        // The ring provider supports both versions, so this cannot fail; the
        // `expect` documents an invariant of rustls, not of network input.
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
    }

    /// Client options that check the server's certificate chain against
    /// Mozilla's root certificates (bundled by the `webpki-roots` crate) and
    /// its name against the `common_name` given to `connect_to_stream`.
    ///
    /// Bundled roots rather than the operating system's store: the result is
    /// the same on every machine and in minimal containers without a
    /// `ca-certificates` package, and creating the options does no I/O. Use
    /// [`client_with_roots`](Self::client_with_roots) for a private CA or a
    /// self-signed server.
    ///
    /// ```
    /// let options = lunanet::tls::TlsOptions::client();
    /// assert!(!options.is_server());
    /// ```
    pub fn client() -> TlsOptions {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::client_from_roots(roots)
    }

    fn client_from_roots(roots: RootCertStore) -> TlsOptions {
        let config = Self::client_builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self::from_client_config(Arc::new(config))
    }

    /// Client options that trust exactly the certificates in `pem` (one or more
    /// `CERTIFICATE` blocks: a private CA, or a self-signed server's own
    /// certificate), and check the server's name as [`client`](Self::client).
    ///
    /// # Errors
    /// [`TlsConfigError::Pem`] if `pem` is not valid PEM,
    /// [`TlsConfigError::NoCertificate`] if it holds no certificate,
    /// [`TlsConfigError::BadCertificate`] if a certificate cannot be parsed.
    ///
    /// ```
    /// use lunanet::tls::{TlsConfigError, TlsOptions};
    /// let e = TlsOptions::client_with_roots(b"hello").err().unwrap();
    /// assert!(matches!(e, TlsConfigError::NoCertificate { .. }));
    /// ```
    pub fn client_with_roots(pem: &[u8]) -> Result<TlsOptions, TlsConfigError> {
        let certs = parse_certs(pem, "trusted roots")?;
        let mut roots = RootCertStore::empty();
        for (i, cert) in certs.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|e| TlsConfigError::BadCertificate {
                    what: "trusted roots",
                    index: i,
                    detail: e.to_string(),
                })?;
        }
        Ok(Self::client_from_roots(roots))
    }

    /// Client options that accept **any** server certificate and name (Godot's
    /// `TLSOptions.client_unsafe()`): the connection is encrypted but not
    /// authenticated, so anyone on the path can impersonate the server. For
    /// tests and development only. Handshake signatures are still verified.
    ///
    /// ```
    /// let options = lunanet::tls::TlsOptions::client_unsafe();
    /// assert!(!options.is_server());
    /// ```
    pub fn client_unsafe() -> TlsOptions {
        let provider = provider();
        let config = Self::client_builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
            .with_no_client_auth();
        Self::from_client_config(Arc::new(config))
    }

    /// Server options presenting the certificate chain in `cert_chain_pem`
    /// (the server's certificate first, then its intermediates) with the
    /// private key in `key_pem` (PKCS#8, PKCS#1/RSA or SEC1/EC).
    ///
    /// # Errors
    /// Each names what failed: [`TlsConfigError::Pem`] for malformed PEM,
    /// [`TlsConfigError::NoCertificate`] / [`TlsConfigError::NoPrivateKey`]
    /// when a block is missing, [`TlsConfigError::KeyMismatch`] when the key
    /// does not belong to the certificate, [`TlsConfigError::BadPrivateKey`]
    /// for a key rustls cannot use.
    ///
    /// ```
    /// use lunanet::tls::{TlsConfigError, TlsOptions};
    /// let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let e = TlsOptions::server(a.cert.pem().as_bytes(), b.signing_key.serialize_pem().as_bytes());
    /// assert!(matches!(e, Err(TlsConfigError::KeyMismatch)));
    /// ```
    pub fn server(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsOptions, TlsConfigError> {
        let chain = parse_certs(cert_chain_pem, "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey,
            e => TlsConfigError::Pem {
                what: "private key",
                detail: e.to_string(),
            },
        })?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    TlsConfigError::KeyMismatch
                }
                e => TlsConfigError::BadPrivateKey(e.to_string()),
            })?;
        Ok(Self::from_server_config(Arc::new(config)))
    }

    /// Client options from a rustls configuration built by hand (ALPN, client
    /// certificates, other roots...).
    pub fn from_client_config(config: Arc<ClientConfig>) -> TlsOptions {
        Self::with_role(Role::Client(config))
    }

    /// Server options from a rustls configuration built by hand.
    pub fn from_server_config(config: Arc<ServerConfig>) -> TlsOptions {
        Self::with_role(Role::Server(config))
    }

    /// The rustls server configuration, for server options.
    pub fn server_config(&self) -> Option<&Arc<ServerConfig>> {
        match &self.role {
            Role::Server(c) => Some(c),
            Role::Client(_) => None,
        }
    }

    /// The rustls client configuration, for client options.
    pub fn client_config(&self) -> Option<&Arc<ClientConfig>> {
        match &self.role {
            Role::Client(c) => Some(c),
            Role::Server(_) => None,
        }
    }

    /// Whether these are server options (for `accept_stream`).
    pub fn is_server(&self) -> bool {
        matches!(self.role, Role::Server(_))
    }

    /// How long a handshake may take before the peer goes to
    /// `TlsStatus::Error` with [`TlsError::HandshakeTimeout`](crate::tls::TlsError::HandshakeTimeout)
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`]). Checked whenever the peer is
    /// polled or processed, so a server that holds half-open handshakes
    /// should poll its handshaking peers every tick.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsOptions {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Most decrypted bytes a peer gathers for `get_data` / `peek_data`, and
    /// so the largest `get_data` it can serve (default
    /// [`DEFAULT_TLS_READ_LIMIT`], at least 1). Beyond what the application
    /// asked for, at most one TLS record (16 KiB) is decrypted ahead; the
    /// rest stays in the transport, whose own limit then stops reading the
    /// socket: backpressure reaches the sender.
    pub fn with_read_buffer_limit(mut self, bytes: usize) -> TlsOptions {
        self.read_limit = bytes.max(1);
        self
    }

    /// The read buffer limit.
    pub fn read_buffer_limit(&self) -> usize {
        self.read_limit
    }

    /// Most plaintext bytes one `put_*` may hand over at once (default
    /// [`DEFAULT_TLS_WRITE_LIMIT`], at least 1), and the most held before the
    /// handshake completes. While the transport refuses bytes (its queue is
    /// full), `put_*` takes nothing, so the encrypted backlog never exceeds
    /// the transport's limit plus one such write.
    pub fn with_write_buffer_limit(mut self, bytes: usize) -> TlsOptions {
        self.write_limit = bytes.max(1);
        self
    }

    /// The write buffer limit.
    pub fn write_buffer_limit(&self) -> usize {
        self.write_limit
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("server", &self.is_server())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("read_limit", &self.read_limit)
            .field("write_limit", &self.write_limit)
            .finish_non_exhaustive()
    }
}

fn parse_certs(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate { what });
    }
    Ok(certs)
}

/// Why a [`TlsOptions`] constructor failed; each variant names the input at
/// fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The PEM text of `what` is malformed (`detail` says where).
    Pem {
        /// Which input: "certificate chain", "private key", "trusted roots".
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// `what` contains no `-----BEGIN CERTIFICATE-----` block.
    NoCertificate {
        /// Which input.
        what: &'static str,
    },
    /// A certificate of `what` is not a usable X.509 certificate.
    BadCertificate {
        /// Which input.
        what: &'static str,
        /// Its position (0-based) in the PEM text.
        index: usize,
        /// rustls' / webpki's message.
        detail: String,
    },
    /// The key PEM contains no private key block (`PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    NoPrivateKey,
    /// The private key does not belong to the first certificate of the chain.
    KeyMismatch,
    /// rustls refused the private key (unsupported algorithm, corrupt key).
    BadPrivateKey(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Pem { what, detail } => write!(f, "{what}: invalid PEM: {detail}"),
            TlsConfigError::NoCertificate { what } => {
                write!(f, "{what}: no CERTIFICATE block found in the PEM text")
            }
            TlsConfigError::BadCertificate {
                what,
                index,
                detail,
            } => write!(f, "{what}: certificate #{index} is invalid: {detail}"),
            TlsConfigError::NoPrivateKey => {
                f.write_str("private key: no PRIVATE KEY block found in the PEM text")
            }
            TlsConfigError::KeyMismatch => f.write_str(
                "private key does not match the certificate's public key \
                 (wrong key file for this certificate?)",
            ),
            TlsConfigError::BadPrivateKey(detail) => {
                write!(f, "private key rejected: {detail}")
            }
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// The verifier behind [`TlsOptions::client_unsafe`]: any certificate and
/// name pass, but handshake signatures are still checked with the
/// certificate's key (so the peer at least holds the key it shows).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
