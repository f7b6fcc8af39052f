//! What the handler needs from EC2: the ENIs of one instance (when a
//! running instance's ENIs are not in the table yet) and a full snapshot of
//! every ENI (the scheduled reconcile). [`FileDescriber`] answers from
//! describe JSON documents (local runs, tests); the SDK implementation is
//! `ec2::Ec2Api` (feature `ec2`).

use std::future::Future;
use std::path::{Path, PathBuf};

use dredge_core::ownership::{Eni, UnixTime};

use crate::snapshot::{Snapshot, SnapshotError};

/// An EC2 failure: [`Failure`](dredge_core::Failure), classified by the
/// rules every service shares.
pub type DescribeError = dredge_core::Failure;

/// A snapshot and when it was taken, if the describer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenSnapshot {
    /// ENIs (ordered by id) with their instances' tags merged in.
    pub snapshot: Snapshot,
    /// When the state was read: the time every address in it was owned.
    /// `None` when unknown (a file): the handler then uses the event's time.
    pub taken_at: Option<UnixTime>,
}

/// Reads ENIs from EC2, or something that answers like it.
pub trait Ec2Describer: Send + Sync {
    /// The ENIs attached to `instance_id`, each with the instance's tags
    /// merged into its own (the instance's carry the auto scaling group), as
    /// in a snapshot. Empty when the instance has none, or is not known.
    fn describe_instance(&self, instance_id: &str) -> impl Future<Output = Result<Vec<Eni>, DescribeError>> + Send;

    /// Every ENI (all pages), with the tags of the instances they are
    /// attached to.
    fn snapshot(&self) -> impl Future<Output = Result<TakenSnapshot, DescribeError>> + Send;

    /// The time a describe made now reads the state at: EC2 answers with
    /// the present. `None` for a timeless source (files), whose answers the
    /// handler takes as of the event's time.
    fn reads_at(&self) -> Option<UnixTime> {
        Some(UnixTime::now())
    }
}

/// A failure reading snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum FileDescriberError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Snapshot { path: PathBuf, source: SnapshotError },
}

/// A describer that answers from `aws ec2 describe-network-interfaces` and
/// `aws ec2 describe-instances` JSON documents, read once.
#[derive(Debug, Clone, Default)]
pub struct FileDescriber {
    snapshot: Snapshot,
    taken_at: Option<UnixTime>,
}

impl FileDescriber {
    /// A describer that knows no ENI.
    pub fn empty() -> FileDescriber {
        FileDescriber::default()
    }

    /// From a snapshot already read.
    pub fn new(snapshot: Snapshot) -> FileDescriber {
        FileDescriber { snapshot, taken_at: None }
    }

    /// From JSON documents (any number of pages of either kind).
    pub fn from_documents<I>(documents: I) -> Result<FileDescriber, SnapshotError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        Ok(FileDescriber::new(Snapshot::from_documents(documents)?))
    }

    /// From files; a directory stands for every `*.json` file directly in
    /// it, in name order.
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<FileDescriber, FileDescriberError> {
        let mut snapshot = Snapshot::new();
        for path in paths {
            for file in expand(path.as_ref())? {
                let bytes =
                    std::fs::read(&file).map_err(|source| FileDescriberError::Io { path: file.clone(), source })?;
                snapshot
                    .add_slice(&bytes)
                    .map_err(|source| FileDescriberError::Snapshot { path: file.clone(), source })?;
            }
        }
        snapshot.finish();
        Ok(FileDescriber::new(snapshot))
    }

    /// Says when the documents were taken (otherwise the event's time is
    /// used).
    pub fn taken_at(mut self, at: UnixTime) -> FileDescriber {
        self.taken_at = Some(at);
        self
    }

    /// The snapshot read from the documents.
    pub fn contents(&self) -> &Snapshot {
        &self.snapshot
    }
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, FileDescriberError> {
    let io = |source| FileDescriberError::Io { path: path.to_owned(), source };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let file = entry.map_err(io)?.path();
        if file.is_file() && file.extension().is_some_and(|e| e == "json") {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

impl Ec2Describer for FileDescriber {
    async fn describe_instance(&self, instance_id: &str) -> Result<Vec<Eni>, DescribeError> {
        Ok(self.snapshot.enis.iter().filter(|e| e.instance_id.as_deref() == Some(instance_id)).cloned().collect())
    }

    async fn snapshot(&self) -> Result<TakenSnapshot, DescribeError> {
        Ok(TakenSnapshot { snapshot: self.snapshot.clone(), taken_at: self.taken_at })
    }

    fn reads_at(&self) -> Option<UnixTime> {
        self.taken_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/ec2-describe");

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_directory_reads_every_document() {
        let d = FileDescriber::from_paths(&[DIR]).unwrap();
        assert_eq!(d.contents().enis.len(), 6);
        assert_eq!(d.contents().instance_tags.len(), 2);
        let files = [format!("{DIR}/describe-network-interfaces.json"), format!("{DIR}/describe-instances.json")];
        assert_eq!(FileDescriber::from_paths(&files).unwrap().contents(), d.contents());
    }

    #[test]
    fn describes_the_enis_of_one_instance_with_its_tags() {
        let d = FileDescriber::from_paths(&[DIR]).unwrap();
        let enis = block_on(d.describe_instance("i-0d4c3b2a1f0e98765")).unwrap();
        let ids: Vec<&str> = enis.iter().map(|e| e.eni_id.as_str()).collect();
        assert_eq!(ids, ["eni-0a1b2c3d4e5f60001", "eni-0a1b2c3d4e5f60002"]);
        assert!(enis
            .iter()
            .all(|e| e.tags.get("aws:autoscaling:groupName").map(String::as_str) == Some("api-prod-v042")));
        assert!(block_on(d.describe_instance("i-00000000000000000")).unwrap().is_empty());
    }

    #[test]
    fn the_snapshot_carries_its_time_when_told() {
        let d = FileDescriber::from_paths(&[DIR]).unwrap();
        assert_eq!(block_on(d.snapshot()).unwrap().taken_at, None);
        let d = d.taken_at(UnixTime(1_800_000_000));
        let taken = block_on(d.snapshot()).unwrap();
        assert_eq!(taken.taken_at, Some(UnixTime(1_800_000_000)));
        assert_eq!(taken.snapshot.enis.len(), 6);
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{\"Something\": []}").unwrap();
        let err = FileDescriber::from_paths(&[&bad]).unwrap_err();
        assert!(matches!(err, FileDescriberError::Snapshot { .. }), "{err}");
        assert!(err.to_string().contains("bad.json"), "{err}");
        let missing = dir.path().join("missing.json");
        assert!(matches!(FileDescriber::from_paths(&[&missing]).unwrap_err(), FileDescriberError::Io { .. }));
        // Non-JSON files in a directory are not read.
        std::fs::remove_file(&bad).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not json").unwrap();
        assert!(FileDescriber::from_paths(&[dir.path()]).unwrap().contents().enis.is_empty());
    }
}
