//! A tiny HTTP endpoint for the faults a real backend cannot be made to show: hangs, garbage,
//! huge or truncated bodies, 429 with Retry-After, wrong-shape JSON. Each accepted request is
//! counted; the server lives until the test process ends.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the fake does with each request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Status line (e.g. "200 OK"), extra header lines, body.
    Http(&'static str, Vec<String>, Vec<u8>),
    /// A 200 whose body is `len` bytes of `{` padding, sent in chunks (never all in memory).
    Huge(usize),
    /// Accept and never answer.
    Hang,
    /// Bytes that are not HTTP at all, then close.
    Garbage,
    /// A 200 announcing more body than it sends, then close.
    Truncated,
}

/// A running fake: its `http://127.0.0.1:port` address and the number of requests it got.
pub struct Fake {
    pub addr: String,
    pub requests: Arc<AtomicUsize>,
    /// The request heads (request line and headers) a proxy forwarded or stalled.
    pub heads: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Fake {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A JSON answer with `status`.
pub fn json(status: &'static str, body: &str) -> Answer {
    Answer::Http(
        status,
        vec!["Content-Type: application/json".into()],
        body.as_bytes().to_vec(),
    )
}

/// Starts a fake on 127.0.0.1 answering every request with `answer`.
pub fn serve(answer: Answer) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                match answer {
                    Answer::Http(status, headers, body) => {
                        let mut head = format!("HTTP/1.1 {status}\r\n");
                        for h in headers {
                            head.push_str(&h);
                            head.push_str("\r\n");
                        }
                        head.push_str(&format!(
                            "Content-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        ));
                        let _ = s.write_all(head.as_bytes());
                        let _ = s.write_all(&body);
                    }
                    Answer::Huge(len) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = s.write_all(head.as_bytes());
                        let chunk = vec![b' '; 1 << 16];
                        let mut sent = 0;
                        while sent < len {
                            let n = chunk.len().min(len - sent);
                            if s.write_all(&chunk[..n]).is_err() {
                                break;
                            }
                            sent += n;
                        }
                    }
                    Answer::Hang => {
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    }
                    Answer::Garbage => {
                        let _ = s.write_all(b"\x00\xffnot http at all\r\n\r\n");
                    }
                    Answer::Truncated => {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"data\":",
                        );
                    }
                }
            });
        }
    });
    Fake {
        addr,
        requests,
        heads: Default::default(),
    }
}

/// A proxy to `upstream` (`http://127.0.0.1:port`) that forwards every request except those
/// whose path contains `hang_on`, which it accepts and never answers (a backend that stalls in
/// the middle of an invocation).
pub fn stalling_proxy(upstream: &str, hang_on: &'static str) -> Fake {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let heads: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let (counter, seen) = (Arc::clone(&requests), Arc::clone(&heads));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            let (counter, seen) = (Arc::clone(&counter), Arc::clone(&seen));
            std::thread::spawn(move || {
                let _ = forward(client, &upstream, hang_on, &counter, &seen);
            });
        }
    });
    Fake {
        addr,
        requests,
        heads,
    }
}

/// Serves one request of a client connection through its own upstream connection.
fn forward(
    mut client: std::net::TcpStream,
    upstream: &str,
    hang_on: &str,
    counter: &AtomicUsize,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&request).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let stalls = head.lines().next().is_some_and(|l| l.contains(hang_on));
    seen.lock().unwrap().push(head);
    counter.fetch_add(1, Ordering::SeqCst);
    if stalls {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    // Ask upstream to close after its answer, so that its end marks the answer's end; the
    // answer then carries Connection: close and the client opens a new connection next time.
    let line_end = request.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
    let mut out = request[..line_end].to_vec();
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&request[line_end..]);
    let mut up = std::net::TcpStream::connect(upstream)?;
    up.write_all(&out)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    client.write_all(&answer)
}

/// One HTTP/1.1 request (head and Content-Length body), or `None` at end of stream.
fn read_request(s: &mut std::net::TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    buf.extend_from_slice(&body);
    Ok(Some(buf))
}
