#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| goroscope::fuzzing::snapshot_file(data));
