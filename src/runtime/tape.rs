//! The nondeterministic inputs a guest consumes — clock readings, random
//! bytes, KV answers — recorded while a request runs (for a crash dump)
//! or fed back from a recording (`wasmgate replay`). Everything else a
//! guest sees is the request, its config and its limits, and fuel
//! metering is deterministic: with the same inputs, a guest takes the same
//! path and stops at the same fuel count.
//!
//! A request without dumps has no tape (`HostState::tape` is `None`): the
//! host functions test one `Option` and allocate nothing.

use std::cell::RefCell;
use std::rc::Rc;

use crate::store::KvError;

/// Most bytes of inputs one request records (clock readings count 16,
/// random bytes 1, a KV answer its key and value plus [`ENTRY_BYTES`] per
/// event and per listed key): 1 MiB, so that a guest
/// reading the clock in a loop holds at most this much host memory. Past
/// it, recording stops and the dump says its inputs are truncated.
pub const MAX_TAPE_BYTES: usize = 1 << 20;

/// What one recorded KV event, or one key of a recorded listing, holds in
/// memory besides its bytes (its struct, its allocations and their
/// headers), counted against [`MAX_TAPE_BYTES`]: counting key and value
/// bytes alone let a listing of 1,000 short keys per call hold ~18 MB
/// under a 1 MiB cap (attacker review).
const ENTRY_BYTES: usize = 96;

/// A tape shared by the host functions and whoever started the call.
pub type Shared = Rc<RefCell<Tape>>;

/// Bytes, written as lower-case hex in a dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

/// `bytes` as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::new();
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Hex digits as bytes, or `None` when `text` is not an even number of
/// them.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// One clock reading: the WASI clock id and what it said, in ns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub clock: i32,
    pub nanos: u64,
}

/// What one KV operation answered the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvAnswer {
    /// `get`: the value, or `null` for a missing key.
    Value(Option<Hex>),
    /// `set`: done.
    Done,
    /// `delete`: whether the key was there.
    Found(bool),
    /// `incr`: the new value.
    Number(i64),
    /// `list`: the keys and the work the listing was charged for.
    Keys { keys: Vec<Hex>, work: u64 },
    /// Refused: the code the guest saw (`wasmgate.kv_*`'s codes).
    Error(i32),
}

/// One KV operation: `get`, `set`, `delete`, `incr` or `list` (whose key
/// is the prefix), and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEvent {
    pub op: String,
    pub key: Hex,
    pub answer: KvAnswer,
}

/// Every input a request consumed, in the order it consumed each kind.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub clocks: Vec<Reading>,
    pub random: Hex,
    pub kv: Vec<KvEvent>,
    /// Whether recording stopped at [`MAX_TAPE_BYTES`]: a replay then runs
    /// past the end of the recording.
    pub truncated: bool,
}

impl Inputs {
    /// One line: how many of each kind.
    pub fn summary(&self) -> String {
        format!(
            "{} clock reading(s), {} random byte(s), {} KV operation(s){}",
            self.clocks.len(),
            self.random.0.len(),
            self.kv.len(),
            if self.truncated {
                " (truncated: recording stopped at 1 MiB)"
            } else {
                ""
            }
        )
    }
}

/// A KV operation's result type, as recorded and as fed back.
pub trait Answer: Sized {
    fn record(&self) -> KvAnswer;
    fn replay(answer: &KvAnswer) -> Option<Self>;
    /// Bytes it holds in a recording.
    fn bytes(&self) -> usize {
        0
    }
}

impl Answer for Option<Vec<u8>> {
    fn record(&self) -> KvAnswer {
        KvAnswer::Value(self.clone().map(Hex))
    }
    fn replay(answer: &KvAnswer) -> Option<Self> {
        match answer {
            KvAnswer::Value(v) => Some(v.clone().map(|h| h.0)),
            _ => None,
        }
    }
    fn bytes(&self) -> usize {
        self.as_ref().map_or(0, Vec::len)
    }
}

impl Answer for () {
    fn record(&self) -> KvAnswer {
        KvAnswer::Done
    }
    fn replay(answer: &KvAnswer) -> Option<Self> {
        matches!(answer, KvAnswer::Done).then_some(())
    }
}

impl Answer for bool {
    fn record(&self) -> KvAnswer {
        KvAnswer::Found(*self)
    }
    fn replay(answer: &KvAnswer) -> Option<Self> {
        match answer {
            KvAnswer::Found(found) => Some(*found),
            _ => None,
        }
    }
}

impl Answer for i64 {
    fn record(&self) -> KvAnswer {
        KvAnswer::Number(*self)
    }
    fn replay(answer: &KvAnswer) -> Option<Self> {
        match answer {
            KvAnswer::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl Answer for (Vec<Vec<u8>>, u64) {
    fn record(&self) -> KvAnswer {
        KvAnswer::Keys {
            keys: self.0.iter().cloned().map(Hex).collect(),
            work: self.1,
        }
    }
    fn replay(answer: &KvAnswer) -> Option<Self> {
        match answer {
            KvAnswer::Keys { keys, work } => {
                Some((keys.iter().map(|k| k.0.clone()).collect(), *work))
            }
            _ => None,
        }
    }
    fn bytes(&self) -> usize {
        self.0
            .iter()
            .map(|k| k.len().saturating_add(ENTRY_BYTES))
            .fold(0, usize::saturating_add)
    }
}

/// Where a replay stands in the recording. Each lookup resumes where the
/// last one of its kind stopped: a replay is linear in the recording
/// (KV: `n log n`), however large the tape.
#[derive(Debug, Default)]
struct Cursor {
    /// Per clock id (0..=3): the position in `Inputs::clocks` to search
    /// from for its next reading (every earlier one of that clock was
    /// handed back).
    clock_next: [usize; 4],
    /// Readings handed back.
    clocks_taken: usize,
    random_pos: usize,
    /// Positions in `Inputs::kv`, sorted by (op, key, position): each
    /// (op, key) group is in recorded order.
    kv_order: Vec<usize>,
    /// Per group (indexed by the position in `kv_order` where it starts):
    /// the position in `kv_order` of its next answer to hand back.
    kv_next: Vec<usize>,
    /// KV events handed back.
    kv_taken: usize,
    /// The last reading handed back for each clock id (0..=3).
    last: [Option<u64>; 4],
}

impl Cursor {
    fn new(inputs: &Inputs) -> Self {
        let mut kv_order: Vec<usize> = (0..inputs.kv.len()).collect();
        // Stable: each group keeps the recorded order.
        kv_order.sort_by(|&a, &b| {
            let (a, b) = (&inputs.kv[a], &inputs.kv[b]);
            (a.op.as_str(), a.key.0.as_slice()).cmp(&(b.op.as_str(), b.key.0.as_slice()))
        });
        let kv_next = (0..kv_order.len()).collect();
        Self {
            kv_order,
            kv_next,
            ..Self::default()
        }
    }
}

/// A request's inputs: being recorded, or being fed back.
#[derive(Debug)]
pub struct Tape {
    inputs: Inputs,
    /// `None` while recording.
    replay: Option<Cursor>,
    /// Bytes recorded so far (see [`MAX_TAPE_BYTES`]).
    bytes: usize,
    /// Inputs a replayed guest asked for that the recording does not hold.
    unrecorded: u64,
    /// While replaying: the guest log level the recording ran with, so
    /// that log lines cost the same fuel (`GuestLog`).
    pub guest_log: Option<log::LevelFilter>,
}

impl Tape {
    /// An empty tape that records.
    pub fn recording() -> Shared {
        Rc::new(RefCell::new(Self {
            inputs: Inputs::default(),
            replay: None,
            bytes: 0,
            unrecorded: 0,
            guest_log: None,
        }))
    }

    /// A tape that feeds `inputs` back, with guest logging as at
    /// `guest_log`.
    pub fn replaying(inputs: Inputs, guest_log: log::LevelFilter) -> Shared {
        let cursor = Cursor::new(&inputs);
        Rc::new(RefCell::new(Self {
            inputs,
            replay: Some(cursor),
            bytes: 0,
            unrecorded: 0,
            guest_log: Some(guest_log),
        }))
    }

    /// What was recorded (or fed back).
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// Takes what was recorded.
    pub fn take(&mut self) -> Inputs {
        std::mem::take(&mut self.inputs)
    }

    /// Inputs a replayed guest asked for that the recording does not hold.
    pub fn unrecorded(&self) -> u64 {
        self.unrecorded
    }

    /// Recorded inputs a replayed guest did not consume: (clock readings,
    /// random bytes, KV operations).
    pub fn unused(&self) -> (usize, usize, usize) {
        match &self.replay {
            None => (0, 0, 0),
            Some(c) => (
                self.inputs.clocks.len().saturating_sub(c.clocks_taken),
                self.inputs.random.0.len().saturating_sub(c.random_pos),
                self.inputs.kv.len().saturating_sub(c.kv_taken),
            ),
        }
    }

    /// Whether `more` bytes still fit the recording; marks it truncated
    /// when not.
    fn room(&mut self, more: usize) -> bool {
        if self.inputs.truncated {
            return false;
        }
        match self.bytes.checked_add(more) {
            Some(total) if total <= MAX_TAPE_BYTES => {
                self.bytes = total;
                true
            }
            _ => {
                self.inputs.truncated = true;
                false
            }
        }
    }

    /// Clock `id`'s reading: `live`'s, recorded, or the next recorded one
    /// of that clock. Past the recording, time stands still at the last
    /// reading of that clock (0 if none).
    pub fn clock(&mut self, id: i32, live: impl FnOnce(i32) -> Option<u64>) -> Option<u64> {
        let Some(cursor) = self.replay.as_mut() else {
            let nanos = live(id)?;
            if self.room(16) {
                self.inputs.clocks.push(Reading { clock: id, nanos });
            }
            return Some(nanos);
        };
        // An id `live` refuses is refused in replay too (EINVAL).
        live(id)?;
        let slot = usize::try_from(id).ok().filter(|&i| i < 4)?;
        let clocks = &self.inputs.clocks;
        let from = cursor.clock_next[slot];
        let next = clocks
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .position(|r| r.clock == id)
            .map(|at| from + at);
        let nanos = match next {
            Some(at) => {
                cursor.clock_next[slot] = at + 1;
                cursor.clocks_taken += 1;
                clocks[at].nanos
            }
            None => {
                // None left: the next search starts at the end.
                cursor.clock_next[slot] = clocks.len();
                self.unrecorded += 1;
                cursor.last[slot].unwrap_or(0)
            }
        };
        cursor.last[slot] = Some(nanos);
        Some(nanos)
    }

    /// Fills `target` with random bytes: `live`'s (`false`: it failed),
    /// recorded, or the next recorded ones. Past the recording, zeros.
    pub fn random(&mut self, target: &mut [u8], live: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let Some(cursor) = self.replay.as_mut() else {
            if !live(target) {
                return false;
            }
            if self.room(target.len()) {
                self.inputs.random.0.extend_from_slice(target);
            }
            return true;
        };
        let recorded = self.inputs.random.0.get(cursor.random_pos..).unwrap_or(&[]);
        let n = recorded.len().min(target.len());
        let (head, tail) = target.split_at_mut(n);
        head.copy_from_slice(&recorded[..n]);
        tail.fill(0);
        cursor.random_pos += n;
        if !tail.is_empty() {
            self.unrecorded += 1;
        }
        true
    }

    /// While replaying, the answer to the KV operation `op` on `key`: the
    /// recorded answer of the first unused operation with the same `op`
    /// and `key` (a refusal as an error with the recorded code:
    /// `error`), or past the recording a refusal as unavailable. `None`
    /// while recording: the store answers ([`Tape::record_kv`]).
    pub fn replay_kv<T: Answer>(
        &mut self,
        op_key: (&str, &[u8]),
        error: fn(i32) -> KvError,
    ) -> Option<Result<T, KvError>> {
        let unavailable = || KvError::Unavailable("not in the recording (replay)".into());
        Some(match self.take_kv(op_key, |a| T::replay(a).is_some())? {
            Some(KvAnswer::Error(c)) => Err(error(*c)),
            Some(answer) => T::replay(answer).ok_or_else(unavailable),
            None => Err(unavailable()),
        })
    }

    /// While replaying, the first unused recorded answer to `op` on `key`
    /// that is a refusal or `fits` (marked used; `None` past the
    /// recording, counted); `None` while recording. Not generic: one copy
    /// for every operation.
    #[inline(never)]
    fn take_kv(
        &mut self,
        (op, key): (&str, &[u8]),
        fits: fn(&KvAnswer) -> bool,
    ) -> Option<Option<&KvAnswer>> {
        let cursor = self.replay.as_mut()?;
        let kv = &self.inputs.kv;
        let order = &cursor.kv_order;
        let group =
            order.partition_point(|&i| (kv[i].op.as_str(), kv[i].key.0.as_slice()) < (op, key));
        let in_group = |pos: usize| {
            order
                .get(pos)
                .map(|&i| &kv[i])
                .is_some_and(|e| e.op == op && e.key.0 == key)
        };
        let mut found = None;
        if in_group(group) {
            // Answers that do not fit this operation never will (an
            // operation's answer type is its op's): passed for good.
            let mut pos = cursor.kv_next[group];
            while in_group(pos) {
                let event = &kv[order[pos]];
                pos += 1;
                if matches!(event.answer, KvAnswer::Error(_)) || fits(&event.answer) {
                    found = Some(&event.answer);
                    break;
                }
            }
            cursor.kv_next[group] = pos;
        }
        match found {
            Some(answer) => {
                cursor.kv_taken += 1;
                Some(Some(answer))
            }
            None => {
                self.unrecorded += 1;
                Some(None)
            }
        }
    }

    /// While recording, records the store's answer to the KV operation
    /// `op` on `key` (a refusal as the code the guest saw: `code`).
    pub fn record_kv<T: Answer>(
        &mut self,
        op_key: (&str, &[u8]),
        result: &Result<T, KvError>,
        code: fn(&KvError) -> i32,
    ) {
        if self.replay.is_some() {
            return;
        }
        let bytes = result.as_ref().map_or(0, Answer::bytes);
        // Counted before anything is copied: what a recorded event holds
        // in memory, not only its bytes.
        let need = op_key
            .1
            .len()
            .saturating_add(bytes)
            .saturating_add(ENTRY_BYTES);
        if !self.room(need) {
            return;
        }
        let answer = match result {
            Ok(value) => value.record(),
            Err(e) => KvAnswer::Error(code(e)),
        };
        self.push_kv(op_key, answer);
    }

    #[inline(never)]
    fn push_kv(&mut self, (op, key): (&str, &[u8]), answer: KvAnswer) {
        {
            self.inputs.kv.push(KvEvent {
                op: op.to_owned(),
                key: Hex(key.to_vec()),
                answer,
            });
        }
    }
}

/// The most verbose level at which guest log lines are written now
/// (`RUST_LOG`'s filter for the `guest` target): a replay charges log
/// lines as the recording did.
pub fn guest_log_level() -> log::LevelFilter {
    [
        log::Level::Trace,
        log::Level::Debug,
        log::Level::Info,
        log::Level::Warn,
        log::Level::Error,
    ]
    .into_iter()
    .find(|&level| log::log_enabled!(target: "guest", level))
    .map_or(log::LevelFilter::Off, |level| level.to_level_filter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_error(_: i32) -> KvError {
        KvError::NotANumber
    }

    #[test]
    fn hex_round_trips_and_refuses_odd_input() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00ab10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn a_replay_feeds_back_what_was_recorded_then_stands_still() {
        let tape = Tape::recording();
        let mut t = tape.borrow_mut();
        assert_eq!(t.clock(0, |_| Some(5)), Some(5));
        assert_eq!(t.clock(1, |_| Some(7)), Some(7));
        assert_eq!(t.clock(9, |_| None), None);
        let mut buf = [0u8; 3];
        assert!(t.random(&mut buf, |b| {
            b.copy_from_slice(&[1, 2, 3]);
            true
        }));
        assert!(
            t.replay_kv::<Option<Vec<u8>>>(("get", b"k"), kv_error)
                .is_none()
        );
        t.record_kv(("get", b"k"), &Ok(Some(b"v".to_vec())), |_| -7);
        let inputs = t.take();
        drop(t);

        let tape = Tape::replaying(inputs, log::LevelFilter::Info);
        let mut t = tape.borrow_mut();
        let live = |_| Some(99);
        assert_eq!(t.clock(1, live), Some(7));
        assert_eq!(t.clock(0, live), Some(5));
        assert_eq!(t.unrecorded(), 0);
        assert_eq!(t.clock(0, live), Some(5), "time stands still");
        assert_eq!(t.unrecorded(), 1);
        let mut buf = [9u8; 4];
        assert!(t.random(&mut buf, |_| unreachable!()));
        assert_eq!(buf, [1, 2, 3, 0]);
        let got = t.replay_kv::<Option<Vec<u8>>>(("get", b"k"), kv_error);
        assert_eq!(got.unwrap().unwrap(), Some(b"v".to_vec()));
        let got = t.replay_kv::<Option<Vec<u8>>>(("get", b"k"), kv_error);
        assert!(matches!(got, Some(Err(KvError::Unavailable(_)))));
        assert_eq!(t.unrecorded(), 3);
        assert_eq!(t.unused(), (0, 0, 0));
    }

    #[test]
    fn each_kind_is_fed_back_in_order_per_clock_and_per_key() {
        let tape = Tape::recording();
        let mut t = tape.borrow_mut();
        for (id, nanos) in [(0, 1), (1, 10), (0, 2), (1, 20), (0, 3)] {
            assert_eq!(t.clock(id, |_| Some(nanos)), Some(nanos));
        }
        for (key, value) in [(b"a", 1), (b"b", 2), (b"a", 3)] {
            t.record_kv(("incr", key), &Ok::<i64, KvError>(value), |_| -1);
        }
        t.record_kv(("get", b"a"), &Ok(Some(b"x".to_vec())), |_| -1);
        let inputs = t.take();
        drop(t);
        let tape = Tape::replaying(inputs, log::LevelFilter::Info);
        let mut t = tape.borrow_mut();
        let live = |_| Some(99);
        assert_eq!(t.clock(1, live), Some(10));
        assert_eq!(t.clock(0, live), Some(1));
        assert_eq!(t.clock(0, live), Some(2));
        assert_eq!(t.unused(), (2, 0, 4));
        assert_eq!(t.clock(1, live), Some(20));
        assert_eq!(t.clock(1, live), Some(20), "past its readings");
        assert_eq!(t.clock(0, live), Some(3));
        let incr = |t: &mut Tape, key: &[u8]| {
            t.replay_kv::<i64>(("incr", key), kv_error)
                .unwrap()
                .map_err(|_| ())
        };
        assert_eq!(incr(&mut t, b"a"), Ok(1));
        assert_eq!(incr(&mut t, b"a"), Ok(3));
        assert_eq!(incr(&mut t, b"b"), Ok(2));
        assert_eq!(incr(&mut t, b"a"), Err(()));
        assert_eq!(incr(&mut t, b"c"), Err(()));
        // A recorded answer of another type is passed over, not handed back.
        let get = t.replay_kv::<bool>(("get", b"a"), kv_error).unwrap();
        assert!(get.is_err());
        assert_eq!(t.unrecorded(), 4);
        assert_eq!(t.unused(), (0, 0, 1));
    }

    #[test]
    fn a_large_tape_replays_in_one_pass() {
        // 200,000 readings of two clocks, read back alternately: a linear
        // scan per reading would take minutes.
        let n = 100_000u64;
        let inputs = Inputs {
            clocks: (0..2 * n)
                .map(|i| Reading {
                    clock: i32::from(i >= n),
                    nanos: i,
                })
                .collect(),
            ..Inputs::default()
        };
        let tape = Tape::replaying(inputs, log::LevelFilter::Info);
        let mut t = tape.borrow_mut();
        for i in 0..n {
            assert_eq!(t.clock(1, |_| Some(0)), Some(n + i));
            assert_eq!(t.clock(0, |_| Some(0)), Some(i));
        }
        assert_eq!((t.unrecorded(), t.unused()), (0, (0, 0, 0)));
    }

    #[test]
    fn recording_stops_at_the_bound() {
        let tape = Tape::recording();
        let mut t = tape.borrow_mut();
        let mut big = vec![0u8; MAX_TAPE_BYTES];
        assert!(t.random(&mut big, |_| true));
        assert!(!t.inputs().truncated);
        assert_eq!(t.clock(0, |_| Some(1)), Some(1));
        assert!(t.inputs().truncated);
        assert!(t.inputs().clocks.is_empty());
    }

    #[test]
    fn kv_events_and_listed_keys_count_what_they_hold() {
        let tape = Tape::recording();
        let mut t = tape.borrow_mut();
        // A missing key's answer holds no bytes: each event still counts.
        for _ in 0..100_000 {
            t.record_kv(("get", b"k"), &Ok::<_, KvError>(None::<Vec<u8>>), |_| -1);
        }
        assert!(t.inputs().truncated);
        assert!(t.inputs().kv.len() <= MAX_TAPE_BYTES / ENTRY_BYTES);
        // So does each key of a listing.
        let tape = Tape::recording();
        let mut t = tape.borrow_mut();
        let keys: Vec<Vec<u8>> = (0..1_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for _ in 0..1_000 {
            t.record_kv(("list", b""), &Ok::<_, KvError>((keys.clone(), 0)), |_| -1);
        }
        assert!(t.inputs().truncated);
        let held: usize = t
            .inputs()
            .kv
            .iter()
            .map(|e| match &e.answer {
                KvAnswer::Keys { keys, .. } => keys.len(),
                _ => 0,
            })
            .sum();
        assert!(held <= MAX_TAPE_BYTES / ENTRY_BYTES, "{held} keys held");
    }
}
