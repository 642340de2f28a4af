//! Raw loopback sockets: clients that misbehave on the wire, and upstreams
//! that send what an HTTP server library would not.

use actix_web::rt::net::{TcpListener, TcpStream};
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

pub async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What arrives until the gate closes the connection, or `None` if it is
/// still open after `within`.
pub async fn read_until_closed(stream: &TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    read_more(stream, within, &mut got).await.then_some(got)
}

/// Adds what arrives within `within` to `got`; true once the gate closed the connection.
pub async fn read_more(stream: &TcpStream, within: Duration, got: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
        if actix_web::rt::time::timeout(left, stream.readable()).await.is_err() {
            return false;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return true,
        }
    }
}

/// One whole response with a `content-length`, leaving the connection open.
pub async fn read_response(stream: &TcpStream) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a response with content-length");
            if body.len() >= length {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no whole response within 10 s: {text}");
        stream.readable().await.unwrap();
        match stream.try_read(&mut buf) {
            Ok(0) => panic!("closed before the response was whole: {text}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads a request head (nothing more) from a client of a raw upstream.
async fn read_head(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        if stream.readable().await.is_err() {
            return None;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
    Some(got)
}

/// Opens a connection to the proxy and writes a whole `POST /api/generate`
/// with this key and JSON body; the caller reads (or never reads) the answer.
pub async fn post_generate(proxy: &str, key: &str, body: &serde_json::Value) -> TcpStream {
    let stream = TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    write_all(&stream, request.as_bytes()).await.unwrap();
    stream
}

/// What the gate's health probes get from a hand-written upstream: a
/// version and no models, then the connection closes.
const PROBE_ANSWER: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 32\r\n\
connection: close\r\n\r\n{\"version\":\"0.12.6\",\"models\":[]}";

/// An upstream written by hand: every connection's request head is read,
/// then `answer` has the connection (the gate's health probes are answered
/// here). Returns its base URL.
pub async fn upstream<F, Fut>(answer: F) -> String
where
    F: Fn(TcpStream) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::rc::Rc::new(answer);
    actix_web::rt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            actix_web::rt::spawn(async move {
                let Some(head) = read_head(&stream).await else { return };
                if String::from_utf8_lossy(&head).contains("(health probe)") {
                    let _ = write_all(&stream, PROBE_ANSWER.as_bytes()).await;
                } else {
                    answer(stream).await;
                }
            });
        }
    });
    url
}
