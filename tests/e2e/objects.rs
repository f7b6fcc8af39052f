//! The object store conformance suite: what S3 does, run against S3 (the
//! moto server) and against its embedded twin, `LocalObjects`, so that the
//! twin refuses exactly what S3 refuses.

use dredge_aws::{s3_client, S3Objects};
use dredge_core::objects::{LocalObjects, MultipartUpload, ObjectListing, Part, MAX_KEY_BYTES, MIN_PART_BYTES};

async fn conformance<S: ObjectListing + MultipartUpload>(store: &S, name: &str) {
    // Round trips, replacement, and a missing object.
    store.put("hour=01/a.parquet", b"one".to_vec()).await.unwrap();
    store.put("hour=01/a.parquet", b"uno".to_vec()).await.unwrap();
    assert_eq!(store.get("hour=01/a.parquet").await.unwrap(), b"uno", "{name}");
    assert!(!store.get("hour=01/missing").await.unwrap_err().is_transient(), "{name}");

    // Listing: under the prefix only, in key order, with sizes.
    store.put("hour=02/b", vec![0; 10]).await.unwrap();
    store.put("hour=01/c", vec![0; 7]).await.unwrap();
    store.put("other/d", vec![0; 1]).await.unwrap();
    let listed: Vec<(String, u64)> = store.list("hour=").await.unwrap().into_iter().map(|l| (l.key, l.size)).collect();
    assert_eq!(
        listed,
        [("hour=01/a.parquet".to_owned(), 3), ("hour=01/c".to_owned(), 7), ("hour=02/b".to_owned(), 10)],
        "{name}"
    );
    // Deleting: gone from the listing; deleting again is no error.
    store.delete("hour=01/c").await.unwrap();
    store.delete("hour=01/c").await.unwrap();
    let keys: Vec<String> = store.list("hour=01/").await.unwrap().into_iter().map(|l| l.key).collect();
    assert_eq!(keys, ["hour=01/a.parquet"], "{name}");
    assert!(store.list("nothing/").await.unwrap().is_empty(), "{name}");

    // Keys S3 refuses, or that would escape a folder, are refused by both.
    for bad in ["", "a//b", "../x", "a/./b"] {
        let e = store.put(bad, b"x".to_vec()).await.unwrap_err();
        assert!(!e.is_transient(), "{name} `{bad}`: {e}");
    }
    assert!(store.put(&"k".repeat(MAX_KEY_BYTES + 1), b"x".to_vec()).await.is_err(), "{name}: long key");

    // A multipart upload: 5 MiB, then a short last part.
    let first: Vec<u8> = (0..MIN_PART_BYTES).map(|i| (i % 251) as u8).collect();
    let upload = store.start_upload("final/big.parquet").await.unwrap();
    let p1 = store.upload_part(&upload, 1, first.clone()).await.unwrap();
    let p2 = store.upload_part(&upload, 2, b"tail".to_vec()).await.unwrap();
    assert!(store.list("final/").await.unwrap().is_empty(), "{name}: not there before completion");
    store.complete_upload(&upload, &[p1, p2]).await.unwrap();
    let body = store.get("final/big.parquet").await.unwrap();
    assert_eq!(
        (body.len(), &body[..MIN_PART_BYTES] == first.as_slice(), &body[MIN_PART_BYTES..]),
        (MIN_PART_BYTES + 4, true, &b"tail"[..]),
        "{name}"
    );

    // A part but the last under 5 MiB is refused at completion.
    let upload = store.start_upload("final/small.parquet").await.unwrap();
    let p1 = store.upload_part(&upload, 1, b"short".to_vec()).await.unwrap();
    let p2 = store.upload_part(&upload, 2, b"tail".to_vec()).await.unwrap();
    let e = store.complete_upload(&upload, &[p1, p2]).await.unwrap_err();
    assert!(!e.is_transient(), "{name}: {e}");
    store.abort_upload(&upload).await.unwrap();

    // A single short part is a whole object; parts out of order are refused.
    let upload = store.start_upload("final/one.parquet").await.unwrap();
    let p1 = store.upload_part(&upload, 1, b"only".to_vec()).await.unwrap();
    let unknown = Part { number: 2, etag: p1.etag.clone() };
    assert!(store.complete_upload(&upload, &[unknown, p1.clone()]).await.is_err(), "{name}: out of order");
    store.complete_upload(&upload, &[p1]).await.unwrap();
    assert_eq!(store.get("final/one.parquet").await.unwrap(), b"only", "{name}");

    // An aborted upload writes nothing, and cannot be completed.
    let upload = store.start_upload("final/aborted.parquet").await.unwrap();
    let p1 = store.upload_part(&upload, 1, b"gone".to_vec()).await.unwrap();
    store.abort_upload(&upload).await.unwrap();
    assert!(store.complete_upload(&upload, &[p1]).await.is_err(), "{name}: completed after abort");
    let keys: Vec<String> = store.list("final/").await.unwrap().into_iter().map(|l| l.key).collect();
    assert_eq!(keys, ["final/big.parquet", "final/one.parquet"], "{name}");
}

#[tokio::test]
async fn local_objects_behave_like_s3() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalObjects::new(dir.path()), "local").await;
}

#[tokio::test]
async fn s3_objects_on_moto() {
    let Some(config) = dredge_tests::moto_config("s3_objects_on_moto").await else {
        return;
    };
    let s3 = s3_client(&config);
    let bucket = dredge_tests::unique_name("objects");
    s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket");
    conformance(&S3Objects::new(s3, &bucket, "flows"), "s3").await;
}
