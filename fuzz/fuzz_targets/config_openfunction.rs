//! The operator's plugin configuration: any bytes compile to a config or
//! to an error naming a field, never a panic.
#![no_main]

use faas_core::config::compile;
use faas_core::Integration;
use libfuzzer_sys::fuzz_target;
use openfunction::OpenFunction as Filter;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = compile(data, Filter::read_global, Filter::read_route) {
        assert!(!e.to_string().is_empty());
    }
});
