//! The `tls://` listener: the TCP framing and rules (`tcp::serve`) inside TLS 1.3, each
//! client authenticated by its certificate (`crate::tls::peer`) and held to the ids it
//! names.
//!
//! A handshake that fails is counted (`tls_handshake`) and closed: there is no channel yet
//! to say more on. A certificate that is refused after it (missing, untrusted, expired,
//! not yet valid, invalid) is counted by that reason and answered with a NACK about the
//! connection naming it, then closed. A connection past the limits is closed at once,
//! before any handshake work.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::tls::reload::Reloading;
use crate::tls::{peer, ServerTls};

use super::rejects::reject;
use super::reply::ReplyEncoder;
use super::table::{Source, Transport};
use super::tcp::{accept_loop, connection_nack, serve, FIRST_FRAME_TIMEOUT, WRITE_TIMEOUT};
use super::Ingest;

/// After a refusal, how long the client's own close is waited for: closing with its
/// bytes unread would reset the connection and could lose the NACK on its way.
const LINGER: Duration = Duration::from_secs(1);

pub(super) async fn run(listener: TcpListener, ingest: Arc<Ingest>, tls: Arc<Reloading<ServerTls>>) {
    accept_loop(
        listener,
        |_| {},
        move |stream, from| {
            let (ingest, server) = (Arc::clone(&ingest), tls.current());
            async move { accept(stream, Source { addr: from, transport: Transport::Tls }, &ingest, &server).await }
        },
    )
    .await
}

async fn accept(stream: TcpStream, source: Source, ingest: &Ingest, server: &ServerTls) {
    let handshake = TlsAcceptor::from(Arc::clone(&server.config)).accept(stream);
    let mut stream = match timeout(FIRST_FRAME_TIMEOUT.min(ingest.tcp_idle), handshake).await {
        Ok(Ok(s)) => s,
        _ => {
            reject("tls_handshake");
            return;
        }
    };
    let verdict = peer::verdict(server.verifier.as_ref(), stream.get_ref().1.peer_certificates());
    match verdict {
        Ok(ids) => serve(stream, source, ingest, Some(&ids)).await,
        Err(reason) => {
            reject(reason.as_str());
            ingest.stats.frames_rejected.fetch_add(1, Ordering::Relaxed);
            let mut encoder = ReplyEncoder::new(&ingest.monitor_id, ingest.key.clone(), ingest.max_interval_ms);
            let nack = connection_nack(&mut encoder, reason);
            let _ = timeout(WRITE_TIMEOUT, async {
                stream.write_all(&nack).await?;
                stream.shutdown().await
            })
            .await;
            let mut sink = [0u8; 512];
            let _ = timeout(LINGER, async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} }).await;
        }
    }
}
