//! MPEG framing (stub; being written).
use super::{Block, CodecInfo, FormatError, Framer, StreamHeader};
use std::sync::Arc;
pub struct MpegFramer {
    info: CodecInfo,
}
impl MpegFramer {
    pub fn new() -> Self {
        MpegFramer {
            info: CodecInfo::default(),
        }
    }
}
impl Default for MpegFramer {
    fn default() -> Self {
        Self::new()
    }
}
impl Framer for MpegFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        out.push(Block {
            data: bytes::Bytes::copy_from_slice(input),
            start: true,
            header: None,
        });
        Ok(())
    }
    fn flush(&mut self, _out: &mut Vec<Block>) {}
    fn info(&self) -> &CodecInfo {
        &self.info
    }
    fn header(&self) -> Option<Arc<StreamHeader>> {
        None
    }
}
pub struct PassthroughFramer {
    info: CodecInfo,
}
impl PassthroughFramer {
    pub fn new() -> Self {
        PassthroughFramer {
            info: CodecInfo::default(),
        }
    }
}
impl Default for PassthroughFramer {
    fn default() -> Self {
        Self::new()
    }
}
impl Framer for PassthroughFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError> {
        out.push(Block {
            data: bytes::Bytes::copy_from_slice(input),
            start: true,
            header: None,
        });
        Ok(())
    }
    fn flush(&mut self, _out: &mut Vec<Block>) {}
    fn info(&self) -> &CodecInfo {
        &self.info
    }
    fn header(&self) -> Option<Arc<StreamHeader>> {
        None
    }
}
pub fn is_mpeg_audio_type(ct: &str) -> bool {
    ct.starts_with("audio/mpeg") || ct.starts_with("audio/aac")
}
