//! TLS termination: tusd's `-tls-certificate`, `-tls-key` and `-tls-mode`, with rustls.
//!
//! What it owns:
//! - [`TlsMode`]: tusd's three modes and the protocol versions and cipher suites each allows
//!   (tusd v2.10.1 `cmd/tusd/cli/serve.go`, `serveTLS`);
//! - [`TlsConfig`]: the validated flags, built at startup by [`TlsConfig::from_flags`], which
//!   reads both files once so that an unreadable file, a missing half of the pair or a key that
//!   does not belong to the certificate stops startup with a clear message;
//! - [`Tls`]: the running acceptor, whose certificate and key are replaced by [`Tls::reload`]
//!   (on SIGHUP, see [`reload_on_sighup`]).
//!
//! Invariants:
//! - the server always has a pair that matched when it was loaded: a reload that fails (a file
//!   unreadable, half-written, or a key of another certificate) logs an error and keeps serving
//!   the previous pair;
//! - a reload changes only what new handshakes present; connections already established keep
//!   their session and are never closed by it;
//! - ALPN offers `h2` and `http/1.1`; the server speaks what was negotiated (see
//!   [`Protocol::negotiated`]), and HTTP/1.1 when the client offered no ALPN, as Go does.
//!
//! The handshake itself runs in each connection's own task ([`crate::server`]), never in the
//! accept loop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;

/// tusd's `-tls-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// TLS 1.2 and 1.3; in 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (Mozilla's
    /// "intermediate" list, as tusd has it). tusd's default.
    #[default]
    Tls12,
    /// TLS 1.2 only, with ECDHE and AES-256-GCM only.
    Tls12Strong,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsMode {
    pub const NAMES: [&'static str; 3] = ["tls12", "tls12-strong", "tls13"];

    /// The protocol versions the mode allows.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsMode::Tls12 => &BOTH,
            TlsMode::Tls12Strong => &TLS12,
            TlsMode::Tls13 => &TLS13,
        }
    }

    /// The crypto provider restricted to the mode's cipher suites. tusd's `tls12` list is
    /// exactly the provider's default set of TLS 1.2 suites (ECDHE-ECDSA and ECDHE-RSA with
    /// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), and Go does not let TLS 1.3's suites be
    /// configured, so only `tls12-strong` narrows anything.
    pub fn provider(self) -> CryptoProvider {
        let mut provider = provider::default_provider();
        if self == TlsMode::Tls12Strong {
            provider.cipher_suites = vec![
                cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ];
        }
        provider
    }
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tls12" => Ok(TlsMode::Tls12),
            "tls12-strong" => Ok(TlsMode::Tls12Strong),
            "tls13" => Ok(TlsMode::Tls13),
            // tusd's own wording.
            _ => Err(format!(
                "invalid TLS mode {s:?}: valid modes are tls13, tls12 (default), and tls12-strong"
            )),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Tls12 => "tls12",
            TlsMode::Tls12Strong => "tls12-strong",
            TlsMode::Tls13 => "tls13",
        })
    }
}

/// Why a certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS certificate file {} holds no PEM certificate{detail}", path.display())]
    NoCertificate { path: PathBuf, detail: String },
    #[error("the TLS key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1){detail}", path.display())]
    NoKey { path: PathBuf, detail: String },
    #[error("the TLS key {} cannot be used: {source}", path.display())]
    UnusableKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the TLS key {} does not belong to the certificate {}", key.display(), certificate.display())]
    Mismatch { certificate: PathBuf, key: PathBuf },
    #[error("the TLS certificate {} cannot be used with its key: {source}", path.display())]
    Unusable {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS mode {mode} cannot be configured: {source}")]
    Mode {
        mode: TlsMode,
        source: rustls::Error,
    },
}

/// The validated TLS flags and the pair loaded at startup.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub mode: TlsMode,
    /// Loaded and checked by [`TlsConfig::from_flags`]; what the server starts with.
    pub initial: Arc<CertifiedKey>,
}

impl TlsConfig {
    /// `None` without TLS flags. Both files must be given: tusd silently serves plain HTTP when
    /// only one is, which turns a typo into an unencrypted server, so this refuses instead.
    pub fn from_flags(
        certificate: Option<&Path>,
        key: Option<&Path>,
        mode: TlsMode,
    ) -> Result<Option<TlsConfig>, String> {
        fn given(path: Option<&Path>) -> Option<&Path> {
            path.filter(|p| !p.as_os_str().is_empty())
        }
        match (given(certificate), given(key)) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(
                "--tls-certificate is set but --tls-key is not: TLS needs both the certificate and its key"
                    .into(),
            ),
            (None, Some(_)) => Err(
                "--tls-key is set but --tls-certificate is not: TLS needs both the certificate and its key"
                    .into(),
            ),
            (Some(certificate), Some(key)) => {
                let initial = load_pair(certificate, key, mode).map_err(|e| e.to_string())?;
                let config = TlsConfig {
                    certificate: certificate.to_owned(),
                    key: key.to_owned(),
                    mode,
                    initial: Arc::new(initial),
                };
                // The mode's versions and suites must fit together; checked here so that a
                // mistake in them is a startup error, not a failure to serve.
                server_config(&config, Arc::new(Current::new(Arc::clone(&config.initial))))
                    .map_err(|e| e.to_string())?;
                Ok(Some(config))
            }
        }
    }
}

/// Reads a PEM certificate chain (leaf first, as tusd's `-tls-certificate` wants it, with any
/// intermediates) and its private key, and checks that the key belongs to the leaf.
pub fn load_pair(certificate: &Path, key: &Path, mode: TlsMode) -> Result<CertifiedKey, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let chain_pem = read("certificate file", certificate)?;
    let key_pem = read("key file", key)?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: certificate.to_owned(),
            detail: format!(" ({e})"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: certificate.to_owned(),
            detail: String::new(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_owned(),
        detail: match e {
            rustls::pki_types::pem::Error::NoItemsFound => String::new(),
            e => format!(" ({e})"),
        },
    })?;
    let signer = mode
        .provider()
        .key_provider
        .load_private_key(private)
        .map_err(|source| TlsError::UnusableKey {
            path: key.to_owned(),
            source,
        })?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                certificate: certificate.to_owned(),
                key: key.to_owned(),
            })
        }
        // The provider cannot tell the key's public half: nothing to compare, as rustls's own
        // `CertifiedKey::from_der` accepts it.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(pair),
        Err(source) => Err(TlsError::Unusable {
            path: certificate.to_owned(),
            source,
        }),
    }
}

/// The pair new handshakes present; swapped whole by a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn new(pair: Arc<CertifiedKey>) -> Self {
        Current(RwLock::new(pair))
    }

    fn get(&self) -> Arc<CertifiedKey> {
        // Only ever a whole `Arc` is stored, so a panic elsewhere cannot leave it half-written.
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn set(&self, pair: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = pair;
    }
}

impl ResolvesServerCert for Current {
    /// One certificate for every name, as Go's `ServeTLS` with one pair.
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// What ALPN offers, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn server_config(config: &TlsConfig, current: Arc<Current>) -> Result<ServerConfig, TlsError> {
    let mode_error = |source| TlsError::Mode {
        mode: config.mode,
        source,
    };
    let mut server = ServerConfig::builder_with_provider(Arc::new(config.mode.provider()))
        .with_protocol_versions(config.mode.versions())
        .map_err(mode_error)?
        .with_no_client_auth()
        .with_cert_resolver(current);
    server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Session tickets, as Go's server sends by default: a client resuming skips the
    // certificate exchange. The ticket key rotates by itself.
    server.ticketer = provider::Ticketer::new().map_err(mode_error)?;
    Ok(server)
}

/// The HTTP version a TLS connection was negotiated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    /// `h2` means HTTP/2; anything else, including no ALPN at all, HTTP/1.1 (Go's net/http
    /// serves HTTP/2 over TLS only when ALPN chose it).
    pub fn negotiated(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }
}

/// The running TLS acceptor and what it reloads from.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
    config: TlsConfig,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tls {
    pub fn new(config: &TlsConfig) -> Result<Tls, TlsError> {
        let current = Arc::new(Current::new(Arc::clone(&config.initial)));
        let server = server_config(config, Arc::clone(&current))?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            current,
            config: config.clone(),
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the certificate and key files again and, if they load and match, makes new
    /// handshakes present them. On error the previous pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.config.certificate, &self.config.key, self.config.mode)?;
        self.current.set(Arc::new(pair));
        Ok(())
    }
}

/// Reloads the certificate and key on every SIGHUP until `stop` resolves. Certificate renewers
/// (certbot's deploy hook, cert-manager sidecars) replace both files and then signal.
pub async fn reload_on_sighup(tls: Tls, stop: impl std::future::Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; the TLS certificate will not be reloaded");
            return;
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            received = hangup.recv() => if received.is_none() { return },
        }
        match tls.reload() {
            Ok(()) => tracing::info!(
                certificate = %tls.config.certificate.display(),
                "SIGHUP: reloaded the TLS certificate and key"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: TLS certificate not reloaded; still serving the previous one"
            ),
        }
    }
}

/// The client side of `tusgate healthcheck --tls`: it checks that the server answers, not who
/// it is (it connects to its own container over 127.0.0.1, where a certificate names the public
/// host, if anything), so any certificate is accepted; the handshake signature is still checked.
pub fn healthcheck_client_config() -> rustls::ClientConfig {
    let provider = Arc::new(provider::default_provider());
    let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("the default provider supports the default versions"))
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_tusd_spells_them() {
        for name in TlsMode::NAMES {
            let mode: TlsMode = name.parse().expect("valid");
            assert_eq!(mode.to_string(), name);
        }
        assert_eq!(TlsMode::default(), TlsMode::Tls12);
        for bad in ["", "TLS12", "tls1.2", "tls11", "tls12strong"] {
            let error = bad.parse::<TlsMode>().expect_err(bad);
            assert!(
                error.contains("tls13, tls12 (default), and tls12-strong"),
                "{error}"
            );
        }
    }

    fn suites(mode: TlsMode) -> Vec<String> {
        let mut names: Vec<_> = mode
            .provider()
            .cipher_suites
            .iter()
            .filter(|s| mode.versions().contains(&s.version()))
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn modes_allow_tusds_versions_and_suites() {
        assert_eq!(
            suites(TlsMode::Tls12),
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
        );
        assert_eq!(
            suites(TlsMode::Tls12Strong),
            [
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            ]
        );
        assert_eq!(
            suites(TlsMode::Tls13),
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
            ]
        );
    }

    #[test]
    fn alpn_h2_is_http2_and_everything_else_http1() {
        assert_eq!(Protocol::negotiated(Some(b"h2")), Protocol::Http2);
        assert_eq!(Protocol::negotiated(Some(b"http/1.1")), Protocol::Http1);
        assert_eq!(Protocol::negotiated(None), Protocol::Http1);
        assert_eq!(ALPN, [&b"h2"[..], &b"http/1.1"[..]]);
    }

    #[test]
    fn both_files_or_neither() {
        let mode = TlsMode::Tls12;
        assert!(matches!(TlsConfig::from_flags(None, None, mode), Ok(None)));
        let empty = Path::new("");
        assert!(matches!(
            TlsConfig::from_flags(Some(empty), Some(empty), mode),
            Ok(None)
        ));
        let error = TlsConfig::from_flags(Some(Path::new("c.pem")), None, mode).expect_err("half");
        assert!(error.contains("--tls-key is not"), "{error}");
        let error = TlsConfig::from_flags(None, Some(Path::new("k.pem")), mode).expect_err("half");
        assert!(error.contains("--tls-certificate is not"), "{error}");
    }

    #[test]
    fn unreadable_and_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let error = load_pair(&missing, &missing, TlsMode::Tls12).expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("cannot read the TLS certificate file")
                && error.to_string().contains("missing.pem"),
            "{error}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").expect("write");
        let error = load_pair(&empty, &empty, TlsMode::Tls12).expect_err("empty");
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    }
}
