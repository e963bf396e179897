//! The two halves of sending to one listener: `IcyState` slices shared blocks around ICY
//! metadata insertions (zero-copy `Bytes::split_to`), and `write_all` pushes a list of
//! `Bytes` to the socket with vectored writes, giving up if the listener falls out of the queue.

use std::io::IoSlice;
use std::time::Duration;

use crate::net::Conn;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::mount::{Mount, Seq};

/// At most this many buffers per `writev` call (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 128;

/// The single zero byte that says "metadata unchanged".
static EMPTY_META: &[u8] = &[0];

/// Where a listener is in its ICY metadata cycle.
#[derive(Debug)]
pub struct IcyState {
    /// 0 = the listener did not ask for metadata.
    metaint: usize,
    /// Audio bytes left before the next metadata block.
    until: usize,
    /// Metadata version last sent in full; `u64::MAX` so the first block is always full.
    sent_version: u64,
}

impl IcyState {
    pub fn new(metaint: usize) -> Self {
        IcyState {
            metaint,
            until: metaint,
            sent_version: u64::MAX,
        }
    }

    /// Queue `data` for sending, inserting a metadata block after every `metaint` bytes.
    pub fn push(&mut self, mount: &Mount, mut data: Bytes, out: &mut Vec<Bytes>) {
        if self.metaint == 0 {
            if !data.is_empty() {
                out.push(data);
            }
            return;
        }
        while data.len() >= self.until {
            out.push(data.split_to(self.until));
            out.push(self.block(mount));
            self.until = self.metaint;
        }
        if !data.is_empty() {
            self.until -= data.len();
            out.push(data);
        }
    }

    /// The listener moved to another mount, whose title versions are its own: send its
    /// title in full at the next metadata point.
    pub fn moved(&mut self) {
        self.sent_version = u64::MAX;
    }

    /// The full title block when it changed since we last sent it, else a single zero byte.
    fn block(&mut self, mount: &Mount) -> Bytes {
        if mount.meta_version() == self.sent_version {
            return Bytes::from_static(EMPTY_META);
        }
        let (version, block) = mount.icy_block();
        self.sent_version = version;
        block
    }
}

#[derive(Debug)]
pub enum WriteError {
    /// The listener stopped reading and the queue moved past it.
    Lagged,
    Io(std::io::Error),
}

/// Write every buffer in order. While the socket is blocked, check every `lag_check` whether
/// the queue has moved more than queue-size past `cursor`; if so the listener is dropped.
pub async fn write_all(
    stream: &mut Conn,
    bufs: &[Bytes],
    mount: &Mount,
    cursor: Seq,
    lag_check: Duration,
) -> Result<usize, WriteError> {
    let mut idx = 0;
    let mut off = 0;
    let mut written = 0;
    // Fast path: a listener that keeps up has room in its socket buffer, so one
    // non-blocking writev usually takes everything, with no timer and no waker set up.
    if let Ok(n) = stream.try_write_vectored(&slices_from(bufs, 0, 0)) {
        if n == 0 {
            return Err(WriteError::Io(std::io::ErrorKind::WriteZero.into()));
        }
        written = n;
        advance(bufs, &mut idx, &mut off, n);
    }
    if idx == bufs.len() && !stream.has_pending_output() {
        return Ok(written);
    }
    // The waiting path is boxed: its timer and write future would otherwise be part of
    // every listener's task, all the time.
    Box::pin(write_rest(
        stream,
        bufs,
        mount,
        cursor,
        lag_check,
        (idx, off, written),
    ))
    .await
}

/// The rest of a write the socket could not take at once.
async fn write_rest(
    stream: &mut Conn,
    bufs: &[Bytes],
    mount: &Mount,
    cursor: Seq,
    lag_check: Duration,
    (mut idx, mut off, mut written): (usize, usize, usize),
) -> Result<usize, WriteError> {
    while idx < bufs.len() {
        let slices = slices_from(bufs, idx, off);
        let n = tokio::select! {
            r = stream.write_vectored(&slices) => r.map_err(WriteError::Io)?,
            _ = tokio::time::sleep(lag_check) => {
                if mount.is_lagged(cursor) {
                    return Err(WriteError::Lagged);
                }
                continue;
            }
        };
        if n == 0 {
            return Err(WriteError::Io(std::io::ErrorKind::WriteZero.into()));
        }
        written += n;
        advance(bufs, &mut idx, &mut off, n);
    }
    // TLS records still in the send buffer go out before the listener pauses.
    while stream.has_pending_output() {
        tokio::select! {
            r = stream.flush() => r.map_err(WriteError::Io)?,
            _ = tokio::time::sleep(lag_check) => {
                if mount.is_lagged(cursor) {
                    return Err(WriteError::Lagged);
                }
            }
        }
    }
    Ok(written)
}

/// IoSlices for what is left, from buffer `idx` at offset `off`, at most MAX_IOV of them.
fn slices_from(bufs: &[Bytes], idx: usize, off: usize) -> Vec<IoSlice<'_>> {
    let Some(first) = bufs.get(idx) else {
        return Vec::new();
    };
    std::iter::once(&first[off..])
        .chain(bufs[idx + 1..].iter().map(|b| &b[..]))
        .take(MAX_IOV)
        .map(IoSlice::new)
        .collect()
}

/// Move the (buffer, offset) position past `n` bytes the kernel took.
fn advance(bufs: &[Bytes], idx: &mut usize, off: &mut usize, n: usize) {
    let mut left = n;
    while left > 0 && *idx < bufs.len() {
        let avail = bufs[*idx].len() - *off;
        if left >= avail {
            left -= avail;
            *idx += 1;
            *off = 0;
        } else {
            *off += left;
            left = 0;
        }
    }
    while *idx < bufs.len() && bufs[*idx].len() == *off {
        *idx += 1;
        *off = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::StreamFacts;
    use crate::mount::{MountSettings, SourceInfo};

    fn mount() -> Mount {
        let settings = MountSettings::resolve(&crate::config::Config::default(), "/t");
        Mount::new(
            "/t",
            SourceInfo {
                stream: StreamFacts {
                    content_type: "audio/mpeg".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            settings,
            None,
        )
    }

    fn flatten(out: &[Bytes]) -> Vec<u8> {
        out.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn interleaves_at_exact_interval() {
        let m = mount();
        let mut icy = IcyState::new(16);
        let mut out = Vec::new();
        icy.push(&m, Bytes::from(vec![b'a'; 10]), &mut out);
        icy.push(&m, Bytes::from(vec![b'b'; 30]), &mut out);
        let flat = flatten(&out);
        // 16 audio bytes, then the first (full) block, then 16 more, then an empty block.
        assert_eq!(&flat[..16], b"aaaaaaaaaabbbbbb");
        let l = flat[16] as usize;
        let first_block = &flat[16..17 + l * 16];
        assert_eq!(first_block.len(), 1 + l * 16);
        let rest = &flat[17 + l * 16..];
        assert_eq!(&rest[..16], &[b'b'; 16]);
        assert_eq!(rest[16], 0, "unchanged metadata is a single zero byte");
        assert_eq!(&rest[17..], &[b'b'; 8]);
    }

    #[test]
    fn metadata_change_sends_full_block_once() {
        let m = mount();
        let mut icy = IcyState::new(4);
        let mut out = Vec::new();
        icy.push(&m, Bytes::from_static(b"1234"), &mut out);
        m.set_metadata(Some("A - B".into()), None, None);
        icy.push(&m, Bytes::from_static(b"5678"), &mut out);
        icy.push(&m, Bytes::from_static(b"9abc"), &mut out);
        let n = out.len();
        assert_eq!(out[n - 1][..], [0u8][..]);
        assert_eq!(out[n - 3][0] as usize * 16 + 1, out[n - 3].len());
    }

    #[test]
    fn no_metaint_passes_through() {
        let m = mount();
        let mut icy = IcyState::new(0);
        let mut out = Vec::new();
        icy.push(&m, Bytes::from_static(b"abc"), &mut out);
        assert_eq!(out, vec![Bytes::from_static(b"abc")]);
    }
}
