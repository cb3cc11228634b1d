//! In-process cache throughput — GET, SET and a 90/10 mix, on 1 and 2 threads — for the
//! streamcache `Cache` (full command path), its storage layout alone (mutex-guarded hashbrown
//! shards), a plain `DashMap`, and `moka`; plus the hit ratio of every eviction policy on a
//! Zipf(0.99) workload with the cache sized at 10% of the key space (printed before the timed
//! benches). Fixed seeds throughout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use dashmap::DashMap;
use streamcache::cache::{Cache, CacheConfig, EvictionPolicy};
use streamcache::clock::ManualClock;

const KEYS: u64 = 100_000;
const OPS_PER_THREAD: u64 = 20_000;

/// xorshift64*, seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

type Map = hashbrown::HashMap<Box<[u8]>, Vec<u8>>;

/// The storage layout `Cache` uses, without the command layer: 64 mutex-guarded hashbrown maps.
struct Shards {
    shards: Vec<Mutex<Map>>,
}

impl Shards {
    fn new() -> Self {
        Self {
            shards: (0..64).map(|_| Mutex::new(Map::new())).collect(),
        }
    }
    fn shard(&self, k: &[u8]) -> std::sync::MutexGuard<'_, Map> {
        self.shards[(crc32c::crc32c(k) as usize) & 63]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        self.shard(k).get(k).cloned()
    }
    fn set(&self, k: &[u8], v: &[u8]) {
        self.shard(k).insert(k.into(), v.to_vec());
    }
}

trait Store: Sync {
    fn get(&self, k: &[u8]) -> bool;
    fn set(&self, k: &[u8], v: &[u8]);
}

impl Store for Cache {
    fn get(&self, k: &[u8]) -> bool {
        Cache::get(self, 0, k).is_some()
    }
    fn set(&self, k: &[u8], v: &[u8]) {
        let _ = Cache::set(self, 0, k, v, None);
    }
}

impl Store for Shards {
    fn get(&self, k: &[u8]) -> bool {
        Shards::get(self, k).is_some()
    }
    fn set(&self, k: &[u8], v: &[u8]) {
        Shards::set(self, k, v);
    }
}

impl Store for DashMap<Box<[u8]>, Vec<u8>> {
    fn get(&self, k: &[u8]) -> bool {
        DashMap::get(self, k).map(|v| v.clone()).is_some()
    }
    fn set(&self, k: &[u8], v: &[u8]) {
        self.insert(k.into(), v.to_vec());
    }
}

impl Store for moka::sync::Cache<Bytes, Bytes> {
    fn get(&self, k: &[u8]) -> bool {
        moka::sync::Cache::get(self, &Bytes::copy_from_slice(k)).is_some()
    }
    fn set(&self, k: &[u8], v: &[u8]) {
        self.insert(Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
    }
}

fn run(store: &dyn Store, threads: u64, read_percent: u64, keys: &[Vec<u8>]) {
    let value = [b'v'; 100];
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut rng = Rng(0x1234_5678 + t);
                for _ in 0..OPS_PER_THREAD {
                    let r = rng.next();
                    let k = &keys[(r % KEYS) as usize];
                    if (r >> 32) % 100 < read_percent {
                        std::hint::black_box(store.get(k));
                    } else {
                        store.set(k, &value);
                    }
                }
            });
        }
    });
}

fn ops(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let cache = Cache::new(CacheConfig::default(), Arc::new(ManualClock::new(1)));
    let shards = Shards::new();
    let dash: DashMap<Box<[u8]>, Vec<u8>> = DashMap::new();
    let moka: moka::sync::Cache<Bytes, Bytes> = moka::sync::Cache::new(KEYS * 2);
    let stores: [(&str, &dyn Store); 4] = [
        ("streamcache", &cache),
        ("own_shards", &shards),
        ("dashmap", &dash),
        ("moka", &moka),
    ];
    for (_, s) in &stores {
        for k in &keys {
            s.set(k, &[b'v'; 100]);
        }
    }
    for (op, read_percent) in [("get", 100), ("set", 0), ("mixed_90_10", 90)] {
        let mut g = c.benchmark_group(format!("cache_{op}"));
        for threads in [1u64, 2] {
            g.throughput(Throughput::Elements(threads * OPS_PER_THREAD));
            for (name, store) in &stores {
                g.bench_with_input(
                    BenchmarkId::new(*name, format!("{threads}t")),
                    &threads,
                    |b, &t| {
                        b.iter(|| run(*store, t, read_percent, &keys));
                    },
                );
            }
        }
        g.finish();
    }
}

/// Inverse-CDF Zipf sampler over `n` ranks with exponent `s`.
fn zipf_table(n: usize, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for i in 1..=n {
        acc += 1.0 / (i as f64).powf(s);
        cdf.push(acc);
    }
    for v in &mut cdf {
        *v /= acc;
    }
    cdf
}

/// Hit ratio of each policy: GET, and SET on a miss, over a Zipf(0.99) stream.
fn hit_ratios() {
    let n = 20_000usize;
    let requests = 200_000usize;
    let cdf = zipf_table(n, 0.99);
    // Entry cost: 100-byte value + key + per-entry overhead ≈ 186 bytes; 10% of the key space.
    let ceiling = (n as u64 / 10) * 186;
    println!("hit ratio, Zipf(0.99), {n} keys, cache = 10% of keys, {requests} requests:");
    for policy in [
        EvictionPolicy::AllkeysLru,
        EvictionPolicy::AllkeysLfu,
        EvictionPolicy::AllkeysRandom,
        EvictionPolicy::AllkeysSieve,
    ] {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let config = CacheConfig {
            maxmemory_bytes: ceiling,
            eviction_policy: policy,
            ..CacheConfig::default()
        };
        let cache = Cache::new(config, clock.clone());
        let mut rng = Rng(42);
        let mut hits = 0usize;
        for _ in 0..requests {
            clock.advance(Duration::from_millis(1));
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let rank = cdf.partition_point(|&c| c < u).min(n - 1);
            let k = key(rank as u64);
            if cache.get(0, &k).is_some() {
                hits += 1;
            } else {
                let _ = cache.set(0, &k, &[b'v'; 100], None);
            }
        }
        println!(
            "  {:<15} {:.3}",
            policy.name(),
            hits as f64 / requests as f64
        );
    }
}

criterion_group!(benches, ops);

fn main() {
    hit_ratios();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
