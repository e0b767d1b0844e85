//! The prelude, checked once and loaded pre-checked: every program starts
//! from the checker's state after the prelude (`stdlib/src/cvn/prelude.cvn`),
//! and parsing and checking it was about 45 % of the instructions of
//! `caravan run` on hello world. [`Prelude::to_bytes`] serialises that state
//! (postcard) and [`Prelude::from_bytes`] reads it back; the CLI keeps the
//! bytes in the user's cache, keyed by its own build, as Go keeps compiled
//! packages in its build cache (`GOCACHE`) and OCaml installs its stdlib's
//! compiled interfaces.
//!
//! A [`Prelude`] only stands in for checking the prelude from source; the
//! program (and the standard modules it uses) are checked as before, on top
//! of it ([`crate::driver::check_source_with_prelude`]).

use crate::check::snapshot::CheckedPrelude;
use crate::check::Checker;

/// The first bytes of an encoded prelude ([`Prelude::to_bytes`]).
const MAGIC: &[u8; 8] = b"CVNPRL01";

/// The checker's state after the prelude, ready to check a program on top
/// of (see the module documentation).
pub struct Prelude {
    pub(crate) state: CheckedPrelude,
}

impl Prelude {
    /// Parses and checks the prelude from source. `None` if it has errors
    /// (a broken standard library: programs are then checked from source
    /// and report them).
    pub fn check() -> Option<Prelude> {
        // `None` too if the prelude named other standard modules: the
        // saved state stands for the prelude alone.
        let state = crate::driver::checked_prelude_only()?.into_checked_prelude()?;
        Some(Prelude { state })
    }

    /// The encoding: [`MAGIC`], a hash of the prelude's source (8 bytes,
    /// little-endian), the postcard-encoded state, and a checksum of all
    /// that (8 bytes). Only the binary that wrote it can read it back: the
    /// layout is that of this build's types.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&source_hash().to_le_bytes());
        let mut out = postcard::to_extend(&self.state, out).expect("writing to a Vec cannot fail");
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads what [`Prelude::to_bytes`] wrote. `None` for anything else: a
    /// truncated or altered file, another prelude's state, bytes that do
    /// not decode.
    pub fn from_bytes(bytes: &[u8]) -> Option<Prelude> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
            return None;
        }
        let rest = body.strip_prefix(MAGIC)?;
        let (hash, payload) = rest.split_at_checked(8)?;
        if u64::from_le_bytes(hash.try_into().ok()?) != source_hash() {
            return None;
        }
        let state = postcard::from_bytes(payload).ok()?;
        Some(Prelude { state })
    }

    /// A checker in the state after the prelude.
    pub(crate) fn into_checker(self) -> Checker {
        Checker::from_checked_prelude(self.state)
    }
}

/// The prelude's file id: it is the first file of every program's
/// [`crate::diagnostic::SourceMap`] (`driver::add_stdlib_files`).
pub(crate) const PRELUDE_FILE: crate::diagnostic::FileId = 0;

/// FNV-1a of the prelude's source text.
fn source_hash() -> u64 {
    caravan_stdlib::MODULES[0]
        .1
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// A 64-bit checksum over 8-byte words (a multiply-rotate mix, as
/// FxHash): fast enough to run on every start, and any bit flipped or
/// byte lost changes it.
fn checksum(bytes: &[u8]) -> u64 {
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    let mut chunks = bytes.chunks_exact(8);
    let mut h = bytes.len() as u64;
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(h, u64::from_le_bytes(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_prelude_reads_back_and_anything_else_does_not() {
        let p = Prelude::check().expect("the prelude checks");
        let bytes = p.to_bytes();
        assert!(Prelude::from_bytes(&bytes).is_some());
        // Every truncation and every flipped bit is refused (not a panic).
        for n in [0, 1, 8, 15, 16, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                Prelude::from_bytes(&bytes[..n]).is_none(),
                "truncated at {n}"
            );
        }
        for i in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Prelude::from_bytes(&b).is_none(), "bit flipped in byte {i}");
        }
    }
}

#[cfg(test)]
mod equivalence {
    use super::Prelude;
    use crate::driver::{check_source, check_source_with_prelude};

    /// What a check produced, printed: the typed program (items, globals
    /// with their types, externs, exceptions) and every type in the arena.
    fn shown(
        r: &Result<
            crate::driver::Checked,
            (
                crate::diagnostic::SourceMap,
                Vec<crate::diagnostic::Diagnostic>,
            ),
        >,
    ) -> String {
        match r {
            Ok(c) => format!(
                "{:?}\n{:?}\n{:?}\n{:?}",
                c.program, c.checker.types, c.checker.decls, c.checker.ctors
            ),
            Err((_, d)) => format!("{d:?}"),
        }
    }

    #[test]
    fn a_program_checks_the_same_from_the_loaded_prelude_as_from_source() {
        let bytes = Prelude::check().expect("the prelude checks").to_bytes();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "cvn") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let p = path.display().to_string();
            let loaded = Prelude::from_bytes(&bytes).expect("reads back");
            let a = shown(&check_source(&p, &text));
            let b = shown(&check_source_with_prelude(&p, &text, Some(loaded)));
            assert!(a == b, "{p}: the checks differ");
            n += 1;
        }
        assert!(n >= 5, "only {n} examples");
        // A program with type errors reports the same diagnostics.
        let bad = "let x : int = List.map (fun y -> y) \"s\"\nlet () = print_endline x\n";
        let loaded = Prelude::from_bytes(&bytes).expect("reads back");
        let a = shown(&check_source("bad.cvn", bad));
        let b = shown(&check_source_with_prelude("bad.cvn", bad, Some(loaded)));
        assert!(a.contains("E0"), "{a}");
        assert_eq!(a, b);
    }
}
