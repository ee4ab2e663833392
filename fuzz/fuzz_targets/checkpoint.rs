//! Fuzzes `SignedCheckpoint::from_bytes` (the `Wire` trait): only `Result`s, and whatever decodes
//! re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_checkpoint};
use paychan_protocol::ledger::SignedCheckpoint;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = check_wire::<SignedCheckpoint>(data) {
        use_checkpoint(&v);
    }
});
