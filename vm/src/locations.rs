//! Source locations of call sites in generated code, for crash reports
//! (LANGUAGE.md §3: one stderr line with the pid, the message and the
//! source location).
//!
//! The compiler marks the instructions of every call site with its source
//! location (Cranelift source locations) and registers, after finalising
//! each batch of code, the address ranges of those instructions with their
//! `file:line:col` text ([`register`]). A crash inside a runtime function
//! or builtin that generated code called through a trampoline (which set
//! `Process::exit_fp`) walks the frame-pointer chain of generated frames
//! — the walk the collector makes — and reports the first call site that
//! is in the user's code, so that `int_of_string "x"` or `List.nth l 9`
//! names the user's line, not the builtin or the standard library's.
//! Costs nothing until a crash.

use std::sync::{Arc, RwLock};

/// Where the code of one call site is: `[start, end)` absolute addresses
/// of its instructions, and its `file:line:col`.
#[derive(Debug, Clone)]
pub struct CallSite {
    /// First byte of the call site's instructions.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// `file:line:col` of the call in the source.
    pub location: Arc<str>,
}

static SITES: RwLock<Vec<CallSite>> = RwLock::new(Vec::new());

/// Registers the call sites of newly finalised code.
pub fn register(mut sites: Vec<CallSite>) {
    if sites.is_empty() {
        return;
    }
    let mut all = SITES.write().unwrap_or_else(|e| e.into_inner());
    all.append(&mut sites);
    all.sort_unstable_by_key(|s| s.start);
}

/// The location of the call whose return address is `pc`.
fn site_of(all: &[CallSite], pc: u64) -> Option<&Arc<str>> {
    // The call instruction ends at the return address.
    let at = pc.checked_sub(1)?;
    let i = all.partition_point(|s| s.start <= at);
    (i > 0 && at < all[i - 1].end).then(|| &all[i - 1].location)
}

/// Standard-library sources are named `<stdlib>/…` (see the stdlib crate).
pub(crate) fn is_stdlib(location: &[u8]) -> bool {
    location.starts_with(b"<stdlib>/")
}

/// Frames walked at most (a deep recursion need not be walked to its end:
/// the innermost user frame is what is wanted).
const MAX_FRAMES: usize = 100_000;

/// The source location a crash should name, found by walking the generated
/// frames from `exit_fp` (a trampoline's frame pointer; 0: none): the
/// innermost call site in the user's code, else the innermost one at all.
///
/// # Safety
/// `exit_fp` is 0 or the frame pointer of a live trampoline frame on the
/// current stack (so the chain above it is the running process's frames).
pub(crate) unsafe fn crash_site(exit_fp: u64) -> Option<Arc<str>> {
    if exit_fp == 0 {
        return None;
    }
    let all = SITES.read().unwrap_or_else(|e| e.into_inner());
    let mut first: Option<&Arc<str>> = None;
    // SAFETY: caller's guarantee: a frame-pointer chain of generated code
    // (every generated function keeps frame pointers), left at the first
    // return address outside generated code.
    unsafe {
        let mut pc = *((exit_fp + 8) as *const u64);
        let mut fp = *(exit_fp as *const u64);
        for _ in 0..MAX_FRAMES {
            if !crate::gc::is_generated_code(pc) {
                break;
            }
            if let Some(loc) = site_of(&all, pc) {
                if !is_stdlib(loc.as_bytes()) {
                    return Some(loc.clone());
                }
                first.get_or_insert(loc);
            }
            if fp == 0 {
                break;
            }
            pc = *((fp + 8) as *const u64);
            fp = *(fp as *const u64);
        }
    }
    first.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_address_finds_its_call_site() {
        let all = vec![
            CallSite {
                start: 100,
                end: 110,
                location: "a.cvn:1:1".into(),
            },
            CallSite {
                start: 110,
                end: 130,
                location: "b.cvn:2:2".into(),
            },
        ];
        assert_eq!(site_of(&all, 110).map(|s| &**s), Some("a.cvn:1:1"));
        assert_eq!(site_of(&all, 130).map(|s| &**s), Some("b.cvn:2:2"));
        assert_eq!(site_of(&all, 131), None);
        assert_eq!(site_of(&all, 100), None);
        assert!(is_stdlib(b"<stdlib>/list.cvn:3:4"));
        assert!(!is_stdlib(b"main.cvn:3:4"));
    }
}
