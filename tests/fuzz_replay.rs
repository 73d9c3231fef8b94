//! The fuzz harnesses on stable, in every `cargo test`: the checked-in corpus
//! (`tests/corpus/`, hand-made tricky inputs) and proptest-generated inputs,
//! both arbitrary bytes and structured streams that reach deep states, fed
//! through the same functions as the cargo-fuzz targets in `fuzz/`.
//!
//! Besides the harnesses' own checks (no panic; every answer equal to a
//! reference decoder's), a counting global allocator checks that no single
//! allocation made while decoding an input exceeds `4 × input + 4 KiB`: memory
//! follows the bytes that actually arrived, never a length announced by the
//! network (a 4-byte header announcing 4 GiB − 1, or a string prefix
//! announcing 16 MiB, must cost nothing). The factor covers legitimate
//! growth: Latin-1 and lossy UTF-8 decoding expand bytes (up to 3×), buffers
//! grow by doubling.
//!
//! `PROPTEST_CASES` raises the number of generated inputs (default 256 per
//! test).
mod fuzz_harness;

use std::path::PathBuf;

use lunanet::{SocketError, StreamPeer, StreamPeerBuffer};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

#[path = "util/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Runs `f` and returns the largest single allocation it made (this thread).
fn largest_allocation(f: impl FnOnce()) -> usize {
    counting_alloc::counted(f).2
}

/// The most one allocation may take while decoding `len` input bytes.
fn allocation_bound(len: usize) -> usize {
    4 * len + 4096
}

/// Runs a harness on `input` and checks the allocation bound.
#[track_caller]
fn replay(harness: fn(&[u8]), input: &[u8], what: &str) {
    let largest = largest_allocation(|| harness(input));
    assert!(
        largest <= allocation_bound(input.len()),
        "{what}: an allocation of {largest} bytes for {} input bytes",
        input.len()
    );
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[track_caller]
fn run<S: Strategy>(strategy: S, harness: fn(&[u8]), what: &str)
where
    S::Value: AsRef<[u8]> + std::fmt::Debug,
{
    let mut runner = TestRunner::new(cases(256));
    let result = runner.run(&strategy, |input| {
        replay(harness, input.as_ref(), what);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

// ---------------------------------------------------------------------------
// The checked-in corpus
// ---------------------------------------------------------------------------

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("corpus file");
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: too few corpus files", dir.display());
    files
}

#[test]
fn packet_frames_corpus() {
    for (path, input) in corpus("packet_frames") {
        replay(
            fuzz_harness::packet_frames,
            &input,
            &path.display().to_string(),
        );
    }
}

#[test]
fn typed_getters_corpus() {
    for (path, input) in corpus("typed_getters") {
        replay(
            fuzz_harness::typed_getters,
            &input,
            &path.display().to_string(),
        );
    }
}

/// The corpus inputs say what they claim: decoded by the reference decoder,
/// each packet input has the frames its name promises.
#[test]
fn corpus_inputs_are_what_their_names_say() {
    for (path, input) in corpus("packet_frames") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let max = fuzz_harness::MAX_SIZES[usize::from(input[0] >> 1) & 15];
        let frames = fuzz_harness::reference_frames(&input[3..], max);
        if name.contains("oversized") || name.contains("ffffffff") {
            assert!(frames.oversized, "{name}: no oversized header");
        }
        if name.contains("zero_length") {
            assert!(frames.packets.iter().any(Vec::is_empty), "{name}");
        }
        if name.contains("max_size") {
            assert!(
                frames.packets.iter().any(|p| p.len() == max),
                "{name}: no frame of exactly the maximum ({max})"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Generated inputs
// ---------------------------------------------------------------------------

#[test]
fn packet_frames_arbitrary_bytes() {
    run(
        prop::collection::vec(any::<u8>(), 0..4096),
        fuzz_harness::packet_frames,
        "packet_frames (arbitrary bytes)",
    );
}

/// Well-formed frame streams (small lengths, sometimes exactly the maximum,
/// sometimes an oversized header or a truncated tail), so the decoder is
/// exercised past the first header.
fn frame_stream() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 250..260),
        1 => Just(Vec::new()),
    ];
    (
        any::<[u8; 3]>(),
        prop::collection::vec(frame, 0..30),
        prop_oneof![
            4 => Just(Vec::new()),
            1 => any::<[u8; 4]>().prop_map(|h| h.to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..12),
        ],
    )
        .prop_map(|(config, frames, tail)| {
            let mut input = config.to_vec();
            for payload in frames {
                input.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                input.extend_from_slice(&payload);
            }
            input.extend_from_slice(&tail);
            input
        })
}

#[test]
fn packet_frames_structured_streams() {
    run(
        frame_stream(),
        fuzz_harness::packet_frames,
        "packet_frames (frame streams)",
    );
}

#[test]
fn typed_getters_arbitrary_bytes() {
    run(
        prop::collection::vec(any::<u8>(), 0..2048),
        fuzz_harness::typed_getters,
        "typed_getters (arbitrary bytes)",
    );
}

/// A value written with the typed helpers, so that getters often succeed.
#[derive(Debug, Clone)]
enum Put {
    Int(u64, u8),
    Str(String),
    Utf8(String),
    Bytes(Vec<u8>),
    /// A string prefix announcing `len` bytes, then fewer.
    Lie(u32, Vec<u8>),
}

fn typed_stream() -> impl Strategy<Value = Vec<u8>> {
    let put = prop_oneof![
        4 => (any::<u64>(), 0..4u8).prop_map(|(v, w)| Put::Int(v, w)),
        2 => "[ -~]{0,20}".prop_map(Put::Str),
        2 => ".{0,10}".prop_map(Put::Utf8),
        1 => prop::collection::vec(any::<u8>(), 0..20).prop_map(Put::Bytes),
        1 => (any::<u32>(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(l, b)| Put::Lie(l, b)),
    ];
    (
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(put, 0..24),
    )
        .prop_map(|(flags, ops, puts)| {
            let mut buf = StreamPeerBuffer::new();
            buf.set_big_endian(flags & 4 == 4);
            for put in puts {
                let r = match put {
                    Put::Int(v, 0) => buf.put_u8(v as u8),
                    Put::Int(v, 1) => buf.put_u16(v as u16),
                    Put::Int(v, 2) => buf.put_u32(v as u32),
                    Put::Int(v, _) => buf.put_u64(v),
                    Put::Str(s) => buf.put_string(&s),
                    Put::Utf8(s) => buf.put_utf8_string(&s),
                    Put::Bytes(b) => buf.put_data(&b),
                    Put::Lie(len, b) => buf.put_u32(len).and_then(|()| buf.put_data(&b)),
                };
                r.expect("StreamPeerBuffer puts never fail");
            }
            let mut input = vec![flags, ops.len() as u8];
            input.extend_from_slice(&ops);
            input.extend_from_slice(buf.data());
            input
        })
}

#[test]
fn typed_getters_structured_streams() {
    run(
        typed_stream(),
        fuzz_harness::typed_getters,
        "typed_getters (typed streams)",
    );
}

/// The recorder itself works: a large allocation is seen.
#[test]
fn the_allocation_recorder_sees_allocations() {
    let largest = largest_allocation(|| {
        let v = vec![0u8; 1 << 20];
        std::hint::black_box(&v);
    });
    assert!(largest >= 1 << 20, "{largest}");
    // And the bound would catch a decoder that trusted a 16 MiB prefix.
    assert!(allocation_bound(8) < lunanet::MAX_STRING_LENGTH);
}

// ---------------------------------------------------------------------------
// The corpus's documented outcomes (tests/corpus/README.md), file by file
// ---------------------------------------------------------------------------

fn outcomes(target: &str, harness: fn(&[u8])) -> Vec<(String, Vec<fuzz_harness::Outcome>)> {
    corpus(target)
        .into_iter()
        .map(|(path, input)| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fuzz_harness::record_outcomes(harness, &input))
        })
        .collect()
}

/// Each corpus file does what the corpus README says it does, through the
/// library (the harness already compares every answer with a reference; this
/// pins the documented end states, so a file that drifted, or a decoder and
/// reference that drifted together, fails). Every file needs an entry.
/// A getter number and its answer (see `fuzz_harness::Outcome::Getter`).
type Answer = (u8, Result<usize, SocketError>);

#[test]
fn corpus_files_have_their_documented_outcomes() {
    use SocketError::{Busy, FileEof, InvalidParameter, OutOfBufferMemory as Oobm};
    use fuzz_harness::Outcome::{self, Frames, Getter};

    let frames = |o: &[Outcome]| -> (Vec<usize>, SocketError) {
        match o {
            [Frames { lens, end }] => (lens.clone(), *end),
            other => panic!("one Frames outcome expected, got {other:?}"),
        }
    };
    for (name, o) in outcomes("packet_frames", fuzz_harness::packet_frames) {
        let (lens, end) = frames(&o);
        let ok = match name.as_str() {
            "empty.bin" | "truncated_payload.bin" => lens.is_empty() && end == FileEof,
            "header_4gib_announced_within_max_u32.bin" => lens.is_empty() && end == FileEof,
            "header_ffffffff.bin" => lens.is_empty() && end == Oobm,
            "header_ffffffff_buffer.bin" => lens.len() == 1 && end == Oobm,
            "header_split_2_bytes.bin" => lens == [7, 2, 99] && end == FileEof,
            "header_split_across_reads.bin" => !lens.is_empty() && end == FileEof,
            "zero_length_frames.bin" => lens == [0, 0, 0, 0, 0, 1, 0] && end == FileEof,
            "zero_length_max_zero_then_oversized.bin" => {
                !lens.is_empty() && lens.iter().all(|&l| l == 0) && end == Oobm
            }
            "max_size_then_oversized.bin" => lens == [1000] && end == Oobm,
            "max_size_frame_read_limit_1.bin" => lens == [4096] && end == FileEof,
            "max_size_default_65536.bin" => lens.first() == Some(&65536) && end == FileEof,
            "truncated_tail_buffer.bin" => lens.len() == 1 && end == FileEof,
            "many_tiny_frames.bin" => {
                lens.len() == 200 && lens.iter().all(|&l| l <= 3) && end == FileEof
            }
            other => panic!("packet_frames/{other}: no documented outcome in this test"),
        };
        assert!(ok, "packet_frames/{name}: packets {lens:?}, then {end:?}");
    }

    for (name, o) in outcomes("typed_getters", fuzz_harness::typed_getters) {
        let answers: Vec<Answer> = o
            .iter()
            .map(|x| match x {
                Getter { getter, answer } => (*getter, *answer),
                other => panic!("{name}: {other:?}"),
            })
            .collect();
        let errors = |g: u8| -> Vec<SocketError> {
            answers
                .iter()
                .filter(|(n, _)| *n == g)
                .filter_map(|(_, a)| a.err())
                .collect()
        };
        let all = |pred: &dyn Fn(&Answer) -> bool| !answers.is_empty() && answers.iter().all(pred);
        let ok = match name.as_str() {
            "empty.bin" => answers.is_empty(),
            // Every string getter refuses; nothing allocated is checked by
            // the allocation bound of the replay.
            "string_len_ffffffff.bin"
            | "string_len_ffffffff_big_endian.bin"
            | "string_len_max_plus_one.bin" => {
                all(&|(g, a)| (10..=12).contains(g) && *a == Err(Oobm))
            }
            "truncated_string.bin" => {
                answers.first().map(|a| a.1) == Some(Err(Busy))
                    && answers.iter().any(|a| a.1 == Err(FileEof))
                    && answers
                        .iter()
                        .filter(|(g, _)| (10..=12).contains(g))
                        .all(|(_, a)| a.is_err())
            }
            "invalid_utf8.bin" => {
                errors(11) == [InvalidParameter]
                    && answers.iter().any(|(g, a)| *g == 12 && a.is_ok())
            }
            "invalid_utf8_len.bin" => {
                errors(14) == [InvalidParameter]
                    && answers.iter().any(|(g, a)| *g == 13 && a.is_ok())
            }
            "split_utf8_char.bin" => errors(14).contains(&InvalidParameter),
            "big_endian_all_widths.bin" => {
                (0..=9).all(|g| answers.iter().any(|(n, a)| *n == g && a.is_ok()))
            }
            "read_limit_below_width.bin" => {
                errors(6) == [Oobm] && errors(4) == [Oobm] && errors(10).iter().all(|e| *e == Oobm)
            }
            "minimal_default_short_read.bin" => answers.first().map(|a| a.1) == Some(Err(Busy)),
            "string_len_huge_lens.bin" => {
                let lens: Vec<_> = answers
                    .iter()
                    .filter(|(g, _)| *g == 13)
                    .map(|a| a.1)
                    .collect();
                lens.len() == 7
                    && lens[0] == Err(FileEof) // 16 MiB: allowed, not there
                    && lens[1..5].iter().all(|a| *a == Err(Oobm)) // over 16 MiB
                    && lens[5] == Err(FileEof) // available + 1
            }
            "latin1_high_bytes.bin" => all(&|(_, a)| a.is_ok()),
            other => panic!("typed_getters/{other}: no documented outcome in this test"),
        };
        assert!(ok, "typed_getters/{name}: {answers:?}");
    }
}
