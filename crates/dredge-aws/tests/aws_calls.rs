//! The functions' least-privilege lists (`crates/dredge-<function>/src/aws_calls.rs`)
//! against the SDK calls in the code: every listed call is made where the
//! list says, with the IAM action that operation needs, and every SDK call
//! made anywhere under `crates/*/src` is in some function's list or in
//! [`CLI_ONLY`]. `tests/python/lint_template.py` then holds each function's
//! role in `template.yaml` to its list.
//!
//! An SDK call is found as a method call without arguments on a value whose
//! name ends in `client` (`self.client.put_records()`, `client\n.create_table()`,
//! `store.client().scan()`), whitespace and comments ignored: the way every
//! adapter calls the SDK. A call written another way goes unseen, so keep to
//! it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "../../dredge-enricher/src/aws_calls.rs"]
mod enricher;
#[path = "../../dredge-ownership/src/aws_calls.rs"]
mod ownership;
#[path = "../../dredge-writer/src/aws_calls.rs"]
mod writer;

/// SDK calls only the `dredge` CLI and the tests make (`dredge ownership
/// --table T create-table`, `dredge replay`, the moto tests): no deployed
/// function does, so no role grants them. (operation, file under `crates/`)
const CLI_ONLY: &[(&str, &str)] = &[
    ("CreateTable", "dredge-aws/src/ownership/table.rs"),
    // `wait_until_table_exists` polls DescribeTable.
    ("DescribeTable", "dredge-aws/src/ownership/table.rs"),
    ("DescribeTimeToLive", "dredge-aws/src/ownership/table.rs"),
    ("UpdateTimeToLive", "dredge-aws/src/ownership/table.rs"),
    // `dredge replay --queue URL`: a failure queue's batches, read again
    // from their stream.
    ("ReceiveMessage", "dredge-aws/src/replay/sqs.rs"),
    ("ChangeMessageVisibility", "dredge-aws/src/replay/sqs.rs"),
    ("DeleteMessage", "dredge-aws/src/replay/sqs.rs"),
    ("GetShardIterator", "dredge-aws/src/replay/kinesis.rs"),
    ("GetRecords", "dredge-aws/src/replay/kinesis.rs"),
];

/// SDK waiters, and the operation each one polls.
const WAITERS: &[(&str, &str)] = &[("wait_until_table_exists", "DescribeTable")];

/// Methods of an SDK client that send nothing.
const NOT_OPERATIONS: &[&str] = &["clone", "config"];

/// Operations whose IAM action is not `<service>:<operation>`.
const ACTIONS: &[(&str, &str)] = &[
    ("SendMessageBatch", "sqs:SendMessage"),
    ("ListObjectsV2", "s3:ListBucket"),
    ("CreateMultipartUpload", "s3:PutObject"),
    ("UploadPart", "s3:PutObject"),
    ("CompleteMultipartUpload", "s3:PutObject"),
];

/// One listed call, whichever function's list it is in.
#[derive(Debug)]
struct Listed {
    function: &'static str,
    operation: &'static str,
    action: &'static str,
    resources: &'static [&'static str],
    source: &'static str,
    path: &'static str,
}

macro_rules! listed {
    ($function:literal, $calls:expr) => {
        $calls.iter().map(|c| Listed {
            function: $function,
            operation: c.operation,
            action: c.action,
            resources: c.resources,
            source: c.source,
            path: c.path,
        })
    };
}

fn listed() -> Vec<Listed> {
    listed!("enricher", enricher::AWS_CALLS)
        .chain(listed!("ownership", ownership::AWS_CALLS))
        .chain(listed!("writer", writer::AWS_CALLS))
        .collect()
}

/// `crates/`.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/").to_owned()
}

/// `ListObjectsV2` from `list_objects_v2`.
fn operation_name(method: &str) -> String {
    method
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The source without comments and whitespace. A `//` after a non-space
/// (`"s3://"`) is no comment.
fn flatten(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut code = line;
        let mut from = 0;
        while let Some(at) = line[from..].find("//") {
            let at = from + at;
            if at == 0 || line.as_bytes()[at - 1].is_ascii_whitespace() {
                code = &line[..at];
                break;
            }
            from = at + 2;
        }
        out.extend(code.chars().filter(|c| !c.is_whitespace()));
    }
    out
}

/// The SDK operations called in one file (see the module's doc).
fn operations_in(source: &str) -> BTreeSet<String> {
    let flat = flatten(source);
    let mut found = BTreeSet::new();
    let mut rest = flat.as_str();
    while let Some(at) = rest.find("client") {
        rest = &rest[at + "client".len()..];
        let after = rest.strip_prefix("()").unwrap_or(rest);
        let Some(call) = after.strip_prefix('.') else { continue };
        let name: String =
            call.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        if name.is_empty() || !call[name.len()..].starts_with("()") || NOT_OPERATIONS.contains(&name.as_str()) {
            continue;
        }
        let operation = match WAITERS.iter().find(|(waiter, _)| *waiter == name) {
            Some((_, polled)) => (*polled).to_owned(),
            None => operation_name(&name),
        };
        found.insert(operation);
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every (file under `crates/`, operation) the sources of every crate make.
fn sdk_calls() -> BTreeSet<(String, String)> {
    let crates = crates_dir();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).expect("crates/") {
        let src = krate.expect("entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut calls = BTreeSet::new();
    for file in files {
        let name = file.strip_prefix(&crates).expect("under crates/").to_string_lossy().replace('\\', "/");
        let source = std::fs::read_to_string(&file).expect("readable");
        for operation in operations_in(&source) {
            calls.insert((name.clone(), operation));
        }
    }
    calls
}

/// The AWS service a file's SDK calls go to, from the one `aws_sdk_*`
/// crate it names.
fn service_of(file: &str) -> String {
    let source = std::fs::read_to_string(crates_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let services: BTreeSet<String> = source
        .match_indices("aws_sdk_")
        .map(|(at, _)| {
            source[at + "aws_sdk_".len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>()
        })
        .collect();
    assert_eq!(
        services.len(),
        1,
        "{file} names SDK crates {services:?}: one service per file, or the action's service is unknown"
    );
    services.into_iter().next().expect("one")
}

#[test]
fn the_call_finder_sees_every_way_the_adapters_call() {
    let source = "let out = self\n    .client\n    .get_item() // not self.client.scan() here\n    .send();\n\
                  let request = self.client.put_records().set_records(x);\n\
                  client\n.wait_until_table_exists()\n\
                  store.client().scan();\n\
                  let c = self.client.clone();\n\
                  aws_sdk_s3::Client::from_conf(conf);\n\
                  let u = \"s3://b/k\"; s3_client.list_objects_v2()";
    let found: Vec<String> = operations_in(source).into_iter().collect();
    assert_eq!(found, ["DescribeTable", "GetItem", "ListObjectsV2", "PutRecords", "Scan"]);
}

#[test]
fn every_listed_call_is_made_where_the_list_says_with_its_action() {
    let calls = sdk_calls();
    let mut wrong = Vec::new();
    for call in listed() {
        if !calls.contains(&(call.source.to_owned(), call.operation.to_owned())) {
            wrong.push(format!("{}: {} is not called in crates/{}", call.function, call.operation, call.source));
        }
        let expected = match ACTIONS.iter().find(|(op, _)| *op == call.operation) {
            Some((_, action)) => (*action).to_owned(),
            None => format!("{}:{}", service_of(call.source), call.operation),
        };
        if call.action != expected {
            wrong.push(format!("{}: {} needs {expected}, listed as {}", call.function, call.operation, call.action));
        }
        if call.resources.is_empty() || call.path.trim().is_empty() {
            wrong.push(format!("{}: {} names no resource or no code path", call.function, call.operation));
        }
    }
    assert!(wrong.is_empty(), "aws_calls.rs lists:\n{}", wrong.join("\n"));
}

#[test]
fn every_sdk_call_in_the_code_is_listed() {
    let listed = listed();
    let mut unlisted = Vec::new();
    for (file, operation) in sdk_calls() {
        let in_a_role = listed.iter().any(|c| c.source == file && c.operation == operation);
        let cli = CLI_ONLY.iter().any(|(op, f)| *f == file && *op == operation);
        if !in_a_role && !cli {
            unlisted.push(format!("{operation} in crates/{file}"));
        }
    }
    assert!(
        unlisted.is_empty(),
        "SDK calls in no function's aws_calls.rs and not CLI_ONLY (a function that makes one gets AccessDenied: \
         list it and grant it in template.yaml):\n{}",
        unlisted.join("\n")
    );
}

#[test]
fn cli_only_calls_are_made_and_in_no_function_list() {
    let calls = sdk_calls();
    for (operation, file) in CLI_ONLY {
        assert!(calls.contains(&((*file).to_owned(), (*operation).to_owned())), "{operation} is not called in {file}");
        let functions: Vec<_> =
            listed().into_iter().filter(|c| c.operation == *operation).map(|c| c.function).collect();
        assert!(functions.is_empty(), "{operation} is CLI-only, yet listed for {functions:?}");
    }
}

#[test]
fn no_call_is_listed_twice_for_one_resource() {
    let mut seen = BTreeSet::new();
    for call in listed() {
        for resource in call.resources {
            assert!(
                seen.insert((call.function, call.operation, *resource)),
                "{}: {} on {resource} listed twice",
                call.function,
                call.operation
            );
        }
    }
}
