//! A minimal HTTP/1.1 client: one GET per connection (`Connection: close`),
//! enough for `/readyz`, `/api/node`, `/api/cluster` and `/api/games/{id}`
//! on a node or through a balancer.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{POLL, WAIT};

/// Longest one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// A response: status and body (as text; every route used here sends text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): status {} body {}", self.status, self.body))
    }
}

/// `GET path` on `addr`; an error for I/O failures, timeouts and
/// unparsable responses.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    tokio::time::timeout(REQUEST_LIMIT, get_inner(addr, path))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("GET {path} on {addr}")))?
}

async fn get_inner(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Parses a whole `Connection: close` response.
fn parse(raw: &[u8]) -> io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| invalid("no status line"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name == "content-length" {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        if let Some(n) = length {
            body = body
                .get(..n)
                .ok_or_else(|| invalid("body shorter than Content-Length"))?;
        }
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body.
fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("bad chunk header"))?;
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(raw.get(..size).ok_or_else(|| invalid("short chunk"))?);
        raw = raw.get(size + 2..).ok_or_else(|| invalid("short chunk"))?;
    }
}

/// `GET path`, panicking unless the answer is 200 with a JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let response = get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    assert_eq!(
        response.status, 200,
        "GET {path} on {addr}: status {}, body {}",
        response.status, response.body
    );
    response.json()
}

/// Polls `GET path` until the status is `want`, at most [`WAIT`]; panics
/// with the last answer otherwise.
pub async fn wait_status(addr: SocketAddr, path: &str, want: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let last = get(addr, path).await;
        if matches!(&last, Ok(r) if r.status == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on {addr} did not answer {want} within {WAIT:?}; last: {last:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sized_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\n\r\ndraining\nextra";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "draining\n");
    }

    #[test]
    fn parses_a_chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=1\r\n:1}\r\n0\r\n\r\n";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn refuses_a_truncated_response() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 3").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\nabc").is_err());
    }
}
