//! CloudWatch Embedded Metric Format: metrics as one JSON log line that
//! CloudWatch Logs turns into metrics, with no API call from the function.
//!
//! A document is an object whose `_aws` member holds a timestamp
//! (milliseconds) and one or more `CloudWatchMetrics` directives: each names
//! a namespace, the dimension sets, and the metrics (name and unit) it
//! publishes. Dimension values and metric values are members of the
//! document itself, so a value can be published by several directives under
//! different dimension sets.
//!
//! ```json
//! {"_aws": {"Timestamp": 1700000000000, "CloudWatchMetrics": [
//!    {"Namespace": "Dredge", "Dimensions": [["Function"]],
//!     "Metrics": [{"Name": "Events", "Unit": "Count"}]}]},
//!  "Function": "ownership", "Events": 1}
//! ```

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The namespace every Dredge metric is published in.
pub const NAMESPACE: &str = "Dredge";

/// The dimension naming the function.
pub const FUNCTION_DIMENSION: &str = "Function";

/// EMF's limits per directive.
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;

/// A metric's unit. Only those Dredge publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    Bytes,
    /// A ratio or other unitless value.
    None,
}

impl Unit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One directive: metrics published under a list of dimension sets.
#[derive(Debug, Clone, Default)]
struct Directive {
    dimension_sets: Vec<Vec<String>>,
    metrics: Vec<(String, Unit)>,
}

/// One EMF document under construction.
#[derive(Debug, Clone)]
pub struct Document {
    namespace: String,
    timestamp_ms: u64,
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64)>,
    directives: Vec<Directive>,
}

impl Document {
    /// An empty document stamped now.
    pub fn new(namespace: impl Into<String>) -> Document {
        let timestamp_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Document::at(namespace, timestamp_ms)
    }

    /// A document of one function's invocation: in [`NAMESPACE`], with
    /// [`FUNCTION_DIMENSION`] set to `function` and a directive publishing
    /// what follows under it, as every Dredge function reports.
    pub fn for_function(function: &str) -> Document {
        let mut doc = Document::new(NAMESPACE);
        doc.dimension(FUNCTION_DIMENSION, function).directive(&[&[FUNCTION_DIMENSION]]);
        doc
    }

    /// An empty document with an explicit timestamp (milliseconds since
    /// the Unix epoch).
    pub fn at(namespace: impl Into<String>, timestamp_ms: u64) -> Document {
        Document {
            namespace: namespace.into(),
            timestamp_ms,
            dimensions: Vec::new(),
            values: Vec::new(),
            directives: Vec::new(),
        }
    }

    /// Sets a dimension's value (a later call for the same name wins).
    pub fn dimension(&mut self, name: &str, value: &str) -> &mut Self {
        match self.dimensions.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.dimensions.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Starts a directive publishing under these dimension sets (each a
    /// list of dimension names set with [`dimension`](Self::dimension)).
    /// Metrics added with [`metric`](Self::metric) go into the latest
    /// directive.
    pub fn directive(&mut self, dimension_sets: &[&[&str]]) -> &mut Self {
        self.directives.push(Directive {
            dimension_sets: dimension_sets.iter().map(|set| set.iter().map(|d| (*d).to_owned()).collect()).collect(),
            metrics: Vec::new(),
        });
        self
    }

    /// Adds a metric to the latest directive (starting one under no
    /// dimensions if there is none). A metric already in the document keeps
    /// its first value: a name means one value in EMF.
    pub fn metric(&mut self, name: &str, value: f64, unit: Unit) -> &mut Self {
        if self.directives.is_empty() {
            self.directives.push(Directive { dimension_sets: vec![Vec::new()], metrics: Vec::new() });
        }
        if !self.values.iter().any(|(n, _)| n == name) {
            self.values.push((name.to_owned(), value));
        }
        let directive = self.directives.last_mut().expect("a directive was just ensured");
        if !directive.metrics.iter().any(|(n, _)| n == name) {
            directive.metrics.push((name.to_owned(), unit));
        }
        self
    }

    /// A count.
    pub fn count(&mut self, name: &str, value: u64) -> &mut Self {
        self.metric(name, value as f64, Unit::Count)
    }

    /// The document as JSON. Directives over EMF's limits (100 metrics, 30
    /// dimensions per set) are split or truncated so CloudWatch accepts the
    /// document.
    pub fn to_value(&self) -> Value {
        let mut directives = Vec::new();
        for directive in &self.directives {
            let sets: Vec<Vec<&String>> =
                directive.dimension_sets.iter().map(|set| set.iter().take(MAX_DIMENSIONS).collect()).collect();
            for chunk in directive.metrics.chunks(MAX_METRICS) {
                let metrics: Vec<Value> =
                    chunk.iter().map(|(name, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect();
                directives.push(json!({
                    "Namespace": self.namespace,
                    "Dimensions": sets,
                    "Metrics": metrics,
                }));
            }
        }
        let mut root = Map::new();
        root.insert("_aws".into(), json!({"Timestamp": self.timestamp_ms, "CloudWatchMetrics": directives}));
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, value) in &self.values {
            let number = if value.fract() == 0.0 && value.abs() < 9.0e15 {
                Value::from(*value as i64)
            } else {
                serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number)
            };
            root.insert(name.clone(), number);
        }
        Value::Object(root)
    }

    /// The document as one line of JSON, newline-terminated.
    pub fn to_line(&self) -> String {
        let mut line = self.to_value().to_string();
        line.push('\n');
        line
    }
}

/// Where EMF documents go.
#[derive(Debug, Clone, Default)]
pub enum Sink {
    /// Standard output: in Lambda, CloudWatch Logs, which extracts the
    /// metrics.
    #[default]
    Stdout,
    /// Standard error: local runs, where stdout carries the response.
    Stderr,
    /// A shared buffer (tests, local runs that inspect the metrics).
    Memory(Arc<Mutex<Vec<u8>>>),
    /// Nowhere.
    Off,
}

impl Sink {
    /// A memory sink and the buffer it writes to.
    pub fn memory() -> (Sink, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        (Sink::Memory(buffer.clone()), buffer)
    }

    /// Writes one document as one line, in one write so concurrent log lines
    /// never split it.
    pub fn emit(&self, document: &Document) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(document.to_line().as_bytes())?;
                out.flush()
            }
            Sink::Stderr => {
                let mut out = io::stderr().lock();
                out.write_all(document.to_line().as_bytes())?;
                out.flush()
            }
            Sink::Memory(buffer) => {
                buffer.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(document.to_line().as_bytes());
                Ok(())
            }
            Sink::Off => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_has_the_emf_shape() {
        let mut d = Document::at(NAMESPACE, 1_700_000_000_123);
        d.dimension(FUNCTION_DIMENSION, "ownership").dimension("EventKind", "RunInstances");
        d.directive(&[&[FUNCTION_DIMENSION]]).count("Events", 1).count("MarksOpened", 6);
        d.directive(&[&[FUNCTION_DIMENSION, "EventKind"]]).count("Events", 1);
        let v: Value = serde_json::from_str(d.to_line().trim_end()).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Namespace"], "Dredge");
        assert_eq!(directives[0]["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directives[0]["Metrics"],
            json!([{"Name": "Events", "Unit": "Count"}, {"Name": "MarksOpened", "Unit": "Count"}])
        );
        assert_eq!(directives[1]["Dimensions"], json!([["Function", "EventKind"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "Events", "Unit": "Count"}]));
        assert_eq!(v["Function"], "ownership");
        assert_eq!(v["EventKind"], "RunInstances");
        assert_eq!(v["Events"], 1);
        assert_eq!(v["MarksOpened"], 6);
        assert!(d.to_line().ends_with('\n') && !d.to_line().trim_end().contains('\n'));
    }

    #[test]
    fn a_name_has_one_value_and_fractions_survive() {
        let mut d = Document::at(NAMESPACE, 0);
        d.metric("Latency", 12.5, Unit::Milliseconds).count("Events", 3).count("Events", 9);
        let v = d.to_value();
        assert_eq!(v["Latency"], 12.5);
        assert_eq!(v["Events"], 3);
        let metrics = v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0]["Unit"], "Milliseconds");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }

    #[test]
    fn directives_over_one_hundred_metrics_are_split() {
        let mut d = Document::at(NAMESPACE, 0);
        d.dimension(FUNCTION_DIMENSION, "f").directive(&[&[FUNCTION_DIMENSION]]);
        for i in 0..150 {
            d.count(&format!("M{i}"), i);
        }
        let v = d.to_value();
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.iter().map(|d| d["Metrics"].as_array().unwrap().len()).collect::<Vec<_>>(), [100, 50]);
        assert_eq!(v["M149"], 149);
    }

    #[test]
    fn the_memory_sink_collects_lines() {
        let (sink, buffer) = Sink::memory();
        let mut d = Document::at(NAMESPACE, 0);
        d.count("Events", 1);
        sink.emit(&d).unwrap();
        sink.emit(&d).unwrap();
        Sink::Off.emit(&d).unwrap();
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
