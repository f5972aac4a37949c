//! TLS termination: rustls with the `ring` provider, from PEM files or a
//! self-signed development certificate made by rcgen.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no certificate or no private key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What is missing.
        what: &'static str,
    },
    /// rustls refused the pair, or rcgen could not make one.
    #[error("{0}")]
    Config(String),
}

/// The `ring` provider: it builds with a C compiler alone, where
/// `aws-lc-rs` also wants CMake or a prebuilt library, and a fresh machine
/// has only Rust. rustls marks it deprecated for its lack of post-quantum
/// key exchange; classical X25519 is what this testbed needs.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// A server configuration from a PEM certificate chain and private key.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.display().to_string(),
            what: "no PEM certificate in it",
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Pem {
            path: key.display().to_string(),
            what: "no PEM private key in it",
        })?;
    config(certs, key)
}

/// A self-signed certificate for `localhost` and 127.0.0.1, for
/// development and tests; returns the server configuration and the
/// certificate, which a client must trust.
pub fn self_signed() -> Result<(Arc<ServerConfig>, CertificateDer<'static>), TlsError> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    Ok((config(vec![cert.clone()], key)?, cert))
}

/// `cert` as a PEM block, as a client's roots file holds it.
#[cfg(test)]
pub(crate) fn to_pem(cert: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(cert.as_ref())
    )
}
