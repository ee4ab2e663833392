//! The `/paychan/ledger/1` request-response codec: one frame per direction, a 4-byte big-endian
//! length followed by that many bytes of one postcard-encoded message.
//!
//! Reading checks the announced length against the type's `Wire::BYTES_MAX` *before* reading
//! the body, then decodes with `Wire::from_bytes` (size-capped, strict, canonical, structural
//! limits). An inbound request that breaks any of this is not an I/O error: it is delivered to
//! the event loop as `Err(FrameViolation)`, because request-response reports codec errors on
//! inbound streams to nobody, and the loop must know *which peer* sent it to refuse and
//! disconnect it.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use paychan_protocol::codec::{encode_into, DecodeError};
use paychan_protocol::wire::{LedgerRequest, LedgerResponse};
use paychan_protocol::Wire;

use crate::limits::FRAME_PREFIX_BYTES;

/// Bytes reserved up front when reading a body: a peer's length prefix alone never makes us
/// allocate more than this; the buffer grows only as bytes actually arrive.
const READ_RESERVE_BYTES_MAX: usize = 64 * 1024;

/// Why an inbound frame was refused. Every variant is a protocol violation by the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameViolation {
    /// The length prefix announced more than the type's limit; the body was not read.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit for the type.
        max: usize,
    },
    /// The stream ended (cleanly) before the announced length.
    #[error("frame truncated: {got} of {len} bytes")]
    Truncated {
        /// Announced length.
        len: usize,
        /// Bytes received.
        got: usize,
    },
    /// The body did not decode strictly, or broke a structural limit.
    #[error("malformed frame: {0}")]
    Malformed(DecodeError),
}

/// An inbound request as the codec delivers it: decoded, or the reason it was refused.
pub type InboundRequest = Result<LedgerRequest, FrameViolation>;

/// The ledger protocol codec. Stateless; cloned per connection by request-response.
#[derive(Debug, Clone, Copy, Default)]
pub struct LedgerCodec;

/// Reads one frame of `W`. `Ok(Err(_))` is a protocol violation by the peer; `Err(_)` is an I/O
/// failure (reset, timeout, stream closed before a complete length prefix).
pub async fn read_frame<W: Wire, T: AsyncRead + Unpin + ?Sized>(
    io: &mut T,
) -> io::Result<Result<W, FrameViolation>> {
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > W::BYTES_MAX {
        return Ok(Err(FrameViolation::TooLarge {
            len,
            max: W::BYTES_MAX,
        }));
    }
    let mut body = Vec::with_capacity(len.min(READ_RESERVE_BYTES_MAX));
    (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Ok(Err(FrameViolation::Truncated { len, got: body.len() }));
    }
    Ok(W::from_bytes(&body).map_err(FrameViolation::Malformed))
}

/// Encodes `value` as one frame (prefix and body in one buffer, so one write).
pub fn encode_frame<W: Wire>(value: &W) -> Vec<u8> {
    let mut buf = vec![0u8; FRAME_PREFIX_BYTES];
    encode_into(value, &mut buf);
    let len = buf.len() - FRAME_PREFIX_BYTES;
    let len = u32::try_from(len).expect("protocol messages are far below 4 GiB");
    buf[..FRAME_PREFIX_BYTES].copy_from_slice(&len.to_be_bytes());
    buf
}

async fn write_all_flush<T: AsyncWrite + Unpin + ?Sized>(io: &mut T, frame: &[u8]) -> io::Result<()> {
    io.write_all(frame).await?;
    io.flush().await
}

impl request_response::Codec for LedgerCodec {
    type Protocol = StreamProtocol;
    type Request = InboundRequest;
    type Response = LedgerResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<InboundRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame::<LedgerRequest, T>(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<LedgerResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        // A bad response surfaces as `OutboundFailure::Io` carrying the violation, which the
        // event loop recognises (see `violation_of`) and treats as misbehaviour.
        read_frame::<LedgerResponse, T>(io)
            .await?
            .map_err(|v| io::Error::new(io::ErrorKind::InvalidData, v))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: InboundRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // Only the handle creates outbound requests, always `Ok` and size-checked.
        let req = req.map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a request"))?;
        let frame = encode_frame(&req);
        if frame.len() - FRAME_PREFIX_BYTES > LedgerRequest::BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "request exceeds its limit",
            ));
        }
        write_all_flush(io, &frame).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: LedgerResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut frame = encode_frame(&res);
        if frame.len() - FRAME_PREFIX_BYTES > LedgerResponse::BYTES_MAX {
            // A response over the limit would be refused by every honest reader; answer with an
            // error instead so that the peer is not left waiting. This is a bug in the node.
            tracing::error!(
                len = frame.len(),
                "ledger response exceeds its limit; sending an error"
            );
            frame = encode_frame(&LedgerResponse::Error {
                text: "response too large".into(),
            });
        }
        write_all_flush(io, &frame).await
    }
}

/// The violation inside an I/O error produced by `LedgerCodec`'s `read_response`, if any.
pub fn violation_of(err: &io::Error) -> Option<&FrameViolation> {
    err.get_ref()?.downcast_ref::<FrameViolation>()
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use paychan_protocol::wire::LedgerRequest;

    use super::*;

    #[test]
    fn request_round_trip() {
        let req = LedgerRequest::GetBlocks { from: 7, limit: 3 };
        let frame = encode_frame(&req);
        assert_eq!(&frame[..4], &(frame.len() as u32 - 4).to_be_bytes());
        let mut io = Cursor::new(frame.clone());
        let got = block_on(read_frame::<LedgerRequest, _>(&mut io)).unwrap();
        assert_eq!(got, Ok(req));
        assert_eq!(io.position() as usize, frame.len());
    }

    #[test]
    fn oversized_prefix_is_refused_without_reading_the_body() {
        let mut bytes = (u32::MAX).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xAB; 100]);
        let mut io = Cursor::new(bytes);
        let got = block_on(read_frame::<LedgerRequest, _>(&mut io)).unwrap();
        assert_eq!(
            got,
            Err(FrameViolation::TooLarge {
                len: u32::MAX as usize,
                max: LedgerRequest::BYTES_MAX
            })
        );
        assert_eq!(io.position(), 4, "only the prefix was read");
    }

    #[test]
    fn just_over_the_limit_is_refused() {
        let len = LedgerRequest::BYTES_MAX + 1;
        let mut io = Cursor::new((len as u32).to_be_bytes().to_vec());
        let got = block_on(read_frame::<LedgerRequest, _>(&mut io)).unwrap();
        assert!(matches!(got, Err(FrameViolation::TooLarge { .. })));
    }

    #[test]
    fn malformed_trailing_and_truncated_bodies() {
        // Unknown enum variant.
        let mut io = Cursor::new(vec![0, 0, 0, 1, 0x7f]);
        let got = block_on(read_frame::<LedgerRequest, _>(&mut io)).unwrap();
        assert!(matches!(got, Err(FrameViolation::Malformed(_))));

        // A valid request followed by a trailing byte inside the frame.
        let mut body = LedgerRequest::GetGenesis.to_bytes();
        body.push(0);
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let got = block_on(read_frame::<LedgerRequest, _>(&mut Cursor::new(bytes))).unwrap();
        assert_eq!(got, Err(FrameViolation::Malformed(DecodeError::TrailingBytes(1))));

        // Announces 10 bytes, sends 2, then ends.
        let got = block_on(read_frame::<LedgerRequest, _>(&mut Cursor::new(vec![
            0, 0, 0, 10, 1, 2,
        ])))
        .unwrap();
        assert_eq!(got, Err(FrameViolation::Truncated { len: 10, got: 2 }));

        // Not even a complete prefix: an I/O error, not a violation.
        assert!(block_on(read_frame::<LedgerRequest, _>(&mut Cursor::new(vec![0, 0]))).is_err());
    }

    #[test]
    fn bad_response_error_carries_the_violation() {
        let mut codec = LedgerCodec;
        let proto = StreamProtocol::new(paychan_protocol::wire::LEDGER_PROTOCOL);
        let mut io = Cursor::new(vec![0, 0, 0, 1, 0x7f]);
        let err = block_on(request_response::Codec::read_response(
            &mut codec, &proto, &mut io,
        ))
        .unwrap_err();
        assert!(matches!(violation_of(&err), Some(FrameViolation::Malformed(_))));
    }

    #[test]
    fn response_round_trip_through_the_codec() {
        let mut codec = LedgerCodec;
        let proto = StreamProtocol::new(paychan_protocol::wire::LEDGER_PROTOCOL);
        let res = LedgerResponse::Error { text: "no".into() };
        let mut out = Cursor::new(Vec::new());
        block_on(request_response::Codec::write_response(
            &mut codec,
            &proto,
            &mut out,
            res.clone(),
        ))
        .unwrap();
        let mut input = Cursor::new(out.into_inner());
        let got = block_on(request_response::Codec::read_response(
            &mut codec, &proto, &mut input,
        ))
        .unwrap();
        assert_eq!(got, res);
    }
}
