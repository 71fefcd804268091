//! Arbitrary bytes into `transport::codec::decode_client` and `decode_server`:
//! no panic, and whatever decodes re-encodes to the same value.
//! The properties are in `src/codec_checks.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gridcap_fuzz::codec_checks::check(data);
});
