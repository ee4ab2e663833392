//! A raw libp2p peer: request-response on `/paychan/ledger/1` with a codec that writes whatever
//! bytes it is given and reads the whole answer, so that a test can play a peer that breaks the
//! ledger protocol's framing (a bad length prefix, a truncated frame, junk). The peer speaks
//! only that protocol, outbound; the functions below drive its swarm under [`STEP`](crate::STEP).

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use paychan_protocol::wire::LEDGER_PROTOCOL;

use crate::bounded;

/// How much of an answer the raw codec reads.
pub const RAW_READ_BYTES_MAX: u64 = 1 << 20;

/// Request-response with a codec that writes whatever bytes it is given and reads the whole
/// answer (up to [`RAW_READ_BYTES_MAX`]).
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

async fn read_all<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(RAW_READ_BYTES_MAX).read_to_end(&mut buf).await?;
    Ok(buf)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_all(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_all(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, &req).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, &res).await
    }
}

/// A swarm that speaks only the raw ledger codec.
pub type RawSwarm = Swarm<request_response::Behaviour<RawCodec>>;

/// A raw peer with a fresh identity, TCP + noise + yamux, whose requests fail after
/// `request_timeout`. Call inside a tokio runtime.
pub fn raw_peer(request_timeout: Duration) -> RawSwarm {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(StreamProtocol::new(LEDGER_PROTOCOL), ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(request_timeout),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Dials `addr` from a raw peer and waits for the connection; panics if the dial fails.
pub async fn raw_connect(raw: &mut RawSwarm, addr: Multiaddr) {
    raw.dial(addr).expect("dial");
    bounded("raw peer connects", async {
        loop {
            match raw.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => return,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("raw dial failed: {error}"),
                _ => {}
            }
        }
    })
    .await
}

/// Sends `bytes` as one ledger request from a raw peer; drives the swarm until the request has
/// an outcome (the response bytes, or the failure) and the connection to `peer` has closed.
pub async fn raw_request_until_closed(
    raw: &mut RawSwarm,
    peer: PeerId,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let id = raw.behaviour_mut().send_request(&peer, bytes);
    let mut outcome = None;
    let mut closed = false;
    bounded("raw request answered and connection closed", async {
        while outcome.is_none() || !closed {
            match raw.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) if request_id == id => outcome = Some(Ok(response)),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id, error, ..
                }) if request_id == id => outcome = Some(Err(error.to_string())),
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } if peer_id == peer => closed = true,
                _ => {}
            }
        }
    })
    .await;
    outcome.expect("an outcome")
}

/// Tries to connect a raw peer to `addr` again and reports whether the node refused it: the
/// dial fails, or a connection that came up is closed within 3 s (a banned peer is refused once
/// its identity is known, or dropped right after).
pub async fn raw_redial_refused(raw: &mut RawSwarm, addr: Multiaddr, peer: PeerId) -> bool {
    if raw.dial(addr).is_err() {
        return true;
    }
    bounded("raw redial resolves", async {
        let mut established = false;
        loop {
            let next = if established {
                // Connected: refused means the node closes it soon after.
                match tokio::time::timeout(Duration::from_secs(3), raw.select_next_some()).await {
                    Ok(e) => e,
                    Err(_) => return false,
                }
            } else {
                raw.select_next_some().await
            };
            match next {
                SwarmEvent::OutgoingConnectionError { .. } => return true,
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => established = true,
                SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } if peer_id == peer => return true,
                _ => {}
            }
        }
    })
    .await
}
