//! TLS for the Postgres connection, with libpq's sslmode semantics: `require` encrypts without
//! verifying, `verify-ca` checks the chain but not the host name, `verify-full` checks both.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Encryption only (sslmode prefer and require).
    None,
    /// The chain must lead to a trusted CA; the host name is not checked (verify-ca).
    Chain,
    /// Chain and host name (verify-full).
    Full,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("ssl_ca_pem is not valid PEM: {e}"))?;
            if certs.is_empty() {
                return Err("ssl_ca_pem holds no certificate".to_owned());
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("ssl_ca_pem: unusable certificate: {e}"))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

/// A client certificate and its private key, PEM (libpq's `sslcert` and `sslkey`).
pub(crate) struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The TLS connector for a verification level, with a client certificate when one is given.
pub(crate) fn connector(
    verification: Verification,
    ca_pem: Option<&str>,
    client: Option<&ClientIdentity>,
) -> Result<MakeRustlsConnect, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::Full => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider.clone())
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?
        }
        Verification::Chain => {
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(ca_pem)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
            Arc::new(ChainOnly { inner })
        }
        Verification::None => Arc::new(AcceptAny {
            algorithms: provider.signature_verification_algorithms,
        }),
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("sslcert is not valid PEM: {e}"))?;
            if certs.is_empty() {
                return Err("sslcert holds no certificate".to_owned());
            }
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| format!("sslkey holds no usable private key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("sslcert and sslkey do not make a client identity: {e}"))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Checks the chain, ignores the host name.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Encrypts without authenticating the server (libpq's `require`); handshake signatures are
/// still checked so the session keys belong to the presented certificate.
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
