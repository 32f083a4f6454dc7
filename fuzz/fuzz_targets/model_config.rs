//! Fuzz target: see `stepscope_tests::fuzz_targets::model_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stepscope_tests::fuzz_targets::model_config(data));
