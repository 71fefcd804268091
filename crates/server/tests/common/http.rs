//! A minimal HTTP/1.1 GET over a plain TCP socket (`Connection: close`,
//! read to EOF), enough for the routes of protocol §6. Over TLS in TLS runs
//! (see [`tls`](super::tls)).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// `GET path` with extra header lines (each ending in `\r\n`).
pub async fn get_with(addr: SocketAddr, path: &str, extra_headers: &str) -> Reply {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut stream = super::tls::wrap(stream, addr).await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra_headers}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let truncated = match stream.read_to_end(&mut raw).await {
            Ok(_) => false,
            // TLS: the server closed without close_notify. Like browsers,
            // accept it only when the response shows it is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => true,
            Err(e) => panic!("read: {e}"),
        };
        (raw, truncated)
    };
    let (raw, truncated) = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("HTTP answer within WAIT");
    let reply = parse(&raw);
    if truncated {
        let length = reply
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .expect("a response ended without close_notify must have a Content-Length");
        assert_eq!(length, reply.body.len(), "truncated response body");
    }
    reply
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, "").await
}

fn parse(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the response head");
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
