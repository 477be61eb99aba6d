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
    /// The body bytes it managed to send (of [`Answer::Huge`]: where the client stopped reading).
    pub body_bytes_sent: Arc<AtomicUsize>,
    /// The request heads (request line and headers) a proxy forwarded or stalled.
    pub heads: Arc<std::sync::Mutex<Vec<String>>>,
    /// The most requests a proxy had in flight at once (2: two requests overlapped).
    pub peak_in_flight: Arc<AtomicUsize>,
}

impl Fake {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The heads of the requests a proxy got so far, sorted.
    pub fn sorted_heads(&self) -> Vec<String> {
        let mut heads = self.heads.lock().unwrap().clone();
        heads.sort();
        heads
    }

    /// The most requests a proxy had in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }
}

/// A port on 127.0.0.1 nothing listens on (bound, then let go), for a server to be started on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A port on 127.0.0.1 that refuses connections for as long as the tests run: bound and never
/// listened on, and kept so. A port let go ([`free_port`]) may be handed to the next server a
/// test starts meanwhile, which then answers where a refused connection was expected.
pub fn closed_port() -> u16 {
    static KEPT: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a TCP socket");
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any.into()).expect("bind 127.0.0.1:0");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("a bound socket's address")
        .port();
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).push(socket);
    port
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
    let body_bytes_sent = Arc::new(AtomicUsize::new(0));
    let (counter, sent_total) = (Arc::clone(&requests), Arc::clone(&body_bytes_sent));
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            let sent_total = Arc::clone(&sent_total);
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
                            sent_total.fetch_add(n, Ordering::SeqCst);
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
        body_bytes_sent,
        heads: Default::default(),
        peak_in_flight: Default::default(),
    }
}

/// What a [`tampering_proxy`] does to the requests whose head (request line and headers)
/// contains its pattern.
#[derive(Clone, Copy)]
pub enum Tamper {
    /// Accepts them and never answers (a backend that stalls in the middle of an invocation).
    Hang,
    /// Answers the first `count` of them with `status` and a JSON error body, then forwards.
    Fail {
        count: usize,
        status: &'static str,
        body: &'static str,
    },
    /// Forwards them after a delay (a slow backend).
    Delay(std::time::Duration),
    /// Forwards them and changes the upstream's JSON answer before passing it on.
    EditJson(fn(&mut serde_json::Value)),
}

/// A proxy to `upstream` (`http://127.0.0.1:port`) that forwards every request, except that the
/// requests whose head contains `on` (a path, or an `X-Amz-Target` operation) get `tamper`.
pub fn tampering_proxy(upstream: &str, on: &'static str, tamper: Tamper) -> Fake {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let heads: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let (counter, seen) = (Arc::clone(&requests), Arc::clone(&heads));
    let failed = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak_in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::clone(&peak_in_flight);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            let (counter, seen, failed) =
                (Arc::clone(&counter), Arc::clone(&seen), Arc::clone(&failed));
            let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
            std::thread::spawn(move || {
                let flight = Flight {
                    counter: &counter,
                    seen: &seen,
                    failed: &failed,
                    in_flight: &in_flight,
                    peak: &peak,
                };
                let _ = forward(client, &upstream, on, tamper, flight);
            });
        }
    });
    Fake {
        addr,
        requests,
        body_bytes_sent: Default::default(),
        heads,
        peak_in_flight,
    }
}

/// A proxy to `upstream` that stalls the requests whose head contains `hang_on`.
pub fn stalling_proxy(upstream: &str, hang_on: &'static str) -> Fake {
    tampering_proxy(upstream, hang_on, Tamper::Hang)
}

/// A proxy's counters: requests (count, heads, failures answered), and requests in flight.
struct Flight<'a> {
    /// Requests received.
    counter: &'a AtomicUsize,
    /// Their heads.
    seen: &'a std::sync::Mutex<Vec<String>>,
    /// Requests answered by a [`Tamper::Fail`].
    failed: &'a AtomicUsize,
    in_flight: &'a AtomicUsize,
    peak: &'a AtomicUsize,
}

/// Serves one request of a client connection through its own upstream connection.
fn forward(
    mut client: std::net::TcpStream,
    upstream: &str,
    on: &str,
    tamper: Tamper,
    flight: Flight<'_>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client)? else {
        return Ok(());
    };
    let now = flight.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    flight.peak.fetch_max(now, Ordering::SeqCst);
    let answered = answer(&mut client, &request, upstream, on, tamper, &flight);
    flight.in_flight.fetch_sub(1, Ordering::SeqCst);
    answered
}

/// The answer to one request: tampered with, or the upstream's.
fn answer(
    client: &mut std::net::TcpStream,
    request: &[u8],
    upstream: &str,
    on: &str,
    tamper: Tamper,
    flight: &Flight<'_>,
) -> std::io::Result<()> {
    let Flight {
        counter,
        seen,
        failed,
        ..
    } = *flight;
    let text = String::from_utf8_lossy(request).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let matches = head.contains(on);
    seen.lock().unwrap().push(head);
    counter.fetch_add(1, Ordering::SeqCst);
    let mut edit = None;
    if matches {
        match tamper {
            Tamper::Hang => std::thread::sleep(std::time::Duration::from_secs(3600)),
            Tamper::Fail {
                count,
                status,
                body,
            } if failed.fetch_add(1, Ordering::SeqCst) < count => {
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                return client.write_all(answer.as_bytes());
            }
            Tamper::Fail { .. } => {}
            Tamper::Delay(d) => std::thread::sleep(d),
            Tamper::EditJson(f) => edit = Some(f),
        }
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
    if let Some(f) = edit {
        answer = edit_json_answer(&answer, f);
    }
    client.write_all(&answer)
}

/// `answer` (a whole HTTP/1.1 response, its body plain or chunked) with its JSON body changed by
/// `f` and sent with a Content-Length; an answer whose body is not JSON is left as it is.
fn edit_json_answer(answer: &[u8], f: fn(&mut serde_json::Value)) -> Vec<u8> {
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut body = answer[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return answer.to_vec();
    };
    f(&mut value);
    let body = value.to_string();
    let mut out = String::new();
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if !lower.starts_with("content-length:") && !lower.starts_with("transfer-encoding:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// The data of a chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || body.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + n]);
        body = &body[(eol + 4 + n).min(body.len())..];
    }
    out
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
