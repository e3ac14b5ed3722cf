//! Test harness: the real nginx binary (with or without the module), the real dockerd
//! (`NDS_DOCKER_SOCK`), the real docker CLIs, and a few helpers around them.
//!
//! Environment (set by `scripts/test`):
//! - `NDS_DOCKER_SOCK`: the daemon's socket (default `/var/run/docker.sock`)
//! - `NDS_IMAGE`: a busybox image made with `docker import` (default `nds-busybox`)
//! - `NDS_NGINX`, `NDS_MODULE`: the nginx binary and module (default: `target/nginx/...`)

pub mod allowlist;
pub mod cases;
pub mod certs;
pub mod cli;
pub mod dockerd;
pub mod fake;
pub mod nginx;
pub mod podman;
pub mod raw;
pub mod synthetic;

use std::path::PathBuf;

pub use cli::{docker, Cli, Input, Out};
pub use nginx::{Nginx, NginxConf, Recipe};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

pub fn nginx_bin() -> PathBuf {
    env_path("NDS_NGINX", root().join("target/nginx/sbin/nginx"))
}

pub fn module_path() -> PathBuf {
    env_path(
        "NDS_MODULE",
        root().join("target/nginx/modules/ngx_http_docker_stream_module.so"),
    )
}

/// The socket of the daemon the tests compare with: the shared daemon, or the one a test
/// binary chose with [`use_docker_sock`].
pub fn docker_sock() -> PathBuf {
    DOCKER_SOCK.get().cloned().unwrap_or_else(shared_sock)
}

/// The daemon `scripts/test` runs or found (`NDS_DOCKER_SOCK`).
pub fn shared_sock() -> PathBuf {
    env_path("NDS_DOCKER_SOCK", PathBuf::from("/var/run/docker.sock"))
}

pub fn shared_host() -> String {
    format!("unix://{}", shared_sock().display())
}

static DOCKER_SOCK: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes `sock` (a private daemon's) the direct socket of this test binary: the cases'
/// setup and baselines go there. Once per process, before any case runs.
pub fn use_docker_sock(sock: PathBuf) {
    assert!(
        DOCKER_SOCK.set(sock).is_ok(),
        "the direct socket was chosen twice"
    );
}

/// `DOCKER_HOST` for the direct socket: the baseline every case is compared with.
pub fn direct_host() -> String {
    format!("unix://{}", docker_sock().display())
}

pub fn image() -> String {
    std::env::var("NDS_IMAGE").unwrap_or_else(|_| "nds-busybox".to_string())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A tar archive holding one regular file, `name` with `data`, ended as tar ends
/// (two zero blocks): for daemons that must read a whole body before they answer.
pub fn tar_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut head = [0u8; 512];
    let field = |head: &mut [u8; 512], at: usize, value: &[u8]| {
        head[at..at + value.len()].copy_from_slice(value);
    };
    assert!(name.len() < 100, "tar_one: name too long");
    field(&mut head, 0, name.as_bytes());
    field(&mut head, 100, b"0000644\0");
    field(&mut head, 108, b"0000000\0");
    field(&mut head, 116, b"0000000\0");
    field(&mut head, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut head, 136, b"00000000000\0");
    field(&mut head, 156, b"0");
    field(&mut head, 257, b"ustar\0");
    field(&mut head, 263, b"00");
    // The checksum is summed with its own field read as spaces.
    field(&mut head, 148, b"        ");
    let sum: u32 = head.iter().map(|&b| u32::from(b)).sum();
    field(&mut head, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = head.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// A unique-enough suffix for names and labels.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
