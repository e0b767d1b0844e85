//! The process table (live processes by serial) and the exit reasons of
//! dead ones.

use super::*;

const TABLE_SHARDS: usize = 64;

/// A shard of at most this capacity (entries) is never shrunk.
const SHRINK_ABOVE: usize = 64;

/// Live processes by serial. Sharded by the low bits of the serial (serials
/// are sequential, so shards fill evenly). A dead process's entry is
/// removed when it exits; holders of its `Arc<Shared>` still see it as
/// `Exited`.
pub(crate) struct ProcTable {
    shards: Box<[Mutex<WordMap<Arc<Shared>>>]>,
}

impl ProcTable {
    pub(crate) fn new() -> Self {
        ProcTable {
            shards: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(WordMap::default()))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn shard(&self, serial: u64) -> &Mutex<WordMap<Arc<Shared>>> {
        &self.shards[serial as usize % TABLE_SHARDS]
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
}

impl DeadTable {
    pub(crate) fn new() -> Self {
        DeadTable {
            shards: (0..DEAD_SHARDS)
                .map(|_| Mutex::new(WordMap::default()))
                .collect(),
        }
    }
    pub(crate) fn insert(&self, serial: u64, r: ExitReason) {
        lock(&self.shards[serial as usize % DEAD_SHARDS]).insert(serial, r);
    }
    pub(crate) fn get(&self, serial: u64) -> Option<ExitReason> {
        lock(&self.shards[serial as usize % DEAD_SHARDS])
            .get(&serial)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
