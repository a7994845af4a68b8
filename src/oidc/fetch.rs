//! A minimal HTTP/1.1 client for the three requests single sign-on makes to a provider
//! (discovery, JWKS, token endpoint; userinfo when needed). One request per connection
//! (`Connection: close`), an overall timeout, a response size cap, no redirects.
//!
//! Why not a client crate: the few requests are simple and the tree already holds
//! tokio-rustls; a full client would add a connection pool, proxies, cookies and a second
//! TLS configuration path for nothing. TLS verifies the provider's certificate against the
//! system's CA bundle (Debian's `/etc/ssl/certs/ca-certificates.crt`), read once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};

/// A whole request (connect, TLS, send, receive) must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted, headers included.
pub const MAX_RESPONSE: usize = 1024 * 1024;
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("bad URL {0:?}")]
    Url(String),
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error("no answer from {0} within {TIMEOUT:?}")]
    Timeout(String),
    #[error("invalid HTTP response from {0}: {1}")]
    Protocol(String, String),
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The parts of an `http(s)://host[:port]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least "/".
    pub target: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, FetchError> {
        let bad = || FetchError::Url(url.to_string());
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            _ => return Err(bad()),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.is_empty() || authority.contains(['@', ' ']) || target.contains([' ', '\r', '\n']) {
            return Err(bad());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(bad)?;
                (h, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tls => 443,
            None => 80,
        };
        let target = if target.starts_with('/') { target.to_string() } else { format!("/{target}") };
        Ok(Url { tls, host: host.to_string(), port, target })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let pem = std::fs::read(CA_BUNDLE).map_err(|e| format!("cannot read the CA bundle {CA_BUNDLE}: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    config.clone().map(tokio_rustls::TlsConnector::from)
}

/// Send one request and read the whole response. `headers` are (name, value) pairs.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, FetchError> {
    let parsed = Url::parse(url)?;
    let origin = format!("{}:{}", parsed.host, parsed.port);
    match tokio::time::timeout(TIMEOUT, exchange(&parsed, method, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(origin)),
    }
}

async fn exchange(url: &Url, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, FetchError> {
    let origin = format!("{}:{}", url.host, url.port);
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| FetchError::Connect(origin.clone(), e.to_string()))?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: amphi\r\nContent-Length: {}\r\n",
        url.target,
        url.host_header(),
        body.len()
    );
    for (name, value) in headers {
        if value.contains(['\r', '\n']) {
            return Err(FetchError::Url(format!("header {name}")));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let raw = if url.tls {
        let name = ServerName::try_from(url.host.clone()).map_err(|_| FetchError::Url(url.host.clone()))?;
        let connector = tls_connector().map_err(|e| FetchError::Connect(origin.clone(), e))?;
        let tls = connector.connect(name, tcp).await.map_err(|e| FetchError::Connect(origin.clone(), e.to_string()))?;
        send_and_read(tls, head.as_bytes(), body).await
    } else {
        send_and_read(tcp, head.as_bytes(), body).await
    };
    let raw = raw.map_err(|e| FetchError::Protocol(origin.clone(), e))?;
    parse_response(&raw).map_err(|e| FetchError::Protocol(origin, e))
}

async fn send_and_read<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    head: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, String> {
    io.write_all(head).await.map_err(|e| e.to_string())?;
    io.write_all(body).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut limited = io.take(MAX_RESPONSE as u64 + 1);
    // A TLS peer that closes without close_notify still gave us a complete response when
    // its length checks out below; so a read error after some data is not fatal here.
    match limited.read_to_end(&mut out).await {
        Ok(_) => {}
        Err(_) if !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    if out.len() > MAX_RESPONSE {
        return Err(format!("response larger than {MAX_RESPONSE} bytes"));
    }
    Ok(out)
}

/// Parse a complete HTTP/1.1 response (the connection was closed by the server).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("incomplete headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n).ok_or("body shorter than its Content-Length")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// One value, form-encoded (percent-encoding everything but RFC 3986 unreserved characters).
pub fn form_value(value: &str) -> String {
    crate::http::percent_encode(value)
}

/// `application/x-www-form-urlencoded` of (name, value) pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", crate::http::percent_encode(k), crate::http::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://idp.example.org/realms/a/.well-known/openid-configuration").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "idp.example.org", 443));
        assert_eq!(u.target, "/realms/a/.well-known/openid-configuration");
        let u = Url::parse("http://127.0.0.1:9001?x=1#frag").unwrap();
        assert_eq!((u.port, u.target.as_str(), u.host_header()), (9001, "/?x=1", "127.0.0.1:9001".to_string()));
        assert_eq!(Url::parse("http://[::1]:80/").unwrap().host_header(), "[::1]");
        for bad in ["ftp://x/", "http://", "http://user@host/", "http://h:port/", "http://h/a b"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_by_length_chunks_or_close() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r =
            parse_response(b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"abcde"[..]));
        assert_eq!(parse_response(b"HTTP/1.0 204 No\r\n\r\n").unwrap().body, b"");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert_eq!(form(&[("a b", "c&d"), ("e", "é")]), "a%20b=c%26d&e=%C3%A9");
    }
}
