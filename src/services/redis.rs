//! Redis: emptying it for `vibedev reset-db --all` (`FLUSHALL` over the wire protocol, no client
//! library needed for one command).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `FLUSHALL` and expects `+OK`.
pub async fn flush_all(host: &str, port: u16) -> Result<(), String> {
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"*1\r\n$8\r\nFLUSHALL\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply.starts_with("+OK") {
            Ok(())
        } else {
            Err(format!("FLUSHALL answered {:?}", reply.trim_end()))
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "no reply to FLUSHALL within 10 s".to_string())?
}
