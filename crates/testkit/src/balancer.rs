//! A round-robin TCP load balancer on 127.0.0.1, as a site puts in front of its replicas: each
//! new connection goes to the next backend, or, when that one refuses (killed, restarting), to
//! the one after it. Connections already open stay with their backend until one side closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub struct RoundRobin {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RoundRobin {
    /// Listens on a free port of 127.0.0.1 and spreads connections over `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the balancer");
        let addr = listener.local_addr().expect("balancer address");
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    let start = next.fetch_add(1, Ordering::Relaxed);
                    for i in 0..backends.len() {
                        let to = backends[(start + i) % backends.len()];
                        let connected = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(to)).await;
                        if let Ok(Ok(mut server)) = connected {
                            let mut client = client;
                            let _ = server.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                    }
                    // Every backend refused: the client sees its connection closed.
                });
            }
        });
        RoundRobin { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
