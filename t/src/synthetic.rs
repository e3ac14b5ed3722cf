//! The benchmark's synthetic daemon, beside the tests' fake daemon (`fake.rs`): it
//! streams from memory. `POST /down/N` sends N bytes after the head, `POST /up/N` reads
//! N bytes then answers `ok`, `POST /echo` echoes. It answers `101` when the request
//! carries `Upgrade` (as dockerd does), else a raw-stream `200`.

use std::path::PathBuf;

/// dockerd's content type of a hijacked stream.
pub const RAW: &str = "application/vnd.docker.raw-stream";
/// What `/down/N` sends and the benchmark uploads, over and over.
pub static PAYLOAD: [u8; 1 << 18] = [b'x'; 1 << 18];

async fn serve(mut s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    let answer = if text.contains("\r\nupgrade:") {
        format!("HTTP/1.1 101 UPGRADED\r\nContent-Type: {RAW}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Type: {RAW}\r\n\r\n")
    };
    if s.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let n = |p: &str| {
        p.rsplit('/')
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if path.starts_with("/down/") {
        let mut left = n(&path);
        while left > 0 {
            let k = left.min(PAYLOAD.len() as u64) as usize;
            if s.write_all(&PAYLOAD[..k]).await.is_err() {
                return;
            }
            left -= k as u64;
        }
    } else if path.starts_with("/up/") {
        let mut left = n(&path);
        let mut buf = vec![0u8; 1 << 18];
        while left > 0 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => left = left.saturating_sub(k as u64),
            }
        }
        let _ = s.write_all(b"ok").await;
    } else {
        let mut buf = vec![0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(k) => {
                    if s.write_all(&buf[..k]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    let _ = s.shutdown().await;
}

pub async fn daemon_unix(path: PathBuf) {
    let l = tokio::net::UnixListener::bind(path).unwrap();
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(serve(s));
    }
}

pub async fn daemon_tcp(port: u16) {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        s.set_nodelay(true).ok();
        tokio::spawn(serve(s));
    }
}
