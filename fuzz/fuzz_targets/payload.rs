//! The payload decoder, `Decoder::decode`, on arbitrary bytes: raw flow-log
//! text (header lines included), gzip (one or many members) and CloudWatch
//! Logs subscription documents, with a 1 MiB decompression cap so that
//! every input stays fast.
//!
//! Beyond "no panic":
//! - the stats add up: `records` and `rejected` are the records and
//!   rejections visited, `records + rejected + headers` is the number of
//!   non-blank lines (raw text) or log events (CloudWatch), `text_bytes` is
//!   the text's length with a newline per line;
//! - items come once per line, in line order; a refused payload visits
//!   nothing;
//! - decompressed text never exceeds the cap;
//! - every visited record writes valid JSON;
//! - a reused `Inflater` (as a batch uses one) gives the same result as a
//!   fresh one.

#![no_main]

use std::borrow::Cow;
use std::cell::RefCell;

use dredge_core::flowlog::{
    gunzip_bounded, is_gzip, DecodeOptions, DecodeStats, Decoder, Format, Inflater, Item, PayloadError, PayloadKind,
};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

thread_local! {
    static DECODER: Decoder = Decoder::new(DecodeOptions { format: Format::default_v2(), max_decompressed: MAX });
    /// Reused across inputs, as the enricher reuses one across a batch.
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new());
}

#[derive(Default)]
struct Seen {
    records: u64,
    rejected: u64,
    last_line: usize,
    json: Vec<u8>,
}

impl Seen {
    fn visit(&mut self, item: Item<'_, '_>) {
        let line = match item {
            Item::Record { line, record } => {
                self.records += 1;
                self.json.clear();
                record.write_json(&mut self.json);
                if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&self.json) {
                    panic!("record of line {line} wrote invalid JSON ({e}): {:?}", String::from_utf8_lossy(&self.json));
                }
                line
            }
            Item::Rejected { line, error, text } => {
                self.rejected += 1;
                // Errors quote a bounded part of a bad token, whatever its size.
                let message = error.to_string();
                assert!(
                    message.len() <= 512,
                    "line {line}: a {}-byte error for a {}-byte line",
                    message.len(),
                    text.len()
                );
                line
            }
        };
        assert!(line > self.last_line, "line {line} visited after line {}", self.last_line);
        self.last_line = line;
    }
}

fuzz_target!(|data: &[u8]| {
    DECODER.with(|decoder| {
        let mut seen = Seen::default();
        let result = decoder.decode(data, &mut |item| seen.visit(item));
        let reused = INFLATER.with(|inflater| {
            let mut inflater = inflater.borrow_mut();
            decoder.decode_with(data, &mut inflater, &mut |_| {}).map_err(|e| e.to_string())
        });
        match result {
            Ok((kind, stats)) => {
                assert_eq!(reused.as_ref().ok(), Some(&(kind, stats)), "a reused inflater decodes differently");
                check_stats(data, kind, &stats, &seen);
            }
            Err(error) => {
                let message = error.to_string();
                assert_eq!(reused.err(), Some(message), "a reused inflater decodes differently");
                assert_eq!((seen.records, seen.rejected), (0, 0), "a refused payload visited items: {error}");
                if let PayloadError::TooLarge { max } = error {
                    assert_eq!(max, MAX);
                }
            }
        }
    });
});

fn check_stats(data: &[u8], kind: PayloadKind, stats: &DecodeStats, seen: &Seen) {
    assert_eq!(stats.payloads, 1);
    assert_eq!(stats.records, seen.records, "{stats:?}");
    assert_eq!(stats.rejected, seen.rejected, "{stats:?}");
    assert!(stats.no_data + stats.skip_data <= stats.records, "{stats:?}");
    let text: Cow<'_, [u8]> = if is_gzip(data) {
        Cow::Owned(gunzip_bounded(data, MAX).expect("the decoder read it, so it gunzips"))
    } else {
        Cow::Borrowed(data)
    };
    assert!(text.len() <= MAX, "decompressed {} bytes past the cap", text.len());
    let items = stats.records + stats.rejected + stats.headers;
    match kind {
        PayloadKind::Text => {
            assert_eq!(stats.control_messages, 0);
            let non_blank = text.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count() as u64;
            assert_eq!(items, non_blank, "{stats:?}");
            let newline = u64::from(text.last().is_some_and(|&b| b != b'\n'));
            assert_eq!(stats.text_bytes, text.len() as u64 + newline, "{stats:?}");
        }
        PayloadKind::CloudWatchData => {
            assert_eq!(stats.control_messages, 0);
            // serde_json skips the members the decoder ignores without
            // checking their UTF-8 (invalid bytes in `id` pass): the
            // document may not parse as a whole. Nothing to compare then.
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else { return };
            let messages: Vec<String> = match doc.get("logEvents") {
                Some(serde_json::Value::Array(events)) => {
                    // serde reads a struct from an object or from an array of its fields.
                    let message = |e: &'_ serde_json::Value| match e {
                        serde_json::Value::Array(fields) => fields[0].clone(),
                        object => object["message"].clone(),
                    };
                    events.iter().map(|e| message(e).as_str().expect("every event has a message").to_owned()).collect()
                }
                _ => Vec::new(),
            };
            let non_blank = messages.iter().filter(|m| !m.trim_ascii().is_empty()).count() as u64;
            assert_eq!(items, non_blank, "{stats:?}");
            let bytes: u64 = messages.iter().map(|m| m.len() as u64 + 1).sum();
            assert_eq!(stats.text_bytes, bytes, "{stats:?}");
        }
        PayloadKind::CloudWatchControl => {
            assert_eq!(stats.control_messages, 1);
            assert_eq!((stats.records, stats.rejected, stats.headers, stats.text_bytes), (0, 0, 0, 0));
        }
    }
}
