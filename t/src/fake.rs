//! A scripted fake daemon on a unix socket, for byte-exact cases dockerd cannot produce.
//! Each connection runs the script in its own thread; it reads the request head itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub struct FakeDaemon {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// The request head as the fake daemon received it.
#[derive(Debug, Clone)]
pub struct Head {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FakeDaemon {
    pub fn start<F>(script: F) -> FakeDaemon
    where
        F: Fn(Head, BufReader<UnixStream>) + Send + Sync + 'static,
    {
        Self::start_reading(script, true)
    }

    /// A daemon that reads only request heads, never their bodies.
    pub fn start_body_unread<F>(script: F) -> FakeDaemon
    where
        F: Fn(Head, BufReader<UnixStream>) + Send + Sync + 'static,
    {
        Self::start_reading(script, false)
    }

    fn start_reading<F>(script: F, read_body: bool) -> FakeDaemon
    where
        F: Fn(Head, BufReader<UnixStream>) + Send + Sync + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let script = Arc::new(script);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let script = script.clone();
                thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    let mut r = BufReader::new(conn);
                    if let Some(head) = read_head_only(&mut r, read_body) {
                        script(head, r);
                    }
                });
            }
        });
        FakeDaemon { dir, path }
    }

    /// Upstream for `proxy_pass http://...`.
    pub fn upstream(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    /// A TCP front on 127.0.0.1 for the same script (a daemon listening on TCP): relays
    /// each connection to the unix socket both ways, passing half-closes on. Returns the
    /// upstream for `proxy_pass http://...`.
    pub fn tcp_upstream(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let path = self.path.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(tcp) = conn else { break };
                let Ok(unix) = UnixStream::connect(&path) else {
                    continue;
                };
                let (tcp2, unix2) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
                thread::spawn(move || {
                    relay(&tcp, &unix, |s| s.shutdown(Shutdown::Write));
                });
                thread::spawn(move || {
                    relay(&unix2, &tcp2, |s| s.shutdown(Shutdown::Write));
                });
            }
        });
        format!("127.0.0.1:{port}")
    }
}

/// Copies `from` to `to` until EOF or an error, then half-closes `to`.
fn relay<R, W>(mut from: R, mut to: W, shut: impl Fn(&W) -> std::io::Result<()>)
where
    R: Read,
    W: Write,
{
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = shut(&to);
}

/// Reads a request head and, if it has a Content-Length, its body.
pub fn read_head(r: &mut BufReader<UnixStream>) -> Option<Head> {
    read_head_only(r, true)
}

fn read_head_only(r: &mut BufReader<UnixStream>, read_body: bool) -> Option<Head> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if line.is_empty() {
        return None;
    }
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let head = Head {
        request_line,
        headers,
    };
    if let Some(n) = head
        .header("content-length")
        .filter(|_| read_body)
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        r.read_exact(&mut body).ok()?;
    }
    Some(head)
}

pub fn write_all(r: &mut BufReader<UnixStream>, data: &[u8]) -> std::io::Result<()> {
    r.get_mut().write_all(data)
}

/// Waits (at most 10 s) until `n` bytes have arrived and wait unread, in the reader's buffer
/// or the socket's queue: a script that closes with the end of a body unread (as dockerd
/// leaves an archive's padding) must not close before nginx has written that end, or nginx
/// meets a send error instead of the reset after the response under test.
pub fn wait_unread(r: &BufReader<UnixStream>, n: usize) -> bool {
    use std::os::fd::AsRawFd;
    let fd = r.get_ref().as_raw_fd();
    for _ in 0..1000 {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer, which outlives the call.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } != 0 {
            return false;
        }
        if r.buffer().len() + queued.max(0) as usize >= n {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}
