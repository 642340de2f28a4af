//! A small HTTP/1.1 client that sees what a generic one hides: which socket
//! read each piece of a body arrived in, and when. Two pieces of a stream that
//! arrive in one read were merged (or held back) somewhere on the way.

use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// A request, rendered once and sent as often as needed.
pub fn post(addr: SocketAddr, path: &str, key: Option<&str>, body: &str) -> Vec<u8> {
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").into_bytes()
}

pub struct Head {
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    reads: u64,
    last_read_ns: u128,
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(16384), reads: 0, last_read_ns: 0 })
    }

    /// Sends `request` and reads the whole response, handing each piece of
    /// the body to `on_body` with the number of the read it came in and when
    /// that read returned.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        mut on_body: impl FnMut(&[u8], u64, u128),
    ) -> io::Result<Head> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let (head, framing) = parse_head(&self.buf[..head_end])?;
        self.buf.drain(..head_end);
        match framing {
            Framing::Length(mut left) => loop {
                let take = left.min(self.buf.len());
                if take > 0 {
                    on_body(&self.buf[..take], self.reads, self.last_read_ns);
                    self.buf.drain(..take);
                    left -= take;
                }
                if left == 0 {
                    break;
                }
                self.fill().await?;
            },
            Framing::Chunked => self.chunked(&mut on_body).await?,
            Framing::UntilClose => loop {
                if !self.buf.is_empty() {
                    on_body(&self.buf, self.reads, self.last_read_ns);
                    self.buf.clear();
                }
                if self.read_some().await? == 0 {
                    return Ok(Head { close: true, ..head });
                }
            },
        }
        Ok(head)
    }

    async fn chunked(&mut self, on_body: &mut impl FnMut(&[u8], u64, u128)) -> io::Result<()> {
        let (mut in_chunk, mut need_crlf) = (0usize, false);
        loop {
            loop {
                if in_chunk > 0 {
                    let take = in_chunk.min(self.buf.len());
                    if take == 0 {
                        break;
                    }
                    on_body(&self.buf[..take], self.reads, self.last_read_ns);
                    self.buf.drain(..take);
                    in_chunk -= take;
                    need_crlf = in_chunk == 0;
                } else if need_crlf {
                    if self.buf.len() < 2 {
                        break;
                    }
                    self.buf.drain(..2);
                    need_crlf = false;
                } else {
                    let Some(line_end) = memchr::memmem::find(&self.buf, b"\r\n") else { break };
                    let text = std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad("chunk size"))?;
                    let size = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                    self.buf.drain(..line_end + 2);
                    if size == 0 {
                        while self.buf.len() < 2 {
                            self.fill().await?;
                        }
                        self.buf.drain(..2);
                        return Ok(());
                    }
                    in_chunk = size;
                }
            }
            self.fill().await?;
        }
    }

    async fn read_some(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        self.reads += 1;
        self.last_read_ns = now_ns();
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.read_some().await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        Ok(())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad {what} in the response"))
}

fn parse_head(head: &[u8]) -> io::Result<(Head, Framing)> {
    let text = std::str::from_utf8(head).map_err(|_| bad("head"))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| bad("status line"))?;
    let (mut framing, mut close) = (Framing::UntilClose, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            framing = Framing::Length(value.parse().map_err(|_| bad("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    if status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok((Head { status, close }, framing))
}

/// One request on a fresh connection, for setup calls; returns status and body.
pub async fn call(addr: SocketAddr, request: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut conn = Conn::open(addr).await?;
    let mut body = Vec::new();
    let head = conn.exchange(request, |data, _, _| body.extend_from_slice(data)).await?;
    Ok((head.status, body))
}

/// Splits a streamed body into its logical chunks (NDJSON lines or SSE
/// events) and notes, for each, the read it completed in, when, and the
/// mock's `sent_ns` stamp.
pub struct Splitter {
    separator: &'static [u8],
    pending: Vec<u8>,
    pub chunks: Vec<Seen>,
}

#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub read: u64,
    pub at_ns: u128,
    pub sent_ns: Option<u128>,
}

impl Splitter {
    pub fn new(sse: bool) -> Splitter {
        Splitter { separator: if sse { b"\n\n" } else { b"\n" }, pending: Vec::new(), chunks: Vec::new() }
    }

    pub fn feed(&mut self, data: &[u8], read: u64, at_ns: u128) {
        self.pending.extend_from_slice(data);
        while let Some(i) = memchr::memmem::find(&self.pending, self.separator) {
            let piece = &self.pending[..i];
            if piece.iter().any(|b| !b.is_ascii_whitespace()) {
                self.chunks.push(Seen { read, at_ns, sent_ns: sent_stamp(piece) });
            }
            self.pending.drain(..i + self.separator.len());
        }
    }
}

fn sent_stamp(piece: &[u8]) -> Option<u128> {
    let at = memchr::memmem::find(piece, b"\"sent_ns\":")? + 10;
    let digits = piece[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&piece[at..at + digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_splitter_finds_chunks_across_reads_and_reads_their_stamps() {
        let mut s = Splitter::new(true);
        s.feed(b"data: {\"a\":1,\"sent_ns\":17}\n", 1, 100);
        s.feed(b"\ndata: [DONE]\n\n", 2, 200);
        assert_eq!(s.chunks.len(), 2);
        assert_eq!((s.chunks[0].read, s.chunks[0].sent_ns), (2, Some(17)));
        assert_eq!(s.chunks[1].sent_ns, None);
    }
}
