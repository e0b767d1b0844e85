//! Walkers over user data: the deep copy (`send`, `spawn`, `reply`, the
//! literal area, stores) and OCaml's polymorphic `compare`. Every walker is
//! iterative with an explicit work list, never recursive on user data (a
//! deep list must not overflow a process stack); the distribution layer's
//! External Term Format encoder and decoder are walkers of the same kind.

pub mod compare;
pub mod copy;
pub mod desc;
pub mod etf;
pub mod text;

pub use compare::{compare_values, COMPARE_FUNCTIONAL, UNORDERED};
pub use copy::CopyScratch;
pub(crate) use copy::WordMap;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::*;

    /// A tiny test heap: blocks in a Vec that never reallocates.
    struct Arena(Vec<u64>);
    impl Arena {
        fn new() -> Self {
            Arena(Vec::with_capacity(1 << 18))
        }
        fn block(&mut self, tag: u8, fields: &[u64]) -> Value {
            assert!(self.0.len() + fields.len() < self.0.capacity());
            self.0.push(make_header(fields.len() as u64, tag));
            let at = self.0.len();
            self.0.extend_from_slice(fields);
            &self.0[at] as *const u64 as u64
        }
        fn string(&mut self, s: &str) -> Value {
            let mut f = vec![s.len() as u64];
            let mut words = vec![0u64; s.len().div_ceil(8)];
            // SAFETY: `words` has at least `s.len()` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(s.as_ptr(), words.as_mut_ptr() as *mut u8, s.len())
            };
            f.extend(words);
            self.block(TAG_STRING, &f)
        }
        fn float(&mut self, x: f64) -> Value {
            self.block(TAG_FLOAT, &[x.to_bits()])
        }
    }

    fn cmp(a: Value, b: Value) -> i64 {
        let mut w = Vec::new();
        // SAFETY: test values are well formed.
        unsafe { compare_values(a, b, true, &mut w).unwrap() }
    }

    #[test]
    fn compare_follows_ocaml() {
        let mut h = Arena::new();
        assert_eq!(cmp(of_int(1), of_int(2)), -1);
        assert_eq!(cmp(of_int(-5), of_int(-7)), 1);
        let t = h.block(0, &[of_int(1)]);
        assert_eq!(cmp(of_int(1000), t), -1);
        assert_eq!(cmp(t, of_int(1000)), 1);
        let s1 = h.string("abc");
        let s2 = h.string("abd");
        let s3 = h.string("ab");
        let s4 = h.string("abc");
        assert_eq!(cmp(s1, s2), -1);
        assert_eq!(cmp(s1, s3), 1);
        assert_eq!(cmp(s1, s4), 0);
        let e = h.string("");
        assert_eq!(cmp(e, s3), -1);
        // Tags first, then sizes, then fields left to right.
        let a = h.block(0, &[of_int(9), of_int(9)]);
        let b = h.block(1, &[of_int(0)]);
        assert_eq!(cmp(a, b), -1);
        let c = h.block(0, &[of_int(9)]);
        assert_eq!(cmp(a, c), 1);
        let d = h.block(0, &[of_int(1), of_int(100)]);
        let e2 = h.block(0, &[of_int(2), of_int(0)]);
        assert_eq!(cmp(d, e2), -1);
        // Floats, NaN.
        let f1 = h.float(1.5);
        let f2 = h.float(2.5);
        let nan = h.float(f64::NAN);
        let nan2 = h.float(f64::NAN);
        assert_eq!(cmp(f1, f2), -1);
        assert_eq!(cmp(nan, f1), -1);
        assert_eq!(cmp(f1, nan), 1);
        assert_eq!(cmp(nan, nan2), 0);
        let mut w = Vec::new();
        // SAFETY: well-formed test values.
        unsafe {
            assert_eq!(compare_values(nan, nan2, false, &mut w), Ok(UNORDERED));
            assert_eq!(compare_values(nan, nan, false, &mut w), Ok(UNORDERED));
        }
        // Int64s are signed: the raw words would order -1 above 1.
        let m1 = h.block(TAG_INT64, &[(-1i64) as u64]);
        let p1 = h.block(TAG_INT64, &[1]);
        let min = h.block(TAG_INT64, &[i64::MIN as u64]);
        assert_eq!(cmp(m1, p1), -1);
        assert_eq!(cmp(min, m1), -1);
        assert_eq!(cmp(p1, h.block(TAG_INT64, &[1])), 0);
        // A long list compares iteratively (no recursion).
        let mut l1 = of_int(0);
        let mut l2 = of_int(0);
        for i in 0..20000 {
            l1 = h.block(0, &[of_int(i), l1]);
            l2 = h.block(0, &[of_int(i), l2]);
        }
        assert_eq!(cmp(l1, l2), 0);
        // Closures fail.
        let f = h.block(TAG_CLOSURE, &[0x1000, of_int(1)]);
        let g = h.block(TAG_CLOSURE, &[0x1000, of_int(1)]);
        // SAFETY: well-formed test values.
        unsafe {
            assert_eq!(compare_values(f, g, true, &mut w), Err(COMPARE_FUNCTIONAL));
            // `compare f f` is 0 by physical equality, `f = f` fails (as OCaml).
            assert_eq!(compare_values(f, f, true, &mut w), Ok(0));
            assert_eq!(compare_values(f, f, false, &mut w), Err(COMPARE_FUNCTIONAL));
        }
    }

    #[test]
    fn copy_keeps_sharing_and_cycles() {
        let mut h = Arena::new();
        let s = h.string("shared");
        let pair = h.block(0, &[s, s]);
        // A cyclic closure: env word points back to itself.
        let clo = h.block(TAG_CLOSURE, &[0x1000, of_int(1), 0]);
        // SAFETY: patch the env field to make the cycle.
        unsafe { *(clo as *mut u64).add(2) = clo };
        let root = h.block(0, &[pair, clo, of_int(7)]);
        let mut sc = CopyScratch::default();
        // SAFETY: well-formed test values; dst sized by plan.
        unsafe {
            let n = sc.plan(root, |_| false).unwrap();
            assert_eq!(n, 4 + 3 + 4 + 3);
            let mut dst = vec![0u64; n];
            let c = sc.emit(dst.as_mut_ptr(), |_| false);
            assert_ne!(c, root);
            let cpair = field(c, 0);
            assert_eq!(field(cpair, 0), field(cpair, 1), "sharing kept");
            assert_ne!(field(cpair, 0), s);
            assert_eq!(string_bytes(field(cpair, 0)), b"shared");
            let cclo = field(c, 1);
            assert_eq!(field(cclo, 2), cclo, "cycle kept");
            assert_eq!(field(cclo, 0), 0x1000, "code pointer untouched");
            assert_eq!(field(c, 2), of_int(7));
            let mut w = Vec::new();
            assert_eq!(compare_values(field(c, 0), pair, true, &mut w), Ok(0));
        }
        // Many blocks: exercises the hash-map forwarding table.
        let mut l = of_int(0);
        let shared = h.block(0, &[of_int(5)]);
        for i in 0..1000 {
            l = h.block(0, &[if i % 2 == 0 { shared } else { of_int(i) }, l]);
        }
        // SAFETY: as above.
        unsafe {
            let n = sc.plan(l, |_| false).unwrap();
            assert_eq!(n, 1000 * 3 + 2);
            let mut dst = vec![0u64; n];
            let c = sc.emit(dst.as_mut_ptr(), |_| false);
            let mut w = Vec::new();
            assert_eq!(compare_values(c, l, true, &mut w), Ok(0));
            let x = field(field(c, 1), 0);
            let y = field(field(field(field(c, 1), 1), 1), 0);
            assert!(is_block(x));
            assert_eq!(x, y);
        }
    }

    /// The owned copy (forwarding through the source's headers) gives the
    /// same copy as the hash-map one, keeps sharing and cycles, and puts
    /// every source header back: after `emit`, and after a plan that is
    /// only trimmed (the caller could not get its destination).
    #[test]
    fn owned_copy_forwards_through_headers_and_restores_them() {
        let mut h = Arena::new();
        let s = h.string("shared");
        let clo = h.block(TAG_CLOSURE, &[0x1000, of_int(1), 0]);
        // SAFETY: patch the env field to make the cycle.
        unsafe { *(clo as *mut u64).add(2) = clo };
        let mut l = h.block(0, &[s, clo]);
        for i in 0..5000 {
            l = h.block(0, &[if i % 3 == 0 { s } else { of_int(i) }, l]);
        }
        let before = h.0.clone();
        let mut sc = CopyScratch::default();
        // SAFETY: well-formed test values owned by this thread; dst sized
        // by plan.
        unsafe {
            let n = sc.plan(l, |_| false).unwrap();
            let mut by_map = vec![0u64; n];
            let c1 = sc.emit(by_map.as_mut_ptr(), |_| false);
            assert_eq!(sc.plan_owned(l, |_| false), Some(n));
            assert_ne!(h.0, before, "the plan is kept in the headers");
            let mut by_marks = vec![0u64; n];
            let c2 = sc.emit(by_marks.as_mut_ptr(), |_| false);
            assert_eq!(h.0, before, "every header put back after emit");
            // The same layout, relative to each destination.
            let rel = |v: &Vec<u64>, c: u64| {
                let base = v.as_ptr() as u64;
                let words: Vec<u64> = v
                    .iter()
                    .map(|&w| {
                        if is_block(w) && w.wrapping_sub(base) < 8 * v.len() as u64 {
                            w - base
                        } else {
                            w
                        }
                    })
                    .collect();
                (words, c - base)
            };
            assert_eq!(rel(&by_map, c1), rel(&by_marks, c2));
            assert_eq!(field(c2, 0), of_int(4999));
            let last = {
                let mut x = c2;
                while field(x, 1) & 1 == 0 && header_tag(header(field(x, 1))) == 0 {
                    x = field(x, 1);
                }
                x
            };
            let cclo = field(last, 1);
            assert_eq!(field(cclo, 2), cclo, "cycle kept");
            assert_eq!(field(field(c2, 1), 0), field(last, 0), "sharing kept");
            // A plan given up on.
            assert!(sc.plan_owned(l, |_| false).is_some());
            sc.trim();
            assert_eq!(h.0, before, "every header put back by trim");
        }
    }

    /// Blocks in the generated code's static data are read-only: an owned
    /// copy forwards them through its hash map and never writes their
    /// headers (this page is made read-only: a write would fault).
    #[test]
    fn owned_copy_never_writes_static_data() {
        const PAGE: usize = 4096;
        // SAFETY: a fresh private anonymous page, ours alone.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as *mut u64;
        assert_ne!(page as *mut libc::c_void, libc::MAP_FAILED);
        let mut h = Arena::new();
        let s = h.string("heap");
        // SAFETY: the page holds two static blocks: a string and a cons
        // cell pointing at it and at the heap string.
        let (st_str, st_cons) = unsafe {
            *page = make_header(2, TAG_STRING);
            *page.add(1) = 6;
            *page.add(2) = u64::from_le_bytes(*b"static\0\0");
            *page.add(3) = make_header(2, 0);
            *page.add(4) = page.add(1) as u64;
            *page.add(5) = s;
            (page.add(1) as u64, page.add(4) as u64)
        };
        crate::heap::note_static_data(page as u64, page as u64 + PAGE as u64);
        // SAFETY: the page is ours.
        assert_eq!(
            unsafe { libc::mprotect(page as _, PAGE, libc::PROT_READ) },
            0
        );
        let root = h.block(0, &[st_cons, st_str, st_cons, s]);
        let mut sc = CopyScratch::default();
        // SAFETY: well-formed values; the heap ones are this thread's.
        unsafe {
            let n = sc.plan_owned(root, |_| false).unwrap();
            assert_eq!(n, 5 + 3 + 3 + 3);
            let mut dst = vec![0u64; n];
            let c = sc.emit(dst.as_mut_ptr(), |_| false);
            assert_eq!(field(c, 0), field(c, 2), "static block shared once");
            assert_eq!(field(field(c, 0), 0), field(c, 1));
            assert_eq!(field(field(c, 0), 1), field(c, 3));
            assert_eq!(string_bytes(field(c, 1)), b"static");
            assert_eq!(string_bytes(field(c, 3)), b"heap");
            assert_eq!(header(s), make_header(2, TAG_STRING));
            libc::munmap(page as _, PAGE);
        }
    }
}
