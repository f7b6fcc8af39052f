//! Loading `IP_RANGES`: the real published file served over loopback HTTP,
//! failures named, transient ones retried, oversized bodies refused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dredge_enricher::ranges::{self, FetchError, FetchOptions, RangesError};
use dredge_enricher::RangesSource;
use dredge_lambda::RetryPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The real `ip-ranges.json` (2026-08-22), never copied into the repository.
fn shared_file() -> PathBuf {
    std::env::var_os("DREDGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("aws-ip-ranges.json")
}

fn published() -> Vec<u8> {
    let path = shared_file();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PUBLISHED_RANGES: usize = 10_668 + 6_160;

/// Never used: only the S3 source touches it.
fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder().behavior_version(aws_sdk_s3::config::BehaviorVersion::latest()).build(),
    )
}

fn quick() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy::new(3, Duration::from_millis(10), Duration::from_millis(40)),
        ..Default::default()
    }
}

#[derive(Clone)]
enum Reply {
    /// 200 with a Content-Length.
    Ok(Arc<Vec<u8>>),
    /// 200 delimited by closing the connection: the size is known only by reading.
    OkUnsized(Arc<Vec<u8>>),
    Status(&'static str),
    /// Accepts, reads the request, never answers.
    Hang,
}

/// A one-connection-per-request HTTP/1.1 server on loopback answering the
/// nth request with `replies[n]` (the last one repeats). Returns the URL and
/// the request count.
async fn serve(replies: Vec<Reply>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ip-ranges.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let reply = replies[n.min(replies.len() - 1)].clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(request.starts_with(b"GET /ip-ranges.json HTTP/1.1\r\n"));
                let (head, body) = match reply {
                    Reply::Ok(body) => (
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()),
                        body,
                    ),
                    Reply::OkUnsized(body) => ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned(), body),
                    Reply::Status(status) => (
                        format!("HTTP/1.1 {status}\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"),
                        Arc::new(b"nope".to_vec()),
                    ),
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                };
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn url_loads_the_published_file() {
    let file = Arc::new(published());
    let (url, hits) = serve(vec![Reply::Ok(file.clone())]).await;
    let bytes = ranges::fetch_url(&url, &quick()).await.unwrap();
    assert_eq!(bytes, *file);
    let loaded = ranges::load(&RangesSource::Url(url), &s3(), &quick()).await.unwrap().unwrap();
    assert_eq!(loaded.len(), PUBLISHED_RANGES);
    assert_eq!(loaded.create_date, "2026-08-22-15-17-05");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_without_content_length_is_read_to_the_end() {
    let file = Arc::new(published());
    let (url, _) = serve(vec![Reply::OkUnsized(file.clone())]).await;
    assert_eq!(ranges::fetch_url(&url, &quick()).await.unwrap(), *file);
}

#[tokio::test]
async fn not_found_names_the_status_and_is_not_retried() {
    let (url, hits) = serve(vec![Reply::Status("404 Not Found")]).await;
    let e = ranges::load(&RangesSource::Url(url.clone()), &s3(), &quick()).await.unwrap_err();
    assert!(matches!(&e, RangesError::Http { attempts: 1, error: FetchError::Status { .. }, .. }), "{e:?}");
    assert_eq!(e.to_string(), format!("IP_RANGES {url}: HTTP 404 Not Found (1 attempt(s))"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_named() {
    let (url, hits) = serve(vec![Reply::Status("500 Internal Server Error")]).await;
    let e = ranges::fetch_url(&url, &quick()).await.unwrap_err();
    assert_eq!(e.to_string(), format!("IP_RANGES {url}: HTTP 500 Internal Server Error (3 attempt(s))"));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_transient_failure_is_retried_then_succeeds() {
    let file = Arc::new(published());
    let (url, hits) = serve(vec![Reply::Status("503 Service Unavailable"), Reply::Ok(file.clone())]).await;
    let loaded = ranges::load(&RangesSource::Url(url), &s3(), &quick()).await.unwrap().unwrap();
    assert_eq!(loaded.len(), PUBLISHED_RANGES);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_without_retrying() {
    let file = Arc::new(published());
    let options = FetchOptions { max_bytes: 1 << 20, ..quick() };
    for reply in [Reply::Ok(file.clone()), Reply::OkUnsized(file.clone())] {
        let (url, hits) = serve(vec![reply]).await;
        let e = ranges::fetch_url(&url, &options).await.unwrap_err();
        assert!(
            matches!(&e, RangesError::Http { attempts: 1, error: FetchError::TooLarge { limit: 1_048_576 }, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("body larger than 1048576 bytes"), "{e}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_silent_server_times_out_each_attempt() {
    let (url, hits) = serve(vec![Reply::Hang]).await;
    let options = FetchOptions {
        timeout: Duration::from_millis(200),
        retry: RetryPolicy { attempts: 2, ..quick().retry },
        ..quick()
    };
    let e = ranges::fetch_url(&url, &options).await.unwrap_err();
    assert!(matches!(&e, RangesError::Http { attempts: 2, error: FetchError::Timeout(_), .. }), "{e:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connect_errors_are_retried_then_named() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for scheme in ["http", "https"] {
        let url = format!("{scheme}://127.0.0.1:{port}/ip-ranges.json");
        let e =
            ranges::fetch_url(&url, &FetchOptions { retry: RetryPolicy { attempts: 2, ..quick().retry }, ..quick() })
                .await
                .unwrap_err();
        // For https this also shows the platform's CA roots loaded (else FetchError::Tls).
        assert!(matches!(&e, RangesError::Http { attempts: 2, error: FetchError::Request(_), .. }), "{e:?}");
        assert!(e.to_string().to_lowercase().contains("connection refused"), "{e}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_ip_ranges_names_the_source() {
    let (url, _) = serve(vec![Reply::Ok(Arc::new(b"<html>captive portal</html>".to_vec()))]).await;
    let e = ranges::load(&RangesSource::Url(url.clone()), &s3(), &quick()).await.unwrap_err();
    assert!(matches!(&e, RangesError::Parse { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!("IP_RANGES {url}: ip-ranges.json: ")), "{e}");
}

#[tokio::test]
async fn files_and_no_source() {
    let path = shared_file().to_string_lossy().into_owned();
    let loaded = ranges::load(&RangesSource::File(path), &s3(), &quick()).await.unwrap().unwrap();
    assert_eq!(loaded.len(), PUBLISHED_RANGES);
    let e = ranges::load(&RangesSource::File("/nonexistent/ip-ranges.json".into()), &s3(), &quick()).await.unwrap_err();
    assert!(e.to_string().starts_with("IP_RANGES /nonexistent/ip-ranges.json: "), "{e}");
    assert!(ranges::load(&RangesSource::None, &s3(), &quick()).await.unwrap().is_none());
}
