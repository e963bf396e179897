//! WebM framing (stub; being written).
use super::{Block, CodecInfo, FormatError, Framer, StreamHeader};
use std::sync::Arc;
pub struct WebmFramer {
    info: CodecInfo,
}
impl WebmFramer {
    pub fn new() -> Self {
        WebmFramer {
            info: CodecInfo::default(),
        }
    }
}
impl Default for WebmFramer {
    fn default() -> Self {
        Self::new()
    }
}
impl Framer for WebmFramer {
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
