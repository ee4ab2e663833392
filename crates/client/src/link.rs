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
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// Messages queued to one peer's writer. Bounded: a slow peer slows the payer down.
const LINK_QUEUE_MAX: usize = 1024;
/// Messages the writer packs into one write.
const WRITE_BATCH_MAX: usize = 256;
/// Bytes read per read call while a frame body arrives: the buffer grows with the bytes that
/// actually arrived, never with the length a peer announces.
const READ_CHUNK_BYTES: usize = 8 * 1024;
/// Capacity a reader keeps between frames; a larger buffer (after a large frame) is given back.
const READ_BUF_KEEP_BYTES: usize = 16 * 1024;
/// Time a frame has to arrive completely once its first byte has: a peer that sends part of a
/// frame and stalls has its stream closed. (An idle stream between frames is not limited.)
pub(crate) const FRAME_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Channel streams one peer may hold open towards us (greeting or live). The manager uses one;
/// the others allow a reconnect to race an old stream. Further streams are closed at once.
pub(crate) const CHANNEL_STREAMS_PER_PEER_MAX: usize = 4;
/// Time an accepted stream has to deliver its greeting.
const GREETING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const _: () = assert!(READ_CHUNK_BYTES <= READ_BUF_KEEP_BYTES);
const _: () = assert!(READ_BUF_KEEP_BYTES < FRAME_BYTES_MAX);

/// What a link tells its owner. The link knows nothing of the manager: it sends these on any
/// channel whose items can be made from them (the manager's inbox).
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// A stream is greeted and live.
    Up { peer: PeerId, link: Link },
    /// The stream of `epoch` ended.
    Down { peer: PeerId, epoch: u64 },
    /// A frame arrived on the stream of `epoch`.
    Inbound {
        peer: PeerId,
        epoch: u64,
        msg: ChannelMsg,
    },
}

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
pub(crate) fn start_dialed<I: From<LinkEvent> + Send + 'static>(
    me: PeerId,
    peer: PeerId,
    stream: Stream,
    chain_id: Hash32,
    inbox: mpsc::Sender<I>,
) -> Link {
    let epoch = random_epoch();
    let (read, write) = stream.split();
    let (tx, rx) = mpsc::channel(LINK_QUEUE_MAX);
    let (done, writer_gone) = oneshot::channel();
    tokio::spawn(writer(write, rx, epoch, Some(chain_id), done));
    tokio::spawn(reader(read, peer, epoch, inbox, tx.downgrade(), writer_gone));
    Link {
        epoch,
        dialer: me,
        tx,
    }
}

/// Starts a stream the peer opened: reads its greeting to learn the epoch, then registers the
/// link with the manager. `slot` is held until the stream is closed.
pub(crate) fn start_accepted<I: From<LinkEvent> + Send + 'static>(
    peer: PeerId,
    stream: Stream,
    chain_id: Hash32,
    inbox: mpsc::Sender<I>,
    slot: StreamSlot,
) {
    tokio::spawn(async move {
        let _slot = slot;
        let (mut read, write) = stream.split();
        let mut buf = Vec::new();
        let first = tokio::time::timeout(GREETING_TIMEOUT, read_envelope(&mut read, &mut buf)).await;
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
        let (done, writer_gone) = oneshot::channel();
        tokio::spawn(writer(write, rx, epoch, Some(chain_id), done));
        let reply = tx.downgrade();
        let link = Link {
            epoch,
            dialer: peer,
            tx,
        };
        if inbox.send(LinkEvent::Up { peer, link }.into()).await.is_err() {
            return;
        }
        reader(read, peer, epoch, inbox, reply, writer_gone).await;
    });
}

/// Counts the accepted channel streams each peer holds; a slot is given back when its guard
/// drops (the stream's task ended).
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSlots {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<PeerId, usize>>>,
}

/// One peer's slot in [`StreamSlots`].
#[derive(Debug)]
pub(crate) struct StreamSlot {
    slots: StreamSlots,
    peer: PeerId,
}

impl StreamSlots {
    /// A slot for one more stream of `peer`, or `None` if it holds the most it may.
    pub(crate) fn acquire(&self, peer: PeerId) -> Option<StreamSlot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(peer).or_insert(0);
        if *n >= CHANNEL_STREAMS_PER_PEER_MAX {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            peer,
        })
    }

    /// Peers holding at least one slot.
    #[cfg(test)]
    fn peers(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

fn random_epoch() -> u64 {
    rand_core::RngCore::next_u64(&mut rand_core::OsRng)
}

/// Why reading a frame failed.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    TooLarge(usize),
    Stalled,
    Decode(paychan_protocol::DecodeError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "i/o: {e}"),
            ReadError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds {FRAME_BYTES_MAX}"),
            ReadError::Stalled => write!(f, "frame not complete within {} s", FRAME_STALL_TIMEOUT.as_secs()),
            ReadError::Decode(e) => write!(f, "undecodable frame: {e}"),
        }
    }
}

/// Reads one frame. Waits as long as it takes for the first byte (a stream may idle between
/// frames); from then on the whole frame must arrive within [`FRAME_STALL_TIMEOUT`]. The
/// buffer grows in [`READ_CHUNK_BYTES`] steps as bytes arrive and is cut back to
/// [`READ_BUF_KEEP_BYTES`] afterwards.
async fn read_envelope<R: futures::AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Envelope, ReadError> {
    buf.clear();
    let mut prefix = [0u8; 4];
    read.read_exact(&mut prefix[..1]).await.map_err(ReadError::Io)?;
    let got = match tokio::time::timeout(FRAME_STALL_TIMEOUT, read_rest(read, prefix, buf)).await {
        Ok(got) => got,
        Err(_) => Err(ReadError::Stalled),
    };
    if buf.capacity() > READ_BUF_KEEP_BYTES {
        buf.clear();
        buf.shrink_to(READ_BUF_KEEP_BYTES);
    }
    got
}

/// The rest of a frame whose first prefix byte is in `prefix[0]`.
async fn read_rest<R: futures::AsyncRead + Unpin>(
    read: &mut R,
    mut prefix: [u8; 4],
    buf: &mut Vec<u8>,
) -> Result<Envelope, ReadError> {
    read.read_exact(&mut prefix[1..]).await.map_err(ReadError::Io)?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(ReadError::TooLarge(len));
    }
    while buf.len() < len {
        let start = buf.len();
        buf.resize(start + (len - start).min(READ_CHUNK_BYTES), 0);
        let n = read.read(&mut buf[start..]).await.map_err(ReadError::Io)?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Envelope::from_bytes(buf).map_err(ReadError::Decode)
}

/// Reads frames until the stream fails or ends, or the writer ends (the manager dropped this
/// link: it was replaced, refused or closed), so a stream the manager does not use is closed.
/// `reply` is weak: the link's writer lives only as long as the manager holds the link.
async fn reader<I: From<LinkEvent> + Send + 'static>(
    mut read: ReadHalf<Stream>,
    peer: PeerId,
    epoch: u64,
    inbox: mpsc::Sender<I>,
    reply: mpsc::WeakSender<ChannelMsg>,
    mut writer_gone: oneshot::Receiver<()>,
) {
    let mut buf = Vec::new();
    loop {
        let got = tokio::select! {
            got = read_envelope(&mut read, &mut buf) => got,
            _ = &mut writer_gone => {
                debug!(%peer, "channel stream no longer used; closing it");
                break;
            }
        };
        match got {
            Ok(env) if env.epoch != epoch => {
                debug!(%peer, got = env.epoch, epoch, "frame of another connection dropped");
            }
            Ok(env) => {
                if inbox
                    .send(
                        LinkEvent::Inbound {
                            peer,
                            epoch,
                            msg: env.msg,
                        }
                        .into(),
                    )
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
                debug!(%peer, %text, "channel stream refused");
                if let Some(reply) = reply.upgrade() {
                    let _ = reply
                        .send(ChannelMsg::Error {
                            channel_id: None,
                            code: ErrorCode::Malformed,
                            text: error_text(text),
                        })
                        .await;
                }
                break;
            }
        }
    }
    let _ = inbox.send(LinkEvent::Down { peer, epoch }.into()).await;
}

/// Writes queued messages until every sender is gone (the manager dropped the link) or a write
/// fails; dropping `_done` then tells the reader to stop.
async fn writer(
    mut write: WriteHalf<Stream>,
    mut rx: mpsc::Receiver<ChannelMsg>,
    epoch: u64,
    hello: Option<Hash32>,
    _done: oneshot::Sender<()>,
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// Yields `bytes`, then neither data nor EOF: a peer that stalls with the stream open.
    struct Stalling {
        bytes: Vec<u8>,
        at: usize,
    }

    impl futures::AsyncRead for Stalling {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            if self.at == self.bytes.len() {
                return Poll::Pending;
            }
            let n = out.len().min(self.bytes.len() - self.at);
            let at = self.at;
            out[..n].copy_from_slice(&self.bytes[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    fn announcing(len: usize, body: &[u8]) -> Stalling {
        let mut bytes = (len as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        Stalling { bytes, at: 0 }
    }

    #[tokio::test(start_paused = true)]
    async fn an_announced_frame_allocates_only_what_arrived_and_a_stall_ends_it() {
        // A peer announces the largest frame and sends 100 bytes of it, then nothing.
        let mut read = announcing(FRAME_BYTES_MAX, &[7u8; 100]);
        let mut buf = Vec::new();
        let got = tokio::time::timeout(FRAME_STALL_TIMEOUT * 2, read_envelope(&mut read, &mut buf)).await;
        assert!(
            matches!(got, Ok(Err(ReadError::Stalled))),
            "a stalled partial frame ends the read: {got:?}"
        );
        assert!(
            buf.capacity() <= 2 * READ_CHUNK_BYTES,
            "buffer holds {} bytes for 100 received",
            buf.capacity()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_prefix_with_no_body_holds_no_buffer() {
        let mut read = announcing(FRAME_BYTES_MAX, &[]);
        let mut buf = Vec::new();
        let got = tokio::time::timeout(FRAME_STALL_TIMEOUT * 2, read_envelope(&mut read, &mut buf)).await;
        assert!(matches!(got, Ok(Err(ReadError::Stalled))), "{got:?}");
        assert!(buf.capacity() <= READ_CHUNK_BYTES, "{}", buf.capacity());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_between_frames_is_not_a_stall() {
        // No byte of a frame yet: an idle stream may wait for as long as it likes.
        let mut read = Stalling { bytes: vec![], at: 0 };
        let mut buf = Vec::new();
        let got = tokio::time::timeout(FRAME_STALL_TIMEOUT * 4, read_envelope(&mut read, &mut buf)).await;
        assert!(got.is_err(), "still waiting: {got:?}");
    }

    #[tokio::test]
    async fn whole_frames_still_decode_and_a_large_buffer_is_given_back() {
        let env = Envelope {
            epoch: 9,
            msg: ChannelMsg::Hello {
                chain_id: Hash32([3; 32]),
            },
        };
        let mut bytes = Vec::new();
        write_frame(&env.to_bytes(), &mut bytes);
        let mut read = futures::io::Cursor::new(bytes);
        let mut buf = Vec::with_capacity(FRAME_BYTES_MAX);
        let got = read_envelope(&mut read, &mut buf).await.unwrap();
        assert_eq!(got, env);
        assert!(buf.capacity() <= READ_BUF_KEEP_BYTES, "{}", buf.capacity());
    }

    #[test]
    fn stream_slots_admit_a_few_streams_per_peer() {
        let slots = StreamSlots::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let held: Vec<_> = (0..CHANNEL_STREAMS_PER_PEER_MAX)
            .map(|_| slots.acquire(a).expect("within the limit"))
            .collect();
        assert!(slots.acquire(a).is_none(), "one stream too many is refused");
        assert!(slots.acquire(b).is_some(), "another peer is not affected");
        drop(held);
        assert!(slots.acquire(a).is_some(), "a closed stream frees its slot");
        assert_eq!(slots.peers(), 0, "no entry is kept for a peer without streams");
    }
}
