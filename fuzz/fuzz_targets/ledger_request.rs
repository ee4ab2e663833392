//! Fuzzes `LedgerRequest::from_bytes` (the `Wire` trait): only `Result`s, and whatever decodes
//! re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paychan_fuzz::{check_wire, use_ledger_request};
use paychan_protocol::wire::LedgerRequest;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = check_wire::<LedgerRequest>(data) {
        use_ledger_request(&v);
    }
});
