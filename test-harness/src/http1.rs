//! A raw HTTP/1.1 client for end-to-end tests. It writes exactly the bytes a test asks for
//! (so tests can send lying `Content-Length`s or odd headers) and returns the response as it
//! came off the wire: every header line, in order, duplicates included.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::message::Response;

/// Sends raw bytes and reads one response: up to its framing (Content-Length, chunked, or
/// none for 204/304/HEAD), or until the server closes the connection when it has none. Not
/// waiting for the close matters: Envoy delays closing after some local replies.
pub fn send_raw(addr: SocketAddr, bytes: &[u8], method: &str) -> std::io::Result<Response> {
    send_raw_in_parts(addr, &[bytes], Duration::ZERO, method)
}

/// Like [`send_raw`], with a pause between the parts (a slow client: Envoy and the filter
/// see the request's beginning well before its end). A part the server no longer reads (it
/// answered early) is dropped; the answer is read all the same.
pub fn send_raw_in_parts(
    addr: SocketAddr,
    parts: &[&[u8]],
    pause: Duration,
    method: &str,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            std::thread::sleep(pause);
        }
        if stream.write_all(part).is_err() {
            break;
        }
    }
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if is_complete(&received, method) {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    parse(&received, method)
}

/// Whether `received` holds a whole response.
fn is_complete(received: &[u8], method: &str) -> bool {
    let mut header_buf = [httparse::EMPTY_HEADER; 128];
    let mut head = httparse::Response::new(&mut header_buf);
    let Ok(httparse::Status::Complete(body_start)) = head.parse(received) else {
        return false;
    };
    let status = head.code.unwrap_or(0);
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return true;
    }
    let body = &received[body_start..];
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            return std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .is_some_and(|len| body.len() >= len);
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value.eq_ignore_ascii_case(b"chunked")
        {
            return dechunk(body).is_some();
        }
    }
    false
}

fn parse(received: &[u8], method: &str) -> std::io::Result<Response> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut header_buf = [httparse::EMPTY_HEADER; 128];
    let mut head = httparse::Response::new(&mut header_buf);
    let body_start = match head.parse(received) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(invalid(format!(
                "incomplete response: {:?}",
                String::from_utf8_lossy(received)
            )));
        }
        Err(e) => {
            return Err(invalid(format!(
                "bad response ({e}): {:?}",
                String::from_utf8_lossy(received)
            )));
        }
    };
    let status = head.code.unwrap_or(0);
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let raw_body = &received[body_start..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        dechunk(raw_body).ok_or_else(|| invalid("bad chunked body".into()))?
    } else if let Some(length) = length {
        raw_body
            .get(..length)
            .ok_or_else(|| invalid(format!("body shorter than content-length {length}")))?
            .to_vec()
    } else {
        raw_body.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
