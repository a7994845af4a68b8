//! HTTP for socket tests: amphi with a plain HTTP listener, and one request per connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestServer;
use amphi::config::Config;
use amphi::server::Server;

/// amphi on free ports with an `[http]` listener; `extra_auth` goes into the `[auth]` table,
/// `more` (whole tables) after it. Returns the server and the HTTP `host:port`.
pub async fn start_http(extra_auth: &str, more: &str) -> (TestServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ndomain='localhost'\ndata_dir='{}'\n[c2s]\nstarttls_listen=['127.0.0.1:0']\n\
         direct_tls_listen=['127.0.0.1:0']\n[auth]\nregistration=true\n{extra_auth}\n\
         [http]\nlisten=['127.0.0.1:0']\n{more}",
        dir.path().display(),
    );
    let server = Server::new(Config::parse("test", &toml).unwrap()).unwrap();
    let listeners = server.bind().await.unwrap();
    let (starttls, direct) = (listeners[0].0.local_addr().unwrap(), listeners[1].0.local_addr().unwrap());
    let http = format!("127.0.0.1:{}", listeners.http.plain_addrs()[0].port());
    server.start(listeners);
    (TestServer { starttls, direct, component: None, server, dir }, http)
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection. `url`: `http://host:port/path`.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = host.replace("localhost", "127.0.0.1");
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let r = amphi::oidc::fetch::parse_response(&raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    let headers = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    Reply { status: r.status, headers, body: String::from_utf8(r.body).unwrap() }
}
