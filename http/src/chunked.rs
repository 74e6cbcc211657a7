//! Incremental decoder for `Transfer-Encoding: chunked` request bodies.
//!
//! Bytes arrive in whatever pieces the socket gives; the decoder keeps its place between
//! calls so a body split anywhere (inside a size line, a CRLF, a trailer) decodes the same.

use crate::error::{HttpError, HttpErrorKind};

/// Longest chunk-size line (size plus extensions) we accept.
const MAX_SIZE_LINE: usize = 4096;
/// Total trailer bytes we accept (trailers are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` seen so far.
    Size {
        digits: usize,
    },
    /// After `;`: chunk extensions, ignored up to the line end.
    Extension,
    /// Saw `\r` ending a size line.
    SizeLf,
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section; `line_len` bytes into the current line.
    Trailer {
        line_len: usize,
    },
    TrailerLf {
        line_len: usize,
    },
    Done,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_bytes: usize,
    trailer_bytes: usize,
    decoded: u64,
    limit: u64,
}

impl ChunkedDecoder {
    /// `limit` caps the decoded body; past it decoding fails with `BodyTooLarge`.
    pub fn new(limit: u64) -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_bytes: 0,
            trailer_bytes: 0,
            decoded: 0,
            limit,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, appending body bytes to `out`. Returns how many input bytes were
    /// consumed; after the last chunk and trailers, [`is_done`](Self::is_done) is true and
    /// the bytes that follow (a pipelined request) are left unconsumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let bad = |d| Err(HttpError::bad(d));
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Size { digits } => {
                    let b = input[i];
                    self.line_bytes += 1;
                    if self.line_bytes > MAX_SIZE_LINE {
                        return bad("chunk size line too long");
                    }
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let v = (b as char).to_digit(16).unwrap_or(0) as u64;
                            if digits >= 16 {
                                return bad("chunk size overflows");
                            }
                            self.size = self.size * 16 + v;
                            self.state = State::Size { digits: digits + 1 };
                        }
                        b';' | b' ' | b'\t' if digits > 0 => self.state = State::Extension,
                        b'\r' if digits > 0 => self.state = State::SizeLf,
                        _ => return bad("invalid chunk size"),
                    }
                    i += 1;
                }
                State::Extension => {
                    let b = input[i];
                    self.line_bytes += 1;
                    if self.line_bytes > MAX_SIZE_LINE {
                        return bad("chunk extension too long");
                    }
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\n' => return bad("bare LF in chunk size line"),
                        _ => {}
                    }
                    i += 1;
                }
                State::SizeLf => {
                    if input[i] != b'\n' {
                        return bad("chunk size line not ended by CRLF");
                    }
                    i += 1;
                    self.line_bytes = 0;
                    if self.size == 0 {
                        self.state = State::Trailer { line_len: 0 };
                    } else {
                        self.decoded = self.decoded.saturating_add(self.size);
                        if self.decoded > self.limit {
                            return Err(HttpError::new(
                                HttpErrorKind::BodyTooLarge,
                                "chunked body over the limit",
                            ));
                        }
                        self.state = State::Data {
                            remaining: self.size,
                        };
                        self.size = 0;
                    }
                }
                State::Data { remaining } => {
                    let take = (remaining as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                }
                State::DataCr => {
                    if input[i] != b'\r' {
                        return bad("chunk data not followed by CRLF");
                    }
                    i += 1;
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if input[i] != b'\n' {
                        return bad("chunk data not followed by CRLF");
                    }
                    i += 1;
                    self.state = State::Size { digits: 0 };
                }
                State::Trailer { line_len } => {
                    let b = input[i];
                    i += 1;
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(HttpError::new(
                            HttpErrorKind::HeaderTooLarge,
                            "chunked trailers too large",
                        ));
                    }
                    self.state = match b {
                        b'\r' => State::TrailerLf { line_len },
                        b'\n' => return bad("bare LF in trailers"),
                        _ => State::Trailer {
                            line_len: line_len + 1,
                        },
                    };
                }
                State::TrailerLf { line_len } => {
                    if input[i] != b'\n' {
                        return bad("trailer line not ended by CRLF");
                    }
                    i += 1;
                    self.state = if line_len == 0 {
                        State::Done
                    } else {
                        State::Trailer { line_len: 0 }
                    };
                }
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), HttpError> {
        let mut d = ChunkedDecoder::new(1 << 20);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !d.is_done() {
            let end = (pos + step).min(input.len());
            pos += d.decode(&input[pos..end], &mut out)?;
        }
        assert!(d.is_done(), "not done");
        Ok((out, pos))
    }

    #[test]
    fn decodes_in_any_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            let (out, used) = decode_all(body, step).unwrap();
            assert_eq!(out, b"hello, world");
            assert_eq!(&body[used..], b"NEXT");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            let mut d = ChunkedDecoder::new(1 << 20);
            assert!(d.decode(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enforces_limit() {
        let mut d = ChunkedDecoder::new(4);
        let err = d
            .decode(b"5\r\nhello\r\n0\r\n\r\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::BodyTooLarge);
    }
}
