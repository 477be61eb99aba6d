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
    Fake { addr, requests }
}
