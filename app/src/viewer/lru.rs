//! A map bounded by entry count and bytes that drops the least recently used entries first:
//! the one eviction policy of the viewer's caches (GPU uploads, down-sampled frames).

use std::collections::HashMap;
use std::hash::Hash;

/// A map that keeps at most `max_entries` entries and `max_bytes` bytes (by the sizes given on
/// insert), dropping the least recently used first.
#[derive(Debug)]
pub struct Lru<K, V> {
    entries: HashMap<K, (V, u64, u64)>,
    clock: u64,
    bytes: u64,
    max_entries: usize,
    max_bytes: u64,
}

impl<K: Hash + Eq + Copy, V> Lru<K, V> {
    pub fn new(max_entries: usize, max_bytes: u64) -> Self {
        Self { entries: HashMap::new(), clock: 0, bytes: 0, max_entries: max_entries.max(1), max_bytes }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Keeps only the entries whose key `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        let mut dropped = 0;
        self.entries.retain(|key, (_, bytes, _)| {
            let kept = keep(key);
            if !kept {
                dropped += *bytes;
            }
            kept
        });
        self.bytes -= dropped;
    }

    /// The value of `key`, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.clock += 1;
        let (value, _, last_used) = self.entries.get_mut(key)?;
        *last_used = self.clock;
        Some(value)
    }

    /// Puts `value` of `bytes` bytes under `key` (replacing any), first dropping the least
    /// recently used entries until it fits.
    pub fn insert(&mut self, key: K, value: V, bytes: u64) {
        self.clock += 1;
        if let Some((_, old_bytes, _)) = self.entries.remove(&key) {
            self.bytes -= old_bytes;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes)
        {
            let Some(oldest) =
                self.entries.iter().min_by_key(|(_, (_, _, last_used))| *last_used).map(|(key, _)| *key)
            else {
                break;
            };
            if let Some((_, old_bytes, _)) = self.entries.remove(&oldest) {
                self.bytes -= old_bytes;
            }
        }
        self.bytes += bytes;
        self.entries.insert(key, (value, bytes, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut lru = Lru::new(2, u64::MAX);
        lru.insert(1, "a", 10);
        lru.insert(2, "b", 10);
        assert_eq!(lru.get(&1), Some(&"a"));
        lru.insert(3, "c", 10);
        assert_eq!(lru.get(&2), None, "2 was used least recently");
        assert_eq!((lru.get(&1).copied(), lru.get(&3).copied()), (Some("a"), Some("c")));
        assert_eq!((lru.len(), lru.bytes()), (2, 20));
    }

    #[test]
    fn the_byte_budget_evicts_until_the_new_entry_fits() {
        let mut lru = Lru::new(10, 100);
        lru.insert(1, (), 40);
        lru.insert(2, (), 40);
        lru.insert(3, (), 40);
        assert_eq!((lru.len(), lru.bytes()), (2, 80));
        assert!(lru.get(&1).is_none());
        // One entry over budget on its own still stays: the view needs it now.
        lru.insert(4, (), 500);
        assert_eq!((lru.len(), lru.bytes()), (1, 500));
    }

    #[test]
    fn retain_drops_the_rest_and_their_bytes() {
        let mut lru = Lru::new(10, 100);
        lru.insert(1, "a", 10);
        lru.insert(2, "b", 20);
        lru.insert(3, "c", 30);
        lru.retain(|&key| key != 2);
        assert_eq!((lru.len(), lru.bytes()), (2, 40));
        assert!(lru.get(&2).is_none());
    }

    #[test]
    fn replacing_a_key_replaces_its_bytes() {
        let mut lru = Lru::new(10, 100);
        lru.insert(1, "old", 60);
        lru.insert(1, "new", 30);
        assert_eq!((lru.get(&1).copied(), lru.len(), lru.bytes()), (Some("new"), 1, 30));
    }
}
