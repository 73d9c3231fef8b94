//! The HTTP upgrade, both sides, on bytes peeked from the transport.
//!
//! tungstenite's `ServerHandshake`/`ClientHandshake` own the stream and read
//! it through their own 4 KiB-chunk buffer; here the request or response is
//! parsed in place from the transport's read buffer (tungstenite's
//! `TryParse`), so nothing is copied until it is complete and the bytes after
//! it stay in the transport for the frame codec.

use tungstenite::handshake::client::{Response as HttpResponse, generate_key};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{Request, create_response, write_response};

use crate::SocketError;

/// The most bytes an HTTP upgrade request or response may take. Godot's client
/// refuses responses over 4 096 bytes; requests from browsers carry cookies
/// and user agents, so the server allows 8 KiB.
pub(crate) const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A parsed `ws://` / `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) tls: bool,
    /// Without brackets for IPv6.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) resource: String,
    /// The `Host` header value (brackets kept, port when not the default).
    pub(crate) authority: String,
}

/// Parses `ws://host[:port][/path][?query]` (and `wss://`). Refuses anything
/// that could smuggle bytes into the request line or headers.
pub(crate) fn parse_url(url: &str) -> Result<Url, SocketError> {
    if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(SocketError::InvalidParameter);
    }
    let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
        (false, r)
    } else if let Some(r) = strip_prefix_ci(url, "wss://") {
        (true, r)
    } else {
        return Err(SocketError::InvalidParameter);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, mut resource) = rest.split_at(end);
    if let Some(hash) = resource.find('#') {
        resource = &resource[..hash]; // fragments are never sent
    }
    if authority.is_empty() || authority.contains('@') {
        return Err(SocketError::InvalidParameter);
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or(SocketError::InvalidParameter)?;
        let host = &v6[..close];
        let port = match &v6[close + 1..] {
            "" => default_port,
            p => parse_port(p.strip_prefix(':').ok_or(SocketError::InvalidParameter)?)?,
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p)?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err(SocketError::InvalidParameter);
    }
    let resource = match resource {
        "" => "/".to_owned(),
        r if r.starts_with('?') => format!("/{r}"),
        r => r.to_owned(),
    };
    Ok(Url {
        tls,
        host: host.to_owned(),
        port,
        resource,
        authority: authority.to_owned(),
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(p: &str) -> Result<u16, SocketError> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(SocketError::InvalidParameter),
        Ok(port) => Ok(port),
    }
}

/// Checks a `Name: value` line for `handshake_headers`.
fn valid_header_line(line: &str) -> bool {
    match line.split_once(':') {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                && !line.bytes().any(|b| b == b'\r' || b == b'\n')
        }
        None => false,
    }
}

/// The client's upgrade request and the `Sec-WebSocket-Accept` it expects.
pub(crate) fn client_request(
    url: &Url,
    protocols: &[String],
    headers: &[String],
) -> Result<(Vec<u8>, String), SocketError> {
    if headers.iter().any(|h| !valid_header_line(h)) || protocols.iter().any(|p| !valid_protocol(p))
    {
        return Err(SocketError::InvalidParameter);
    }
    let key = generate_key();
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.resource, url.authority
    );
    if !protocols.is_empty() {
        req.push_str("Sec-WebSocket-Protocol: ");
        req.push_str(&protocols.join(", "));
        req.push_str("\r\n");
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Ok((req.into_bytes(), derive_accept_key(key.as_bytes())))
}

/// A subprotocol is an HTTP token.
fn valid_protocol(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What came of parsing the bytes received so far.
pub(crate) enum Parsed<T> {
    /// Not complete yet.
    Partial,
    /// Complete: `len` header bytes to consume, then the result.
    Done(usize, T),
}

/// The server's answer to a complete upgrade request.
pub(crate) struct Accepted {
    /// The `101` response to send.
    pub(crate) response: Vec<u8>,
    /// The chosen subprotocol ("" when none).
    pub(crate) protocol: String,
    /// The request's path and query.
    pub(crate) resource: String,
}

/// Why an upgrade request was refused, with the HTTP response to send.
pub(crate) struct Refused {
    pub(crate) response: &'static [u8],
    pub(crate) why: String,
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    Connection: close\r\nContent-Length: 0\r\n\r\n";

/// Server side: parses the upgrade request in `buf` and builds the response.
/// `supported` are the server's subprotocols in preference order; when it
/// has some, a client must offer one of them (as Godot's server requires).
pub(crate) fn server_accept(
    buf: &[u8],
    supported: &[String],
    headers: &[String],
) -> Result<Parsed<Accepted>, Refused> {
    let refuse = |why: String| Refused {
        response: BAD_REQUEST,
        why,
    };
    let (len, request) = match Request::try_parse(buf) {
        Ok(Some(parsed)) => parsed,
        Ok(None) if buf.len() >= MAX_HEADER_BYTES => {
            return Err(Refused {
                response: TOO_LARGE,
                why: format!("upgrade request larger than {MAX_HEADER_BYTES} bytes"),
            });
        }
        Ok(None) => return Ok(Parsed::Partial),
        Err(e) => return Err(refuse(format!("malformed upgrade request: {e}"))),
    };
    let mut response =
        create_response(&request).map_err(|e| refuse(format!("not a WebSocket upgrade: {e}")))?;
    // The client's offer, in its order; the first one the server supports wins.
    let offered: Vec<&str> = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut protocol = String::new();
    if !supported.is_empty() {
        match offered.iter().find(|p| supported.iter().any(|s| s == *p)) {
            Some(p) => protocol = (*p).to_owned(),
            None => {
                return Err(refuse(format!(
                    "no supported subprotocol offered (offered {offered:?}, supported {supported:?})"
                )));
            }
        }
        let value = protocol
            .parse()
            .map_err(|_| refuse("invalid subprotocol".to_owned()))?;
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec fails only on a header value that is not visible
    // ASCII, which the checks above exclude; refuse rather than panic anyway.
    write_response(&mut out, &response)
        .map_err(|e| refuse(format!("cannot encode the response: {e}")))?;
    // Extra headers go before the blank line that write_response ended with.
    out.truncate(out.len() - 2);
    for h in headers {
        if valid_header_line(h) {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        } else {
            log::warn!("WebSocket: skipping invalid handshake header {h:?}");
        }
    }
    out.extend_from_slice(b"\r\n");
    let resource = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok(Parsed::Done(
        len,
        Accepted {
            response: out,
            protocol,
            resource,
        },
    ))
}

/// Client side: checks the server's response as Godot's client does (status
/// `101`, `Upgrade: websocket`, `Connection: upgrade`, the accept key, and a
/// subprotocol only if one was offered, then one of those). Returns the
/// chosen subprotocol ("" when none).
pub(crate) fn client_verify(
    buf: &[u8],
    accept_key: &str,
    offered: &[String],
) -> Result<Parsed<String>, String> {
    let (len, response) = match HttpResponse::try_parse(buf) {
        Ok(Some(parsed)) => parsed,
        Ok(None) if buf.len() >= MAX_HEADER_BYTES => {
            return Err(format!(
                "upgrade response larger than {MAX_HEADER_BYTES} bytes"
            ));
        }
        Ok(None) => return Ok(Parsed::Partial),
        Err(e) => return Err(format!("malformed upgrade response: {e}")),
    };
    if response.status().as_u16() != 101 {
        return Err(format!(
            "server answered {} instead of 101",
            response.status()
        ));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err("response lacks `Upgrade: websocket`".to_owned());
    }
    if !header("Connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err("response lacks `Connection: upgrade`".to_owned());
    }
    if header("Sec-WebSocket-Accept") != Some(accept_key) {
        return Err("wrong Sec-WebSocket-Accept".to_owned());
    }
    let protocol = match header("Sec-WebSocket-Protocol") {
        None if offered.is_empty() => String::new(),
        None => return Err("server chose no subprotocol".to_owned()),
        Some(p) if offered.iter().any(|o| o == p) => p.to_owned(),
        Some(p) => return Err(format!("server chose subprotocol {p:?}, not offered")),
    };
    Ok(Parsed::Done(len, protocol))
}

/// What the first bytes a client sent on a connection are: lets one port
/// serve a web page (plain HTTP) and WebSocket upgrades (lunanet addition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRequestKind {
    /// The request head (up to the blank line) has not fully arrived yet.
    Incomplete,
    /// A WebSocket upgrade: hand the connection to
    /// [`WebSocketPeer::accept_stream`](super::WebSocketPeer::accept_stream)
    /// without reading anything from it.
    Upgrade,
    /// A plain HTTP request.
    Plain {
        /// `GET`, `HEAD`, ...
        method: String,
        /// The request target, for example `/index.html?x=1`.
        path: String,
        /// Length of the head, blank line included.
        head_len: usize,
    },
    /// Not an HTTP/1.x request, or a head over 8 KiB.
    Invalid,
}

/// Classifies the bytes peeked from a new connection (see
/// [`HttpRequestKind`]).
///
/// # Example
///
/// ```
/// use lunanet::websocket::{HttpRequestKind, classify_request};
///
/// let get = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
/// assert!(matches!(classify_request(get), HttpRequestKind::Plain { path, .. } if path == "/index.html"));
/// let ws = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
/// assert_eq!(classify_request(ws), HttpRequestKind::Upgrade);
/// assert_eq!(classify_request(b"GET / HT"), HttpRequestKind::Incomplete);
/// assert_eq!(classify_request(b"\x16\x03\x01 tls hello\r\n\r\n"), HttpRequestKind::Invalid);
/// ```
pub fn classify_request(head: &[u8]) -> HttpRequestKind {
    let window = &head[..head.len().min(MAX_HEADER_BYTES)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if head.len() >= MAX_HEADER_BYTES {
            HttpRequestKind::Invalid
        } else {
            HttpRequestKind::Incomplete
        };
    };
    let Ok(text) = std::str::from_utf8(&window[..end]) else {
        return HttpRequestKind::Invalid;
    };
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return HttpRequestKind::Invalid;
    };
    if !version.starts_with("HTTP/1.")
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || path.is_empty()
    {
        return HttpRequestKind::Invalid;
    }
    let upgrade = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    });
    if upgrade {
        HttpRequestKind::Upgrade
    } else {
        HttpRequestKind::Plain {
            method: method.to_owned(),
            path: path.to_owned(),
            head_len: end + 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("ws://example.com").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "example.com", 80));
        assert_eq!(u.resource, "/");
        let u = parse_url("WSS://[::1]:9000/chat?room=1#x").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", 9000));
        assert_eq!(u.resource, "/chat?room=1");
        assert_eq!(u.authority, "[::1]:9000");
        let u = parse_url("ws://127.0.0.1:8080?token=a").unwrap();
        assert_eq!(u.resource, "/?token=a");
        for bad in [
            "http://x",
            "ws://",
            "ws://:80",
            "ws://h:0",
            "ws://h:99999",
            "ws://u@h",
            "ws://h/a b",
            "ws://h/\r\nX: y",
            "ws://[::1",
            "ws://[::1]x",
        ] {
            assert_eq!(parse_url(bad), Err(SocketError::InvalidParameter), "{bad}");
        }
    }

    fn request(extra: &str) -> Vec<u8> {
        format!(
            "GET /p?q=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn server_accepts_and_picks_a_protocol() {
        let req = request("Sec-WebSocket-Protocol: a, b\r\n");
        let supported = vec!["b".to_owned(), "a".to_owned()];
        let Ok(Parsed::Done(len, acc)) = server_accept(&req, &supported, &["X-A: 1".into()]) else {
            panic!("refused");
        };
        assert_eq!(len, req.len());
        assert_eq!(acc.protocol, "a"); // the client's preference
        assert_eq!(acc.resource, "/p?q=1");
        let resp = String::from_utf8(acc.response).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101"), "{resp}");
        assert!(
            resp.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{resp}"
        );
        assert!(resp.contains("sec-websocket-protocol: a\r\n"), "{resp}");
        assert!(resp.ends_with("X-A: 1\r\n\r\n"), "{resp}");
        // And the client side agrees.
        let Ok(Parsed::Done(_, p)) = client_verify(
            resp.as_bytes(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            &["a".into(), "b".into()],
        ) else {
            panic!("client refused");
        };
        assert_eq!(p, "a");
    }

    #[test]
    fn server_refuses_bad_requests() {
        assert!(matches!(
            server_accept(&request("")[..20], &[], &[]),
            Ok(Parsed::Partial)
        ));
        // No protocol offered while the server requires one.
        assert!(server_accept(&request(""), &["x".into()], &[]).is_err());
        // Not an upgrade.
        assert!(server_accept(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &[], &[]).is_err());
        assert!(server_accept(b"POST / HTTP/1.1\r\n\r\n", &[], &[]).is_err());
        assert!(server_accept(b"\x00\x01garbage\r\n\r\n", &[], &[]).is_err());
        let huge = vec![b'a'; MAX_HEADER_BYTES];
        assert!(server_accept(&huge, &[], &[]).is_err());
        // No protocol header when the server has no protocols.
        let Ok(Parsed::Done(_, acc)) =
            server_accept(&request("Sec-WebSocket-Protocol: a\r\n"), &[], &[])
        else {
            panic!("refused");
        };
        assert!(
            !String::from_utf8(acc.response)
                .unwrap()
                .contains("protocol")
        );
    }

    #[test]
    fn client_checks_the_response() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: K\r\n\r\nrest";
        assert!(
            matches!(client_verify(ok.as_bytes(), "K", &[]), Ok(Parsed::Done(n, _)) if n == ok.len() - 4)
        );
        assert!(client_verify(ok.as_bytes(), "other", &[]).is_err());
        assert!(client_verify(ok.as_bytes(), "K", &["p".into()]).is_err());
        assert!(matches!(
            client_verify(&ok.as_bytes()[..30], "K", &[]),
            Ok(Parsed::Partial)
        ));
        let refused = "HTTP/1.1 403 Forbidden\r\n\r\n";
        assert!(client_verify(refused.as_bytes(), "K", &[]).is_err());
    }

    #[test]
    fn client_request_rejects_injection() {
        let url = parse_url("ws://h:1/x").unwrap();
        assert!(client_request(&url, &[], &["X: a\r\nY: b".into()]).is_err());
        assert!(client_request(&url, &["a b".into()], &[]).is_err());
        let (req, _) = client_request(&url, &["chat".into()], &["X-Token: t".into()]).unwrap();
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("GET /x HTTP/1.1\r\nHost: h:1\r\n"), "{req}");
        assert!(req.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(req.ends_with("X-Token: t\r\n\r\n"));
    }
}
