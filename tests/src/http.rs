//! The one HTTP client of the tests: a minimal HTTP/1.1 GET, one request
//! per connection (`Connection: close`, read to EOF), enough for `/readyz`,
//! `/api/*`, `/metrics` and the static routes, on a node or through a
//! balancer. Over TLS in TLS runs (see [`tls`](crate::tls)).
//!
//! [`try_get`] returns I/O failures, timeouts and unparsable responses as
//! errors (a node that is down); [`get`] fails the test on them.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{POLL, WAIT, tls};

/// Longest one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status code.
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text; panics unless it is UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} body {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `GET path` on `addr` with extra header lines (each ending in `\r\n`); an
/// error for I/O failures, timeouts and unparsable responses.
pub async fn try_get_with(addr: SocketAddr, path: &str, extra_headers: &str) -> io::Result<Reply> {
    tokio::time::timeout(REQUEST_LIMIT, exchange(addr, path, extra_headers, true))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("GET {path} on {addr}")))?
}

/// `GET path` on `addr`, or the error.
pub async fn try_get(addr: SocketAddr, path: &str) -> io::Result<Reply> {
    try_get_with(addr, path, "").await
}

/// `GET path` with extra header lines; fails the test if there is no answer.
pub async fn get_with(addr: SocketAddr, path: &str, extra_headers: &str) -> Reply {
    try_get_with(addr, path, extra_headers)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// Routes for operators and peers only: served on a node's admin listener,
/// 404 on its game port and through the balancers.
pub const INTERNAL_ROUTES: [&str; 6] = [
    "/metrics",
    "/api/node",
    "/api/cluster",
    "/admin",
    "/admin.html",
    "/admin/api/games",
];

/// `GET path` on a node's admin listener, which is plain HTTP even in TLS
/// runs; fails the test if there is no answer.
pub async fn get_admin(addr: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(REQUEST_LIMIT, exchange(addr, path, "", false))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("GET {path} on {addr}")))
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("GET {path} on admin {addr}: {e}"))
}

/// `GET path`; fails the test if there is no answer.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, "").await
}

/// `GET path`, failing the test unless the answer is 200 with a JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let reply = get(addr, path).await;
    assert_eq!(
        reply.status,
        200,
        "GET {path} on {addr}: status {}, body {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Polls `GET path` until the status is `want`, at most `limit`; fails the
/// test with the last answer otherwise.
pub async fn wait_status_within(addr: SocketAddr, path: &str, want: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let last = try_get(addr, path).await;
        if matches!(&last, Ok(r) if r.status == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on {addr} did not answer {want} within {limit:?}; last: {last:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `GET path` (JSON) until `ok` holds of the answer, within [`WAIT`]: for
/// views that follow the games a moment behind (a stateless node's lobby).
pub async fn get_json_until(
    addr: SocketAddr,
    path: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    get_json_until_within(addr, path, WAIT, ok).await
}

/// [`get_json_until`] within `limit`, for views whose lag the protocol
/// bounds (every node's lobby agrees within a second). Asks at least once.
pub async fn get_json_until_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let value = get_json(addr, path).await;
        if ok(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on {addr} never satisfied the test within {limit:?}: {value}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_status_within`] [`WAIT`].
pub async fn wait_status(addr: SocketAddr, path: &str, want: u16) {
    wait_status_within(addr, path, want, WAIT).await;
}

/// One request; over TLS in TLS runs when `tls_if_run`.
async fn exchange(
    addr: SocketAddr,
    path: &str,
    extra_headers: &str,
    tls_if_run: bool,
) -> io::Result<Reply> {
    let stream = TcpStream::connect(addr).await?;
    let mut stream = if tls_if_run {
        tls::try_wrap(stream, addr).await?
    } else {
        tokio_tungstenite::MaybeTlsStream::Plain(stream)
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra_headers}\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    let truncated = match stream.read_to_end(&mut raw).await {
        Ok(_) => false,
        // TLS: the server closed without close_notify. Like browsers,
        // accept it only when the response shows it is complete.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => true,
        Err(e) => return Err(e),
    };
    let reply = parse(&raw)?;
    if truncated {
        let length = reply
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| {
                invalid("a response that ended without close_notify has no Content-Length")
            })?;
        if length != reply.body.len() {
            return Err(invalid("truncated response body"));
        }
    }
    Ok(reply)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Parses a whole `Connection: close` response.
fn parse(raw: &[u8]) -> io::Result<Reply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| invalid("no status line"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let mut body = &raw[split + 4..];
    let chunked = reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    reply.body = if chunked {
        dechunk(body)?
    } else {
        if let Some(n) = reply
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            body = body
                .get(..n)
                .ok_or_else(|| invalid("body shorter than Content-Length"))?;
        }
        body.to_vec()
    };
    Ok(reply)
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

/// The value of one series in a Prometheus text answer: `name` with its
/// labels as rendered (`gridcap_games{status="waiting"}`), if present.
pub fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// Polls `/metrics` on the admin listener `admin` until series `name` is
/// at least `at_least` (counters move a moment after what clients see),
/// within [`WAIT`]; returns that answer's text.
pub async fn metric_until(admin: SocketAddr, name: &str, at_least: f64) -> String {
    crate::poll::until(WAIT, move || async move {
        let text = get_admin(admin, "/metrics").await.text();
        match series(&text, name) {
            Some(v) if v >= at_least => Ok(text),
            _ => Err(format!("{name} never reached {at_least} in\n{text}")),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sized_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\n\r\ndraining\nextra";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.text(), "draining\n");
        assert_eq!(r.header("content-length"), Some("9"));
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
