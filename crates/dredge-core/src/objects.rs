//! The object store: where rejected input is kept for people to find (an S3
//! prefix in AWS, a local folder otherwise).

use std::future::Future;
use std::path::{Path, PathBuf};

/// An object store failure: [`Failure`](crate::Failure).
pub type ObjectError = crate::Failure;

pub trait ObjectStore: Send + Sync {
    /// Writes (or replaces) one object.
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), ObjectError>> + Send;
    /// Reads one object.
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, ObjectError>> + Send;
}

/// Objects as files under a root folder; keys are relative paths.
#[derive(Debug, Clone)]
pub struct LocalObjects {
    root: PathBuf,
}

impl LocalObjects {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalObjects { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(ObjectError::Permanent(format!("bad object key `{key}`")));
        }
        Ok(self.root.join(key))
    }
}

impl ObjectStore for LocalObjects {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &body)
        };
        write().map_err(|e| ObjectError::Permanent(format!("{}: {e}", path.display())))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|e| ObjectError::Permanent(format!("{}: {e}", path.display())))
    }
}
