//! The AWS clients' HTTP client where TLS may be spoken: hyper over rustls with the shared TLS
//! configuration, [`plugin_protocol::tls::client_config_with_system_roots`], which reads the
//! system's trust store once the first request is out (within its wait for the server), and
//! checks the server's certificate against it.
//!
//! The SDK's own HTTPS client takes its trust store only as PEM text: the roots read here were
//! encoded as PEM, then decoded and parsed again, twice (once to validate the client, once to
//! use it), all before the first request: 5 ms of each invocation against AWS
//! (`scripts/bench.sh`). The SDK offers no way to give it a rustls configuration, so this module
//! puts hyper under the SDK's [`HttpClient`] trait itself; its errors are classified as the SDK's
//! client classifies them (timeout, I/O, user error), which drives the retry and the message.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use plugin_protocol::Result;

type Https = hyper_rustls::HttpsConnector<TcpConnector<HostLookup>>;

/// Host names looked up as hyper's default resolver does, by
/// [`plugin_protocol::remote::look_up_host`]: the trust store and a chain file are read once the
/// connection is being made, not while the endpoint's name is looked up.
#[derive(Clone, Debug)]
struct HostLookup;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for HostLookup {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        Box::pin(plugin_protocol::remote::look_up_host(
            name.as_str().to_owned(),
        ))
    }
}

/// An HTTP and HTTPS client over the system's trust store (HTTPS for AWS's endpoints; plain HTTP
/// for instance metadata and a local KMS).
pub fn client() -> Result<SharedHttpClient> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = plugin_protocol::tls::client_config_with_system_roots(provider)?;
    Ok(SharedHttpClient::new(TlsClient {
        tls: Arc::new(tls),
        connectors: Mutex::new(Vec::new()),
    }))
}

/// The connector settings a connector is made for: its connect and read timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One connector (one connection pool) per connector settings, as the SDK's client keeps them.
#[derive(Debug)]
struct TlsClient {
    tls: Arc<rustls::ClientConfig>,
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

impl HttpClient for TlsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = connectors.iter().find(|(t, _)| *t == timeouts) {
            return c.clone();
        }
        let connector = SharedHttpConnector::new(connector(&self.tls, timeouts));
        connectors.push((timeouts, connector.clone()));
        connector
    }
}

/// A connector (a connection pool) with these timeouts.
fn connector(tls: &rustls::ClientConfig, (connect, read): Timeouts) -> Connector {
    let mut tcp = TcpConnector::new_with_resolver(HostLookup);
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Connector {
        client: Client::builder(TokioExecutor::new()).build(https),
        read_timeout: read,
    }
}

#[derive(Debug)]
struct Connector {
    client: Client<Https, SdkBody>,
    /// How long the response's head may take once connected and sent (instance metadata's
    /// bound where its address takes connections and never answers).
    read_timeout: Option<Duration>,
}

/// The response did not come within the connector's read timeout.
#[derive(Debug)]
struct ReadTimeout(Duration);

impl std::fmt::Display for ReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no response within {:?}", self.0)
    }
}

impl StdError for ReadTimeout {}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, response).await {
                    Ok(response) => response,
                    Err(_) => return Err(ConnectorError::timeout(Box::new(ReadTimeout(limit)))),
                },
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e)),
            }
        })
    }
}

/// The SDK's classes of a failed request (as `aws-smithy-http-client` classifies hyper's
/// errors): a timeout, a connection or I/O failure (retried), a request that cannot be sent, or
/// other.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = chain(&error).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.downcast_ref::<hyper::Error>()
                .is_some_and(|h| h.is_timeout())
    });
    let hyper = chain(&error).find_map(|e| e.downcast_ref::<hyper::Error>());
    let user = hyper.is_some_and(|h| h.is_user());
    let incomplete = hyper.is_some_and(|h| h.is_incomplete_message());
    let io = hyper.is_some_and(|h| h.is_closed() || h.is_canceled())
        || error.is_connect()
        || chain(&error).any(|e| e.is::<std::io::Error>());
    let error = Box::new(error);
    if timed_out {
        ConnectorError::timeout(error)
    } else if user {
        ConnectorError::user(error)
    } else if incomplete {
        ConnectorError::other(error, Some(ErrorKind::TransientError))
    } else if io {
        ConnectorError::io(error)
    } else {
        ConnectorError::other(error, None)
    }
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// The status, request id and body of one GET of `url` through a connector with these
    /// timeouts.
    fn get(
        url: &str,
        timeouts: Timeouts,
    ) -> std::result::Result<(u16, Option<String>, Vec<u8>), ConnectorError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = plugin_protocol::tls::client_config_with_system_roots(provider).unwrap();
        let c = connector(&tls, timeouts);
        rt.block_on(async {
            let response = c.call(HttpRequest::get(url).unwrap()).await?;
            let status = response.status().as_u16();
            let id = response
                .headers()
                .get("x-amzn-requestid")
                .map(str::to_owned);
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            Ok((status, id, body.to_vec()))
        })
    }

    /// A server on 127.0.0.1 that reads a request and answers it with `answer` (None: it
    /// holds the connection and never answers), once.
    fn server(answer: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0; 4096];
            let _ = s.read(&mut buf);
            match answer {
                Some(a) => s.write_all(a.as_bytes()).unwrap(),
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        });
        url
    }

    #[test]
    fn an_answer_comes_back_whole() {
        let url = server(Some(
            "HTTP/1.1 418 I'm a teapot\r\ncontent-length: 5\r\nx-amzn-requestid: r1\r\n\r\nshort",
        ));
        let (status, id, body) = get(&url, (None, Some(Duration::from_secs(5)))).unwrap();
        assert_eq!(status, 418);
        assert_eq!(id.as_deref(), Some("r1"));
        assert_eq!(body, b"short");
    }

    #[test]
    fn a_refused_connection_is_an_io_failure_and_no_answer_a_timeout() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = get(&format!("http://127.0.0.1:{port}/"), (None, None)).unwrap_err();
        assert!(refused.is_io(), "{refused:?}");

        let silent = server(None);
        let started = std::time::Instant::now();
        let err = get(&silent, (None, Some(Duration::from_millis(200)))).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_connection_closed_before_the_answer_is_a_transient_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0; 4096]);
        });
        let err = get(&url, (None, None)).unwrap_err();
        // hyper's "incomplete message": transient, as the SDK's client classifies it.
        assert_eq!(err.as_other(), Some(ErrorKind::TransientError), "{err:?}");
    }
}
