//! A raw HTTP/1.x client over TCP or a unix socket, for exact response heads and for
//! driving a hijacked stream byte by byte.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    /// `addr` is `host:port` or a path to a unix socket.
    pub fn connect(addr: &str) -> Conn {
        let c = if addr.starts_with('/') {
            Conn::Unix(UnixStream::connect(addr).expect("connect unix"))
        } else {
            Conn::Tcp(TcpStream::connect(addr).expect("connect tcp"))
        };
        c.set_timeout(Duration::from_secs(20));
        c
    }

    pub fn set_timeout(&self, t: Duration) {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(Some(t)).unwrap(),
            Conn::Unix(s) => s.set_read_timeout(Some(t)).unwrap(),
        }
    }

    /// Closes with a reset (RST), as the kernel does for a process killed with unread
    /// input: no half-close a proxy could take for the end of stdin.
    pub fn reset(self) {
        if let Conn::Tcp(s) = &self {
            set_linger_zero(s);
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response head: status line and headers in order, plus bytes read past the head.
#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub rest: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (CRLF line ends, ending with an empty line) and reads the response head.
pub fn request(conn: &mut Conn, head: &str) -> Response {
    conn.write_all(head.as_bytes()).expect("send request");
    read_head(conn)
}

pub fn read_head(conn: &mut Conn) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).expect("read response head");
        assert!(
            n > 0,
            "connection closed before the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status_line,
        headers,
        rest: buf[end + 4..].to_vec(),
    }
}

/// Reads until EOF or `limit`; returns the bytes and whether EOF was seen.
pub fn read_to_eof(conn: &mut Conn, mut got: Vec<u8>, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 65536];
    conn.set_timeout(Duration::from_millis(50));
    while Instant::now() < deadline {
        match conn.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (got, false),
        }
    }
    (got, false)
}

/// Reads until `want` bytes are buffered (or EOF/limit).
pub fn read_at_least(conn: &mut Conn, mut got: Vec<u8>, want: usize, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 65536];
    conn.set_timeout(Duration::from_millis(50));
    while got.len() < want && Instant::now() < deadline {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
    }
    got
}

/// Splits a multiplexed stream into (stdout, stderr); panics on a malformed frame.
pub fn demux(mut data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while !data.is_empty() {
        assert!(data.len() >= 8, "truncated frame header");
        let size = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        assert!(data.len() >= 8 + size, "truncated frame");
        match data[0] {
            1 => out.extend_from_slice(&data[8..8 + size]),
            2 => err.extend_from_slice(&data[8..8 + size]),
            s => panic!("unknown stream {s}"),
        }
        data = &data[8 + size..];
    }
    (out, err)
}

/// `SO_LINGER` 0: closing the socket sends RST instead of FIN.
pub fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger struct of the size given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}
