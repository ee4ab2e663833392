//! The canonical encoding: postcard 1.x through serde.
//!
//! Decoding untrusted bytes is always bounded and strict: the input must be at most the given
//! number of bytes, must decode completely (no trailing bytes), and must be *canonical*: its
//! re-encoding must equal it byte for byte. postcard accepts over-long varints (e.g. `0x80 0x00`
//! for zero); without this check two different byte strings would decode to one value, and a
//! hash or signature over bytes would no longer identify the value.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why untrusted bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the limit for its type.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit that applied.
        max: usize,
    },
    /// postcard could not decode the input.
    #[error("malformed encoding: {0}")]
    Malformed(postcard::Error),
    /// The value decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The value decoded but its canonical encoding differs from the input.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// The value decoded but breaks a structural limit (e.g. too many items).
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
}

/// Encodes a value canonically. Encoding into memory cannot fail for protocol types.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard encoding into a Vec is infallible for protocol types")
}

/// Encodes into a caller-provided buffer, appending; lets hot paths reuse one allocation.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) {
    let start = buf.len();
    let out = postcard::to_extend(value, core::mem::take(buf))
        .expect("postcard encoding into a Vec is infallible for protocol types");
    *buf = out;
    debug_assert!(buf.len() >= start);
}

/// Decodes untrusted bytes: size-capped, no trailing bytes, canonical.
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let (value, rest): (T, &[u8]) = postcard::take_from_bytes(bytes).map_err(DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    // Canonical check: re-encode and compare, byte by byte as the encoder writes (no copy of
    // the input is made; the first difference stops it).
    match postcard::serialize_with_flavor(&value, Matches { rest: bytes }) {
        Ok(true) => Ok(value),
        _ => Err(DecodeError::NonCanonical),
    }
}

/// A postcard output that holds nothing: it compares each byte written with the next byte of
/// the input and fails at the first difference; it ends `true` when the input was used up.
struct Matches<'a> {
    rest: &'a [u8],
}

impl postcard::ser_flavors::Flavor for Matches<'_> {
    type Output = bool;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        match self.rest.split_first() {
            Some((&b, rest)) if b == byte => {
                self.rest = rest;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match self.rest.strip_prefix(data) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.rest.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_overlong_varint_and_trailing() {
        assert_eq!(decode::<u64>(&[5], 16), Ok(5));
        assert_eq!(decode::<u64>(&[0x85, 0x00], 16), Err(DecodeError::NonCanonical));
        assert_eq!(decode::<u64>(&[5, 0], 16), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            decode::<u64>(&[5; 20], 16),
            Err(DecodeError::TooLarge { len: 20, max: 16 })
        );
        assert!(matches!(decode::<u64>(&[], 16), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn bool_and_option_are_strict() {
        assert_eq!(decode::<bool>(&[1], 4), Ok(true));
        assert!(decode::<bool>(&[2], 4).is_err());
        assert!(decode::<Option<u8>>(&[2, 0], 4).is_err());
    }
}
