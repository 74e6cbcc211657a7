//! What a record write takes as input, apart from how it arrived: the bound body (values
//! and uploaded files), the caller, the target id and the URL query. The API layer builds
//! these from an HTTP request, a batch item or an OAuth2 sign-up; the write path
//! ([`super::save`]) never sees a request.

use super::access::Caller;
use crate::error::ApiError;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// One uploaded file of a multipart body.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form key it came under (`documents`, `documents+`...).
    pub key: String,
    /// The client's file name.
    pub original_name: String,
    pub data: Vec<u8>,
    /// `records::files::sniff(&data)` when already known (a batch request names the file
    /// after it), so the record does not sniff the same bytes again.
    pub sniffed: Option<(&'static str, &'static str)>,
}

/// A record request's body: its bound values and uploaded files.
#[derive(Debug, Default)]
pub struct RecordBody {
    pub data: Map<String, Value>,
    pub uploads: Vec<Upload>,
}

/// A record write's body: already bound (batch items, OAuth2 sign-up), or still to be read.
/// Unread, the write path reads it only after the rules decided what they can without it
/// (issue 16: a guest must not make a worker parse a body a rule refuses anyway); the
/// future is not polled before then.
pub enum BodyInput<'a> {
    Parsed(RecordBody),
    Unread(Pin<Box<dyn Future<Output = Result<RecordBody, ApiError>> + 'a>>),
}

impl BodyInput<'_> {
    pub fn is_unread(&self) -> bool {
        matches!(self, BodyInput::Unread(_))
    }

    /// The bound body, reading it now if it was not.
    pub async fn read(self) -> Result<RecordBody, ApiError> {
        match self {
            BodyInput::Parsed(b) => Ok(b),
            BodyInput::Unread(f) => f.await,
        }
    }
}

/// Who writes which record, and how the answer is rendered.
pub struct WriteInput {
    pub caller: Caller,
    /// The URL query (`expand`, `fields` of the answer; `@request.query` of rules).
    pub query: Vec<(String, String)>,
    /// The record of an update or delete (`""` on a create).
    pub id: String,
    /// The size of the request body as received: over
    /// [`crate::offload::OFFLOAD_PARSE_BYTES`], the body is converted on the CPU pool.
    pub body_len: usize,
}
