//! `--web.config.file`: TLS and basic authentication in the format of the
//! Prometheus exporter-toolkit, so the file node-exporter uses serves
//! boxwatch too.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/boxwatch/tls.crt     # or `cert:` with the PEM inline
//!   key_file: /etc/boxwatch/tls.key      # or `key:`
//!   client_auth_type: RequireAndVerifyClientCert   # optional, with:
//!   client_ca_file: /etc/boxwatch/ca.crt
//!   min_version: TLS12                   # TLS12 (default) or TLS13
//!   max_version: TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...               # bcrypt hash (htpasswd -nBC 10 "")
//! ```
//!
//! TLS is rustls (ring). The file is read once, at start; every problem
//! (a missing or unreadable file, a key that does not match its
//! certificate, a hash that is not bcrypt, a field this server does not
//! support, a misspelt one) refuses it with the reason. Successful
//! password checks are cached (a bcrypt check costs tens of milliseconds
//! by design), failed ones are not.

use crate::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The `--web.config.file` argument.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebArgs {
    /// A web configuration file in the Prometheus exporter-toolkit format
    /// (`tls_server_config`, `basic_auth_users` with bcrypt hashes): serve
    /// over TLS and/or ask for a password. Read once, at start.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// A loaded web configuration: TLS, and the users allowed in.
#[derive(Clone, Default)]
pub struct WebConfig {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: Arc<BTreeMap<String, String>>,
    /// `Authorization` header values that passed, so each is checked with
    /// bcrypt once.
    passed: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The most passed credentials kept (a handful of scrapers, in practice).
const PASSED_CACHE: usize = 64;

fn refuse(path: &Path, why: impl Into<String>) -> Error {
    Error::WebConfig {
        path: path.to_path_buf(),
        why: why.into(),
        source: None,
    }
}

fn refuse_by(
    path: &Path,
    why: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::WebConfig {
        path: path.to_path_buf(),
        why: why.into(),
        source: Some(Box::new(source)),
    }
}

impl WebConfig {
    /// No TLS, no password.
    pub fn none() -> Self {
        WebConfig::default()
    }

    /// Loads `path`, refusing it with the reason when anything in it is
    /// wrong or unsupported.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| refuse_by(path, "cannot read the web configuration file", e))?;
        Self::parse(path, &text)
    }

    /// Parses the text of `path` (relative file names are relative to the
    /// file's directory, as exporter-toolkit has them).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| refuse_by(path, "not a valid web configuration", e))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(http) = &file.http_server_config {
            if http.headers.as_ref().is_some_and(|h| !h.is_empty()) {
                return Err(refuse(
                    path,
                    "http_server_config.headers is not supported by boxwatch exporter; remove it",
                ));
            }
            if http.http2 == Some(true) {
                tracing::info!("http_server_config.http2: boxwatch exporter serves HTTP/1.1");
            }
        }
        for (user, hash) in &file.basic_auth_users {
            if user.contains(':') {
                return Err(refuse(
                    path,
                    format!("basic_auth_users: the user name {user:?} contains ':', which basic authentication cannot carry"),
                ));
            }
            if let Err(e) = hash.parse::<bcrypt::HashParts>() {
                return Err(refuse_by(
                    path,
                    format!("basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"),
                    e,
                ));
            }
        }
        let tls = match &file.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(path, dir, t)?)),
            None => None,
        };
        Ok(WebConfig {
            tls,
            users: Arc::new(file.basic_auth_users),
            passed: Arc::default(),
        })
    }

    /// The TLS configuration, when the file asks for TLS.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }

    /// Whether requests must carry a user and password.
    pub fn needs_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether a request with this `Authorization` header may pass (always
    /// when no user is configured). Blocking: a bcrypt check takes tens of
    /// milliseconds; call it off the async threads.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        if !self.needs_auth() {
            return true;
        }
        let Some(header) = authorization else {
            return false;
        };
        if self
            .passed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(header)
        {
            return true;
        }
        let Some((user, password)) = basic_credentials(header) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            // The same work as a known user, so a name cannot be probed by
            // timing.
            let _ = bcrypt::verify(&password, DUMMY_HASH);
            return false;
        };
        let ok = bcrypt::verify(&password, hash).unwrap_or(false);
        if ok {
            let mut passed = self.passed.lock().unwrap_or_else(|p| p.into_inner());
            if passed.len() >= PASSED_CACHE {
                passed.clear();
            }
            passed.insert(header.to_string());
        }
        ok
    }
}

/// A bcrypt hash (cost 10) of nothing anyone would send.
const DUMMY_HASH: &str = "$2b$10$kxjmpjXG7HGC1F9DfCUMzOuqfvANsXWF7NMTkYEW/0N3MtwkXtnyG";

/// `user` and `password` of a `Basic` authorization header.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn version(path: &Path, field: &str, v: &str) -> Result<&'static rustls::SupportedProtocolVersion> {
    match v {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(refuse(
            path,
            format!(
                "tls_server_config.{field}: {v} is not offered (rustls speaks TLS12 and TLS13)"
            ),
        )),
        _ => Err(refuse(
            path,
            format!("tls_server_config.{field}: {v:?} is not a TLS version (TLS12 or TLS13)"),
        )),
    }
}

fn tls_config(path: &Path, dir: &Path, t: &TlsFile) -> Result<rustls::ServerConfig> {
    if t.cipher_suites.is_some() || t.curve_preferences.is_some() {
        return Err(refuse(
            path,
            "tls_server_config: cipher_suites and curve_preferences are not supported (rustls offers only its safe defaults); remove them",
        ));
    }
    if t.client_allowed_sans.is_some() {
        return Err(refuse(
            path,
            "tls_server_config.client_allowed_sans is not supported by boxwatch exporter; remove it",
        ));
    }
    let _ = t.prefer_server_cipher_suites; // rustls always chooses.
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.join(p)
        }
    };
    let certs: Vec<CertificateDer<'static>> = match (&t.cert_file, &t.cert) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                path,
                "tls_server_config: give cert_file or cert, not both",
            ))
        }
        (Some(f), None) => {
            let f = resolve(f);
            CertificateDer::pem_file_iter(&f)
                .and_then(|i| i.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    refuse_by(
                        path,
                        format!(
                            "tls_server_config.cert_file {}: no PEM certificate",
                            f.display()
                        ),
                        e,
                    )
                })?
        }
        (None, Some(pem)) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| refuse_by(path, "tls_server_config.cert: no PEM certificate", e))?,
        (None, None) => {
            return Err(refuse(
                path,
                "tls_server_config needs cert_file (or cert) and key_file (or key)",
            ))
        }
    };
    if certs.is_empty() {
        return Err(refuse(
            path,
            "tls_server_config: the certificate file holds no certificate",
        ));
    }
    let key: PrivateKeyDer<'static> = match (&t.key_file, &t.key) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                path,
                "tls_server_config: give key_file or key, not both",
            ))
        }
        (Some(f), None) => {
            let f = resolve(f);
            PrivateKeyDer::from_pem_file(&f).map_err(|e| {
                refuse_by(
                    path,
                    format!(
                        "tls_server_config.key_file {}: no PEM private key",
                        f.display()
                    ),
                    e,
                )
            })?
        }
        (None, Some(pem)) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| refuse_by(path, "tls_server_config.key: no PEM private key", e))?,
        (None, None) => {
            return Err(refuse(
                path,
                "tls_server_config needs key_file (or key) beside the certificate",
            ))
        }
    };
    let min = version(
        path,
        "min_version",
        t.min_version.as_deref().unwrap_or("TLS12"),
    )?;
    let max = version(
        path,
        "max_version",
        t.max_version.as_deref().unwrap_or("TLS13"),
    )?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let n = |x: &rustls::SupportedProtocolVersion| u16::from(x.version);
                n(v) >= n(min) && n(v) <= n(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(refuse(
            path,
            "tls_server_config: min_version is above max_version",
        ));
    }
    // The crate's provider (ring, the only one built in).
    let builder = rustls::ServerConfig::builder_with_protocol_versions(&versions);
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let Some(ca) = &t.client_ca_file else {
                return Err(refuse(
                    path,
                    format!("tls_server_config: client_auth_type {auth} needs client_ca_file"),
                ));
            };
            let ca = resolve(ca);
            let mut roots = rustls::RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca)
                .and_then(|i| i.collect::<std::result::Result<_, _>>())
                .map_err(|e| {
                    refuse_by(path, format!("tls_server_config.client_ca_file {}: no PEM certificate", ca.display()), e)
                })?;
            for c in cas {
                roots.add(c).map_err(|e| {
                    refuse_by(path, format!("tls_server_config.client_ca_file {}", ca.display()), e)
                })?;
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots));
            if auth == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            let verifier = v
                .build()
                .map_err(|e| refuse_by(path, "tls_server_config.client_ca_file", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        other => {
            return Err(refuse(
                path,
                format!("tls_server_config.client_auth_type {other:?} is not supported (NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
            ))
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        refuse_by(
            path,
            "tls_server_config: the key does not fit the certificate",
            e,
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig> {
        WebConfig::parse(Path::new("/etc/boxwatch/web.yml"), text)
    }

    fn reason(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s.push_str(&format!(": {c}"));
                    src = c.source();
                }
                s
            }
        }
    }

    #[test]
    fn an_empty_file_asks_for_nothing() {
        let c = parse("").unwrap();
        assert!(c.tls().is_none() && !c.needs_auth());
        assert!(c.allows(None));
    }

    #[test]
    fn basic_auth_checks_the_bcrypt_hash_and_caches_success() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = parse(&format!("basic_auth_users:\n  prom: '{hash}'\n")).unwrap();
        assert!(c.needs_auth());
        let header = |u: &str, p: &str| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(!c.allows(None));
        assert!(!c.allows(Some(&header("prom", "wrong"))));
        assert!(!c.allows(Some(&header("other", "s3cret"))));
        assert!(!c.allows(Some("Bearer abc")));
        assert!(c.allows(Some(&header("prom", "s3cret"))));
        assert!(c.allows(Some(&header("prom", "s3cret"))), "cached");
        assert_eq!(c.passed.lock().unwrap().len(), 1);
        assert_eq!(
            basic_credentials(&header("a", "b:c")),
            Some(("a".into(), "b:c".into()))
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, want) in [
            ("basic_auth_users:\n  prom: plaintext\n", "not a bcrypt hash"),
            ("basic_auth_user:\n  prom: x\n", "unknown field `basic_auth_user`"),
            ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "/nonexistent.crt: no PEM certificate"),
            ("tls_server_config:\n  key_file: a.key\n", "needs cert_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n", "no PEM certificate"),
            ("tls_server_config:\n  cert: x\n  key: y\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "cipher_suites and curve_preferences are not supported"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: deny\n", "headers is not supported"),
            ("[not, a, mapping]", "not a valid web configuration"),
        ] {
            let r = reason(text);
            assert!(r.contains(want), "{text:?}: {r}");
            assert!(r.contains("/etc/boxwatch/web.yml"), "{r}");
        }
    }
}
