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

/// Whether a reader that has not been sent anything yet may begin with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Never: the block continues something (the rest of a Cluster, bytes between MP3 frames).
    No,
    /// A container boundary (an Ogg page, a WebM Cluster) that does not begin with a video
    /// keyframe: the container parses from here, but video decodes only from the next
    /// keyframe. The mount queue promotes one to [`Start::Forced`] when no clean start came
    /// for a while, so no reader waits for ever.
    Boundary,
    /// Every decoder starts cleanly here: an MP3 frame, an audio Ogg page, the page where a
    /// Theora keyframe begins, a WebM video keyframe.
    Clean,
    /// A [`Start::Boundary`] the mount queue let readers start on because no clean start
    /// came in time. Set by the queue only, never by a framer.
    Forced,
}

impl Start {
    /// [`Start::Clean`] if `clean`, else [`Start::No`].
    pub fn clean_if(clean: bool) -> Start {
        if clean { Start::Clean } else { Start::No }
    }

    /// May a new reader begin here?
    pub fn is_start(self) -> bool {
        matches!(self, Start::Clean | Start::Forced)
    }

    pub fn is_clean(self) -> bool {
        self == Start::Clean
    }
}

/// One unit of the mount queue. Shared, never copied, by every listener.
#[derive(Debug, Clone)]
pub struct Block {
    pub data: Bytes,
    /// Whether a new listener may begin with this block.
    pub start: Start,
    /// The header a listener needs before this block, if the format has one.
    pub header: Option<Arc<StreamHeader>>,
    /// What a reader beginning with this block is sent instead of `data`, when the clean
    /// start lies inside it: an Ogg page cut down to the packets from a Theora keyframe on,
    /// or a WebM Cluster head followed by the blocks from a keyframe on. Built once per
    /// keyframe by the framer and shared by every reader starting here; continuing readers
    /// never look at it. Behind an `Arc` so that every other block pays one word for it.
    pub start_data: Option<Arc<Bytes>>,
}

impl Block {
    /// A block without a start copy.
    pub fn new(data: Bytes, start: Start, header: Option<Arc<StreamHeader>>) -> Block {
        Block {
            data,
            start,
            header,
            start_data: None,
        }
    }
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
    /// Theora's declared target bitrate (bits/s, 0 when the encoder aimed at a quality) and
    /// quality (0–63): icecast's `video_bitrate` and `video_quality`.
    pub video_bitrate: Option<u32>,
    pub video_quality: Option<u32>,
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

    /// The next bytes do not follow the last ones: a P2PSP peer's stream skipped a lost chunk,
    /// or began at an arbitrary chunk after the header. Formats whose framing walks element
    /// sizes (WebM) resynchronise on the next boundary they can recognise; the default, for
    /// formats whose framing finds its own way back (Ogg's CRC and capture pattern, MP3 and
    /// ADTS frame syncs), does nothing.
    fn discontinuity(&mut self) {}

    /// Write an admin title update into the stream itself, where the format carries titles
    /// in-stream (a single-stream Ogg Vorbis chain: a new chain with a rebuilt comment
    /// header), appending any block that must go out first to `out`. Returns whether the
    /// stream will carry it; other formats say `false` and the title reaches listeners
    /// through ICY and the status documents only.
    fn retitle(
        &mut self,
        _title: Option<&str>,
        _artist: Option<&str>,
        _out: &mut Vec<Block>,
    ) -> bool {
        false
    }
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
    fn block_stays_small() {
        // Every queued block and every read clones one; the start copy costs a word.
        assert!(
            std::mem::size_of::<Block>() <= 56,
            "{}",
            std::mem::size_of::<Block>()
        );
    }

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
