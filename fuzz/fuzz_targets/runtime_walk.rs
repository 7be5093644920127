#![no_main]
//! The runtime discovery and goroutine walk over memory from the input, laid over the static
//! data of the Go binary named by `GOROSCOPE_FUZZ_EXE` (scripts/fuzz.sh sets it to the fixture).
use goroscope::fuzzing::WalkSetup;
use std::sync::OnceLock;

static SETUP: OnceLock<WalkSetup> = OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: {
        let exe = std::env::var_os("GOROSCOPE_FUZZ_EXE").expect("set GOROSCOPE_FUZZ_EXE to an unstripped, non-PIE Go binary");
        let _ = SETUP.set(WalkSetup::new(exe.as_ref()).expect("GOROSCOPE_FUZZ_EXE"));
    },
    |data: &[u8]| SETUP.get().expect("initialised").run(data)
);
