//! The simulator's KV-cache model: fixed-size blocks identified by a hash
//! chain (a block is reusable only if its whole prefix is), a first tier with
//! LRU eviction of unreferenced blocks, and an optional second tier (offload)
//! that evicted blocks move to.
//!
//! This follows vLLM's automatic prefix caching: only full prompt blocks are
//! cached; at most `prompt_len - 1` tokens can be a hit, rounded down to a
//! block, because the last prompt token must be computed to sample from it;
//! blocks are freed tail first so that eviction takes the ends of chains
//! before their heads.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use super::tokenizer::TokenId;

/// Identity of a block: a hash of its tokens and of its parent's hash.
pub type BlockHash = u64;

/// The hash chain of the full blocks of `tokens`.
pub fn block_hashes(tokens: &[TokenId], block_size: usize) -> Vec<BlockHash> {
    let mut parent: BlockHash = 0;
    tokens
        .chunks_exact(block_size)
        .map(|block| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            parent.hash(&mut hasher);
            block.hash(&mut hasher);
            parent = hasher.finish();
            parent
        })
        .collect()
}

/// Where the cached prefix of a prompt was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrefixHit {
    /// Leading blocks found in the first tier.
    pub first_tier_blocks: usize,
    /// Blocks after those found in the second tier (they must be loaded).
    pub second_tier_blocks: usize,
}

impl PrefixHit {
    pub fn blocks(&self) -> usize {
        self.first_tier_blocks + self.second_tier_blocks
    }
}

/// A sequence's hold on the cache, returned by [`KvCache::allocate`].
#[derive(Debug, Default)]
pub struct Allocation {
    /// Cached blocks this sequence references, in chain order.
    referenced: Vec<BlockHash>,
    /// Blocks the sequence holds that are not (or not yet) cached.
    private_blocks: usize,
}

/// Counters since start, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KvCounters {
    pub evicted_blocks: u64,
    pub offloaded_blocks: u64,
    pub offload_dropped_blocks: u64,
}

#[derive(Debug)]
struct Block {
    refs: u32,
    /// Position in the eviction queue while `refs == 0`.
    stamp: u64,
}

/// The two-tier prefix cache.
#[derive(Debug)]
pub struct KvCache {
    capacity_blocks: usize,
    offload_capacity_blocks: usize,
    cached: HashMap<BlockHash, Block>,
    /// Unreferenced cached blocks by age: the first is evicted first.
    evictable: BTreeMap<u64, BlockHash>,
    /// Blocks held by sequences that are not in `cached`.
    private_blocks: usize,
    offload: HashMap<BlockHash, u64>,
    offload_order: BTreeMap<u64, BlockHash>,
    clock: u64,
    counters: KvCounters,
}

impl KvCache {
    pub fn new(capacity_blocks: usize, offload_capacity_blocks: usize) -> Self {
        Self {
            capacity_blocks,
            offload_capacity_blocks,
            cached: HashMap::new(),
            evictable: BTreeMap::new(),
            private_blocks: 0,
            offload: HashMap::new(),
            offload_order: BTreeMap::new(),
            clock: 0,
            counters: KvCounters::default(),
        }
    }

    pub fn capacity_blocks(&self) -> usize {
        self.capacity_blocks
    }

    /// Blocks held by running sequences (cached or not), as vLLM's KV usage
    /// counts them: unreferenced cached blocks are reclaimable, so free.
    pub fn used_blocks(&self) -> usize {
        self.cached.len() - self.evictable.len() + self.private_blocks
    }

    /// Cached blocks in the first tier, referenced or not.
    pub fn cached_blocks(&self) -> usize {
        self.cached.len()
    }

    pub fn offloaded_blocks(&self) -> usize {
        self.offload.len()
    }

    pub fn counters(&self) -> KvCounters {
        self.counters
    }

    /// The longest cached prefix of `hashes`, at most `max_blocks` long.
    pub fn lookup(&self, hashes: &[BlockHash], max_blocks: usize) -> PrefixHit {
        let hashes = &hashes[..hashes.len().min(max_blocks)];
        let first_tier_blocks = hashes
            .iter()
            .take_while(|hash| self.cached.contains_key(hash))
            .count();
        let second_tier_blocks = hashes[first_tier_blocks..]
            .iter()
            .take_while(|hash| self.offload.contains_key(hash))
            .count();
        PrefixHit {
            first_tier_blocks,
            second_tier_blocks,
        }
    }

    /// Takes the blocks a sequence needs: references the first-tier part of
    /// `hit`, and `total_blocks - hit.first_tier_blocks` new blocks (those
    /// loaded from the second tier among them). Returns `None`, changing
    /// nothing, when the first tier cannot hold them even after evicting
    /// every unreferenced block.
    pub fn allocate(
        &mut self,
        hashes: &[BlockHash],
        hit: PrefixHit,
        total_blocks: usize,
    ) -> Option<Allocation> {
        let reused = &hashes[..hit.first_tier_blocks];
        let newly_referenced = reused
            .iter()
            .filter(|hash| self.cached[*hash].refs == 0)
            .count();
        let new_blocks = total_blocks - hit.first_tier_blocks;
        let reclaimable = self.capacity_blocks - self.used_blocks() - newly_referenced;
        if new_blocks > reclaimable {
            return None;
        }
        for hash in reused {
            self.reference(*hash);
        }
        self.private_blocks += new_blocks;
        self.evict_to_fit();
        let mut allocation = Allocation {
            referenced: reused.to_vec(),
            private_blocks: new_blocks,
        };
        // Blocks loaded from the second tier are computed as soon as they
        // arrive: cache them now, in chain order.
        let loaded = &hashes[hit.first_tier_blocks..hit.blocks()];
        for hash in loaded {
            self.register(&mut allocation, *hash);
        }
        Some(allocation)
    }

    /// Marks the sequence's next block, now computed, as cached.
    pub fn register(&mut self, allocation: &mut Allocation, hash: BlockHash) {
        match self.cached.entry(hash) {
            // Another sequence computed the same block first: share it and
            // release this sequence's copy.
            Entry::Occupied(mut block) => {
                let block = block.get_mut();
                if block.refs == 0 {
                    self.evictable.remove(&block.stamp);
                }
                block.refs += 1;
            }
            Entry::Vacant(slot) => {
                slot.insert(Block { refs: 1, stamp: 0 });
            }
        }
        self.private_blocks -= 1;
        allocation.private_blocks -= 1;
        allocation.referenced.push(hash);
    }

    /// Number of cached blocks the allocation references.
    pub fn registered(allocation: &Allocation) -> usize {
        allocation.referenced.len()
    }

    /// Releases a finished or aborted sequence's blocks, tail first.
    pub fn free(&mut self, allocation: Allocation) {
        self.private_blocks -= allocation.private_blocks;
        for hash in allocation.referenced.iter().rev() {
            let block = self
                .cached
                .get_mut(hash)
                .expect("referenced block is cached");
            block.refs -= 1;
            if block.refs == 0 {
                self.clock += 1;
                block.stamp = self.clock;
                self.evictable.insert(self.clock, *hash);
            }
        }
    }

    fn reference(&mut self, hash: BlockHash) {
        let block = self.cached.get_mut(&hash).expect("reused block is cached");
        if block.refs == 0 {
            self.evictable.remove(&block.stamp);
        }
        block.refs += 1;
    }

    /// Forgets every cached block no sequence holds, in both tiers (vLLM's
    /// `/reset_prefix_cache`). Returns how many blocks were dropped.
    pub fn reset(&mut self) -> usize {
        let dropped = self.evictable.len() + self.offload.len();
        for (_, hash) in std::mem::take(&mut self.evictable) {
            self.cached.remove(&hash);
        }
        self.offload.clear();
        self.offload_order.clear();
        dropped
    }

    /// Evicts unreferenced blocks, oldest first, until the tier fits.
    fn evict_to_fit(&mut self) {
        while self.cached.len() + self.private_blocks > self.capacity_blocks {
            let (_, hash) = self
                .evictable
                .pop_first()
                .expect("allocate checked that enough blocks are reclaimable");
            self.cached.remove(&hash);
            self.counters.evicted_blocks += 1;
            self.offload_block(hash);
        }
    }

    fn offload_block(&mut self, hash: BlockHash) {
        if self.offload_capacity_blocks == 0 {
            return;
        }
        self.clock += 1;
        if let Some(stamp) = self.offload.insert(hash, self.clock) {
            self.offload_order.remove(&stamp);
        } else {
            self.counters.offloaded_blocks += 1;
        }
        self.offload_order.insert(self.clock, hash);
        while self.offload.len() > self.offload_capacity_blocks {
            let (_, oldest) = self
                .offload_order
                .pop_first()
                .expect("offload is not empty");
            self.offload.remove(&oldest);
            self.counters.offload_dropped_blocks += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(start: u32, blocks: usize) -> Vec<BlockHash> {
        let tokens: Vec<TokenId> = (start..start + (blocks * 4) as u32).collect();
        block_hashes(&tokens, 4)
    }

    fn run(cache: &mut KvCache, hashes: &[BlockHash], total_blocks: usize) -> PrefixHit {
        let hit = cache.lookup(hashes, hashes.len());
        let mut allocation = cache.allocate(hashes, hit, total_blocks).expect("fits");
        for hash in &hashes[hit.blocks()..] {
            cache.register(&mut allocation, *hash);
        }
        cache.free(allocation);
        hit
    }

    #[test]
    fn a_block_matches_only_with_its_whole_prefix() {
        let a = block_hashes(&[1, 2, 3, 4, 5, 6, 7, 8], 4);
        let b = block_hashes(&[9, 9, 9, 9, 5, 6, 7, 8], 4);
        assert_ne!(a[1], b[1], "same tokens after a different prefix");
        assert_eq!(
            block_hashes(&[1, 2, 3, 4, 5, 6, 7], 4).len(),
            1,
            "partial block"
        );
    }

    #[test]
    fn repeated_prefix_hits_and_capacity_is_respected() {
        let mut cache = KvCache::new(8, 0);
        let prompt = chain(0, 4);
        assert_eq!(run(&mut cache, &prompt, 5).blocks(), 0);
        assert_eq!(run(&mut cache, &prompt, 5).first_tier_blocks, 4);
        assert_eq!(cache.used_blocks(), 0);
        assert_eq!(cache.cached_blocks(), 4);
    }

    #[test]
    fn lru_evicts_the_least_recently_used_chain_tail_first() {
        let mut cache = KvCache::new(8, 0);
        let old = chain(0, 4);
        let recent = chain(100, 4);
        run(&mut cache, &old, 4);
        run(&mut cache, &recent, 4);
        // A third prompt needing two blocks evicts the tail of `old`.
        run(&mut cache, &chain(200, 2), 2);
        assert_eq!(cache.lookup(&old, 4).first_tier_blocks, 2);
        assert_eq!(cache.lookup(&recent, 4).first_tier_blocks, 4);
        assert_eq!(cache.counters().evicted_blocks, 2);
    }

    #[test]
    fn referenced_blocks_are_never_evicted() {
        let mut cache = KvCache::new(4, 0);
        let held = chain(0, 3);
        let hit = cache.lookup(&held, 3);
        let mut allocation = cache.allocate(&held, hit, 3).unwrap();
        for hash in &held {
            cache.register(&mut allocation, *hash);
        }
        let other = chain(50, 2);
        let hit = cache.lookup(&other, 2);
        assert!(
            cache.allocate(&other, hit, 2).is_none(),
            "only one block free"
        );
        cache.free(allocation);
        assert!(cache.allocate(&other, hit, 2).is_some());
    }

    #[test]
    fn evicted_blocks_come_back_from_the_second_tier() {
        let mut cache = KvCache::new(4, 16);
        let first = chain(0, 4);
        run(&mut cache, &first, 4);
        run(&mut cache, &chain(100, 4), 4);
        let hit = cache.lookup(&first, 4);
        assert_eq!(
            hit,
            PrefixHit {
                first_tier_blocks: 0,
                second_tier_blocks: 4
            }
        );
        assert_eq!(cache.counters().offloaded_blocks, 4);
        // Loading puts them back in the first tier.
        run(&mut cache, &first, 4);
        assert_eq!(cache.lookup(&first, 4).first_tier_blocks, 4);
    }

    #[test]
    fn reset_forgets_unreferenced_blocks_of_both_tiers() {
        let mut cache = KvCache::new(4, 16);
        let first = chain(0, 4);
        run(&mut cache, &first, 4);
        run(&mut cache, &chain(100, 4), 4);
        assert_eq!(cache.reset(), 8);
        assert_eq!(cache.lookup(&first, 4).blocks(), 0);
        assert_eq!(cache.cached_blocks(), 0);
    }

    #[test]
    fn second_tier_drops_its_oldest_blocks_when_full() {
        let mut cache = KvCache::new(2, 2);
        run(&mut cache, &chain(0, 2), 2);
        run(&mut cache, &chain(10, 2), 2);
        run(&mut cache, &chain(20, 2), 2);
        assert_eq!(cache.offloaded_blocks(), 2);
        assert_eq!(cache.lookup(&chain(0, 2), 2).blocks(), 0);
        assert_eq!(cache.lookup(&chain(10, 2), 2).second_tier_blocks, 2);
        assert_eq!(cache.counters().offload_dropped_blocks, 2);
    }
}
