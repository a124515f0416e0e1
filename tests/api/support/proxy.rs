//! A TCP proxy the test controls, between a server and PostgreSQL: database outages for one server without
//! touching the PostgreSQL every other test is using.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does with the bytes and connections passing through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards everything.
    Pass,
    /// Closes every connection and refuses new ones: the database restarting or its host gone.
    Cut,
    /// Keeps connections open and accepts new ones but forwards nothing: a network dropping packets, where
    /// nothing ever fails, it just never answers.
    Hold,
}

/// A running proxy; stops when dropped.
pub struct DatabaseProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    acceptor: JoinHandle<()>,
}

impl DatabaseProxy {
    /// A proxy on 127.0.0.1:0 forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(ProxyMode::Pass);
        let acceptor = tokio::spawn(accept(listener, target, mode.subscribe()));
        Self {
            addr,
            target,
            mode,
            acceptor,
        }
    }

    /// `url` (a PostgreSQL URL of the proxy's target) with its host and port replaced by the proxy's.
    pub fn route(&self, url: &str) -> String {
        let target = self.target.to_string();
        assert!(url.contains(&target), "{url} does not point at {target}");
        url.replacen(&target, &self.addr.to_string(), 1)
    }

    pub fn cut(&self) {
        self.mode.send_replace(ProxyMode::Cut);
    }

    pub fn hold(&self) {
        self.mode.send_replace(ProxyMode::Hold);
    }

    pub fn restore(&self) {
        self.mode.send_replace(ProxyMode::Pass);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.mode.send_replace(ProxyMode::Cut);
        self.acceptor.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<ProxyMode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        if *mode.borrow() == ProxyMode::Cut {
            drop(client);
            continue;
        }
        tokio::spawn(relay(client, target, mode.clone()));
    }
}

/// Relays one connection until either side closes or the proxy cuts it.
async fn relay(client: TcpStream, target: SocketAddr, mode: watch::Receiver<ProxyMode>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Whichever direction ends first ends the connection: dropping the halves closes both sockets.
    tokio::select! {
        () = pump(client_read, server_write, mode.clone()) => {}
        () = pump(server_read, client_write, mode) => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Cut => return,
            ProxyMode::Hold => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            ProxyMode::Pass => {}
        }
        tokio::select! {
            read = from.read(&mut buffer) => {
                let count = match read {
                    Ok(0) | Err(_) => return,
                    Ok(count) => count,
                };
                if to.write_all(&buffer[..count]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
