//! Time and peak memory of one warm 10,000-record enricher batch (the batch
//! of `benches/handler.rs`): the event's JSON parsed, then
//! `lambda::handle`, as one Lambda invocation does it.
//!
//! `cargo run --release -p dredge-enricher --example batch_memory`
//! (`DREDGE_BENCH_LOG_EVENTS=50` for bigger records; `-- N` for N timed
//! batches after the measured one). With many (`-- 50`: ten million
//! flows) it is a soak: the last lines give the rate over every batch and
//! the peak RSS and live heap after them, which stay where the first warm
//! batch left them.
//!
//! Peak memory is reported two ways: the process's peak RSS (`VmHWM` from
//! /proc/self/status, reset through /proc/self/clear_refs before the batch
//! when the kernel allows it), and the heap's peak live bytes counted by a
//! wrapping global allocator (exact, and free of what the fixture's
//! construction left in the allocator).

#[path = "../benches/support/batch.rs"]
mod batch;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dredge_enricher::lambda::handle;
use dredge_enricher::KinesisBatch;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A `kB` line of /proc/self/status, in bytes.
fn status_bytes(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Resets VmHWM to the current RSS (Linux 4.0+); false when not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let timed: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let log_events = batch::log_events_per_record();
    let hwm_start = status_bytes("VmHWM:").unwrap_or(0);
    let t = Instant::now();
    let fixture = rt.block_on(batch::build(batch::records(), log_events));
    let build_time = t.elapsed();
    let enricher = batch::enricher(fixture.store, fixture.ranges);
    let event_json = fixture.event_json;
    println!(
        "fixture: {} records x {log_events} log events = {} lines, event JSON {} (gzip payloads {}), built in {:.1?}",
        fixture.records,
        fixture.lines,
        mb(event_json.len() as u64),
        mb(fixture.payload_bytes),
        build_time
    );

    // Cold run: fills the caches (the container's first batch).
    let t = Instant::now();
    let event: KinesisBatch = serde_json::from_slice(&event_json).unwrap();
    let (_, cold) = rt.block_on(handle(&enricher, &event, batch::NOW));
    drop(event);
    let cold_time = t.elapsed();
    assert_eq!(cold.retry_from, None, "{:?}", cold.error);
    println!(
        "cold batch: {:.1?} ({} store calls, {} ENI lookups)",
        cold_time, cold.stats.store_calls, cold.stats.eni_lookups
    );

    // The measured warm batch.
    let hwm_before = status_bytes("VmHWM:").unwrap_or(0);
    let reset = reset_peak_rss();
    let rss_before = status_bytes("VmRSS:").unwrap_or(0);
    let heap_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(heap_before, Ordering::Relaxed);
    let t = Instant::now();
    let event: KinesisBatch = serde_json::from_slice(&event_json).unwrap();
    let parsed_at = t.elapsed();
    let heap_event = LIVE.load(Ordering::Relaxed) - heap_before;
    let (_, warm) = rt.block_on(handle(&enricher, &event, batch::NOW));
    drop(event);
    let elapsed = t.elapsed();
    let heap_peak = PEAK.load(Ordering::Relaxed);
    let hwm_after = status_bytes("VmHWM:").unwrap_or(0);
    let s = warm.stats;
    assert_eq!(warm.retry_from, None);
    // A warm batch reads only the knowledge horizon.
    assert_eq!((s.store_calls, s.cache_misses), (1, 0), "warm: {s:?}");
    let secs = elapsed.as_secs_f64();
    println!(
        "warm batch: {} flows, {} records in {:.1?} (parse {:.1?}): {:.0} flows/s, {:.0} records/s, {:.1} MB/s of event JSON",
        s.flows,
        s.records_in,
        elapsed,
        parsed_at,
        s.flows as f64 / secs,
        s.records_in as f64 / secs,
        event_json.len() as f64 / 1e6 / secs
    );
    println!(
        "  output: {} records, {} enriched, {} put calls; flow-log text {}: {:.3} bytes out per byte in",
        s.output_records,
        mb(s.output_bytes),
        s.put_calls,
        mb(s.flow_log_bytes),
        s.output_bytes as f64 / s.flow_log_bytes.max(1) as f64
    );
    println!("  passes: decode {:.1} ms, lookup {:.1} ms, write {:.1} ms", s.decode_ms, s.lookup_ms, s.write_ms);
    println!(
        "heap: {} live before the batch (fixture, caches, event JSON); parsed event {}; peak during the batch {} \
         (+{} over before)",
        mb(heap_before as u64),
        mb(heap_event as u64),
        mb(heap_peak as u64),
        mb((heap_peak - heap_before) as u64)
    );
    println!(
        "rss: VmHWM at start {}, after fixture+cold batch {}; VmRSS before the warm batch {}; VmHWM after it {}{}",
        mb(hwm_start),
        mb(hwm_before),
        mb(rss_before),
        mb(hwm_after),
        if reset { " (peak reset before the batch)" } else { " (could not reset the peak: process-wide)" }
    );

    let mut times = Vec::with_capacity(timed);
    let soak = Instant::now();
    let rss_first = status_bytes("VmRSS:").unwrap_or(0);
    let heap_first = LIVE.load(Ordering::Relaxed);
    for _ in 0..timed {
        let t = Instant::now();
        let event: KinesisBatch = serde_json::from_slice(&event_json).unwrap();
        let (_, o) = rt.block_on(handle(&enricher, &event, batch::NOW));
        drop(event);
        assert_eq!(o.retry_from, None);
        times.push(t.elapsed().as_secs_f64());
    }
    if !times.is_empty() {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{timed} more warm batches: median {:.1} ms, min {:.1} ms: {:.0} flows/s",
            median * 1e3,
            times[0] * 1e3,
            s.flows as f64 / median
        );
        let flows = s.flows * timed as u64;
        let secs = soak.elapsed().as_secs_f64();
        println!(
            "soak: {flows} flows in {timed} batches, {secs:.1} s: {:.0} flows/s; VmRSS {} after the first warm \
             batch, {} after the last, VmHWM {}; live heap {} then {}",
            flows as f64 / secs,
            mb(rss_first),
            mb(status_bytes("VmRSS:").unwrap_or(0)),
            mb(status_bytes("VmHWM:").unwrap_or(0)),
            mb(heap_first as u64),
            mb(LIVE.load(Ordering::Relaxed) as u64)
        );
    }
}
