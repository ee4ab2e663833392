//! Channel-stream framing as PROTOCOL.md states it: each frame is a 4-byte big-endian length
//! and a postcard [`Envelope`] `{epoch, msg}`. [`read_envelope`] reads one frame from any
//! stream; [`RawLink`] drives one `/paychan/channel/1` stream from a test (the greeting, a
//! reader and a writer task, frames of another epoch dropped).

use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use paychan_protocol::codec::DecodeError;
use paychan_protocol::wire::{write_frame, ChannelMsg, Envelope, Wire};
use paychan_protocol::Hash32;
use tokio::sync::mpsc;

use crate::{bounded, STEP};

/// Why [`read_envelope`] got no envelope.
#[derive(Debug, thiserror::Error)]
pub enum FrameReadError {
    /// The stream failed or ended.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix announces more than an envelope may hold.
    #[error("frame of {len} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
    },
    /// The frame's bytes are not an envelope.
    #[error("not an envelope: {0}")]
    Decode(#[from] DecodeError),
}

/// Reads one frame from `read` and decodes its envelope with the strict decoder. A length
/// prefix over `Envelope::BYTES_MAX` is refused before its body is read.
pub async fn read_envelope<R: AsyncRead + Unpin>(read: &mut R) -> Result<Envelope, FrameReadError> {
    let mut len = [0u8; 4];
    read.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > Envelope::BYTES_MAX {
        return Err(FrameReadError::TooLarge { len });
    }
    let mut buf = vec![0u8; len];
    read.read_exact(&mut buf).await?;
    Ok(Envelope::from_bytes(&buf)?)
}

/// The frames of `msgs`, all under `epoch`, back to back.
pub fn frames(epoch: u64, msgs: impl IntoIterator<Item = ChannelMsg>) -> Vec<u8> {
    let mut out = Vec::new();
    for msg in msgs {
        write_frame(&Envelope { epoch, msg }.to_bytes(), &mut out);
    }
    out
}

/// One channel stream driven by a test: messages to send go to a writer task, which frames
/// them under the link's epoch; a reader task passes on the messages of frames of that epoch
/// and drops the others. The tasks end when the stream does.
#[derive(Debug)]
pub struct RawLink {
    out: mpsc::UnboundedSender<ChannelMsg>,
    inbox: mpsc::UnboundedReceiver<ChannelMsg>,
}

impl RawLink {
    /// Takes a stream the test opened, as the dialer: picks a random epoch, greets first with
    /// `Hello { chain_id }`, and waits (under [`STEP`]) for the other side's greeting; panics
    /// on anything else.
    pub async fn dial<S>(stream: S, chain_id: Hash32) -> RawLink
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let epoch = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let (read, write) = stream.split();
        let mut link = RawLink::start(read, write, epoch);
        link.send(ChannelMsg::Hello { chain_id });
        match link.next("the node's greeting").await {
            ChannelMsg::Hello { chain_id: c } if c == chain_id => link,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// Takes a stream the other side opened: its first frame, `Hello { chain_id }` (within
    /// [`STEP`]), fixes the epoch; greets back.
    pub async fn accept<S>(stream: S, chain_id: Hash32) -> Result<RawLink, String>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, write) = stream.split();
        let env = tokio::time::timeout(STEP, read_envelope(&mut read))
            .await
            .map_err(|_| "no greeting".to_owned())?
            .map_err(|e| e.to_string())?;
        match env.msg {
            ChannelMsg::Hello { chain_id: c } if c == chain_id => {}
            other => return Err(format!("expected Hello, got {other:?}")),
        }
        let link = RawLink::start(read, write, env.epoch);
        link.send(ChannelMsg::Hello { chain_id });
        Ok(link)
    }

    fn start<S>(read: ReadHalf<S>, write: WriteHalf<S>, epoch: u64) -> RawLink
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (in_tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(link_reader(read, epoch, in_tx));
        tokio::spawn(link_writer(write, epoch, out_rx));
        RawLink { out, inbox }
    }

    /// Queues `msg` for the writer (dropped if the stream has ended).
    pub fn send(&self, msg: ChannelMsg) {
        let _ = self.out.send(msg);
    }

    /// The next message; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<ChannelMsg> {
        self.inbox.recv().await
    }

    /// The next message, under [`STEP`]; panics on a closed stream.
    pub async fn next(&mut self, what: &str) -> ChannelMsg {
        bounded(what, self.inbox.recv())
            .await
            .unwrap_or_else(|| panic!("stream closed waiting for {what}"))
    }
}

async fn link_reader<S: AsyncRead>(
    mut read: ReadHalf<S>,
    epoch: u64,
    inbox: mpsc::UnboundedSender<ChannelMsg>,
) {
    while let Ok(env) = read_envelope(&mut read).await {
        if env.epoch == epoch && inbox.send(env.msg).is_err() {
            return;
        }
    }
}

async fn link_writer<S: AsyncWrite>(
    mut write: WriteHalf<S>,
    epoch: u64,
    mut rx: mpsc::UnboundedReceiver<ChannelMsg>,
) {
    let mut buf = Vec::new();
    while let Some(msg) = rx.recv().await {
        write_frame(&Envelope { epoch, msg }.to_bytes(), &mut buf);
        while let Ok(msg) = rx.try_recv() {
            write_frame(&Envelope { epoch, msg }.to_bytes(), &mut buf);
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            return;
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::wire::ErrorCode;

    fn error(text: &str) -> ChannelMsg {
        ChannelMsg::Error {
            channel_id: None,
            code: ErrorCode::Other,
            text: text.into(),
        }
    }

    #[test]
    fn frames_read_back_in_order() {
        let bytes = frames(7, [error("a"), error("b")]);
        let mut read = futures::io::Cursor::new(bytes);
        let first = futures::executor::block_on(read_envelope(&mut read)).unwrap();
        let second = futures::executor::block_on(read_envelope(&mut read)).unwrap();
        assert_eq!(
            first,
            Envelope {
                epoch: 7,
                msg: error("a")
            }
        );
        assert_eq!(
            second,
            Envelope {
                epoch: 7,
                msg: error("b")
            }
        );
        assert!(matches!(
            futures::executor::block_on(read_envelope(&mut read)),
            Err(FrameReadError::Io(_))
        ));
    }

    #[test]
    fn an_oversized_prefix_is_refused_before_the_body() {
        let mut read = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert!(matches!(
            futures::executor::block_on(read_envelope(&mut read)),
            Err(FrameReadError::TooLarge { len }) if len == u32::MAX as usize
        ));
    }

    #[test]
    fn junk_is_not_an_envelope() {
        let mut bytes = Vec::new();
        write_frame(&[0xff, 0xff, 0xff], &mut bytes);
        let mut read = futures::io::Cursor::new(bytes);
        assert!(matches!(
            futures::executor::block_on(read_envelope(&mut read)),
            Err(FrameReadError::Decode(_))
        ));
    }
}
