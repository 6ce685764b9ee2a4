//! A TCP proxy on 127.0.0.1 that can black-hole its connections: while holed, it keeps
//! every connection open (and accepts new ones) and passes nothing either way (the bytes
//! are dropped, never delivered late), as a half-open connection does after the peer's
//! address moved or a NAT dropped the flow.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxy; stopped when dropped.
pub struct Blackhole {
    /// Where clients connect.
    pub addr: SocketAddr,
    holed: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Lost, as packets into a black hole are: never delivered late.
        if *rx.borrow_and_update() {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Blackhole {
    /// Forwards `127.0.0.1:<free port>` to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Blackhole> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                conns.push(tokio::spawn(pump(cr, sw, rx.clone())));
                conns.push(tokio::spawn(pump(sr, cw, rx.clone())));
                conns.retain(|c: &JoinHandle<()>| !c.is_finished());
            }
        });
        Ok(Blackhole {
            addr,
            holed: Arc::new(tx),
            task,
        })
    }

    /// Turns the hole on (`true`) or off.
    pub fn hole(&self, on: bool) {
        self.holed.send_replace(on);
    }
}
