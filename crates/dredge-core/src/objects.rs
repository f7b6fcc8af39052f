//! The object store: where rejected input is kept for people to find, and
//! where the writer's Parquet goes (an S3 bucket and prefix in AWS, a local
//! folder otherwise).
//!
//! Three narrow interfaces, so that each user asks for what it needs: every
//! store puts and gets ([`ObjectStore`]); listing and deleting
//! ([`ObjectListing`]) and multipart uploads of large objects
//! ([`MultipartUpload`]) are for whoever manages a prefix's objects.
//! [`LocalObjects`] is the embedded twin of S3 and refuses what S3 refuses
//! (key length, part sizes and numbers, unknown uploads), so tests see
//! what AWS would say.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An object store failure: [`Failure`](crate::Failure).
pub type ObjectError = crate::Failure;

/// S3's longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// S3's smallest part of a multipart upload, but for the last.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
/// S3's largest part.
pub const MAX_PART_BYTES: usize = 5 * 1024 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;

pub trait ObjectStore: Send + Sync {
    /// Writes (or replaces) one object.
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), ObjectError>> + Send;
    /// Reads one object.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, ObjectError>> + Send;
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key, relative to the store's prefix.
    pub key: String,
    pub size: u64,
}

/// Listing and deleting the objects under a prefix.
pub trait ObjectListing: ObjectStore {
    /// Every object whose key starts with `prefix`, in key order (bytes).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Listed>, ObjectError>> + Send;
    /// Deletes one object; deleting a missing one is no error (as in S3).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), ObjectError>> + Send;
}

/// A multipart upload under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
}

/// One uploaded part: its number and the tag the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub etag: String,
}

/// Writing one large object in parts, none held whole: parts of at least
/// [`MIN_PART_BYTES`] but the last, numbered from 1 to [`MAX_PARTS`]. The
/// object appears only when the upload completes.
pub trait MultipartUpload: ObjectStore {
    fn start_upload(&self, key: &str) -> impl Future<Output = Result<Upload, ObjectError>> + Send;
    fn upload_part(
        &self,
        upload: &Upload,
        number: u32,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Part, ObjectError>> + Send;
    /// Assembles the parts, in number order, into the object.
    fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> impl Future<Output = Result<(), ObjectError>> + Send;
    /// Drops the parts; the object is not written.
    fn abort_upload(&self, upload: &Upload) -> impl Future<Output = Result<(), ObjectError>> + Send;
}

/// Checks a key as S3 would take it, plus what a path needs: 1 to 1024
/// bytes, and no empty, `.` or `..` segment.
pub fn check_key(key: &str) -> Result<(), ObjectError> {
    let bad = |why: &str| Err(ObjectError::Permanent(format!("bad object key `{key}`: {why}")));
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return bad("1 to 1024 bytes");
    }
    if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return bad("an empty, `.` or `..` segment");
    }
    Ok(())
}

/// Objects as files under a root folder; keys are relative paths. Uploads
/// in progress live under `<root>/.multipart/`, which no key may name.
#[derive(Debug, Clone)]
pub struct LocalObjects {
    root: PathBuf,
}

/// Upload ids and temporary file names, unique within the process (with the
/// process id, across processes sharing a folder).
static UPLOADS: AtomicU64 = AtomicU64::new(0);

const MULTIPART_DIR: &str = ".multipart";

impl LocalObjects {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalObjects { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        check_key(key)?;
        if key.split('/').next() == Some(MULTIPART_DIR) {
            return Err(ObjectError::Permanent(format!("bad object key `{key}`: `{MULTIPART_DIR}` is reserved")));
        }
        Ok(self.root.join(key))
    }

    fn upload_dir(&self, upload: &Upload) -> Result<PathBuf, ObjectError> {
        let dir = self.root.join(MULTIPART_DIR).join(&upload.upload_id);
        if upload.upload_id.contains(['/', '.']) || !dir.is_dir() {
            return Err(ObjectError::Permanent(format!("NoSuchUpload: {} for `{}`", upload.upload_id, upload.key)));
        }
        Ok(dir)
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ObjectError {
    ObjectError::Permanent(format!("{}: {e}", path.display()))
}

/// Writes through a temporary file and a rename, so that a reader never
/// sees half an object.
fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    std::fs::create_dir_all(dir)?;
    // Unique per write, so that concurrent writers of one key never share it.
    let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("object");
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl ObjectStore for LocalObjects {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        write_atomically(&path, |f| f.write_all(&body)).map_err(|e| io_error(&path, e))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|e| io_error(&path, e))
    }
}

impl ObjectListing for LocalObjects {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir, e))?;
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // Uploads in progress and half-written files are not objects.
                if name.starts_with('.') {
                    continue;
                }
                let meta = entry.metadata().map_err(|e| io_error(&path, e))?;
                if meta.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&self.root).expect("listed under the root");
                let key: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                let key = key.join("/");
                if key.starts_with(prefix) {
                    out.push(Listed { key, size: meta.len() });
                }
            }
        }
        out.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

impl MultipartUpload for LocalObjects {
    async fn start_upload(&self, key: &str) -> Result<Upload, ObjectError> {
        self.path(key)?;
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        let upload_id = format!("{}-{n}", std::process::id());
        let dir = self.root.join(MULTIPART_DIR).join(&upload_id);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(Upload { key: key.to_owned(), upload_id })
    }

    async fn upload_part(&self, upload: &Upload, number: u32, body: Vec<u8>) -> Result<Part, ObjectError> {
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(ObjectError::Permanent(format!("InvalidArgument: part number {number} (1 to {MAX_PARTS})")));
        }
        if body.len() > MAX_PART_BYTES {
            return Err(ObjectError::Permanent(format!("EntityTooLarge: part of {} bytes", body.len())));
        }
        let path = self.upload_dir(upload)?.join(format!("{number:05}"));
        write_atomically(&path, |f| f.write_all(&body)).map_err(|e| io_error(&path, e))?;
        Ok(Part { number, etag: format!("{number}-{}", body.len()) })
    }

    async fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> Result<(), ObjectError> {
        let dir = self.upload_dir(upload)?;
        if parts.is_empty() || parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ObjectError::Permanent("InvalidPartOrder: parts must be listed in ascending order".into()));
        }
        let mut files = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let path = dir.join(format!("{:05}", part.number));
            let size = std::fs::metadata(&path)
                .map_err(|_| ObjectError::Permanent(format!("InvalidPart: part {} was not uploaded", part.number)))?
                .len();
            if part.etag != format!("{}-{size}", part.number) {
                return Err(ObjectError::Permanent(format!("InvalidPart: part {} has another tag", part.number)));
            }
            if i + 1 < parts.len() && (size as usize) < MIN_PART_BYTES {
                return Err(ObjectError::Permanent(format!(
                    "EntityTooSmall: part {} is {size} bytes; all but the last must be at least {MIN_PART_BYTES}",
                    part.number
                )));
            }
            files.push(path);
        }
        let target = self.path(&upload.key)?;
        write_atomically(&target, |out| {
            for path in &files {
                std::io::copy(&mut std::fs::File::open(path)?, out)?;
            }
            Ok(())
        })
        .map_err(|e| io_error(&target, e))?;
        std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        let dir = self.root.join(MULTIPART_DIR).join(&upload.upload_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&dir, e)),
        }
    }
}
