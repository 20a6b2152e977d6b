#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tally::fuzz::forwarded(data));
