//! Fuzzes `Tx::from_bytes` (the `Wire` trait): only `Result`s, and whatever decodes
//! re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_tx};
use paychan_protocol::ledger::Tx;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = check_wire::<Tx>(data) {
        use_tx(&v);
    }
});
