//! Outbound HTTP/1.1 requests (the SMS gateway's webhook, an OpenID Connect provider): plain
//! `http://`, or `https://` verified against the Mozilla root certificates (webpki-roots) plus
//! any extra roots given (a private CA). One request per connection; bodies are small.

use std::time::Duration;

use http_body_util::BodyExt;

/// Most bytes read from a response, unless the client says otherwise.
const MAX_RESPONSE: usize = 1024 * 1024;

/// A client: its TLS configuration and timeout.
#[derive(Clone)]
pub struct Outbound {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    max_response: usize,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A response: status and body, and `Retry-After` in seconds when it says so.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

impl Outbound {
    /// A client trusting the public roots and the DER certificates `extra_roots`.
    pub fn new(timeout: Duration, extra_roots: &[Vec<u8>]) -> Result<Outbound, String> {
        use tokio_rustls::rustls;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra_roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| format!("a root certificate: {e}"))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Outbound {
            tls: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
            timeout,
            max_response: MAX_RESPONSE,
        })
    }

    /// The same client, reading responses of at most `bytes` (1 MiB unless set).
    #[must_use]
    pub fn with_max_response(mut self, bytes: usize) -> Outbound {
        self.max_response = bytes;
        self
    }

    /// Checks that `url` is one this client can reach (`http(s)://host[:port]/...`).
    pub fn check_url(url: &str) -> Result<hyper::Uri, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        if uri.host().is_none() {
            return Err(format!("{url:?}: needs a host"));
        }
        match uri.scheme_str() {
            Some("http" | "https") => Ok(uri),
            _ => Err(format!("{url:?}: http:// or https:// only")),
        }
    }

    /// Sends one request; `body` with its content type, or none for a GET.
    pub async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, String> {
        self.send_with(method, url, &[("accept", "application/json")], body)
            .await
    }

    /// [`Outbound::send`] with the request's headers (`Accept` among them).
    pub async fn send_with(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, String> {
        tokio::time::timeout(self.timeout, self.send_inner(method, url, headers, body))
            .await
            .map_err(|_| "timed out".to_owned())?
    }

    async fn send_inner(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, String> {
        let uri = Outbound::check_url(url)?;
        let host = uri.host().unwrap_or_default();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // A request's last segment must not wait for the previous one's acknowledgement.
        stream
            .set_nodelay(true)
            .map_err(|e| format!("connect: {e}"))?;
        let mut sender = if https {
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| format!("server name: {e}"))?;
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            sender
        } else {
            let (sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            sender
        };
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                request = request.header(hyper::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = request
            .body(http_body_util::Full::new(hyper::body::Bytes::from(bytes)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = http_body_util::Limited::new(response.into_body(), self.max_response)
            .collect()
            .await
            .map_err(|e| format!("response body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            body,
            retry_after,
        })
    }
}
