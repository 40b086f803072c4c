use super::*;

const QUOTA: Quota = Quota {
    max_keys: 100,
    max_bytes: 10_000,
    max_value: 1_000,
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmgate-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: &Path) -> Arc<Store> {
    Store::open(dir, Durability::Always).expect("opens").0
}

fn txn(store: &Arc<Store>, ns: &str) -> Txn {
    Txn::new(Arc::clone(store), Arc::from(ns.as_bytes()), QUOTA)
}

fn commit(t: Txn) {
    smol::block_on(t.commit().expect("commits").durable()).expect("durable");
}

#[test]
fn writes_survive_a_reopen_and_reads_see_own_writes() {
    let dir = tmp("reopen");
    {
        let store = open(&dir);
        let mut t = txn(&store, "a");
        t.set(b"k", b"v1", 0).expect("set");
        assert_eq!(t.get(b"k").expect("get"), Some(b"v1".to_vec()));
        assert_eq!(store.get(b"a", b"k"), None, "not visible before commit");
        commit(t);
        let mut t = txn(&store, "a");
        assert!(t.delete(b"k").expect("delete"));
        t.set(b"j", b"w", 0).expect("set");
        commit(t);
        let mut dropped = txn(&store, "a");
        dropped.set(b"never", b"x", 0).expect("set");
        drop(dropped);
    }
    let store = open(&dir);
    assert_eq!(store.get(b"a", b"k"), None);
    assert_eq!(store.get(b"a", b"j"), Some(b"w".to_vec()));
    assert_eq!(store.get(b"a", b"never"), None);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_open_is_refused_with_the_owners_pid() {
    let dir = tmp("lock");
    let store = open(&dir);
    let Err(e) = Store::open(&dir, Durability::Always) else {
        panic!("second open succeeded")
    };
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    drop(store);
    assert!(Store::open(&dir, Durability::Always).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn namespaces_are_isolated_whatever_the_key_bytes() {
    let dir = tmp("isolation");
    let store = open(&dir);
    let mut t = txn(&store, "a");
    for key in [&b"k"[..], b"", b"..", b"../b/k", b"\0", b"b\0k", b"a/k"] {
        t.set(key, b"secret", 0).expect("set");
    }
    commit(t);
    let other = txn(&store, "b");
    for key in [&b"k"[..], b"", b"..", b"\0k", b"a\0k", b"/k", b"a/k"] {
        assert_eq!(other.get(key).expect("get"), None, "{key:?}");
    }
    assert!(other.keys(b"", b"", 100).0.is_empty());
    // "a" and "ab" share a prefix; neither sees the other.
    let ab = txn(&store, "ab");
    assert!(ab.keys(b"", b"", 100).0.is_empty());
    let long = vec![b'x'; MAX_KEY + 1];
    assert_eq!(other.get(&long), Err(KvError::KeyTooLong));
    drop((other, ab, store));
    let store = open(&dir);
    assert!(txn(&store, "b").keys(b"", b"", 100).0.is_empty());
    assert_eq!(txn(&store, "a").keys(b"", b"", 100).0.len(), 7);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quotas_refuse_without_applying() {
    let dir = tmp("quota");
    let store = open(&dir);
    let small = Quota {
        max_keys: 2,
        max_bytes: 16,
        max_value: 8,
    };
    let mut t = Txn::new(Arc::clone(&store), Arc::from(&b"q"[..]), small);
    assert_eq!(
        t.set(b"k", b"123456789", 0),
        Err(KvError::ValueTooLarge { limit: 8 })
    );
    t.set(b"a", b"1", 0).expect("set");
    t.set(b"b", b"1", 0).expect("set");
    assert_eq!(t.set(b"c", b"1", 0), Err(KvError::TooManyKeys { limit: 2 }));
    t.set(b"a", b"12345678", 0).expect("replace fits");
    assert_eq!(
        t.set(b"b", b"12345678", 0),
        Err(KvError::TooManyBytes { limit: 16 })
    );
    commit(t);
    assert_eq!(store.usage(b"q"), (2, 11));
    // A commit over quota (another request filled it meanwhile) applies
    // nothing.
    let mut t1 = Txn::new(Arc::clone(&store), Arc::from(&b"q"[..]), small);
    t1.delete(b"b").expect("delete");
    t1.set(b"c", b"1", 0).expect("fits after the delete");
    let mut t2 = Txn::new(Arc::clone(&store), Arc::from(&b"q"[..]), small);
    t2.set(b"d", b"1", 0).expect_err("full");
    commit(t1);
    assert_eq!(store.get(b"q", b"c"), Some(b"1".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ttl_expires_entries_and_incr_keeps_the_window() {
    let dir = tmp("ttl");
    let store = open(&dir);
    let mut t = txn(&store, "t");
    t.set(b"short", b"v", 1).expect("set");
    t.set(b"long", b"v", 60_000).expect("set");
    assert_eq!(t.incr(b"n", 1, 1).expect("incr"), 1);
    commit(t);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(store.get(b"t", b"short"), None);
    assert_eq!(store.get(b"t", b"n"), None, "the window ended");
    assert_eq!(store.get(b"t", b"long"), Some(b"v".to_vec()));
    let mut t = txn(&store, "t");
    assert_eq!(t.incr(b"n", 5, 0).expect("incr"), 5, "a new window");
    commit(t);
    drop(store);
    let store = open(&dir);
    assert_eq!(
        store.get(b"t", b"short"),
        None,
        "still expired after replay"
    );
    assert_eq!(store.get(b"t", b"n"), Some(b"5".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_increments_from_threads_are_exact() {
    let dir = tmp("incr");
    let store = open(&dir);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut t = txn(&store, "c");
                    t.incr(b"n", 1, 0).expect("incr");
                    commit(t);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("joins");
    }
    assert_eq!(store.get(b"c", b"n"), Some(b"200".to_vec()));
    let mut t = txn(&store, "c");
    t.set(b"s", b"text", 0).expect("set");
    assert_eq!(t.incr(b"s", 1, 0), Err(KvError::NotANumber));
    assert_eq!(t.incr(b"n", i64::MAX, 0), Err(KvError::Overflow));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compaction_keeps_exactly_the_live_entries() {
    let dir = tmp("compact");
    let durability = Durability::Every(std::time::Duration::from_millis(5));
    let store = Store::open(&dir, durability).expect("opens").0;
    let value = vec![b'v'; 900];
    for i in 0..3000u32 {
        let mut t = txn(&store, "c");
        t.set(format!("k{}", i % 10).as_bytes(), &value, 0)
            .expect("set");
        commit(t);
    }
    drop(store);
    let size = std::fs::metadata(dir.join(writer::LOG)).expect("log").len();
    assert!(size < 2 << 20, "compacted: {size} bytes");
    let store = open(&dir);
    assert_eq!(store.keys(b"c", b"", b"", 100).0.len(), 10);
    assert_eq!(store.get(b"c", b"k3"), Some(value));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn torn_and_corrupted_logs_open_keeping_the_intact_records() {
    let dir = tmp("torn");
    {
        let store = open(&dir);
        for i in 0..50u32 {
            let mut t = txn(&store, "t");
            t.set(format!("k{i:02}").as_bytes(), b"value", 0)
                .expect("set");
            commit(t);
        }
    }
    let path = dir.join(writer::LOG);
    let original = std::fs::read(&path).expect("log");
    let mut rng = fastrand::Rng::with_seed(14);
    for round in 0..40 {
        let mut bytes = original.clone();
        let at = rng.usize(1..bytes.len());
        if round % 2 == 0 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= 1 << rng.u32(..8);
        }
        std::fs::write(&path, &bytes).expect("write");
        let (store, recovery) = Store::open(&dir, Durability::Always).expect("opens");
        let keys = store.keys(b"t", b"", b"", 100).0;
        let expected: Vec<Vec<u8>> = (0..50).map(|i| format!("k{i:02}").into_bytes()).collect();
        assert_eq!(recovery.records, keys.len(), "round {round}");
        // Records are applied in order and only a tail is dropped: the
        // keys kept are a prefix of k00..k49 (replay never guesses where
        // records resume after damage).
        assert_eq!(keys, expected[..keys.len()], "round {round}");
        let asides = damaged_copies(&dir);
        if round % 2 == 0 {
            // A cut between two records is indistinguishable from a clean
            // end; a cut is a torn write, not kept aside.
            assert_eq!(recovery.damage.is_some(), recovery.bytes != at as u64);
            assert!(asides.is_empty(), "round {round}");
        } else {
            assert!(
                recovery.damage.is_some(),
                "round {round}: a flipped bit is found"
            );
            // Unless the header is hit (the file is moved aside whole) or
            // the flip makes the last record look cut short, the bytes cut
            // off are kept aside.
            for aside in &asides {
                let kept = std::fs::read(aside).expect("aside");
                let header = at < record::MAGIC.len();
                let tail = usize::try_from(recovery.bytes).expect("usize");
                assert!(header || kept == bytes[tail..], "round {round}");
            }
            for aside in asides {
                std::fs::remove_file(aside).expect("remove");
            }
        }
        // The cut file takes new writes.
        let mut t = txn(&store, "t");
        t.set(b"after", b"x", 0).expect("set");
        commit(t);
        drop(store);
        let store = open(&dir);
        assert_eq!(
            store.get(b"t", b"after"),
            Some(b"x".to_vec()),
            "round {round}"
        );
        drop(store);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `kv.log.damaged-*` files in `dir`.
fn damaged_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().contains(".damaged-"))
        .collect();
    found.sort();
    found
}

/// Five commits, one key each; the log's bytes and where record `n` (from
/// 0) starts.
fn five_records(dir: &Path) -> (Vec<u8>, Vec<usize>) {
    {
        let store = open(dir);
        for i in 0..5u32 {
            let mut t = txn(&store, "ns");
            t.set(format!("k{i}").as_bytes(), b"value", 0).expect("set");
            commit(t);
        }
    }
    let bytes = std::fs::read(dir.join(writer::LOG)).expect("log");
    let mut starts = Vec::new();
    let mut at = record::MAGIC.len();
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        at += record::HEADER + len as usize;
    }
    assert_eq!(starts.len(), 5);
    (bytes, starts)
}

#[test]
fn damage_in_the_middle_cuts_the_rest_and_keeps_it_aside() {
    let dir = tmp("middle");
    let (mut bytes, starts) = five_records(&dir);
    // A flipped bit in record 1's payload: records 2-4 after it are intact,
    // but replay does not guess where they start (a value may hold bytes
    // that read as a record).
    bytes[starts[1] + record::HEADER + 3] ^= 0x10;
    std::fs::write(dir.join(writer::LOG), &bytes).expect("write");
    let (store, recovery) = Store::open(&dir, Durability::Always).expect("opens");
    assert_eq!(store.keys(b"ns", b"", b"", 100).0, [&b"k0"[..]]);
    assert_eq!(recovery.records, 1);
    let damage = recovery.damage.expect("reported");
    assert!(damage.contains("checksum"), "{damage}");
    // The bytes cut off, beside the log, for recovery by hand.
    let asides = damaged_copies(&dir);
    assert_eq!(asides.len(), 1);
    assert!(
        damage.contains(&asides[0].display().to_string()),
        "{damage}"
    );
    assert_eq!(
        std::fs::read(&asides[0]).expect("aside"),
        bytes[starts[1]..]
    );
    let mut t = txn(&store, "ns");
    t.set(b"k5", b"value", 0).expect("set");
    commit(t);
    drop(store);
    let (store, recovery) = Store::open(&dir, Durability::Always).expect("opens");
    assert!(recovery.damage.is_none(), "{:?}", recovery.damage);
    assert_eq!(store.keys(b"ns", b"", b"", 100).0, [&b"k0"[..], b"k5"]);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_value_holding_a_whole_record_is_never_replayed_as_one() {
    // A guest stores a value that is itself a framed record writing into
    // another namespace, then the record holding it is damaged or torn
    // anywhere: nothing ever lands in `victim`.
    let dir = tmp("forged");
    let mut forged = Vec::new();
    record::encode_op(
        &mut forged,
        &Op::Set {
            ns: b"victim".to_vec(),
            key: b"role".to_vec(),
            value: b"admin".to_vec(),
            expires: 0,
        },
    );
    let forged = record::frame(&forged);
    {
        let store = open(&dir);
        let mut t = txn(&store, "evil");
        t.set(b"a", &forged, 0).expect("set");
        t.set(b"b", &[b'x'; 64], 0).expect("set");
        commit(t);
    }
    let original = std::fs::read(dir.join(writer::LOG)).expect("log");
    for at in record::MAGIC.len()..original.len() {
        for flip in [false, true] {
            let mut bytes = original.clone();
            if flip {
                bytes[at] ^= 0x01;
            } else {
                bytes.truncate(at);
            }
            std::fs::write(dir.join(writer::LOG), &bytes).expect("write");
            let (store, _) = Store::open_read_only(&dir).expect("opens");
            assert!(store.keys(b"victim", b"", b"", 10).0.is_empty(), "at {at}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_read_only_open_changes_nothing_and_refuses_commits() {
    let dir = tmp("read-only");
    let (mut bytes, starts) = five_records(&dir);
    bytes[starts[2] + 5] ^= 0x01;
    // And a torn tail.
    bytes.extend_from_slice(&[7, 0, 0]);
    std::fs::write(dir.join(writer::LOG), &bytes).expect("write");
    let (store, recovery) = Store::open_read_only(&dir).expect("opens");
    assert!(recovery.damage.is_some());
    assert_eq!(store.keys(b"ns", b"", b"", 100).0, [&b"k0"[..], b"k1"]);
    assert_eq!(store.get(b"ns", b"k1"), Some(b"value".to_vec()));
    let mut t = txn(&store, "ns");
    t.set(b"k9", b"v", 0).expect("set");
    assert!(matches!(t.commit(), Err(KvError::Unavailable(_))));
    drop(store);
    assert_eq!(std::fs::read(dir.join(writer::LOG)).expect("log"), bytes);
    assert!(damaged_copies(&dir).is_empty());
    assert!(Store::open_read_only(&dir.join("absent")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_compacted_namespace_is_written_in_records_replay_reads_back() {
    let dir = tmp("split");
    let store = open(&dir);
    let mut t = txn(&store, "big");
    for i in 0..40u32 {
        t.set(format!("k{i:02}").as_bytes(), &[b'v'; 100], 0)
            .expect("set");
    }
    commit(t);
    // Records of at most ~1 KiB: ~8 entries each.
    let bytes = snapshot_in(&mut store.lock().spaces, now_ms(), 1000);
    drop(store);
    let replay = record::replay(&bytes);
    assert!(replay.damage.is_none(), "{:?}", replay.damage);
    assert!(
        replay.batches.len() >= 4,
        "{} records",
        replay.batches.len()
    );
    let ops: usize = replay.batches.iter().map(Vec::len).sum();
    assert_eq!(ops, 40);
    assert!(replay.batches.iter().all(|b| b.len() <= 9));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deleting_absent_keys_buffers_nothing() {
    let dir = tmp("delete-absent");
    let store = open(&dir);
    let mut t = txn(&store, "d");
    for i in 0..10_000u32 {
        assert_eq!(t.delete(&i.to_le_bytes()), Ok(false));
    }
    assert!(t.is_empty());
    // A present key's delete is buffered and committed.
    let mut w = txn(&store, "d");
    w.set(b"here", b"1", 0).expect("set");
    commit(w);
    assert_eq!(t.delete(b"here"), Ok(true));
    assert!(!t.is_empty());
    commit(t);
    assert_eq!(store.get(b"d", b"here"), None);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn setting_or_incrementing_then_deleting_new_keys_buffers_nothing() {
    let dir = tmp("delete-new");
    let store = open(&dir);
    let mut w = txn(&store, "d");
    w.set(b"old", b"1", 0).expect("set");
    commit(w);
    let mut t = txn(&store, "d");
    let mut other = txn(&store, "d");
    for i in 0..10_000u32 {
        let key = [b"k".as_slice(), &i.to_le_bytes()].concat();
        t.set(&key, &[7; 100], 0).expect("set");
        assert_eq!(t.delete(&key), Ok(true));
        assert_eq!(t.incr(&key, 5, 0), Ok(5));
        assert_eq!(t.delete(&key), Ok(true));
        assert_eq!(t.get(&key), Ok(None));
    }
    assert!(t.is_empty());
    // The increments it forgot no longer count for others.
    assert_eq!(other.incr(b"k\0\0\0\0", 1, 0), Ok(1));
    drop(other);
    // A key the store holds is still deleted at commit, after a set.
    t.set(b"old", b"2", 0).expect("set");
    assert_eq!(t.delete(b"old"), Ok(true));
    assert!(!t.is_empty());
    commit(t);
    assert_eq!(store.get(b"d", b"old"), None);
    assert_eq!(store.get(b"d", b"k\0\0\0\0"), None);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The numbers of the README's "Why hand-written": bytes per KV write in
/// each durability mode and replay time. `cargo test --release --lib
/// measure_store -- --ignored --nocapture`; not a test (timing).
#[test]
#[ignore]
fn measure_store() {
    fn dirtied() -> u64 {
        // Bytes this process caused to be written to storage: pages
        // dirtied, counted again after each fsync cleans them.
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
    for (name, durability) in [
        ("always", Durability::Always),
        (
            "100ms",
            Durability::Every(std::time::Duration::from_millis(100)),
        ),
    ] {
        let dir = tmp(&format!("measure-{name}"));
        let store = Store::open(&dir, durability).expect("opens").0;
        let before = dirtied();
        const N: u32 = 1000;
        for i in 0..N {
            // A counter at ~1,000 requests a second.
            let mut t = txn(&store, "counter");
            t.incr(b"calls", 1, 0).expect("incr");
            commit(t);
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = i;
        }
        store.close();
        let log = std::fs::metadata(dir.join(writer::LOG)).expect("log").len();
        println!(
            "sync = {name}: {:.1} B of log and {:.0} B of pages written per KV write",
            (log - record::MAGIC.len() as u64) as f64 / f64::from(N),
            (dirtied() - before) as f64 / f64::from(N)
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let dir = tmp("measure-replay");
    {
        let store = Store::open(
            &dir,
            Durability::Every(std::time::Duration::from_millis(100)),
        )
        .expect("opens")
        .0;
        let unlimited = Quota {
            max_keys: u64::MAX,
            max_bytes: u64::MAX,
            max_value: u64::MAX,
        };
        // Distinct keys: nothing to compact away.
        for i in 0..100_000u32 {
            let mut t = Txn::new(Arc::clone(&store), Arc::from(&b"counter"[..]), unlimited);
            t.set(format!("key{i}").as_bytes(), b"0123456789", 0)
                .expect("set");
            let _ = t.commit().expect("commit");
        }
    }
    let started = std::time::Instant::now();
    let (store, recovery) = Store::open(&dir, Durability::Always).expect("opens");
    println!(
        "replay: {} records, {} bytes in {:?}",
        recovery.records,
        recovery.bytes,
        started.elapsed()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_log_of_live_entries_is_not_compacted_again_and_again() {
    // Every entry distinct and live: the log is about what a compaction
    // would write, so none runs (each would rewrite everything).
    let dir = tmp("no-compact");
    let durability = Durability::Every(std::time::Duration::from_millis(5));
    let store = Store::open(&dir, durability).expect("opens").0;
    let unlimited = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
        max_value: u64::MAX,
    };
    let mut written = 0u64;
    for i in 0..40_000u32 {
        let mut t = Txn::new(Arc::clone(&store), Arc::from(&b"c"[..]), unlimited);
        t.set(format!("key{i}").as_bytes(), b"0123456789", 0)
            .expect("set");
        let _ = t.commit().expect("commit");
        written += 1;
    }
    store.close();
    let size = std::fs::metadata(dir.join(writer::LOG)).expect("log").len();
    // Every record is still there: nothing was rewritten.
    let r = record::replay(&std::fs::read(dir.join(writer::LOG)).expect("log"));
    assert_eq!(r.batches.len() as u64, written, "log of {size} bytes");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overwriting_a_key_counts_it_once() {
    // Each overwrite used to add the key's length again: 200 writes of
    // one 10-byte key weighed 2,001 bytes and refused new keys.
    let dir = tmp("overwrite");
    {
        let store = open(&dir);
        for _ in 0..200 {
            let mut t = txn(&store, "a");
            t.set(b"visits-key", b"x", 0).expect("set");
            commit(t);
        }
        assert_eq!(store.usage(b"a"), (1, 11));
        let mut t = txn(&store, "a");
        t.set(b"visits-key", b"longer", 0).expect("set");
        commit(t);
        assert_eq!(store.usage(b"a"), (1, 16));
    }
    // Replaying the log weighs the same.
    assert_eq!(open(&dir).usage(b"a"), (1, 16));
    let _ = std::fs::remove_dir_all(&dir);
}

fn set(store: &Arc<Store>, ns: &str, key: &[u8], value: &[u8]) -> Result<(), KvError> {
    let mut t = txn(store, ns);
    t.set(key, value, 0)?;
    smol::block_on(t.commit()?.durable())
}

#[test]
fn a_failed_write_is_answered_failed_and_loses_no_later_write() {
    use writer::fault::{Fault, inject};
    for fault in [Fault::Torn, Fault::Sync] {
        let dir = tmp(&format!("fail-{fault:?}"));
        {
            let store = open(&dir);
            set(&store, "a", b"before", b"1").expect("first write");
            inject(&dir, vec![fault]);
            let e =
                set(&store, "a", b"lost", b"2").expect_err("the failed write is answered failed");
            assert!(matches!(e, KvError::Unavailable(_)), "{e}");
            assert_eq!(store.get(b"a", b"lost"), None, "rolled back");
            set(&store, "a", b"after", b"3").expect("a later write");
            set(&store, "a", b"before", b"4").expect("an overwrite");
        }
        let (store, recovery) = Store::open(&dir, Durability::Always).expect("reopens");
        assert_eq!(recovery.damage, None, "no torn record in the log");
        assert_eq!(store.get(b"a", b"before"), Some(b"4".to_vec()));
        assert_eq!(store.get(b"a", b"after"), Some(b"3".to_vec()));
        assert_eq!(store.get(b"a", b"lost"), None);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_log_that_cannot_be_cut_back_fails_the_store() {
    use writer::fault::{Fault, inject};
    let dir = tmp("broken");
    let store = open(&dir);
    set(&store, "a", b"k", b"1").expect("first write");
    // The write fails, then so does the cut.
    inject(&dir, vec![Fault::Torn, Fault::Torn]);
    set(&store, "a", b"k", b"2").expect_err("failed");
    let Err(KvError::Unavailable(why)) = set(&store, "a", b"j", b"3") else {
        panic!("a failed store took a write")
    };
    assert!(why.contains("read-only"), "{why}");
    assert_eq!(store.get(b"a", b"k"), Some(b"1".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn under_sync_always_nothing_is_visible_before_it_is_durable() {
    use writer::fault::{Fault, inject};
    let dir = tmp("visible");
    let store = open(&dir);
    set(&store, "a", b"k", b"old").expect("first write");
    set(&store, "a", b"gone", b"x").expect("first write");
    let (go, wait) = std::sync::mpsc::channel();
    let (started, _) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    let mut t = txn(&store, "a");
    t.set(b"k", b"new", 0).expect("set");
    t.set(b"added", b"y", 0).expect("set");
    assert!(t.delete(b"gone").expect("delete"));
    t.incr(b"n", 5, 0).expect("incr");
    let ack = t.commit().expect("commits");
    // Not on disk yet: every reader sees what is.
    assert_eq!(store.get(b"a", b"k"), Some(b"old".to_vec()));
    assert_eq!(store.get(b"a", b"added"), None);
    assert_eq!(store.get(b"a", b"gone"), Some(b"x".to_vec()));
    assert_eq!(
        store.keys(b"a", b"", b"", 10).0,
        vec![b"gone".to_vec(), b"k".to_vec()]
    );
    // A listing pays for the pending entries it looks at, even when its
    // prefix matches none of them (4 keys: k, added, gone, n).
    let (none, pending_work) = store.keys(b"a", b"zzz", b"", 1);
    assert!(none.is_empty());
    assert!(pending_work >= 4 * SCAN_WEIGHT, "{pending_work}");
    // A concurrent increment builds on the pending one all the same, and
    // says so: it is answered after the pending one is durable.
    let mut t = txn(&store, "a");
    assert_eq!(t.incr(b"n", 1, 0).expect("incr"), 6);
    assert_eq!(t.get(b"n").expect("get"), Some(b"6".to_vec()));
    let ack2 = t.commit().expect("commits");
    go.send(()).expect("writer waits");
    smol::block_on(ack.durable()).expect("durable");
    smol::block_on(ack2.durable()).expect("durable");
    assert_eq!(store.get(b"a", b"k"), Some(b"new".to_vec()));
    assert_eq!(store.get(b"a", b"gone"), None);
    assert_eq!(store.get(b"a", b"n"), Some(b"6".to_vec()));
    assert_eq!(store.keys(b"a", b"zzz", b"", 1).1, 0, "nothing pending");
    assert_eq!(
        store.keys(b"a", b"", b"", 10).0,
        vec![b"added".to_vec(), b"k".to_vec(), b"n".to_vec()]
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_header_is_moved_aside_not_destroyed() {
    let dir = tmp("header");
    {
        let store = open(&dir);
        set(&store, "a", b"k", b"v").expect("write");
    }
    let path = dir.join(writer::LOG);
    let mut bytes = std::fs::read(&path).expect("log");
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).expect("damage");
    let (store, recovery) = Store::open(&dir, Durability::Always).expect("opens");
    let damage = recovery.damage.expect("damage reported");
    assert_eq!(store.get(b"a", b"k"), None, "started empty");
    set(&store, "a", b"new", b"1").expect("takes writes");
    drop(store);
    let aside: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("kv.log.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(damage.contains(&aside[0].display().to_string()), "{damage}");
    assert_eq!(
        std::fs::read(&aside[0]).expect("kept"),
        bytes,
        "kept as it was"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listing_reports_every_key_it_looked_at() {
    let dir = tmp("scan");
    let store = open(&dir);
    let mut t = txn(&store, "a");
    for i in 0..50u32 {
        t.set(format!("k{i:02}").as_bytes(), b"v", 1).expect("set");
    }
    t.set(b"z", b"v", 0).expect("set");
    commit(t);
    std::thread::sleep(std::time::Duration::from_millis(5));
    // 50 expired keys are stepped over to find the one live key.
    let (keys, work) = store.keys(b"a", b"", b"", 10);
    assert_eq!(keys, vec![b"z".to_vec()]);
    assert_eq!(work, 51 * SCAN_WEIGHT + 50 * 3 + 1);
    assert_eq!(store.keys(b"empty", b"", b"", 10), (vec![], 0));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_write_queue_refuses_a_commit_with_nothing_applied() {
    use writer::fault::{Fault, inject};
    let dir = tmp("queue");
    let store = Store::open_with_queue(&dir, Durability::Always, 2, QUEUE_BYTES)
        .expect("opens")
        .0;
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    let ack = |key: &[u8]| {
        let mut t = txn(&store, "a");
        t.set(key, b"v", 0)?;
        t.commit()
    };
    // The writer holds the first; two more wait in the queue.
    let first = ack(b"1").expect("queued");
    writing.recv().expect("the writer started");
    let queued = [ack(b"2").expect("queued"), ack(b"3").expect("queued")];
    let Err(KvError::Unavailable(why)) = ack(b"4") else {
        panic!("a full queue took a commit")
    };
    assert!(why.contains("wait for the disk"), "{why}");
    go.send(()).expect("writer waits");
    smol::block_on(first.durable()).expect("durable");
    for a in queued {
        smol::block_on(a.durable()).expect("durable");
    }
    assert_eq!(
        store.keys(b"a", b"", b"", 10).0.len(),
        3,
        "the refused one is not applied"
    );
    set(&store, "a", b"4", b"v").expect("room again");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_write_rolls_back_to_what_the_disk_holds_after_earlier_writes() {
    use writer::fault::{Fault, inject};
    let dir = tmp("rollback");
    {
        let store = open(&dir);
        let (go, wait) = std::sync::mpsc::channel();
        let (started, writing) = std::sync::mpsc::channel();
        // The first write pauses (so the second queues behind it), the
        // second is torn.
        inject(&dir, vec![Fault::Pause { started, go: wait }, Fault::Torn]);
        let commit_set = |value: &[u8]| {
            let mut t = txn(&store, "a");
            t.set(b"k", value, 0).expect("set");
            t.commit().expect("queued")
        };
        let first = commit_set(b"a");
        writing.recv().expect("the writer started");
        let second = commit_set(b"b");
        go.send(()).expect("writer waits");
        smol::block_on(first.durable()).expect("the first is durable");
        smol::block_on(second.durable()).expect_err("the second failed");
        assert_eq!(store.get(b"a", b"k"), Some(b"a".to_vec()), "as on disk");
    }
    let store = open(&dir);
    assert_eq!(store.get(b"a", b"k"), Some(b"a".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn under_sync_always_an_incr_counts_from_the_last_commit_not_the_disk() {
    use writer::fault::{Fault, inject};
    let dir = tmp("incr-pending");
    let store = open(&dir);
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    // Three requests in a row, each committed before the next one's
    // `incr`, none on disk yet: each answers a new number.
    let mut acks = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut t = txn(&store, "a");
        seen.push(t.incr(b"n", 1, 0).expect("incr"));
        acks.push(t.commit().expect("commits"));
    }
    writing.recv().expect("the writer started");
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(
        store.get(b"a", b"n"),
        None,
        "nothing visible before durable"
    );
    go.send(()).expect("writer waits");
    for ack in acks {
        smol::block_on(ack.durable()).expect("durable");
    }
    assert_eq!(store.get(b"a", b"n"), Some(b"3".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn under_sync_always_reads_see_the_disk_whatever_waits_for_it() {
    use writer::fault::{Fault, inject};
    let dir = tmp("pending-index");
    let store = open(&dir);
    set(&store, "a", b"k0", b"disk").expect("first write");
    set(&store, "b", b"k0", b"other").expect("first write");
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    // Many commits wait: the same key again and again, new keys, a
    // delete, in two namespaces.
    let mut acks = Vec::new();
    for i in 0..300u32 {
        let mut t = txn(&store, "a");
        t.set(b"k0", format!("v{i}").as_bytes(), 0).expect("set");
        t.set(format!("new{}", i % 50).as_bytes(), b"x", 0)
            .expect("set");
        acks.push(t.commit().expect("commits"));
        if i == 0 {
            writing.recv().expect("the writer started");
        }
    }
    let mut t = txn(&store, "b");
    assert!(t.delete(b"k0").expect("delete"));
    acks.push(t.commit().expect("commits"));
    assert_eq!(store.get(b"a", b"k0"), Some(b"disk".to_vec()));
    assert_eq!(store.get(b"a", b"new7"), None);
    assert_eq!(store.get(b"b", b"k0"), Some(b"other".to_vec()));
    assert_eq!(store.keys(b"a", b"", b"", 100).0, vec![b"k0".to_vec()]);
    assert_eq!(store.latest(b"a", b"k0"), Some(b"v299".to_vec()));
    go.send(()).expect("writer waits");
    for ack in acks {
        smol::block_on(ack.durable()).expect("durable");
    }
    assert_eq!(store.get(b"a", b"k0"), Some(b"v299".to_vec()));
    assert_eq!(store.get(b"a", b"new7"), Some(b"x".to_vec()));
    assert_eq!(store.get(b"b", b"k0"), None);
    assert_eq!(store.keys(b"a", b"", b"", 100).0.len(), 51);
    let inner = store.lock();
    assert!(
        inner.kept.is_empty() && inner.order.is_empty(),
        "all forgotten"
    );
    drop(inner);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_write_queue_is_bounded_in_bytes() {
    use writer::fault::{Fault, inject};
    let dir = tmp("queue-bytes");
    let store = Store::open_with_queue(&dir, Durability::Always, QUEUE, 4096)
        .expect("opens")
        .0;
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    let value = [b'v'; 900];
    let ack = |key: &[u8]| {
        let mut t = txn(&store, "a");
        t.set(key, &value, 0)?;
        t.commit()
    };
    let first = ack(b"0").expect("queued");
    writing.recv().expect("the writer started");
    let mut queued = vec![first];
    let why = loop {
        let key = format!("{}", queued.len());
        match ack(key.as_bytes()) {
            Ok(a) => queued.push(a),
            Err(KvError::Unavailable(why)) => break why,
            Err(e) => panic!("{e}"),
        }
        assert!(
            queued.len() < 10,
            "4,096 bytes took {} commits",
            queued.len()
        );
    };
    assert!(
        why.contains("bytes of commits wait for the disk already (at most 4096)"),
        "{why}"
    );
    assert_eq!(queued.len(), 4, "four records of ~900 bytes fit");
    assert_eq!(
        store.get(b"a", b"4"),
        None,
        "the refused one is not applied"
    );
    assert_eq!(
        store.latest(b"a", b"4"),
        None,
        "the refused one is not applied"
    );
    go.send(()).expect("writer waits");
    for a in queued {
        smol::block_on(a.durable()).expect("durable");
    }
    assert_eq!(
        store.shared.queued.load(Ordering::Acquire),
        0,
        "all given back"
    );
    set(&store, "a", b"4", &value).expect("room again");
    // A record larger than the bound is taken when nothing waits.
    let mut t = Txn::new(
        Arc::clone(&store),
        Arc::from(&b"big"[..]),
        Quota {
            max_keys: 100,
            max_bytes: 1 << 20,
            max_value: 1 << 20,
        },
    );
    t.set(b"big", &[b'x'; 8192], 0).expect("set");
    commit(t);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_sync_applies_to_the_open_store() {
    use writer::fault::{Fault, inject};
    let dir = tmp("resync");
    let hour = Durability::Every(std::time::Duration::from_secs(3600));
    let store = Store::open(&dir, hour).expect("opens").0;
    store.set_durability(Durability::Always);
    assert_eq!(store.durability(), Durability::Always);
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    let mut t = txn(&store, "a");
    t.set(b"k", b"v", 0).expect("set");
    let ack = t.commit().expect("commits");
    // The writer writes at once (no hour's wait), and until it is done
    // readers see the disk.
    writing.recv().expect("the writer started");
    assert_eq!(
        store.get(b"a", b"k"),
        None,
        "nothing visible before durable"
    );
    go.send(()).expect("writer waits");
    smol::block_on(ack.durable()).expect("acknowledged after its fsync");
    assert_eq!(store.get(b"a", b"k"), Some(b"v".to_vec()));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a `get` costs with many writes waiting for the disk under `sync =
/// "always"`: `cargo test --release --lib measure_get_with_pending --
/// --ignored --nocapture`; not a test (timing).
#[test]
#[ignore]
fn measure_get_with_pending() {
    use writer::fault::{Fault, inject};
    let dir = tmp("measure-get");
    let store = Store::open(&dir, Durability::Always).expect("opens").0;
    set(&store, "a", b"k", b"v").expect("write");
    let time_gets = |label: &str| {
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            assert_eq!(store.get(b"a", b"k"), Some(b"v".to_vec()));
        }
        println!("{label}: {:?} per get", started.elapsed() / 10_000);
    };
    time_gets("nothing pending");
    let (go, wait) = std::sync::mpsc::channel();
    let (started, writing) = std::sync::mpsc::channel();
    inject(&dir, vec![Fault::Pause { started, go: wait }]);
    let unlimited = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
        max_value: u64::MAX,
    };
    let mut acks = Vec::new();
    for i in 0..60_000u32 {
        let mut t = Txn::new(Arc::clone(&store), Arc::from(&b"b"[..]), unlimited);
        t.set(format!("key{i}").as_bytes(), b"x", 0).expect("set");
        acks.push(t.commit().expect("commits"));
        if i == 0 {
            writing.recv().expect("the writer started");
        }
    }
    time_gets("60,000 commits pending");
    go.send(()).expect("writer waits");
    for ack in acks {
        smol::block_on(ack.durable()).expect("durable");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_increments_count_each_other_until_commit_or_drop() {
    let dir = tmp("pending-adds");
    let store = open(&dir);
    let mut a = txn(&store, "n");
    let mut b = txn(&store, "n");
    assert_eq!(a.incr(b"k", 1, 0).unwrap(), 1);
    assert_eq!(b.incr(b"k", 1, 0).unwrap(), 2, "counts a's buffered 1");
    assert_eq!(a.incr(b"k", 5, 0).unwrap(), 7);
    // a is discarded: its 6 no longer count.
    drop(a);
    let mut c = txn(&store, "n");
    assert_eq!(c.incr(b"k", 1, 0).unwrap(), 2);
    commit(b);
    // b's commit applied its 1 and stopped buffering it, under one lock.
    let mut d = txn(&store, "n");
    assert_eq!(d.incr(b"k", 1, 0).unwrap(), 3);
    commit(c);
    commit(d);
    assert_eq!(store.latest(b"n", b"k"), Some(b"3".to_vec()));
    assert!(
        store.lock().pending_adds.is_empty(),
        "nothing left buffered"
    );
    // A refused increment (quota) buffers nothing either.
    let mut e = txn(&store, "n");
    assert_eq!(e.incr(b"k", 1, 0).unwrap(), 4);
    drop(e);
    assert!(store.lock().pending_adds.is_empty());
}
