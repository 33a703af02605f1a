//! `timespec::parse` on arbitrary UTF-8 (a user-given TIME argument).
//!
//! Property: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = wsnap::timespec::parse(s);
    }
});
