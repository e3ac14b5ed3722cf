//! Certificates made with the `openssl` CLI for tests and benchmarks: CAs, a server
//! certificate for 127.0.0.1/localhost, client certificates, a CRL, fingerprints, and the
//! nginx directives that use them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Certificates for one test: a CA with a server certificate (127.0.0.1, localhost) and
/// a client certificate, and a second CA with a client certificate of its own.
///
/// - `server/`: `ca.pem`, `server-cert.pem`, `server-key.pem` (the image's /certs)
/// - `good/`, `other/`, `nocert/`: DOCKER_CERT_PATH directories (`ca.pem`, `cert.pem`,
///   `key.pem`): a client of the first CA, a client of the second CA, no client cert.
///   All three trust the first CA for the server.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// `<name>-key.pem` and `<name>-cert.pem` in `d`, signed by `<ca>.pem`, with the
/// extensions `ext` and serial `serial`.
fn leaf(d: &Path, name: &str, ca: &str, ext: &str, serial: u32) {
    let (key, csr, cert, extfile) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}-cert.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(d.join(&extfile), ext).unwrap();
    let subj = format!("/CN=nds test {name}");
    let mut args = vec!["req"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(d, &args);
    let (ca_cert, ca_key, serial) = (
        format!("{ca}.pem"),
        format!("{ca}-key.pem"),
        format!("{serial}"),
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            &cert,
            "-extfile",
            &extfile,
        ],
    );
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for ca in ["ca", "ca2"] {
            let subj = format!("/CN=nds test {ca}");
            let (key, cert) = (format!("{ca}-key.pem"), format!("{ca}.pem"));
            let mut args = vec!["req", "-x509"];
            args.extend(EC_KEY);
            args.extend(["-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subj]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(d, &args);
        }
        leaf(
            d,
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            0x4e44_5301,
        );
        leaf(
            d,
            "client",
            "ca",
            "extendedKeyUsage=clientAuth\n",
            0x4e44_5302,
        );
        leaf(
            d,
            "client2",
            "ca2",
            "extendedKeyUsage=clientAuth\n",
            0x4e44_5303,
        );

        let copy = |from: &str, to: &str| {
            let to = d.join(to);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(d.join(from), to).unwrap();
        };
        copy("ca.pem", "server/ca.pem");
        copy("server-cert.pem", "server/server-cert.pem");
        copy("server-key.pem", "server/server-key.pem");
        for client in ["good", "other", "nocert"] {
            copy("ca.pem", &format!("{client}/ca.pem"));
        }
        copy("client-cert.pem", "good/cert.pem");
        copy("client-key.pem", "good/key.pem");
        copy("client2-cert.pem", "other/cert.pem");
        copy("client2-key.pem", "other/key.pem");
        Certs { dir }
    }

    /// Another client certificate of the first CA, as a DOCKER_CERT_PATH directory
    /// `<name>/` (`ca.pem`, `cert.pem`, `key.pem`); returns that directory.
    pub fn add_client(&self, name: &str) -> PathBuf {
        let d = self.dir.path();
        // Distinct serials: a CRL revokes by serial.
        static SERIAL: std::sync::atomic::AtomicU32 =
            std::sync::atomic::AtomicU32::new(0x4e44_5400);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        leaf(d, name, "ca", "extendedKeyUsage=clientAuth\n", serial);
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(d.join("ca.pem"), dir.join("ca.pem")).unwrap();
        std::fs::copy(d.join(format!("{name}-cert.pem")), dir.join("cert.pem")).unwrap();
        std::fs::copy(d.join(format!("{name}-key.pem")), dir.join("key.pem")).unwrap();
        dir
    }

    /// A CRL of the first CA revoking the client certificates `names` (made by
    /// [`Certs::add_client`]); returns its path.
    pub fn crl(&self, names: &[&str]) -> PathBuf {
        let d = self.dir.path().join("crl");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            d.join("ca.cnf"),
            "[ ca ]\ndefault_ca = nds\n[ nds ]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ndefault_crl_days = 2\n",
        )
        .unwrap();
        let ca = self.path_str("ca.pem");
        let ca_key = self.path_str("ca-key.pem");
        for name in names {
            let cert = self.path_str(&format!("{name}-cert.pem"));
            openssl(
                &d,
                &[
                    "ca", "-config", "ca.cnf", "-cert", &ca, "-keyfile", &ca_key, "-revoke", &cert,
                ],
            );
        }
        openssl(
            &d,
            &[
                "ca", "-config", "ca.cnf", "-cert", &ca, "-keyfile", &ca_key, "-gencrl", "-out",
                "crl.pem",
            ],
        );
        d.join("crl.pem")
    }

    /// nginx directives for a TLS listener that requires a client certificate of the
    /// first CA (the `server/` files), for `server {}`.
    pub fn nginx_tls_listener(&self) -> String {
        format!(
            "ssl_certificate {}; ssl_certificate_key {}; ssl_client_certificate {}; \
             ssl_verify_client on;",
            self.path_str("server/server-cert.pem"),
            self.path_str("server/server-key.pem"),
            self.path_str("server/ca.pem"),
        )
    }

    /// nginx directives for a daemon reached over TLS with the `good/` client
    /// certificate, its certificate verified for "localhost" (its IP SAN alone would not
    /// pass nginx's name check).
    pub fn nginx_tls_upstream(&self) -> String {
        format!(
            "proxy_ssl_certificate {}; proxy_ssl_certificate_key {}; \
             proxy_ssl_trusted_certificate {}; proxy_ssl_verify on; proxy_ssl_name localhost;",
            self.path_str("good/cert.pem"),
            self.path_str("good/key.pem"),
            self.path_str("good/ca.pem"),
        )
    }

    /// The SHA-256 fingerprint of `<name>-cert.pem`, lowercase hex without colons.
    pub fn sha256(&self, name: &str) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.path(&format!("{name}-cert.pem")))
            .output()
            .expect("openssl x509");
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.trim().split('=').nth(1).expect("fingerprint");
        hex.replace(':', "").to_ascii_lowercase()
    }

    /// A daemon's TLS listener on `port` with the server certificate (`dockerd
    /// --tlsverify`, clients of the first CA).
    pub fn daemon_tls(&self, port: u16) -> crate::dockerd::DaemonTls {
        let server = |f: &str| self.path(&format!("server/{f}"));
        crate::dockerd::DaemonTls {
            port,
            ca: server("ca.pem"),
            cert: server("server-cert.pem"),
            key: server("server-key.pem"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn path_str(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
}
