//! The process table (live processes by serial) and the exit reasons of
//! dead ones.

use super::*;
use std::hash::{BuildHasherDefault, Hasher};

const TABLE_SHARDS: usize = 64;

/// A shard of at most this capacity (entries) is never shrunk.
const SHRINK_ABOVE: usize = 64;

/// log2 of the runs of consecutive serials one shard takes in turn.
const RUN_BITS: u32 = 3;

/// The shard of `serial`: runs of `1 << RUN_BITS` consecutive serials,
/// dealt out round-robin.
///
/// Why runs: a scheduler spawning processes in a row then takes one lock
/// (one cache line, hot in its cache) for each run instead of a different
/// one per process. Why short ones: the other scheduler often ends the
/// processes just spawned (spawn-and-exit), and a run as long as a serial
/// block (64) made the two fight over the lock: spawn-and-exit 1 M went
/// from 267 ms to 308 ms, while skynet 1 M gained 9 %.
#[inline]
fn shard_of(serial: u64) -> usize {
    (serial >> RUN_BITS) as usize % TABLE_SHARDS
}

/// The hash of a serial inside its shard: the serial without the shard's
/// bits, so the serials one shard holds, in order, land in consecutive
/// buckets; its low 7 bits are copied to the top, where hashbrown takes
/// each bucket's control byte from, so neighbours' control bytes differ
/// and a probe compares one key.
///
/// Why not a multiplicative hash (`WordHasher`): it scatters consecutive
/// serials over the table, and spawning, sending to and ending a process
/// missed the cache twice each (the control bytes, then the bucket; 60 %
/// of `ProcTable::remove`'s samples on skynet 1 M, where the table holds
/// ~200 k processes). Processes made together mostly end together, so with
/// this layout a burst works on a few lines per shard. Serials only grow:
/// a shard fills like a ring (a key's bucket was last used by a process
/// one table-length of serials older, long gone).
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

impl Hasher for SerialHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    /// Serials hash through [`Hasher::write_u64`]; other input (none in
    /// this module) is folded into one word the same way, so no runtime
    /// path can panic here.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (i, b) in bytes.iter().enumerate() {
            word[i % 8] ^= b;
        }
        self.write_u64(u64::from_le_bytes(word));
    }
    #[inline]
    fn write_u64(&mut self, serial: u64) {
        let run = (1 << RUN_BITS) - 1;
        let shard_bits = RUN_BITS + TABLE_SHARDS.trailing_zeros();
        let dense = (serial & run) | ((serial >> shard_bits) << RUN_BITS);
        self.0 = dense | (dense << 57);
    }
}

/// A map keyed by serial, laid out by [`SerialHasher`].
type SerialMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<SerialHasher>>;

/// Live processes by serial, in [`TABLE_SHARDS`] shards ([`shard_of`],
/// laid out by [`SerialHasher`]). A dead process's entry is removed when
/// it exits; holders of its `Arc<Shared>` still see it as `Exited`.
pub(crate) struct ProcTable {
    shards: Box<[Mutex<SerialMap<Arc<Shared>>>]>,
}

impl ProcTable {
    pub(crate) fn new() -> Self {
        ProcTable {
            shards: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(SerialMap::default()))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn shard(&self, serial: u64) -> &Mutex<SerialMap<Arc<Shared>>> {
        &self.shards[shard_of(serial)]
    }

    #[inline]
    pub(crate) fn get(&self, serial: u64) -> Option<Arc<Shared>> {
        lock(self.shard(serial)).get(&serial).cloned()
    }

    pub(crate) fn insert(&self, serial: u64, s: Arc<Shared>) {
        lock(self.shard(serial)).insert(serial, s);
    }

    /// Removes `serial`'s entry. A shard left mostly empty (under an
    /// eighth of its capacity) gives the capacity back, so a burst of
    /// processes does not keep its table for the life of the VM: each
    /// shrink halves the capacity at least and rehashes at most an eighth
    /// of it, so the removals pay for it (amortised O(1)).
    pub(crate) fn remove(&self, serial: u64) {
        let mut shard = lock(self.shard(serial));
        let old = shard.remove(&serial);
        if shard.capacity() > SHRINK_ABOVE && shard.len() * 8 < shard.capacity() {
            let len = shard.len();
            shard.shrink_to(len * 2);
        }
        drop(shard);
        drop(old);
    }

    /// Every live entry (a snapshot).
    pub(crate) fn all(&self) -> Vec<(u64, Arc<Shared>)> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(lock(s).iter().map(|(k, v)| (*k, v.clone())));
        }
        out
    }

    pub(crate) fn drain(&self) -> Vec<Arc<Shared>> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(lock(s).drain().map(|(_, v)| v));
        }
        out
    }
}

const DEAD_SHARDS: usize = 16;

/// Exit reasons of dead processes, for `join` on a pid whose process is
/// gone. Only abnormal reasons are stored: a serial that was allocated and
/// is neither live nor here exited `Normal`. Never shrinks: each crashed
/// process costs one entry (about 64 bytes plus its message) for the life
/// of the VM.
pub(crate) struct DeadTable {
    shards: Box<[Mutex<WordMap<ExitReason>>]>,
    /// Entries ever inserted: while 0 (no process ended abnormally), a
    /// lookup takes no lock — `join` on a process that ended `Normal` is
    /// the common case (spawn-and-exit: two atomic operations less a
    /// process).
    len: AtomicUsize,
}

impl DeadTable {
    pub(crate) fn new() -> Self {
        DeadTable {
            shards: (0..DEAD_SHARDS)
                .map(|_| Mutex::new(WordMap::default()))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }
    /// Records `serial`'s exit reason; call before the process leaves the
    /// process table, so that a lookup that misses the table finds it.
    pub(crate) fn insert(&self, serial: u64, r: ExitReason) {
        let mut shard = lock(&self.shards[serial as usize % DEAD_SHARDS]);
        shard.insert(serial, r);
        self.len.fetch_add(1, Ordering::Release);
    }
    /// `serial`'s stored exit reason. A caller that found `serial` gone
    /// from the process table (under its lock) sees an insert made before
    /// the removal: the count is then not 0.
    pub(crate) fn get(&self, serial: u64) -> Option<ExitReason> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        lock(&self.shards[serial as usize % DEAD_SHARDS])
            .get(&serial)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout: the serials one shard holds, in order, hash to
    /// consecutive buckets with distinct control bytes (the top 7 bits).
    #[test]
    fn a_shards_serials_hash_to_consecutive_buckets() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<SerialHasher>::default();
        let in_shard: Vec<u64> = (0..100_000u64).filter(|&s| shard_of(s) == 5).collect();
        assert!(in_shard.len() > 1000);
        let hashes: Vec<u64> = in_shard.iter().map(|&s| b.hash_one(s)).collect();
        for (i, w) in hashes.windows(2).enumerate() {
            let (low0, low1) = (w[0] & ((1 << 57) - 1), w[1] & ((1 << 57) - 1));
            assert_eq!(
                low1,
                low0 + 1,
                "serials {} and {}",
                in_shard[i],
                in_shard[i + 1]
            );
            assert_ne!(w[0] >> 57, w[1] >> 57);
        }
        // A run of serials shares a shard; the next run moves on.
        let r = 1 << RUN_BITS;
        assert_eq!(shard_of(r * 7), shard_of(r * 7 + r - 1));
        assert_ne!(shard_of(r * 7), shard_of(r * 8));
    }

    /// Serials only grow, so buckets are reused a table-length of serials
    /// later: a sliding window of live processes stays findable, the dead
    /// stay gone, and the table stays the window's size.
    #[test]
    fn a_sliding_window_of_serials_stays_findable() {
        let t = ProcTable::new();
        let window = 5_000u64;
        for s in 0..300_000u64 {
            t.insert(s, Arc::new(Shared::new()));
            if s >= window {
                t.remove(s - window);
            }
            if s % 997 == 0 {
                assert!(t.get(s).is_some());
                assert!(t.get(s.saturating_sub(window / 2)).is_some());
                if s > window {
                    assert!(t.get(s - window).is_none(), "serial {} is dead", s - window);
                }
            }
        }
        let len: usize = t.shards.iter().map(|s| lock(s).len()).sum();
        assert_eq!(len, window as usize);
        let capacity: usize = t.shards.iter().map(|s| lock(s).capacity()).sum();
        assert!(capacity <= 8 * window as usize, "{capacity}");
    }

    /// Lookups before any abnormal exit take the lock-free path and find
    /// nothing; once a reason is stored, it is found and others are not.
    #[test]
    fn the_dead_table_finds_stored_reasons_only() {
        let d = DeadTable::new();
        assert!(d.get(7).is_none());
        d.insert(7, ExitReason::crashed("boom"));
        assert!(matches!(d.get(7), Some(ExitReason::Crashed(ref m)) if &**m == b"boom"));
        assert!(d.get(8).is_none());
        assert!(d.get(7 + DEAD_SHARDS as u64).is_none());
    }

    /// A burst of processes that all ended leaves no big table behind:
    /// before, each shard kept the capacity of its fullest moment.
    #[test]
    fn the_table_gives_back_the_capacity_of_a_burst() {
        let t = ProcTable::new();
        let n = 100_000u64;
        for s in 0..n {
            t.insert(s, Arc::new(Shared::new()));
        }
        let capacity = |t: &ProcTable| t.shards.iter().map(|s| lock(s).capacity()).sum::<usize>();
        assert!(capacity(&t) >= n as usize);
        // All but a few, as after a burst: the survivors stay findable.
        for s in 0..n {
            if s % 1000 != 0 {
                t.remove(s);
            }
        }
        assert!(
            capacity(&t) <= TABLE_SHARDS * SHRINK_ABOVE * 2,
            "{}",
            capacity(&t)
        );
        for s in 0..n {
            assert_eq!(t.get(s).is_some(), s % 1000 == 0, "serial {s}");
        }
    }
}
