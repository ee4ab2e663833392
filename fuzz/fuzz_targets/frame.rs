//! Fuzzes `wire::parse_frame` as a stream reader uses it: frames are taken off the front of
//! the buffer until it is incomplete or refused; each payload is decoded as an `Envelope`.
//! The first byte picks the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_envelope};
use paychan_protocol::limits::FRAME_BYTES_MAX;
use paychan_protocol::wire::{parse_frame, write_frame, Envelope, FrameError};

fuzz_target!(|data: &[u8]| {
    let Some((&m, mut buf)) = data.split_first() else {
        return;
    };
    let max = match m % 4 {
        0 => FRAME_BYTES_MAX,
        1 => m as usize,
        2 => usize::MAX,
        _ => 0,
    };
    loop {
        match parse_frame(buf, max) {
            Ok(Some((consumed, payload))) => {
                assert_eq!(consumed, 4 + payload.len());
                assert!(payload.len() <= max && consumed <= buf.len());
                assert_eq!(payload, &buf[4..consumed]);
                // Re-encoding the frame gives back the bytes it was read from.
                if payload.len() <= FRAME_BYTES_MAX {
                    let mut out = Vec::new();
                    write_frame(payload, &mut out);
                    assert_eq!(out, &buf[..consumed]);
                }
                if let Some(env) = check_wire::<Envelope>(payload) {
                    use_envelope(&env);
                }
                buf = &buf[consumed..];
            }
            Ok(None) => {
                if buf.len() >= 4 {
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    assert!(
                        len <= max && buf.len() < 4 + len,
                        "a complete frame was reported incomplete"
                    );
                }
                break;
            }
            Err(FrameError::TooLarge { len, max: got_max }) => {
                assert_eq!(got_max, max);
                assert!(len > max);
                assert_eq!(len, u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize);
                break;
            }
        }
    }
});
