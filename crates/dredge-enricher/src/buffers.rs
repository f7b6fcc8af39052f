//! Large buffers kept for reuse across and within batches. A batch writes
//! hundreds of megabytes; in fresh memory every 4 KiB page costs a fault
//! and zeroing by the kernel, which cost more than writing the bytes.

use std::sync::Mutex;

/// A pool of equally sized byte buffers (output records, flow-JSON chunks).
#[derive(Debug)]
pub struct BufferPool {
    size: usize,
    keep: usize,
    spare: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// Buffers of `size` bytes' capacity; at most `keep` are kept spare.
    pub fn new(size: usize, keep: usize) -> Self {
        BufferPool { size, keep, spare: Mutex::new(Vec::new()) }
    }

    /// The capacity every buffer taken has at least.
    pub fn size(&self) -> usize {
        self.size
    }

    /// An empty buffer of at least `size()` capacity.
    pub fn take(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Returns a buffer for reuse; dropped if the pool is full or the
    /// buffer is not of the pool's size class.
    pub fn give(&self, mut buffer: Vec<u8>) {
        // Buffers that grew past the size class (one very long line) are
        // not kept: they would pin memory for the container's life.
        if buffer.capacity() < self.size || buffer.capacity() > 2 * self.size {
            return;
        }
        buffer.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < self.keep {
            spare.push(buffer);
        }
    }

    /// Buffers held spare.
    pub fn spare(&self) -> usize {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Room a chunk must have left to take another piece: more than a piece
/// (an enriched line's first half) ever needs in practice.
const PIECE_SLACK: usize = 16 * 1024;

/// Where a piece written to [`Chunks`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    chunk: u32,
    start: u32,
    end: u32,
}

/// Append-only bytes in pooled chunks: pieces never move once written (no
/// reallocation copying a growing buffer), and chunks go back to the pool.
#[derive(Debug)]
pub struct Chunks<'p> {
    pool: &'p BufferPool,
    chunks: Vec<Vec<u8>>,
}

impl<'p> Chunks<'p> {
    pub fn new(pool: &'p BufferPool) -> Self {
        Chunks { pool, chunks: Vec::new() }
    }

    /// Appends what `write` writes as one piece.
    pub fn write(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Span {
        // A piece starts a new chunk when the current one has less than
        // `PIECE_SLACK` left; a longer piece grows its chunk rather than
        // being split.
        if self.chunks.last().is_none_or(|c| c.capacity() - c.len() < PIECE_SLACK.min(self.pool.size() / 2)) {
            self.chunks.push(self.pool.take());
        }
        let chunk = self.chunks.len() - 1;
        let buffer = &mut self.chunks[chunk];
        let start = buffer.len();
        write(buffer);
        Span { chunk: chunk as u32, start: start as u32, end: buffer.len() as u32 }
    }

    /// Gives every chunk back to the pool.
    pub fn clear(&mut self) {
        for chunk in self.chunks.drain(..) {
            self.pool.give(chunk);
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Vec::is_empty)
    }

    pub fn get(&self, span: Span) -> &[u8] {
        &self.chunks[span.chunk as usize][span.start as usize..span.end as usize]
    }
}

impl Drop for Chunks<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_stay_put_and_chunks_are_reused() {
        let pool = BufferPool::new(64, 8);
        let mut spans = Vec::new();
        {
            let mut chunks = Chunks::new(&pool);
            for i in 0..100u32 {
                spans.push((i, chunks.write(|out| out.extend_from_slice(format!("piece {i};").as_bytes()))));
            }
            // One piece far longer than a chunk.
            let long = chunks.write(|out| out.extend(std::iter::repeat_n(b'x', 1000)));
            for (i, span) in &spans {
                assert_eq!(chunks.get(*span), format!("piece {i};").as_bytes());
            }
            assert_eq!(chunks.get(long).len(), 1000);
        }
        // The chunk that grew to 1000 bytes is not kept; the rest are, up
        // to the pool's bound.
        assert_eq!(pool.spare(), 8);
        let reused = pool.take();
        assert!(reused.is_empty() && reused.capacity() >= 64);
    }

    #[test]
    fn only_buffers_of_the_size_class_are_kept() {
        let pool = BufferPool::new(64, 4);
        pool.give(Vec::with_capacity(10));
        pool.give(Vec::with_capacity(1000));
        assert_eq!(pool.spare(), 0);
        pool.give(Vec::with_capacity(64));
        assert_eq!(pool.spare(), 1);
    }
}
