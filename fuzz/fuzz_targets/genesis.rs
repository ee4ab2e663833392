//! Fuzzes `Genesis::from_bytes` (the `Wire` trait): only `Result`s, and whatever decodes
//! re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_genesis};
use paychan_protocol::ledger::Genesis;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = check_wire::<Genesis>(data) {
        use_genesis(&v);
    }
});
