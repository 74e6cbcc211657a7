//! Linear cost, tested (issue 16): every parser of client input is run at size n and 10n and
//! its *work* compared. Quadratic work grows ~100× per 10× input, linear ~10×,
//! `n log n` ~13×; a parser fails here when its work grows more than 20×.
//!
//! Work is measured two ways, both per thread (so parallel tests do not disturb it):
//! - allocations (calls and bytes), counted by this test binary's global allocator: exact
//!   and repeatable;
//! - the thread's CPU time, the least of several interleaved runs. It catches loops that
//!   compare without allocating (the quadratic `query_pairs` of issue 16 did exactly
//!   that). Hardware instruction counters would be exact, but this machine's VM has no PMU
//!   (`perf_event_open` of `PERF_COUNT_HW_INSTRUCTIONS` fails with ENOENT); CPU time of the
//!   thread does not include time spent waiting for a core, and the minimum of the runs drops
//!   what interference remains, so the 2× margin between 10× and 20× absorbs the noise.
//!
//! Sizes are chosen below each documented limit, so the 10n run is a real request's worth.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: every call is passed straight to the system allocator; counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Debug, Clone, Copy)]
struct Work {
    allocs: u64,
    bytes: u64,
    cpu_ns: u64,
}

fn measure_once(f: &mut dyn FnMut()) -> Work {
    let (a0, b0) = (ALLOCS.with(Cell::get), BYTES.with(Cell::get));
    let t0 = thread_cpu_ns();
    f();
    let cpu_ns = thread_cpu_ns() - t0;
    Work {
        allocs: ALLOCS.with(Cell::get) - a0,
        bytes: BYTES.with(Cell::get) - b0,
        cpu_ns,
    }
}

const RUNS: usize = 7;
/// Work may grow at most this much per 10× input.
const MAX_RATIO: f64 = 20.0;

/// Runs `at(n)` and `at(10n)` interleaved and checks the growth of each measure; returns
/// the CPU-time ratio for the report.
fn assert_linear(name: &str, n: usize, mut at: impl FnMut(usize) -> Box<dyn FnMut()>) -> f64 {
    let mut small = at(n);
    let mut large = at(10 * n);
    // warm-up (lazy statics, first-touch page faults)
    small();
    large();
    let (mut s, mut l) = (measure_once(&mut *small), measure_once(&mut *large));
    for _ in 1..RUNS {
        let ws = measure_once(&mut *small);
        let wl = measure_once(&mut *large);
        s.cpu_ns = s.cpu_ns.min(ws.cpu_ns);
        l.cpu_ns = l.cpu_ns.min(wl.cpu_ns);
    }
    let ratio = |a: u64, b: u64| b as f64 / a.max(1) as f64;
    let (ra, rb, rc) = (
        ratio(s.allocs, l.allocs),
        ratio(s.bytes, l.bytes),
        ratio(s.cpu_ns, l.cpu_ns),
    );
    println!(
        "complexity {name}: n={n} → 10n: allocations ×{ra:.1} ({} → {}), bytes ×{rb:.1}, \
         CPU ×{rc:.1} ({:.2} → {:.2} ms)",
        s.allocs,
        l.allocs,
        s.cpu_ns as f64 / 1e6,
        l.cpu_ns as f64 / 1e6
    );
    assert!(
        ra <= MAX_RATIO,
        "{name}: allocations grew ×{ra:.1} for 10× input"
    );
    assert!(
        rb <= MAX_RATIO,
        "{name}: allocated bytes grew ×{rb:.1} for 10× input"
    );
    assert!(
        rc <= MAX_RATIO,
        "{name}: CPU time grew ×{rc:.1} for 10× input"
    );
    rc
}

fn keys(n: usize, sep: &str, f: impl Fn(usize) -> String) -> String {
    (0..n).map(f).collect::<Vec<_>>().join(sep)
}

#[test]
fn query_string_is_linear() {
    // distinct keys, below Go's 10,000-parameter limit
    assert_linear("query string", 900, |n| {
        let q = keys(n, "&", |i| format!("k{i}=v%20{i}"));
        Box::new(move || {
            black_box(crate::go::query_pairs(black_box(&q)));
        })
    });
}

#[test]
fn urlencoded_body_is_linear() {
    assert_linear("urlencoded", 900, |n| {
        let body = keys(n, "&", |i| format!("field{i}=v+{i}")).into_bytes();
        Box::new(move || {
            black_box(crate::apis::body::form_record_data(black_box(&body), "a=1").unwrap());
        })
    });
}

#[test]
fn multipart_body_is_linear() {
    // below Go's 1,000-part limit
    assert_linear("multipart", 90, |n| {
        let mut body = String::new();
        for i in 0..n {
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"field{i}\"\r\n\r\nvalue {i} {}\r\n",
                "v".repeat(2000)
            ));
            if i % 10 == 0 {
                body.push_str(&format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a{i}.txt\"\r\n\r\n{}\r\n",
                    "x".repeat(100)
                ));
            }
        }
        body.push_str("--XyZ--\r\n");
        let body = body.into_bytes();
        Box::new(move || {
            let parsed = crate::apis::body::multipart_record_body(
                "multipart/form-data; boundary=XyZ",
                black_box(&body),
                "",
            );
            black_box(parsed.unwrap());
        })
    });
}

#[test]
fn json_body_is_linear() {
    assert_linear("json", 1000, |n| {
        let body = format!(
            "{{{}}}",
            keys(n, ",", |i| format!(
                "\"field{i}\":[{i},\"v{i}\",{{\"x\":null}}]"
            ))
        )
        .into_bytes();
        Box::new(move || {
            black_box(crate::apis::body::json_record_data(black_box(&body)).unwrap());
        })
    });
}

#[test]
fn filter_is_linear() {
    // the parser itself, above the 3,500-byte limit a list request enforces
    assert_linear("filter", 150, |n| {
        let filter = keys(n, " || ", |i| {
            format!("(title ~ 'x{i}' && views > {i}) || tags.name ?= \"t{i}\"")
        });
        Box::new(move || {
            black_box(pocketbun_query::parse(black_box(&filter)).unwrap());
        })
    });
}

#[test]
fn sort_is_linear() {
    assert_linear("sort", 3000, |n| {
        let sort = keys(n, ",", |i| format!("-field{i}"));
        Box::new(move || {
            black_box(pocketbun_query::parse_sort(black_box(&sort)));
        })
    });
}

#[test]
fn fields_are_linear() {
    // parsing, and picking from a page of records
    let record = r#"{"id":"x","title":"t","views":1,"expand":{"rel":{"id":"y","title":"t"}}}"#;
    let page = format!(r#"{{"items":[{}],"page":1}}"#, vec![record; 50].join(","));
    assert_linear("fields", 300, |n| {
        let fields = format!(
            "id,expand.rel.title,{}",
            keys(n, ",", |i| format!("f{i}:excerpt(10,true)"))
        );
        let page = page.clone();
        Box::new(move || {
            let picks = crate::records::pick::parse(black_box(&fields)).unwrap();
            black_box(crate::records::pick::apply(&page, &picks, true).unwrap());
        })
    });
}

#[test]
fn expand_is_linear() {
    assert_linear("expand", 1000, |n| {
        let expand = keys(n, ",", |i| {
            format!(" rel{i}.sub.x , rel{i}.sub ,rel{}", i / 2)
        });
        Box::new(move || {
            black_box(crate::records::expand::normalize(black_box(&expand)));
        })
    });
}

#[test]
fn batch_is_linear() {
    assert_linear("batch", 100, |n| {
        let body = format!(
            r#"{{"requests":[{}]}}"#,
            keys(n, ",", |i| format!(
                r#"{{"method":"POST","url":"/api/collections/demo/records?x={i}","headers":{{"x-a":"b"}},"body":{{"title":"t{i}","n":{i}}}}}"#
            ))
        )
        .into_bytes();
        Box::new(move || {
            let data = crate::apis::body::json_record_data(black_box(&body)).unwrap();
            let items = crate::apis::batch::read_items(crate::records::input::RecordBody {
                data,
                uploads: Vec::new(),
            })
            .unwrap();
            black_box(crate::apis::batch::validate(&items, usize::MAX).is_ok());
        })
    });
}
