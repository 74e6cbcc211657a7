//! Any bytes as a chunked body, fed in two pieces split anywhere: the decoder must never panic,
//! never exceed its limit, and decode the same whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketbun_http::chunked::ChunkedDecoder;

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

fuzz_target!(|data: &[u8]| {
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
});
