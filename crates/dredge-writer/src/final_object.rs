//! Final objects written as they fill: record batches go into a Parquet
//! writer whose output is uploaded in parts (S3 multipart) as it grows, and
//! an object is closed once it reaches its target size. Memory holds one
//! row group in the making and one part, never an object.

use arrow_array::RecordBatch;
use dredge_columnar::{arrow_schema, writer_properties, EncoderOptions};
use dredge_core::objects::{MultipartUpload, Part, Upload, MIN_PART_BYTES};
use parquet::arrow::ArrowWriter;

use crate::error::WriteError;
use crate::layout::{Hour, Layout};
use crate::manifest::FinalObject;

/// Sizes of final objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// An object is closed once this many bytes are written.
    pub target_bytes: usize,
    /// Bytes per uploaded part (at least S3's 5 MiB).
    pub part_bytes: usize,
    pub encoder: EncoderOptions,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            target_bytes: 128 << 20,
            part_bytes: 16 << 20,
            // Row groups of 32 MiB: what memory holds while one is built.
            encoder: EncoderOptions { row_group_bytes: 32 << 20, ..EncoderOptions::default() },
        }
    }
}

struct Open {
    key: String,
    writer: ArrowWriter<Vec<u8>>,
    upload: Upload,
    parts: Vec<Part>,
    rows: u64,
    /// Bytes already uploaded in parts.
    uploaded: u64,
}

/// Writes one hour's final objects.
pub struct FinalObjects<'a, S> {
    store: &'a S,
    layout: &'a Layout,
    hour: Hour,
    run: i64,
    sizes: Sizes,
    next: usize,
    open: Option<Open>,
    done: Vec<FinalObject>,
}

impl<'a, S: MultipartUpload> FinalObjects<'a, S> {
    /// Objects named `part-{run}-{n}`; `first` is the first `n`.
    pub fn new(store: &'a S, layout: &'a Layout, hour: Hour, run: i64, first: usize, sizes: Sizes) -> Self {
        FinalObjects { store, layout, hour, run, sizes, next: first, open: None, done: Vec::new() }
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.open.is_none() {
            let key = self.layout.final_object(self.hour, self.run, self.next);
            self.next += 1;
            let upload = self.store.start_upload(&key).await?;
            let props = writer_properties(&self.sizes.encoder)?;
            let writer = ArrowWriter::try_new(Vec::new(), arrow_schema(), Some(props))?;
            self.open = Some(Open { key, writer, upload, parts: Vec::new(), rows: 0, uploaded: 0 });
        }
        let open = self.open.as_mut().expect("opened above");
        open.writer.write(batch)?;
        open.rows += batch.num_rows() as u64;
        let part_bytes = self.sizes.part_bytes.max(MIN_PART_BYTES);
        if open.writer.inner().len() >= part_bytes {
            // Bytes already written are final: the writer counts offsets
            // itself, so taking them out of its buffer is safe.
            let body = std::mem::take(open.writer.inner_mut());
            open.uploaded += body.len() as u64;
            let number = open.parts.len() as u32 + 1;
            open.parts.push(self.store.upload_part(&open.upload, number, body).await?);
        }
        if open.writer.bytes_written() + open.writer.in_progress_size() >= self.sizes.target_bytes {
            self.close().await?;
        }
        Ok(())
    }

    /// Closes the object being written, if any.
    async fn close(&mut self) -> Result<(), WriteError> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        // The rest of the data and the footer.
        let tail = open.writer.into_inner()?;
        let bytes = open.uploaded + tail.len() as u64;
        let number = open.parts.len() as u32 + 1;
        open.parts.push(self.store.upload_part(&open.upload, number, tail).await?);
        self.store.complete_upload(&open.upload, &open.parts).await?;
        self.done.push(FinalObject { key: open.key, rows: open.rows, bytes });
        Ok(())
    }

    /// Closes the last object; the objects written, in order.
    pub async fn finish(mut self) -> Result<Vec<FinalObject>, WriteError> {
        self.close().await?;
        Ok(self.done)
    }

    /// Drops the object being written (its upload aborted).
    pub async fn abort(mut self) {
        if let Some(open) = self.open.take() {
            if let Err(e) = self.store.abort_upload(&open.upload).await {
                tracing::warn!(key = %open.key, error = %e, "could not abort an upload; the bucket's lifecycle rule removes it");
            }
        }
    }
}
