//! `select::split_path` on arbitrary bytes (a user-given path inside a
//! snapshot; its components are looked up in trees and joined to the
//! restore target).
//!
//! Properties: never panics; every component passes `validate_name`, is not
//! ".." (nor "." nor empty), contains no '/' and is a piece of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsnap::select::split_path;
use wsnap::tree::validate_name;

fuzz_target!(|data: &[u8]| {
    let Ok(parts) = split_path(data) else {
        return;
    };
    let range = data.as_ptr_range();
    for c in &parts {
        assert!(validate_name(c).is_ok(), "component {c:?} fails validate_name");
        assert!(*c != b"..", "component is ..");
        assert!(*c != b"." && !c.is_empty(), "component {c:?} is . or empty");
        assert!(!c.contains(&b'/'), "component {c:?} contains /");
        let r = c.as_ptr_range();
        assert!(range.start <= r.start && r.end <= range.end, "component not from input");
    }
});
