//! `Store`: ETS-like tables shared by all processes (LANGUAGE.md §4).
//!
//! A table is owned by the process that created it and deleted when that
//! process ends (an exit hook); using it afterwards crashes the caller, as
//! ETS's `badarg`. Keys and values are deep-copied in ([`Frozen`]: memory
//! of the table's own, no pointer into any process heap) and copied out
//! into the reader's heap, so no process ever sees another's memory.
//!
//! Concurrency: a table is split into [`SHARDS`] shards by a structural
//! hash of the key, each behind a distributed reader-writer lock
//! ([`ShardLock`], a "big reader" lock: a reader takes the read side of
//! its thread's slot only, a writer every slot), so readers on different
//! scheduler threads write no common cache line, whatever keys they read.
//! A table is found by its id through a per-scheduler-thread cache, so the
//! read path takes no VM-wide lock either (the directory of tables, itself
//! sharded, is only read on a cache miss). `Store.update` is optimistic:
//! read the value with its version, run the function in the caller (user
//! code never runs under a lock), then install the result only if the
//! version is unchanged, else retry — atomic per key, and the function may
//! run more than once.
//!
//! A stored value is kept as the frozen pair `(Some v, version)`, so
//! `get` copies out `Some v` and `update`'s read copies out the whole pair
//! in one copy, with no allocation (and no heap value held) afterwards.

use caravan_vm::otp_api::{copy_into, Frozen};
use caravan_vm::term::compare_values;
use caravan_vm::value::{
    field, float_of, header, header_tag, header_wosize, int_of, is_block, make_header, of_int,
    string_bytes, TAG_CLOSURE, TAG_FLOAT, TAG_STRING, UNIT,
};
use caravan_vm::{alloc_block, at_exit, crash_process, Process, Value};
use std::cell::{RefCell, UnsafeCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Key shards per table.
pub const SHARDS: usize = 16;
/// Shards of the directory of tables (by table id).
const DIR_SHARDS: usize = 16;
/// Entries of each scheduler thread's table cache.
const CACHE: usize = 32;

/// The crash message for a table whose owner has exited.
const GONE: &str = "Store: no such table (its owner has exited)";

/// One key: its frozen key and its frozen `(Some value, version)`.
struct Entry {
    key: Frozen,
    val: Frozen,
}

impl Entry {
    fn version(&self) -> u64 {
        // SAFETY: `val` is a pair made by `Frozen::freeze_pair`.
        int_of(unsafe { self.val.field(1) }) as u64
    }
}

/// Buckets of one shard by key hash (collisions share a bucket).
type Shard = Buckets;

/// Reader slots of a shard's lock (see [`ShardLock`]).
const READER_SLOTS: usize = 8;

#[repr(align(128))]
struct PaddedLock(RwLock<()>);

/// A shard's data behind a distributed reader-writer lock (Linux's
/// "big reader" lock, brlock): a reader takes the read side of the one
/// slot of its thread, a writer the write side of every slot (in order).
/// Readers on different threads thus write different cache lines — a
/// plain `RwLock`'s reader count is one line that every reader writes,
/// which bounces between cores and stops reads from scaling — while
/// writers pay [`READER_SLOTS`] uncontended lock operations.
struct ShardLock {
    slots: [PaddedLock; READER_SLOTS],
    data: UnsafeCell<Shard>,
}

// SAFETY: `data` is read only under a slot's read lock and written only
// under every slot's write lock, so a writer excludes every reader and
// other writers; `Shard` itself is `Send + Sync`.
unsafe impl Sync for ShardLock {}

/// Read access to a shard (derefs to it).
struct ShardRead<'a> {
    lock: &'a ShardLock,
    _g: RwLockReadGuard<'a, ()>,
}

impl std::ops::Deref for ShardRead<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        // SAFETY: a slot's read lock is held: no writer is active.
        unsafe { &*self.lock.data.get() }
    }
}

/// Write access to a shard (derefs to it).
struct ShardWrite<'a> {
    lock: &'a ShardLock,
    _g: Vec<RwLockWriteGuard<'a, ()>>,
}

impl std::ops::Deref for ShardWrite<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        // SAFETY: every slot's write lock is held: access is exclusive.
        unsafe { &*self.lock.data.get() }
    }
}

impl std::ops::DerefMut for ShardWrite<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        // SAFETY: every slot's write lock is held: access is exclusive.
        unsafe { &mut *self.lock.data.get() }
    }
}

thread_local! {
    /// This thread's reader slot (threads are spread over the slots).
    static SLOT: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) as usize % READER_SLOTS
    };
}

impl ShardLock {
    fn new() -> Self {
        ShardLock {
            slots: std::array::from_fn(|_| PaddedLock(RwLock::new(()))),
            data: UnsafeCell::new(Shard::default()),
        }
    }

    fn read(&self) -> ShardRead<'_> {
        let i = SLOT.with(|s| *s);
        ShardRead {
            lock: self,
            _g: self.slots[i].0.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn write(&self) -> ShardWrite<'_> {
        ShardWrite {
            lock: self,
            _g: self
                .slots
                .iter()
                .map(|s| s.0.write().unwrap_or_else(|e| e.into_inner()))
                .collect(),
        }
    }
}

struct Table {
    alive: AtomicBool,
    shards: Box<[ShardLock]>,
    size: AtomicI64,
    next_version: AtomicU64,
}

impl Table {
    fn new() -> Self {
        Table {
            alive: AtomicBool::new(true),
            shards: (0..SHARDS).map(|_| ShardLock::new()).collect(),
            size: AtomicI64::new(0),
            next_version: AtomicU64::new(1),
        }
    }

    fn read(&self, h: u64) -> Result<ShardRead<'_>, &'static str> {
        let g = self.shards[shard_of(h)].read();
        if self.alive.load(Ordering::Acquire) {
            Ok(g)
        } else {
            Err(GONE)
        }
    }

    fn write(&self, h: u64) -> Result<ShardWrite<'_>, &'static str> {
        let g = self.shards[shard_of(h)].write();
        if self.alive.load(Ordering::Acquire) {
            Ok(g)
        } else {
            Err(GONE)
        }
    }

    /// Deletes the table (its owner exited): later uses crash.
    fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        for s in self.shards.iter() {
            let old = std::mem::take(&mut *s.write());
            drop(old);
        }
        self.size.store(0, Ordering::Relaxed);
    }
}

#[inline]
fn shard_of(h: u64) -> usize {
    (h >> 58) as usize % SHARDS
}

/// The tables by id, in shards.
type Directory = Vec<RwLock<HashMap<u64, Arc<Table>>>>;

static DIR: LazyLock<Directory> = LazyLock::new(|| {
    (0..DIR_SHARDS)
        .map(|_| RwLock::new(HashMap::new()))
        .collect()
});
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TABLES: RefCell<Vec<(u64, Option<Arc<Table>>)>> =
        RefCell::new((0..CACHE).map(|_| (0, None)).collect());
}

/// Runs `f` on the table of handle `s`. A hit in this thread's cache
/// touches no shared memory but the table's `alive` flag (no reference
/// count traffic: the cache keeps the table alive while `f` runs).
fn with_table<R>(
    s: Value,
    f: impl FnOnce(&Table) -> Result<R, &'static str>,
) -> Result<R, &'static str> {
    let id = int_of(s) as u64;
    TABLES.with(|c| {
        let mut c = c.borrow_mut();
        let e = &mut c[id as usize % CACHE];
        let hit = e.0 == id
            && e.1
                .as_ref()
                .is_some_and(|t| t.alive.load(Ordering::Relaxed));
        if !hit {
            let t = DIR[id as usize % DIR_SHARDS]
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned();
            *e = (id, t);
        }
        match &e.1 {
            Some(t) => f(t),
            None => Err(GONE),
        }
    })
}

/// Key hashes are already mixed: the bucket map uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Buckets = HashMap<u64, Vec<Entry>, std::hash::BuildHasherDefault<Identity>>;

// ---------------------------------------------------------------------------
// Structural hash (consistent with `compare`'s equality)
// ---------------------------------------------------------------------------

/// Blocks a key hash looks at (a bound, as OCaml's `Hashtbl.hash`: equal
/// keys still hash equally, since the walk order is fixed).
const HASH_BLOCKS: usize = 256;

#[inline]
fn mix(h: u64, x: u64) -> u64 {
    // A splitmix64-style finaliser over the running hash.
    let mut z = (h ^ x).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `v` such that `compare a b = 0` implies equal hashes. Keys
/// holding functions are refused, as `compare` refuses them.
///
/// # Safety
/// `v` must be a valid value.
unsafe fn key_hash(v: Value) -> Result<u64, &'static str> {
    let mut h = 0x5157_u64;
    // The work list is only allocated for keys with structured blocks
    // (tuples, constructors): ints, strings and floats hash without it.
    let mut work: Vec<Value> = Vec::new();
    let mut next = Some(v);
    let mut i = 0;
    let mut blocks = 0;
    while let Some(x) = next {
        if !is_block(x) {
            h = mix(h, x);
        } else {
            blocks += 1;
            if blocks > HASH_BLOCKS {
                break;
            }
            // SAFETY: reachable from a valid value.
            unsafe {
                let hd = header(x);
                let (tag, ws) = (header_tag(hd), header_wosize(hd) as usize);
                h = mix(h, (tag as u64) << 48 | ws as u64);
                match tag {
                    TAG_STRING => {
                        for c in string_bytes(x).chunks(8) {
                            let mut w = [0u8; 8];
                            w[..c.len()].copy_from_slice(c);
                            h = mix(h, u64::from_le_bytes(w));
                        }
                    }
                    TAG_FLOAT => {
                        let f = float_of(x);
                        let bits = if f == 0.0 {
                            0
                        } else if f.is_nan() {
                            f64::NAN.to_bits()
                        } else {
                            f.to_bits()
                        };
                        h = mix(h, bits);
                    }
                    TAG_CLOSURE => return Err(caravan_vm::term::COMPARE_FUNCTIONAL),
                    t if t >= caravan_vm::value::NO_SCAN_TAG => {
                        for j in 0..ws {
                            h = mix(h, field(x, j));
                        }
                    }
                    _ => {
                        for j in 0..ws {
                            work.push(field(x, j));
                        }
                    }
                }
            }
        }
        next = work.get(i).copied();
        i += 1;
    }
    Ok(h)
}

/// `compare a b = 0` for two valid values.
///
/// # Safety
/// Both must be valid values.
unsafe fn same_key(a: Value, b: Value) -> Result<bool, &'static str> {
    let mut work = Vec::new();
    // SAFETY: caller's guarantee.
    unsafe { compare_values(a, b, true, &mut work) }.map(|r| r == 0)
}

/// Index of `key` in `bucket`.
///
/// # Safety
/// `key` must be a valid value.
unsafe fn position(bucket: &[Entry], key: Value) -> Result<Option<usize>, &'static str> {
    for (i, e) in bucket.iter().enumerate() {
        // SAFETY: caller's guarantee; stored keys are valid frozen values.
        if unsafe { same_key(e.key.value(), key) }? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Builtins
// ---------------------------------------------------------------------------

/// The crash reason when a copy into or out of a table cannot be had.
const OUT_OF_MEMORY: &str = "out of memory";

fn finish<R>(proc: *mut Process, r: Result<R, &'static str>) -> R {
    match r {
        Ok(x) => x,
        // SAFETY: every owned value of the operation was dropped when it
        // returned; we are on the process's own stack.
        Err(m) => unsafe { crash_process(proc, m) },
    }
}

/// `Store.create ()`: a new table owned by the caller (deleted when it
/// ends). The handle is the immediate int of the table's id.
///
/// # Safety
/// Called by generated code only: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_create(proc: *mut Process, _unit: Value) -> Value {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let t = Arc::new(Table::new());
    DIR[id as usize % DIR_SHARDS]
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, t);
    let hook = Box::new(move |_serial: u64, _reason: &caravan_vm::ExitReason| {
        let t = DIR[id as usize % DIR_SHARDS]
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(t) = t {
            t.kill();
        }
    });
    // SAFETY: `proc` is the running process.
    unsafe { at_exit(proc, hook) };
    of_int(id as i64)
}

/// Stores `(vopt, new version)` under `key` if `expect` is `None` or the
/// key's current version (0: absent); true if it did.
///
/// # Safety
/// `proc` is the running process; `key`, `vopt` valid values of it.
unsafe fn install(
    proc: *mut Process,
    s: Value,
    key: Value,
    vopt: Value,
    expect: Option<u64>,
) -> Result<bool, &'static str> {
    // SAFETY: caller's guarantee.
    let h = unsafe { key_hash(key) }?;
    // Copies are made before any lock is taken.
    // SAFETY: caller's guarantee.
    let (kf, kw) = unsafe { Frozen::freeze(proc, key) }.ok_or(OUT_OF_MEMORY)?;
    // SAFETY: caller's guarantee.
    let (mut vf, vw) = unsafe { Frozen::freeze_pair(proc, vopt, 0) }.ok_or(OUT_OF_MEMORY)?;
    // SAFETY: the running process.
    unsafe { (*proc).charge(2 + ((kw + vw) >> 4) as i64) };
    let old = with_table(s, |t| {
        let mut g = t.write(h)?;
        let bucket = g.entry(h).or_default();
        // SAFETY: a frozen key is a valid value.
        let at = unsafe { position(bucket, kf.value()) }?;
        let current = at.map_or(0, |i| bucket[i].version());
        if expect.is_some_and(|v| v != current) {
            return Ok(None);
        }
        vf.set_pair_int(t.next_version.fetch_add(1, Ordering::Relaxed) as i64);
        Ok(Some(match at {
            Some(i) => Some(std::mem::replace(&mut bucket[i].val, vf)),
            None => {
                bucket.push(Entry { key: kf, val: vf });
                t.size.fetch_add(1, Ordering::Relaxed);
                None
            }
        }))
    })?;
    // The replaced value (if any) is freed here, outside the lock.
    Ok(old.is_some())
}

/// `Store.put` (as `put s k (Some v)`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_put(
    proc: *mut Process,
    s: Value,
    key: Value,
    vopt: Value,
) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { install(proc, s, key, vopt, None) };
    finish(proc, r);
    UNIT
}

/// `Store.update`'s install step: stores `vopt` under `key` only if the
/// key's version is still `version` (as read by
/// [`caravan_store_fetch`]); a tagged bool.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_swap(
    proc: *mut Process,
    s: Value,
    key: Value,
    version: Value,
    vopt: Value,
) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { install(proc, s, key, vopt, Some(int_of(version) as u64)) };
    caravan_vm::value::of_bool(finish(proc, r))
}

/// Reads `key`: with `whole`, a copy of the frozen `(Some v, version)`;
/// else of `Some v`. `None` if absent.
///
/// # Safety
/// `proc` is the running process; `key` a valid value of it.
unsafe fn read(
    proc: *mut Process,
    s: Value,
    key: Value,
    whole: bool,
) -> Result<Option<Value>, &'static str> {
    // SAFETY: caller's guarantee.
    let h = unsafe { key_hash(key) }?;
    with_table(s, |t| {
        let g = t.read(h)?;
        let Some(bucket) = g.get(&h) else {
            return Ok(None);
        };
        // SAFETY: caller's guarantee on `key`.
        let Some(i) = unsafe { position(bucket, key) }? else {
            return Ok(None);
        };
        let e = &bucket[i];
        // SAFETY: the entry is live and unchanged under the read lock;
        // the copy never crashes nor switches.
        let v = unsafe {
            if whole {
                e.val.thaw(proc)
            } else {
                copy_into(proc, e.val.field(0))
            }
        };
        v.map(Some).ok_or(OUT_OF_MEMORY)
    })
}

/// `Store.get s k`: a copy of the value, or `None`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_get(proc: *mut Process, s: Value, key: Value) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { read(proc, s, key, false) };
    // SAFETY: the running process.
    unsafe { (*proc).charge(1) };
    finish(proc, r).unwrap_or(UNIT)
}

/// `Store.update`'s read step: `(Some v, version)`, or `(None, 0)`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_fetch(proc: *mut Process, s: Value, key: Value) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { read(proc, s, key, true) };
    match finish(proc, r) {
        Some(v) => v,
        None => {
            // SAFETY: the running process.
            let b = alloc_block(unsafe { &mut *proc }, 0, 2);
            // SAFETY: a fresh block of two fields.
            unsafe {
                *b = UNIT;
                *b.add(1) = of_int(0);
            }
            b as Value
        }
    }
}

/// `Store.delete s k`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_delete(proc: *mut Process, s: Value, key: Value) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { key_hash(key) }.and_then(|h| {
        with_table(s, |t| {
            let mut g = t.write(h)?;
            let Some(bucket) = g.get_mut(&h) else {
                return Ok(None);
            };
            // SAFETY: caller's guarantee on `key`.
            let Some(i) = unsafe { position(bucket, key) }? else {
                return Ok(None);
            };
            let e = bucket.swap_remove(i);
            if bucket.is_empty() {
                g.remove(&h);
            }
            t.size.fetch_sub(1, Ordering::Relaxed);
            Ok(Some(e))
        })
    });
    // The removed entry is freed here, outside the lock.
    drop(finish(proc, r));
    UNIT
}

/// Whether `key` is in the table (no copy is made).
///
/// # Safety
/// `key` must be a valid value.
unsafe fn contains(s: Value, key: Value) -> Result<bool, &'static str> {
    // SAFETY: caller's guarantee.
    let h = unsafe { key_hash(key) }?;
    with_table(s, |t| {
        let g = t.read(h)?;
        match g.get(&h) {
            // SAFETY: caller's guarantee.
            Some(bucket) => Ok(unsafe { position(bucket, key) }?.is_some()),
            None => Ok(false),
        }
    })
}

/// `Store.mem s k`: a tagged bool (copies nothing out).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_mem(proc: *mut Process, s: Value, key: Value) -> Value {
    // SAFETY: caller's guarantee.
    let r = unsafe { contains(s, key) };
    caravan_vm::value::of_bool(finish(proc, r))
}

/// `Store.size s`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_size(proc: *mut Process, s: Value) -> Value {
    let r = with_table(s, |t| {
        if t.alive.load(Ordering::Acquire) {
            Ok(t.size.load(Ordering::Relaxed).max(0))
        } else {
            Err(GONE)
        }
    });
    of_int(finish(proc, r))
}

/// `Store.to_list s`: copies of every `(key, value)`, sorted by key
/// (`compare`). A snapshot: every shard is read-locked for the copy.
///
/// # Safety
/// Called by generated code only: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_store_to_list(proc: *mut Process, s: Value) -> Value {
    let r = with_table(s, |t| {
        let mut guards = Vec::with_capacity(SHARDS);
        for sh in t.shards.iter() {
            guards.push(sh.read());
        }
        if !t.alive.load(Ordering::Acquire) {
            return Err(GONE);
        }
        let mut entries: Vec<&Entry> = guards.iter().flat_map(|g| g.values().flatten()).collect();
        let mut work = Vec::new();
        let mut failed = None;
        entries.sort_by(|a, b| {
            // SAFETY: frozen keys are valid values.
            match unsafe { compare_values(a.key.value(), b.key.value(), true, &mut work) } {
                Ok(r) => r.cmp(&0),
                Err(m) => {
                    failed = Some(m);
                    std::cmp::Ordering::Equal
                }
            }
        });
        if let Some(m) = failed {
            return Err(m);
        }
        // The list, built in memory of our own — cons cells and pairs
        // pointing at the frozen keys and values — then copied into the
        // caller's heap in one go (no heap value is held across an
        // allocation).
        let n = entries.len();
        let mut buf: Vec<u64> = vec![0; n * 6];
        let base = buf.as_mut_ptr();
        let mut list = UNIT;
        for (i, e) in entries.iter().enumerate().rev() {
            // SAFETY: `buf` has six words per entry and is never resized;
            // the pair and cons cell of entry `i` are words 6i..6i+6.
            unsafe {
                let pair = base.add(6 * i);
                *pair = make_header(2, 0);
                *pair.add(1) = e.key.value();
                *pair.add(2) = field(e.val.field(0), 0);
                let cell = pair.add(3);
                *cell = make_header(2, 0);
                *cell.add(1) = pair.add(1) as Value;
                *cell.add(2) = list;
                list = cell.add(1) as Value;
            }
        }
        // SAFETY: `list` and all it reaches (our buffer, frozen entries
        // under the read locks) are live and unchanged during the copy.
        let v = unsafe { copy_into(proc, list) };
        drop(buf);
        v.ok_or(OUT_OF_MEMORY)
    });
    finish(proc, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `n` int keys (values: an immortal `(Some k, 1)` pair),
    /// registered in the directory like one made by `Store.create`;
    /// returns its handle.
    fn table_of_ints(n: i64) -> Value {
        let t = Table::new();
        for k in 0..n {
            let key = of_int(k);
            // SAFETY: an immediate is a valid value.
            let h = unsafe { key_hash(key) }.unwrap();
            let some = caravan_vm::literal_block(0, 1);
            let pair = caravan_vm::literal_block(0, 2);
            // SAFETY: fresh literal blocks of one and two fields.
            let val = unsafe {
                *some = key;
                *pair = some as Value;
                *pair.add(1) = of_int(1);
                Frozen::shared(pair as Value)
            };
            // SAFETY: an immediate.
            let kf = unsafe { Frozen::shared(key) };
            t.shards[shard_of(h)]
                .write()
                .entry(h)
                .or_default()
                .push(Entry { key: kf, val });
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        DIR[id as usize % DIR_SHARDS]
            .write()
            .unwrap()
            .insert(id, Arc::new(t));
        of_int(id as i64)
    }

    #[test]
    fn lookups_find_what_is_there() {
        let s = table_of_ints(1000);
        // SAFETY: immediates are valid values.
        unsafe {
            assert!(contains(s, of_int(0)).unwrap());
            assert!(contains(s, of_int(999)).unwrap());
            assert!(!contains(s, of_int(1000)).unwrap());
            assert_eq!(contains(of_int(1 << 40), of_int(1)), Err(GONE));
        }
    }

    /// The read path alone (directory cache, key hash, shard read lock,
    /// key compare; no copy out) from 1, 2, 4 and 8 OS threads on one
    /// table. `cargo test --release -p caravan-stdlib read_path -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn read_path_scales() {
        let s = table_of_ints(4096);
        // The baseline: the same lookups in 16 striped std `RwLock`s (one
        // reader count per stripe, written by every reader).
        #[repr(align(128))]
        struct Stripe(RwLock<HashMap<i64, i64>>);
        let stripes: Vec<Stripe> = (0..16)
            .map(|_| Stripe(RwLock::new(HashMap::new())))
            .collect();
        for k in 0..4096i64 {
            stripes[k as usize % 16].0.write().unwrap().insert(k, k);
        }
        let per_thread = 2_000_000u64;
        for threads in [1u64, 2, 4, 8] {
            let t0 = std::time::Instant::now();
            std::thread::scope(|sc| {
                for th in 0..threads {
                    sc.spawn(move || {
                        let mut found = 0u64;
                        for i in 0..per_thread {
                            let k = ((i * 7 + th * 1021) % 4096) as i64;
                            // SAFETY: an immediate key.
                            if unsafe { contains(s, of_int(k)) }.unwrap() {
                                found += 1;
                            }
                        }
                        assert_eq!(found, per_thread);
                    });
                }
            });
            let store = (threads * per_thread) as f64 / t0.elapsed().as_secs_f64() / 1e6;
            let t0 = std::time::Instant::now();
            std::thread::scope(|sc| {
                for th in 0..threads {
                    let stripes = &stripes;
                    sc.spawn(move || {
                        let mut found = 0u64;
                        for i in 0..per_thread {
                            let k = ((i * 7 + th * 1021) % 4096) as i64;
                            if stripes[k as usize % 16].0.read().unwrap().contains_key(&k) {
                                found += 1;
                            }
                        }
                        assert_eq!(found, per_thread);
                    });
                }
            });
            let base = (threads * per_thread) as f64 / t0.elapsed().as_secs_f64() / 1e6;
            eprintln!(
                "read path, {threads} thread(s): Store {store:.1} M lookups/s; striped RwLock baseline {base:.1} M/s"
            );
        }
    }
}
