//! Fuzz target: see `stepscope_tests::fuzz_targets::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stepscope_tests::fuzz_targets::manifest(data));
