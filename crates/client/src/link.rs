//! One `/paychan/channel/1` stream per peer, shared by every channel with that peer.
//!
//! The dialer picks a random epoch and greets with `Hello`; the acceptor learns the epoch from
//! that first frame and greets back. Every frame carries the epoch; a frame of another epoch is
//! dropped, so frames of an old connection are never taken for the current one. A reader task
//! decodes frames (size-capped, strict) and hands them to the manager; a writer task batches
//! outgoing messages into as few writes as the queue allows.

use futures::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use paychan_net::{PeerId, Stream};
use paychan_protocol::limits::FRAME_BYTES_MAX;
use paychan_protocol::wire::{error_text, write_frame, ChannelMsg, Envelope, ErrorCode};
use paychan_protocol::{Hash32, Wire};
use tokio::sync::mpsc;
use tracing::debug;

use crate::manager::Input;

/// Messages queued to one peer's writer. Bounded: a slow peer slows the payer down.
const LINK_QUEUE_MAX: usize = 1024;
/// Messages the writer packs into one write.
const WRITE_BATCH_MAX: usize = 256;

/// The manager's side of a live stream.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// Epoch of the stream.
    pub epoch: u64,
    /// Who opened it; when two streams race, the one opened by the smaller peer id wins.
    pub dialer: PeerId,
    /// Outgoing messages.
    pub tx: mpsc::Sender<ChannelMsg>,
}

/// Starts a stream this side opened. Returns the link at once; the peer's greeting arrives as
/// an ordinary inbound `Hello`.
pub(crate) fn start_dialed(
    me: PeerId,
    peer: PeerId,
    stream: Stream,
    chain_id: Hash32,
    inbox: mpsc::Sender<Input>,
) -> Link {
    let epoch = random_epoch();
    let (read, write) = stream.split();
    let (tx, rx) = mpsc::channel(LINK_QUEUE_MAX);
    tokio::spawn(writer(write, rx, epoch, Some(chain_id)));
    tokio::spawn(reader(read, peer, epoch, inbox, tx.clone()));
    Link {
        epoch,
        dialer: me,
        tx,
    }
}

/// Starts a stream the peer opened: reads its greeting to learn the epoch, then registers the
/// link with the manager.
pub(crate) fn start_accepted(peer: PeerId, stream: Stream, chain_id: Hash32, inbox: mpsc::Sender<Input>) {
    tokio::spawn(async move {
        let (mut read, write) = stream.split();
        let mut buf = Vec::new();
        let first = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            read_envelope(&mut read, &mut buf),
        )
        .await;
        let epoch = match first {
            Ok(Ok(Envelope {
                epoch,
                msg: ChannelMsg::Hello { chain_id: theirs },
            })) if theirs == chain_id => epoch,
            other => {
                debug!(%peer, ?other, "channel stream without a valid greeting; dropping it");
                return;
            }
        };
        let (tx, rx) = mpsc::channel(LINK_QUEUE_MAX);
        tokio::spawn(writer(write, rx, epoch, Some(chain_id)));
        let link = Link {
            epoch,
            dialer: peer,
            tx: tx.clone(),
        };
        if inbox.send(Input::LinkUp { peer, link }).await.is_err() {
            return;
        }
        reader(read, peer, epoch, inbox, tx).await;
    });
}

fn random_epoch() -> u64 {
    rand_core::RngCore::next_u64(&mut rand_core::OsRng)
}

/// Why reading a frame failed.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    TooLarge(usize),
    Decode(paychan_protocol::DecodeError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "i/o: {e}"),
            ReadError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds {FRAME_BYTES_MAX}"),
            ReadError::Decode(e) => write!(f, "undecodable frame: {e}"),
        }
    }
}

async fn read_envelope(read: &mut ReadHalf<Stream>, buf: &mut Vec<u8>) -> Result<Envelope, ReadError> {
    let mut len = [0u8; 4];
    read.read_exact(&mut len).await.map_err(ReadError::Io)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(ReadError::TooLarge(len));
    }
    buf.resize(len, 0);
    read.read_exact(buf).await.map_err(ReadError::Io)?;
    Envelope::from_bytes(buf).map_err(ReadError::Decode)
}

async fn reader(
    mut read: ReadHalf<Stream>,
    peer: PeerId,
    epoch: u64,
    inbox: mpsc::Sender<Input>,
    reply: mpsc::Sender<ChannelMsg>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        match read_envelope(&mut read, &mut buf).await {
            Ok(env) if env.epoch != epoch => {
                debug!(%peer, got = env.epoch, epoch, "frame of another connection dropped");
            }
            Ok(env) => {
                if inbox
                    .send(Input::Inbound {
                        peer,
                        epoch,
                        msg: env.msg,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(ReadError::Io(e)) => {
                debug!(%peer, %e, "channel stream closed");
                break;
            }
            Err(e) => {
                // Bytes no honest peer sends: say why, then drop the stream.
                let text = e.to_string();
                let _ = reply
                    .send(ChannelMsg::Error {
                        channel_id: None,
                        code: ErrorCode::Malformed,
                        text: error_text(text),
                    })
                    .await;
                break;
            }
        }
    }
    let _ = inbox.send(Input::LinkDown { peer, epoch }).await;
}

async fn writer(
    mut write: WriteHalf<Stream>,
    mut rx: mpsc::Receiver<ChannelMsg>,
    epoch: u64,
    hello: Option<Hash32>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    if let Some(chain_id) = hello {
        write_frame(
            &Envelope {
                epoch,
                msg: ChannelMsg::Hello { chain_id },
            }
            .to_bytes(),
            &mut buf,
        );
    }
    loop {
        if buf.is_empty() {
            match rx.recv().await {
                Some(msg) => write_frame(&Envelope { epoch, msg }.to_bytes(), &mut buf),
                None => break,
            }
        }
        // Pack whatever else is queued into the same write.
        for _ in 0..WRITE_BATCH_MAX {
            match rx.try_recv() {
                Ok(msg) => write_frame(&Envelope { epoch, msg }.to_bytes(), &mut buf),
                Err(_) => break,
            }
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            break;
        }
        buf.clear();
    }
    let _ = write.close().await;
}
