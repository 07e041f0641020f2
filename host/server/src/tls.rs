//! HTTPS (`[tls]`): the certificate chain and key, read at start and again on SIGHUP.
//! rustls with its ring provider; TLS 1.2 and 1.3 only (rustls has nothing older); ALPN
//! `http/1.1` (HTTP/2 is not served).

use anyhow::{bail, Context};
use portcullis_app::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// Take SIGHUP without TLS: logged, nothing else (its default would end the process).
pub fn ignore_sighup() {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: nothing to reload (no [tls])");
        }
    });
}

/// The live TLS configuration; [`Tls::reload`] swaps it for connections accepted later.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

/// A rustls server configuration from PEM files; every error names the file and what is
/// wrong with it.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("tls.cert_file: reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "tls.cert_file: {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        bail!("tls.cert_file: {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "tls.key_file: {} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls: the TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls: the key does not belong to the certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Tls {
    /// `[tls]` loaded, or `None` for plain HTTP.
    pub fn load(config: &TlsConfig) -> anyhow::Result<Option<Arc<Tls>>> {
        if !config.enabled() {
            return Ok(None);
        }
        let (cert, key) = (
            PathBuf::from(&config.cert_file),
            PathBuf::from(&config.key_file),
        );
        let acceptor = TlsAcceptor::from(server_config(&cert, &key)?);
        Ok(Some(Arc::new(Tls {
            cert,
            key,
            acceptor: RwLock::new(acceptor),
        })))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().expect("tls lock").clone()
    }

    /// Read the files again; on an error the previous certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let acceptor = TlsAcceptor::from(server_config(&self.cert, &self.key)?);
        *self.acceptor.write().expect("tls lock") = acceptor;
        Ok(())
    }

    /// Reload on every SIGHUP, for as long as the server runs.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        let tls = Arc::downgrade(self);
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!("cannot listen for SIGHUP: the certificate is read at start only");
                return;
            };
            while hup.recv().await.is_some() {
                let Some(tls) = tls.upgrade() else { return };
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use")
                    }
                }
            }
        });
    }
}
