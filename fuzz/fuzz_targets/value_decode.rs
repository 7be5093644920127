#![no_main]
//! The value decoders over random memory, with the DWARF of the Go binary named by
//! `GOROSCOPE_FUZZ_EXE` (scripts/fuzz.sh sets it to the fixture).
use goroscope::fuzzing::ValuesSetup;
use std::sync::OnceLock;

static SETUP: OnceLock<ValuesSetup> = OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: {
        let exe = std::env::var_os("GOROSCOPE_FUZZ_EXE").expect("set GOROSCOPE_FUZZ_EXE to an unstripped Go binary");
        let _ = SETUP.set(ValuesSetup::new(exe.as_ref()).expect("GOROSCOPE_FUZZ_EXE"));
    },
    |data: &[u8]| SETUP.get().expect("initialised").run(data)
);
