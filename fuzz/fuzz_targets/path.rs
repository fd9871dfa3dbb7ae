//! A working directory and an argument, both arbitrary: a resolved path is
//! absolute, normalised (no empty, "." or ".." component), and resolves to
//! itself again, so it can never name anything outside the root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_proto::path::VirtualPath;

fuzz_target!(|input: (&str, &str)| {
    let (cwd, arg) = input;
    let base = VirtualPath::root().resolve(cwd).unwrap_or_else(|_| VirtualPath::root());
    if let Ok(p) = base.resolve(arg) {
        for c in p.components() {
            assert!(!c.is_empty() && c != "." && c != "..", "{p}");
            assert!(!c.contains('/') && !c.contains('\0'), "{p}");
        }
        let shown = p.to_string();
        assert!(shown.starts_with('/'));
        assert_eq!(VirtualPath::root().resolve(&shown).ok(), Some(p.clone()));
        assert!(!p.relative().split('/').any(|c| c == ".."));
    }
});
