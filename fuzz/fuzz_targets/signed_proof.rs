//! Fuzzes `codec::decode::<SignedProof>`: only `Result`s, canonical round trip, and single and
//! batch verification agree on whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = paychan_fuzz::check_signed_proof(data);
});
