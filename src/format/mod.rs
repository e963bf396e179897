//! Sans-IO stream framing: turns the raw bytes a source sends into the blocks a mount queues.
//!
//! Each framer knows one container family (Ogg, WebM/Matroska, MPEG audio, or opaque bytes),
//! marks the blocks a new listener may start on, and keeps the stream header (Ogg header pages,
//! the WebM head) that every listener must receive before any data block. Nothing here does I/O.

pub mod icy;
pub mod mpeg;
pub mod ogg;
pub mod webm;

use std::sync::Arc;

use bytes::Bytes;

/// The container family of a stream. Fallback moves are only allowed within one family,
/// because a listener's decoder cannot switch containers mid-stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ogg,
    Webm,
    /// MP3, AAC and anything else, passed through byte for byte.
    Generic,
}

impl Family {
    /// Map a source's Content-Type to a family. Parameters (`; codecs=opus`) are ignored,
    /// as Icecast 2.5 does: 2.4.4's exact match sends `audio/ogg; codecs=opus` to the generic path.
    pub fn from_content_type(content_type: &str) -> Family {
        let base = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match base.as_str() {
            "application/ogg" | "application/x-ogg" | "audio/ogg" | "video/ogg" | "audio/opus"
            | "audio/x-ogg" | "audio/flac+ogg" => Family::Ogg,
            "audio/webm"
            | "video/webm"
            | "audio/x-matroska"
            | "video/x-matroska"
            | "video/x-matroska-3d" => Family::Webm,
            _ => Family::Generic,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ogg => "ogg",
            Family::Webm => "webm",
            Family::Generic => "generic",
        }
    }
}

/// Bytes a listener must have received before the data blocks that reference them.
/// `id` changes whenever the header changes (a new Ogg chain, a new WebM segment).
#[derive(Debug, PartialEq, Eq)]
pub struct StreamHeader {
    pub id: u64,
    pub data: Bytes,
}

/// One unit of the mount queue. Shared, never copied, by every listener.
#[derive(Debug, Clone)]
pub struct Block {
    pub data: Bytes,
    /// A new listener may start with this block (a page, a frame run, a cluster start).
    pub start: bool,
    /// The header a listener needs before this block, if the format has one.
    pub header: Option<Arc<StreamHeader>>,
}

/// Facts about the stream the framer learnt from the bytes, for the mount's stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodecInfo {
    /// "MP3", "AAC", "Vorbis", "Opus", "FLAC", "Speex", "Theora", "WebM" ...
    pub codec: Option<String>,
    /// Icecast's `subtype` stat for Ogg, e.g. "Vorbis/Theora".
    pub subtype: Option<String>,
    pub samplerate: Option<u32>,
    pub channels: Option<u32>,
    /// Nominal bitrate in kbit/s.
    pub bitrate: Option<u32>,
    pub video_width: Option<u32>,
    pub video_height: Option<u32>,
    pub frame_rate: Option<f64>,
    /// Bits/s the Vorbis identification header declares as nominal: icecast's
    /// `audio_bitrate` stat, and divided by 1000 its `ice-bitrate`.
    pub nominal_bitrate: Option<u32>,
    /// Ogg FLAC mapping version `(major, minor)` from the FLAC BOS packet (icecast's
    /// `FLAC_version` stat).
    pub flac_version: Option<(u8, u8)>,
    /// From the in-stream tags (Vorbis comments) of the current Ogg chain, when present.
    pub title: Option<String>,
    pub artist: Option<String>,
    /// Counts the Ogg chains whose headers are complete. Each new chain brings its own
    /// comment header, whose tags (or their absence) become the mount's title, as in
    /// icecast2, even when they repeat the previous chain's.
    pub chains: u64,
}

/// Why a framer refuses a stream; the source is then dropped, as icecast drops an Ogg
/// stream with an unknown BOS page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("unsupported Ogg codec in BOS page")]
    UnknownOggCodec,
    #[error("too many logical streams in Ogg chain")]
    TooManyStreams,
    #[error("{0}")]
    Invalid(String),
}

/// A sans-IO framer: feed it source bytes, collect finished blocks.
pub trait Framer: Send {
    /// Consume `input` (the next bytes of the source stream) and append finished blocks
    /// to `out`. Incomplete trailing data is kept until the next call.
    fn push(&mut self, input: &[u8], out: &mut Vec<Block>) -> Result<(), FormatError>;

    /// Emit whatever is still buffered (source ended).
    fn flush(&mut self, out: &mut Vec<Block>);

    /// What the framer has learnt about the codec so far.
    fn info(&self) -> &CodecInfo;

    /// The current stream header, if any.
    fn header(&self) -> Option<Arc<StreamHeader>>;
}

/// Choose the framer for a source from its family and Content-Type.
pub fn framer_for(family: Family, content_type: &str) -> Box<dyn Framer> {
    match family {
        Family::Ogg => Box::new(ogg::OggFramer::new()),
        Family::Webm => Box::new(webm::WebmFramer::new()),
        Family::Generic => {
            if mpeg::is_mpeg_audio_type(content_type) {
                Box::new(mpeg::MpegFramer::new())
            } else {
                Box::new(mpeg::PassthroughFramer::new())
            }
        }
    }
}

/// The framer for bytes that continue a stream already being served (a relay's new
/// upstream connection): `None` when the current framer should stay (Ogg and WebM framers
/// follow a new chain or segment themselves).
pub fn continuing_framer(family: Family, content_type: &str) -> Option<Box<dyn Framer>> {
    match family {
        Family::Generic if mpeg::is_mpeg_audio_type(content_type) => {
            Some(Box::new(mpeg::MpegFramer::continuing()))
        }
        Family::Generic => Some(Box::new(mpeg::PassthroughFramer::new())),
        Family::Ogg | Family::Webm => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_families() {
        assert_eq!(Family::from_content_type("application/ogg"), Family::Ogg);
        assert_eq!(
            Family::from_content_type("audio/ogg; codecs=opus"),
            Family::Ogg
        );
        assert_eq!(Family::from_content_type("Video/WebM"), Family::Webm);
        assert_eq!(Family::from_content_type("audio/mpeg"), Family::Generic);
        assert_eq!(Family::from_content_type("audio/aacp"), Family::Generic);
        assert_eq!(Family::from_content_type(""), Family::Generic);
    }
}
