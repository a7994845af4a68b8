//! Just enough HTTP/1.1 for Janus's REST transport on loopback: one request per
//! connection (`Connection: close`), a JSON body each way, `Content-Length` or chunked
//! replies. Pulling in an HTTP client crate for a dozen requests per participant would cost
//! more build time than these lines.

use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bail;
use crate::conn::{Error, Result};

/// Replies larger than this are refused (Janus's are a few KiB: SDPs, events).
const MAX_REPLY: usize = 1 << 20;

/// `POST` (with `body`) or `GET` (without) `path` on `addr`; the reply's JSON body.
pub async fn call(addr: &str, path: &str, body: Option<&Value>, timeout: Duration) -> Result<Value> {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let req = match body {
            Some(b) => {
                let b = b.to_string();
                format!(
                    "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{b}",
                    b.len()
                )
            }
            None => format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        };
        tcp.write_all(req.as_bytes()).await?;
        let mut reply = Vec::new();
        (&mut tcp).take(MAX_REPLY as u64 + 1).read_to_end(&mut reply).await?;
        if reply.len() > MAX_REPLY {
            bail!("reply from {addr}{path} larger than {MAX_REPLY} bytes");
        }
        parse(&reply)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r.map_err(|e| Error(format!("{addr}{path}: {e}"))),
        Err(_) => bail!("{addr}{path}: no reply within {timeout:?}"),
    }
}

/// Splits a complete response into status, headers and body; decodes the JSON body.
fn parse(reply: &[u8]) -> Result<Value> {
    let Some(split) = memchr::memmem::find(reply, b"\r\n\r\n") else { bail!("no end of headers") };
    let head = String::from_utf8_lossy(&reply[..split]);
    let mut body = &reply[split + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("HTTP status {status}: {}", String::from_utf8_lossy(body));
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
        })
    };
    let decoded;
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        decoded = dechunk(body)?;
        body = &decoded;
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = body.get(..n).ok_or_else(|| Error("body shorter than its Content-Length".into()))?;
    }
    serde_json::from_slice(body)
        .map_err(|e| Error(format!("reply is not JSON ({e}): {}", String::from_utf8_lossy(body))))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = memchr::memmem::find(b, b"\r\n") else { bail!("truncated chunk size") };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { bail!("bad chunk size {size_text:?}") };
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let Some(chunk) = b.get(..size) else { bail!("truncated chunk") };
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":1}    trailing";
        assert_eq!(parse(plain).expect("plain")["a"], 1);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:2}\r\n0\r\n\r\n";
        assert_eq!(parse(chunked).expect("chunked")["a"], 2);
        assert!(parse(b"HTTP/1.1 404 Not Found\r\n\r\nnope").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(parse(b"garbage").is_err());
    }
}
