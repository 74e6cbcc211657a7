//! The bodies of the `cargo fuzz` targets in `http/fuzz`, kept here so that the same checks
//! also run on stable: `tests/fuzz_seeds.rs` replays the checked-in seeds and a few thousand
//! deterministic mutations of them through these functions on every `cargo test`.
//!
//! Each function takes arbitrary bytes and panics only when a property is broken.

use crate::chunked::ChunkedDecoder;
use crate::parse::{parse_head, HeadReader};
use crate::Limits;

fn limits() -> Limits {
    Limits {
        max_header_bytes: 8192,
        max_uri_bytes: 2048,
        ..Limits::default()
    }
}

/// Any bytes as a request head: the parser answers Ok or Err, never panics; a parsed head is
/// internally consistent; fed through a [`HeadReader`] in two pieces split anywhere it parses
/// the same head for linear work.
pub fn request_head(data: &[u8]) {
    let limits = limits();
    let whole = parse_head(data, &limits);
    if let Ok(Some((head, used))) = &whole {
        assert!(*used <= data.len());
        assert!(*used <= limits.max_header_bytes);
        assert!(head.path.starts_with('/') || head.path == "*");
    }
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut reader = HeadReader::new();
    let mut buf = data[..split].to_vec();
    let mut result = reader.poll(&mut buf, &limits);
    let mut dropped = split - buf.len();
    if matches!(result, Ok(None)) {
        let before = buf.len();
        buf.extend_from_slice(&data[split..]);
        result = reader.poll(&mut buf, &limits);
        dropped += before + data.len() - split - buf.len();
    }
    assert!(
        reader.work() <= 8 * data.len() as u64 + 16,
        "{} bytes looked at for {}",
        reader.work(),
        data.len()
    );
    // the reader drops empty lines before the request line; what is left, parsed whole, must
    // agree with it: above all, a complete head must never be missed (the connection would
    // wait for bytes that never come)
    let rest = &data[dropped..];
    match (result, parse_head(rest, &limits)) {
        (Ok(Some((head, used))), Ok(Some((again, used_again)))) => assert_eq!(
            (head.target, head.framing, used),
            (again.target, again.framing, used_again)
        ),
        (Ok(None), Ok(Some(_))) => panic!("the reader missed a complete head"),
        (Ok(Some(_)), other) => panic!("the reader took a head that parses as {other:?}"),
        _ => {}
    }
}

/// Any bytes as a chunked body, fed in two pieces split anywhere: the decoder never panics,
/// never exceeds its limit, and decodes the same whatever the split.
pub fn chunked_body(data: &[u8]) {
    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), ()> {
        let mut decoder = ChunkedDecoder::new(4096);
        let mut out = Vec::new();
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() && !decoder.is_done() {
                let used = decoder.decode(rest, &mut out).map_err(|_| ())?;
                if used == 0 {
                    break;
                }
                rest = &rest[used..];
            }
        }
        assert!(out.len() <= 4096);
        Ok((out, decoder.is_done()))
    }
    if data.is_empty() {
        return;
    }
    let split = data[0] as usize % data.len();
    let body = &data[1..];
    let split = split.min(body.len());
    let whole = decode(&[body]);
    let halves = decode(&[&body[..split], &body[split..]]);
    if let (Ok(a), Ok(b)) = (&whole, &halves) {
        assert_eq!(a, b);
    }
}
