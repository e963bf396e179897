//! ICY metadata (stub; being written).
pub fn metadata_block(_title: &str, _url: Option<&str>) -> bytes::Bytes {
    bytes::Bytes::from_static(&[0])
}
pub struct IcyMeta {
    pub title: Option<String>,
    pub url: Option<String>,
    pub raw: String,
}
pub struct IcyDemuxer;
impl IcyDemuxer {
    pub fn new(_m: usize) -> Self {
        IcyDemuxer
    }
    pub fn push(&mut self, i: &[u8], a: &mut Vec<u8>, _t: &mut Vec<IcyMeta>) {
        a.extend_from_slice(i)
    }
}
