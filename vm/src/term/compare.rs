//! OCaml's polymorphic comparison over values.

use crate::value::*;

/// Returned by [`compare_values`] in non-total mode when floats are
/// unordered (a NaN is involved): `=` is then false.
pub const UNORDERED: i64 = i64::MIN;

/// The one failure of compare: a functional value was reached.
pub const COMPARE_FUNCTIONAL: &str = "compare: functional value";

#[inline]
fn sign(o: std::cmp::Ordering) -> i64 {
    o as i64
}

/// OCaml's polymorphic comparison (`compare_val` in `runtime/compare.c`).
///
/// `total = true` is `compare` (physical equality short-cut, NaN equal to
/// itself and below every float); `total = false` is `=`/`<>` (NaN is
/// unordered: the result is [`UNORDERED`]). Order: immediates before blocks
/// and by value; blocks by tag, then size, then fields left to right;
/// strings lexicographically by bytes (a prefix first); floats by value;
/// reply channels by identity. Reaching a closure is an error
/// ([`COMPARE_FUNCTIONAL`]). Iterative: `work` is the explicit stack (its
/// buffer is reused across calls). Cyclic values can only be built from
/// closures, so the walk reaches a closure (and fails) before looping.
///
/// Returns -1, 0 or 1 (or `UNORDERED`).
///
/// # Safety
/// `a` and `b` must be valid values (all reachable blocks live).
pub unsafe fn compare_values(
    a: Value,
    b: Value,
    total: bool,
    work: &mut Vec<(Value, Value)>,
) -> Result<i64, &'static str> {
    work.clear();
    let (mut a, mut b) = (a, b);
    loop {
        // SAFETY: `a` and `b` are reachable from the caller's valid values.
        let r = unsafe { compare_step(a, b, total, work) }?;
        if r != 0 {
            work.clear();
            return Ok(r);
        }
        match work.pop() {
            Some((x, y)) => {
                a = x;
                b = y;
            }
            None => return Ok(0),
        }
    }
}

/// Compares one pair; pushes field pairs of equal-shaped blocks on `work`
/// (rightmost first, so the leftmost is compared next).
#[inline]
unsafe fn compare_step(
    a: Value,
    b: Value,
    total: bool,
    work: &mut Vec<(Value, Value)>,
) -> Result<i64, &'static str> {
    if a == b && total {
        return Ok(0);
    }
    match (is_immediate(a), is_immediate(b)) {
        (true, true) => return Ok(sign(int_of(a).cmp(&int_of(b)))),
        (true, false) => return Ok(-1),
        (false, true) => return Ok(1),
        (false, false) => {}
    }
    // SAFETY: both are pointers to live blocks (caller's guarantee).
    unsafe {
        let (ha, hb) = (header(a), header(b));
        let (ta, tb) = (header_tag(ha), header_tag(hb));
        if ta != tb {
            return Ok(sign(ta.cmp(&tb)));
        }
        let (sa, sb) = (header_wosize(ha) as usize, header_wosize(hb) as usize);
        match ta {
            TAG_STRING => Ok(sign(string_bytes(a).cmp(string_bytes(b)))),
            TAG_FLOAT => {
                let (fa, fb) = (float_of(a), float_of(b));
                if fa < fb {
                    Ok(-1)
                } else if fa > fb {
                    Ok(1)
                } else if fa != fb {
                    if !total {
                        Ok(UNORDERED)
                    } else if !fa.is_nan() {
                        Ok(1) // fb is NaN: NaN sorts below every float
                    } else if !fb.is_nan() {
                        Ok(-1)
                    } else {
                        Ok(0)
                    }
                } else {
                    Ok(0)
                }
            }
            TAG_INT64 => Ok(sign((field(a, 0) as i64).cmp(&(field(b, 0) as i64)))),
            TAG_CLOSURE => Err(COMPARE_FUNCTIONAL),
            t if t >= NO_SCAN_TAG => {
                // Other raw blocks (reply channels): by size, then words.
                if sa != sb {
                    return Ok(sign(sa.cmp(&sb)));
                }
                for i in 0..sa {
                    let (x, y) = (field(a, i), field(b, i));
                    if x != y {
                        return Ok(sign(x.cmp(&y)));
                    }
                }
                Ok(0)
            }
            _ => {
                if sa != sb {
                    return Ok(sign(sa.cmp(&sb)));
                }
                if sa == 0 {
                    return Ok(0);
                }
                for i in (1..sa).rev() {
                    work.push((field(a, i), field(b, i)));
                }
                // Compare field 0 right away, without a round trip.
                let (x, y) = (field(a, 0), field(b, 0));
                work.push((x, y));
                Ok(0)
            }
        }
    }
}
