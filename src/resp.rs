//! A small Redis client over the wire protocol (RESP2): commands are pipelined (written in a
//! batch, their replies read in order) and values are bytes, as `DUMP` and `RESTORE` need.
//! Knows nothing of the stack.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One connection attempt's budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as an error message when it is one.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection.
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
}

impl Connection {
    pub async fn connect(host: &str, port: u16) -> std::io::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Ok(Connection {
            reader: BufReader::with_capacity(1 << 16, r),
            writer: BufWriter::with_capacity(1 << 16, w),
        })
    }

    /// Queues a command (sent on [`Connection::flush`] or when the buffer fills).
    pub async fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        self.writer
            .write_all(format!("*{}\r\n", args.len()).as_bytes())
            .await?;
        for arg in args {
            self.writer
                .write_all(format!("${}\r\n", arg.len()).as_bytes())
                .await?;
            self.writer.write_all(arg).await?;
            self.writer.write_all(b"\r\n").await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush().await
    }

    /// Sends one command and reads its reply.
    pub async fn command(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.send(args).await?;
        self.flush().await?;
        self.read().await
    }

    /// Reads the next reply.
    pub async fn read(&mut self) -> std::io::Result<Reply> {
        let line = self.line().await?;
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Ok(Reply::Status(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Int(number(rest)?)),
            "$" => {
                let len = number(rest)?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut buf).await?;
                buf.truncate(len as usize);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let len = number(rest)?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(Box::pin(self.read()).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(invalid(format!("unexpected reply {line:?}"))),
        }
    }

    async fn line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.is_empty() {
            return Err(invalid("empty reply line".into()));
        }
        String::from_utf8(buf).map_err(|_| invalid("reply line is not UTF-8".into()))
    }
}

fn number(s: &str) -> std::io::Result<i64> {
    s.parse()
        .map_err(|_| invalid(format!("{s:?} is not a number")))
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
