//! TLS for every listener: certificates from config or, for localhost, a self-signed pair
//! made on first start and kept in the data folder so clients can pin it once.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer},
    ServerConfig,
};

use crate::config::Config;

/// What the listeners need: the acceptor config and the data for SCRAM channel binding.
#[derive(Clone)]
pub struct TlsContext {
    pub server_config: Arc<ServerConfig>,
    /// `tls-server-end-point` channel binding data (RFC 5929 §4.1): the hash of our
    /// end-entity certificate.
    pub server_end_point: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: no {what} found in PEM file")]
    Empty { path: String, what: &'static str },
    #[error("cannot write the generated certificate to {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate and key are not usable together: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsContext {
    pub fn load(config: &Config) -> Result<TlsContext, TlsError> {
        let (certs, key) = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
            _ => self_signed(&config.server.data_dir, &config.server.domain)?,
        };
        Self::from_parts(certs, key)
    }

    pub fn from_parts(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsContext, TlsError> {
        let server_end_point = certs
            .first()
            .map(|c| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.as_ref()).as_ref().to_vec())
            .unwrap_or_default();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server_config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        // XEP-0368: direct TLS clients may offer ALPN "xmpp-client".
        server_config.alpn_protocols = vec![b"xmpp-client".to_vec()];
        Ok(TlsContext { server_config: Arc::new(server_config), server_end_point })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.display().to_string(), what: "certificate" });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .ok()
        .flatten()
        .ok_or(TlsError::Empty { path: path.display().to_string(), what: "private key" })
}

/// Load `DATA/DOMAIN.crt` and `.key`, making them first if they do not exist.
fn self_signed(
    data_dir: &Path,
    domain: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_path = data_dir.join(format!("{domain}.crt"));
    let key_path = data_dir.join(format!("{domain}.key"));
    if !cert_path.exists() || !key_path.exists() {
        let names = vec![domain.to_string(), format!("*.{domain}")];
        let generated = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
        let write = |path: &Path, contents: String| {
            std::fs::create_dir_all(data_dir)
                .and_then(|_| std::fs::write(path, contents))
                .map_err(|source| TlsError::Write { path: path.display().to_string(), source })
        };
        write(&key_path, generated.signing_key.serialize_pem())?;
        restrict_permissions(&key_path);
        write(&cert_path, generated.cert.pem())?;
        tracing::info!(cert = %cert_path.display(), "made a self-signed certificate for {domain}");
    }
    Ok((read_certs(&cert_path)?, read_key(&key_path)?))
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}
