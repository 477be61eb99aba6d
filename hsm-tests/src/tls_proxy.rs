//! An HTTPS front for a plain-HTTP test backend (OpenBao, LocalStack): a TLS-terminating proxy
//! on 127.0.0.1 with a server certificate for 127.0.0.1 from a CA made for the test, so the
//! plugins' HTTPS paths (their trust store, `VAULT_CACERT`, `SSL_CERT_FILE`) meet a real TLS
//! server. Python's `ssl` module serves it; openssl makes the certificates.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const PROXY: &str = r#"
import socket, ssl, sys, threading
cert, key, upstream = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = upstream.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
def serve(raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    up = socket.create_connection((host, int(port)))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// A running proxy; stopped when dropped.
pub struct TlsProxy {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The CA that issued the proxy's certificate (PEM file).
    pub ca: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:8200`).
    pub fn start(upstream: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let p = |name: &str| dir.path().join(name).display().to_string();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=TLS proxy test CA",
            "-days",
            "2",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]);
        std::fs::write(
            p("ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext"),
            "-out",
            &p("server.pem"),
        ]);
        let mut child = Command::new("python3")
            .args(["-c", PROXY, &p("server.pem"), &p("server.key"), upstream])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the TLS proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the proxy's port");
        let port: u16 = line.trim().parse().expect("a port number");
        Self {
            url: format!("https://127.0.0.1:{port}"),
            ca: dir.path().join("ca.pem"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
