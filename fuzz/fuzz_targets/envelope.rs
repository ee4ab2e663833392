//! Fuzzes `Envelope::from_bytes` (the `Wire` trait): only `Result`s, and whatever decodes
//! re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_envelope};
use paychan_protocol::wire::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = check_wire::<Envelope>(data) {
        use_envelope(&v);
    }
});
