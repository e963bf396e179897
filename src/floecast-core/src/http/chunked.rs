//! A sans-IO decoder for `Transfer-Encoding: chunked` source bodies (curl `-T -` sends them).
//! icecast2 2.4.4 passes the chunk framing into the stream; we remove it, as Icecast 2.5 does.

/// Longest chunk-size line we accept (hex digits plus extensions).
const MAX_SIZE_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the zero chunk: trailers until a blank line.
    Trailer,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkedError;

#[derive(Debug)]
pub struct Dechunker {
    state: State,
    line: Vec<u8>,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    pub fn new() -> Self {
        Dechunker {
            state: State::Size,
            line: Vec::new(),
        }
    }

    /// The terminating zero-size chunk (and trailers) has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode `input`, appending payload bytes to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        while !input.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::Data(left) => {
                    let n = (left.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if left - n as u64 == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left - n as u64)
                    };
                }
                State::Size | State::DataEnd | State::Trailer => {
                    let Some(nl) = input.iter().position(|&c| c == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > MAX_SIZE_LINE {
                            return Err(ChunkedError);
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    if self.line.len() > MAX_SIZE_LINE {
                        return Err(ChunkedError);
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = trim_cr(&line);
                    self.state = match self.state {
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => return Err(ChunkedError),
                        State::Trailer if line.is_empty() => State::Done,
                        State::Trailer => State::Trailer,
                        _ => {
                            let digits = line.split(|&c| c == b';').next().unwrap_or(b"");
                            let size = parse_hex(trim_spaces(digits)).ok_or(ChunkedError)?;
                            if size == 0 {
                                State::Trailer
                            } else {
                                State::Data(size)
                            }
                        }
                    };
                }
            }
        }
        Ok(())
    }
}

fn trim_cr(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && b[end - 1] == b'\r' {
        end -= 1;
    }
    &b[..end]
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn parse_hex(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = (c as char).to_digit(16)? as u64;
        v = v * 16 + d;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_curl_style_body() {
        let payload = format!("OggS{}", "x".repeat(0x3a - 4));
        let body = format!("3a\r\n{payload}\r\n5\r\nhello\r\n0\r\n\r\n");
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        d.push(body.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), 0x3a + 5);
        assert!(out.starts_with(b"OggS"));
        assert!(out.ends_with(b"hello"));
        assert!(d.is_done());
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let body = b"4;ext=1\r\nabcd\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n";
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        for b in body.iter() {
            d.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, b"abcd0123456789abcdef");
        assert!(d.is_done());
    }

    #[test]
    fn rejects_garbage() {
        let mut out = Vec::new();
        assert!(Dechunker::new().push(b"zz\r\n", &mut out).is_err());
        assert!(Dechunker::new().push(b"2\r\nabX\r\n", &mut out).is_err());
        assert!(Dechunker::new().push(&[b'1'; 2000], &mut out).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut out = Vec::new();
            let _ = Dechunker::new().push(&data, &mut out);
        }
    }
}
