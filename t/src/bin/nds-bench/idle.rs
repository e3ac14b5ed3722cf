//! Idle tunnels: how much memory an nginx worker spends per open, silent tunnel.

use std::time::Duration;

use nds_tests::Nginx;

/// Tunnels one nginx worker can hold here: two descriptors each, within the hard limit.
pub fn idle_capacity(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall on a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    wanted.min((lim.rlim_max as usize).saturating_sub(500) / 2)
}

/// Opens `n` idle echo tunnels; returns the worker's RSS growth and how many still echo.
pub async fn idle_tunnels(nginx: &Nginx, n: usize) -> (u64, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let before = nginx.worker_rss_kib();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", nginx.port))
            .await
            .unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = nginx.worker_rss_kib();
    let mut ok = 0;
    for s in conns.iter_mut() {
        let mut b = [0u8; 1];
        if s.write_all(b"z").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut b))
                .await
                .is_ok()
            && b[0] == b'z'
        {
            ok += 1;
        }
    }
    (after.saturating_sub(before), ok)
}
