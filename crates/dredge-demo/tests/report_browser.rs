//! `report.html` in a real browser: headless Debian chromium screenshots a
//! rendered sample report and dumps its DOM. Catches what string asserts
//! cannot: a page that parses to nothing, or paints blank.
//!
//! Skips (with a message) when `/usr/bin/chromium` is missing, unless `CI`
//! is set: `.ci/run` installs chromium, so in CI a missing one is a failure.
//! `DREDGE_REPORT_KEEP=<dir>` keeps the pages and their screenshots there.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dredge_demo::report::render;
use dredge_demo::summary::{Counts, Misattribution, Pair, Rate, Setup, Summary};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn misattributed_run_paints_red_in_chromium() {
    let Some((image, dom)) = in_chromium(&sample(), "misattributed") else { return };
    // The verdict is red: misattributions must paint as such, not only exist
    // in the markup.
    assert!(image.has_pixel(is_red), "no red in the screenshot");
    for expected in ["1,993,512", "6,395", "93", "flow sides misattributed", "Misattributions over flow time"] {
        assert!(dom.contains(expected), "rendered DOM lacks {expected:?}");
    }
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"] {
        assert!(dom.contains(region), "rendered DOM lacks region {region}");
    }
    assert!(dom.contains("&lt;script&gt;"), "the escaped app name did not survive as text");
    assert!(!dom.contains("<script"), "the DOM grew a script element");
}

#[test]
fn clean_run_paints_green_in_chromium() {
    let Some((image, dom)) = in_chromium(&clean(sample()), "clean") else { return };
    assert!(image.has_pixel(|r, g, b| r < 60 && g > 100 && b < 110), "no green verdict in the screenshot");
    assert!(dom.contains("1,993,605") && dom.contains("No misattributions"));
    assert!(!dom.contains("Misattributions over flow time"));
}

/// `BAD` in report.rs, and what antialiasing leaves of it.
fn is_red(r: u8, g: u8, b: u8) -> bool {
    r > 170 && g < 90 && b < 90
}

/// Renders `summary`, screenshots it and dumps its DOM; `None` when the test
/// is to be skipped. Checks the screenshot is a full-size, non-blank PNG.
fn in_chromium(summary: &Summary, name: &str) -> Option<(Image, String)> {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing with CI set: .ci/run should have installed it"
        );
        eprintln!("SKIPPED: {CHROMIUM} not installed (apt-get install chromium, or see .ci/run)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, render(summary)).unwrap();
    let url = format!("file://{}", html.display());

    let png = dir.path().join("report.png");
    let shot = chromium(dir.path(), &[&format!("--screenshot={}", png.display()), "--window-size=1280,2400", &url]);
    assert!(png.exists(), "no screenshot; chromium said: {}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    if let Some(keep) = std::env::var_os("DREDGE_REPORT_KEEP") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::copy(&html, keep.join(format!("{name}.html"))).unwrap();
        std::fs::write(keep.join(format!("{name}.png")), &bytes).unwrap();
    }
    let image = decode_png(&bytes);
    assert_eq!((image.width, image.height), (1280, 2400));
    let colors = image.distinct_colors();
    assert!(colors > 100, "screenshot looks blank: {colors} distinct colors");

    let dom = chromium(dir.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<svg"), "no SVG in the rendered DOM");
    Some((image, dom))
}

/// Headless chromium with a fresh profile and nothing that reaches out to
/// the network; killed if it hangs.
fn chromium(dir: &Path, args: &[&str]) -> Output {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Drain the pipes on threads so a chatty chromium cannot block on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).map(|_| v).unwrap_or_default()
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium {args:?} took over 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(output.status.success(), "chromium {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

struct Image {
    width: u32,
    height: u32,
    channels: usize,
    pixels: Vec<u8>,
}

impl Image {
    fn rgb(&self) -> impl Iterator<Item = (u8, u8, u8)> + '_ {
        self.pixels.chunks_exact(self.channels).map(|p| (p[0], p[1], p[2]))
    }

    fn distinct_colors(&self) -> usize {
        self.rgb().collect::<HashSet<_>>().len()
    }

    fn has_pixel(&self, f: impl Fn(u8, u8, u8) -> bool) -> bool {
        self.rgb().any(|(r, g, b)| f(r, g, b))
    }
}

/// Just enough PNG to look at chromium's screenshot: 8-bit RGB or RGBA,
/// not interlaced. Inflates the IDAT stream and undoes the row filters.
fn decode_png(bytes: &[u8]) -> Image {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (mut width, mut height, mut channels) = (0, 0, 0);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("PNG color type {other}"),
                };
                assert_eq!(data[12], 0, "interlaced PNG");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = width as usize * channels;
    assert_eq!(raw.len(), (stride + 1) * height as usize, "IDAT size");
    let mut pixels = vec![0u8; stride * height as usize];
    for row in 0..height as usize {
        let filter = raw[row * (stride + 1)];
        let line = &raw[row * (stride + 1) + 1..(row + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels { pixels[row * stride + i - channels] } else { 0 };
            let b = if row > 0 { pixels[(row - 1) * stride + i] } else { 0 };
            let c = if row > 0 && i >= channels { pixels[(row - 1) * stride + i - channels] } else { 0 };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => paeth(a, b, c),
                other => panic!("PNG filter {other}"),
            };
            pixels[row * stride + i] = line[i].wrapping_add(predicted);
        }
    }
    Image { width, height, channels, pixels }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = ((p - a as i16).abs(), (p - b as i16).abs(), (p - c as i16).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// A plausible six-hour run: four regions, a dozen app pairs, a burst of
/// misattributions after a lost event, and one app name that needs escaping.
fn sample() -> Summary {
    let start = 1_717_200_000; // 2024-06-01 00:00:00 UTC
    let end = start + 6 * 3600;
    let c = |correct, unattributed, misattributed, knowable, knowable_unattributed| Counts {
        correct,
        unattributed,
        misattributed,
        knowable,
        knowable_unattributed,
    };
    let score = c(1_993_512, 6_395, 93, 1_995_820, 2_215);
    let by_side = BTreeMap::from([
        ("src".to_string(), c(996_790, 3_160, 50, 997_930, 1_090)),
        ("dst".to_string(), c(996_722, 3_235, 43, 997_890, 1_125)),
    ]);
    let by_attribution = BTreeMap::from([
        ("owner".to_string(), c(1_520_400, 0, 81, 1_520_481, 0)),
        ("logging_eni".to_string(), c(120_112, 0, 12, 120_124, 0)),
        ("aws_service".to_string(), c(95_000, 0, 0, 95_000, 0)),
        ("internet".to_string(), c(258_000, 0, 0, 258_000, 0)),
        ("unattributed".to_string(), c(0, 6_395, 0, 2_215, 2_215)),
    ]);
    let by_truth = BTreeMap::from([
        ("instance".to_string(), c(1_520_400, 5_100, 81, 1_522_000, 1_600)),
        ("eni".to_string(), c(120_112, 1_295, 12, 120_820, 615)),
        ("aws_service".to_string(), c(95_000, 0, 0, 95_000, 0)),
        ("internet".to_string(), c(258_000, 0, 0, 258_000, 0)),
    ]);
    let causes = BTreeMap::from([
        ("lost_terminate".to_string(), 61),
        ("late_delete".to_string(), 24),
        ("reused_before_delivery".to_string(), 8),
    ]);
    let apps = ["checkout", "payments", "search", "catalog", "<script>alert(1)</script>", "ledger & audit", "web"];
    let mut top_pairs = Vec::new();
    let mut bytes = 48_300_000_000u64;
    for i in 0..12 {
        let (s, d) = (apps[i % apps.len()], apps[(i * 3 + 1) % apps.len()]);
        top_pairs.push(Pair { src: s.into(), dst: d.into(), flows: bytes / 90_000, bytes });
        bytes = bytes * 5 / 8;
    }
    let regions_list = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];
    let mut regions = Vec::new();
    for (i, s) in regions_list.iter().enumerate() {
        for (j, d) in regions_list.iter().enumerate() {
            if (i + j) % 5 == 4 {
                continue; // some routes carry nothing
            }
            let bytes =
                if i == j { 30_000_000_000 / (i as u64 + 1) } else { 4_000_000 * (1 + i as u64 * 7 + j as u64 * 31) };
            regions.push(Pair { src: s.to_string(), dst: d.to_string(), flows: bytes / 80_000, bytes });
        }
    }
    let cross_az =
        top_pairs.iter().take(6).map(|p| Pair { bytes: p.bytes / 7, flows: p.flows / 7, ..p.clone() }).collect();
    let cross_region = top_pairs
        .iter()
        .skip(2)
        .take(4)
        .map(|p| Pair { bytes: p.bytes / 40, flows: p.flows / 40, ..p.clone() })
        .collect();
    let counts = [3u64, 0, 1, 0, 0, 2, 9, 17, 12, 6, 4, 2, 1, 0, 0, 1, 0, 3, 5, 8, 6, 3, 2, 1, 1, 0, 2];
    let misattribution_timeline: Vec<(i64, u64)> =
        counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (start + 2700 + 300 * i as i64, *n)).collect();
    let misattributions = (0..24)
        .map(|i| Misattribution {
            flow_time: start + 4500 + 37 * i,
            processed_at: start + 4500 + 37 * i + 95,
            side: if i % 3 == 0 { "dst" } else { "src" }.into(),
            address: format!("10.{}.{}.{}", i % 4, 16 + i % 7, 10 + i),
            truth: format!("{} (eni-0a{:04x})", apps[(i as usize + 1) % apps.len()], 4096 + i),
            reported: format!("{} (eni-0b{:04x})", apps[i as usize % apps.len()], 8192 + i),
            cause: ["lost_terminate", "late_delete", "reused_before_delivery"][i as usize % 3].into(),
            events: vec![
                format!("01:1{}:05 terminate i-0c{i:03} (eni-0b{:04x}): lost, never delivered", i % 10, 8192 + i),
                format!(
                    "01:1{}:40 launch i-0d{i:03} takes 10.{}.{}.{}: delivered 01:2{}:02",
                    i % 10,
                    i % 4,
                    16 + i % 7,
                    10 + i,
                    i % 10
                ),
            ],
        })
        .collect();
    Summary {
        setup: Setup {
            seed: 20_240_601,
            flows: 1_000_000,
            churn: 0.25,
            delays: "eventbridge-typical".into(),
            start,
            end,
            accounts: 3,
            regions: 4,
            vpcs: 6,
            apps: 7,
            instances: 412,
            standalone_enis: 36,
            events_generated: 1_310,
            events_delivered: 1_322,
            events_lost: 9,
            reconciles: 6,
            compactions: 2,
        },
        score,
        by_side,
        by_attribution,
        by_truth,
        causes,
        rate: Rate { flows: 1_000_000, rows: 1_000_000, elapsed_seconds: 7.8, flows_per_second: 128_205.1 },
        pipeline: Default::default(),
        top_pairs,
        regions,
        cross_az,
        cross_region,
        misattribution_timeline,
        misattributions,
    }
}

/// The same run with every misattribution and knowable miss put right.
fn clean(mut s: Summary) -> Summary {
    let fix = |c: &mut Counts| {
        c.correct += c.misattributed;
        c.misattributed = 0;
        c.knowable_unattributed = 0;
    };
    fix(&mut s.score);
    s.by_side.values_mut().chain(s.by_attribution.values_mut()).chain(s.by_truth.values_mut()).for_each(fix);
    s.causes.clear();
    s.misattribution_timeline.clear();
    s.misattributions.clear();
    s
}
