//! ICY (SHOUTcast) in-band metadata: building the blocks sent to listeners that asked for
//! `Icy-MetaData: 1`, and stripping the blocks out of a source or relay stream that carries
//! `icy-metaint`. Pure functions and a byte-level state machine; no I/O.

use bytes::{BufMut, Bytes, BytesMut};

/// The block sent when the metadata has not changed: a zero length byte.
pub const EMPTY_BLOCK: &[u8] = &[0];

/// Longest metadata text: the length byte counts 16-byte units.
pub const MAX_METADATA_LEN: usize = 255 * 16;

const TITLE_KEY: &str = "StreamTitle='";
const URL_KEY: &str = "StreamUrl='";
const VALUE_END: &str = "';";

/// Build a metadata block: length byte `L`, then `L`×16 bytes holding
/// `StreamTitle='<title>';` and, if given, `StreamUrl='<url>';`, NUL padded.
/// Quotes are not escaped (icecast does not either). The text always ends with at least one
/// NUL, and the title is truncated on a character boundary so that `L` ≤ 255; a URL that
/// cannot fit even with an empty title is left out.
pub fn metadata_block(title: &str, url: Option<&str>) -> Bytes {
    // Room for the text itself, keeping one terminating NUL.
    let budget = MAX_METADATA_LEN - 1;
    let fixed_title = TITLE_KEY.len() + VALUE_END.len();
    let url_part = url
        .map(|u| URL_KEY.len() + u.len() + VALUE_END.len())
        .filter(|&n| fixed_title + n <= budget);
    let room = budget - fixed_title - url_part.unwrap_or(0);
    let mut cut = title.len().min(room);
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    let title = &title[..cut];

    let text_len = fixed_title + title.len() + url_part.unwrap_or(0);
    let units = (text_len + 1).div_ceil(16);
    let mut b = BytesMut::with_capacity(1 + units * 16);
    b.put_u8(units as u8);
    b.put_slice(TITLE_KEY.as_bytes());
    b.put_slice(title.as_bytes());
    b.put_slice(VALUE_END.as_bytes());
    if let (Some(u), Some(_)) = (url, url_part) {
        b.put_slice(URL_KEY.as_bytes());
        b.put_slice(u.as_bytes());
        b.put_slice(VALUE_END.as_bytes());
    }
    b.resize(1 + units * 16, 0);
    b.freeze()
}

/// Extract `StreamTitle` and `StreamUrl` from metadata text. Lenient: keys are matched
/// case-insensitively anywhere in the text, and a value runs to `';` or to the end.
pub fn parse_stream_title(text: &str) -> (Option<String>, Option<String>) {
    let text = text.trim_end_matches('\0');
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let value_at = |from: usize, key: &str| -> Option<(String, usize)> {
        let start = from + lower.get(from..)?.find(&key.to_ascii_lowercase())? + key.len();
        let rest = &text[start..];
        match rest.find(VALUE_END) {
            Some(end) => Some((rest[..end].to_string(), start + end + VALUE_END.len())),
            None => Some((rest.trim_end_matches('\'').to_string(), text.len())),
        }
    };
    let title = value_at(0, TITLE_KEY);
    let url_from = title.as_ref().map_or(0, |t| t.1);
    let url = value_at(url_from, URL_KEY).or_else(|| value_at(0, URL_KEY));
    (title.map(|t| t.0), url.map(|u| u.0))
}

/// One metadata update found in a source stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcyMeta {
    pub title: Option<String>,
    pub url: Option<String>,
    /// The whole text, trailing NULs removed.
    pub raw: String,
}

#[derive(Debug)]
enum State {
    /// Audio bytes left before the next length byte.
    Audio(usize),
    Length,
    /// Metadata bytes still to read.
    Meta(usize),
}

/// Strips in-band ICY metadata from a stream sent with `icy-metaint: N`: every N audio
/// bytes come a length byte and that many 16-byte units of text.
#[derive(Debug)]
pub struct IcyDemuxer {
    metaint: usize,
    state: State,
    meta: Vec<u8>,
}

impl IcyDemuxer {
    /// `metaint` 0 means the stream carries no metadata.
    pub fn new(metaint: usize) -> Self {
        IcyDemuxer {
            metaint,
            state: State::Audio(metaint),
            meta: Vec::new(),
        }
    }

    /// Split `input` into audio (appended to `audio`) and metadata updates (appended to
    /// `titles`; empty blocks produce nothing). Input may be split at any byte.
    pub fn push(&mut self, mut input: &[u8], audio: &mut BytesMut, titles: &mut Vec<IcyMeta>) {
        if self.metaint == 0 {
            audio.extend_from_slice(input);
            return;
        }
        while !input.is_empty() {
            match self.state {
                State::Audio(left) => {
                    let n = left.min(input.len());
                    audio.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        State::Length
                    } else {
                        State::Audio(left - n)
                    };
                }
                State::Length => {
                    let len = input[0] as usize * 16;
                    input = &input[1..];
                    self.state = if len == 0 {
                        State::Audio(self.metaint)
                    } else {
                        self.meta.clear();
                        State::Meta(len)
                    };
                }
                State::Meta(left) => {
                    let n = left.min(input.len());
                    self.meta.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if n == left {
                        titles.push(decode_meta(&self.meta));
                        self.state = State::Audio(self.metaint);
                    } else {
                        self.state = State::Meta(left - n);
                    }
                }
            }
        }
    }
}

fn decode_meta(raw: &[u8]) -> IcyMeta {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let raw = &raw[..end];
    // Encoders send UTF-8 or, traditionally, ISO-8859-1; the latter maps byte for char.
    let text = match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => raw.iter().map(|&b| b as char).collect(),
    };
    let (title, url) = parse_stream_title(&text);
    IcyMeta {
        title,
        url,
        raw: text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn block_for_simple_title() {
        let b = metadata_block("A - B", None);
        assert_eq!(b[0], 2);
        assert_eq!(b.len(), 1 + 32);
        let mut expect = b"StreamTitle='A - B';".to_vec();
        expect.resize(32, 0);
        assert_eq!(&b[1..], &expect[..]);
    }

    #[test]
    fn block_for_empty_title() {
        let b = metadata_block("", None);
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..], b"StreamTitle='';\0");
    }

    #[test]
    fn block_with_url() {
        let b = metadata_block("T", Some("http://x/"));
        let text = b"StreamTitle='T';StreamUrl='http://x/';";
        assert_eq!(b[0] as usize, (text.len() + 1).div_ceil(16));
        assert!(b[1..].starts_with(text));
        assert!(b[1 + text.len()..].iter().all(|&c| c == 0));
    }

    #[test]
    fn long_title_is_truncated_on_char_boundary() {
        let title = "é".repeat(5000);
        let b = metadata_block(&title, Some("u"));
        assert_eq!(b[0], 255);
        assert_eq!(b.len() - 1, MAX_METADATA_LEN);
        let text = std::str::from_utf8(&b[1..]).unwrap().trim_end_matches('\0');
        assert!(text.ends_with("';StreamUrl='u';"));
        let (t, u) = parse_stream_title(text);
        assert!(t.unwrap().chars().all(|c| c == 'é'));
        assert_eq!(u.as_deref(), Some("u"));
        // A URL too long to fit at all is dropped rather than cut.
        let b = metadata_block("t", Some(&"u".repeat(5000)));
        let mut expect = b"StreamTitle='t';".to_vec();
        expect.resize(32, 0);
        assert_eq!(&b[1..], &expect[..]);
    }

    #[test]
    fn parse_titles() {
        assert_eq!(
            parse_stream_title("StreamTitle='It's me';StreamUrl='http://a';\0\0"),
            (Some("It's me".into()), Some("http://a".into()))
        );
        assert_eq!(
            parse_stream_title("streamtitle='x"),
            (Some("x".into()), None)
        );
        assert_eq!(parse_stream_title("junk"), (None, None));
        assert_eq!(
            parse_stream_title("StreamTitle='';"),
            (Some(String::new()), None)
        );
    }

    fn demux_all(d: &mut IcyDemuxer, input: &[u8], chunk: usize) -> (Vec<u8>, Vec<IcyMeta>) {
        let mut audio = BytesMut::new();
        let mut titles = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            d.push(c, &mut audio, &mut titles);
        }
        (audio.to_vec(), titles)
    }

    #[test]
    fn demuxer_strips_metadata_over_split_input() {
        let audio: Vec<u8> = (0..64u8).collect();
        let mut input = Vec::new();
        input.extend(&audio[..16]);
        input.extend(&metadata_block("One", None));
        input.extend(&audio[16..32]);
        input.extend(EMPTY_BLOCK);
        input.extend(&audio[32..48]);
        input.extend(&metadata_block("Two", Some("http://u")));
        input.extend(&audio[48..64]);
        input.push(1);
        input.extend(b"Caf\xe9 title\0\0\0\0\0\0"); // Latin-1, no StreamTitle key
        for chunk in [1, 3, 16, 17, 1000] {
            let (a, t) = demux_all(&mut IcyDemuxer::new(16), &input, chunk);
            assert_eq!(a, audio, "chunk {chunk}");
            assert_eq!(t.len(), 3);
            assert_eq!(t[0].title.as_deref(), Some("One"));
            assert_eq!(t[0].raw, "StreamTitle='One';");
            assert_eq!(t[1].url.as_deref(), Some("http://u"));
            assert_eq!(t[2].title, None);
            assert_eq!(t[2].raw, "Café title");
        }
    }

    #[test]
    fn metaint_zero_is_all_audio() {
        let (a, t) = demux_all(&mut IcyDemuxer::new(0), b"\x05abc", 2);
        assert_eq!(a, b"\x05abc");
        assert!(t.is_empty());
    }

    proptest! {
        #[test]
        fn demuxer_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            metaint in 0usize..40,
            chunk in 1usize..100,
        ) {
            let (a, _) = demux_all(&mut IcyDemuxer::new(metaint), &data, chunk);
            prop_assert!(a.len() <= data.len());
        }

        #[test]
        fn block_is_well_formed(title in "[^'\\x00]{0,300}", url in proptest::option::of(".{0,50}")) {
            let b = metadata_block(&title, url.as_deref());
            prop_assert_eq!(b.len(), 1 + b[0] as usize * 16);
            prop_assert_eq!(b[b.len() - 1], 0);
            let text = std::str::from_utf8(&b[1..]).unwrap();
            prop_assert_eq!(parse_stream_title(text).0, Some(title));
        }
    }
}
