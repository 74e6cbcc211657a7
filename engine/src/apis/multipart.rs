//! The one `multipart/form-data` parser of the API (on `multer`): record bodies, the auth
//! endpoints' forms and backup uploads all split their bodies here.
//!
//! Bodies are whole in memory by the time a handler runs, so a parse never waits for input:
//! `multer`'s async reader completes in its first poll, and [`parts`] is a plain function
//! that callers run on the CPU pool when the body is big.
//!
//! Go's reader is the reference: at most [`MAX_MULTIPART_PARTS`] parts (more: the body is
//! refused), and a part whose `filename` is empty is a plain value, not a file.

use futures_util::FutureExt;

/// Go's `mime/multipart` refuses a form of more than 1,000 parts.
pub const MAX_MULTIPART_PARTS: usize = 1000;

/// One part of a form: a file when `file_name` is set (never empty), else a value.
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub data: bytes::Bytes,
}

impl Part {
    /// The part's content as text (invalid UTF-8 replaced, as Go's form values keep bytes
    /// that every consumer here then reads as a string).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Why a multipart body was refused (PocketBase's 400 either way; kept as the cause).
#[derive(Debug)]
pub enum Refused {
    /// No boundary in the content type, or a malformed body: `multer`'s reason.
    Malformed(multer::Error),
    /// More than [`MAX_MULTIPART_PARTS`] parts.
    TooManyParts,
    /// The read did not finish in one poll (cannot happen: the body is one ready chunk).
    Incomplete,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Malformed(e) => write!(f, "malformed multipart body: {e}"),
            Refused::TooManyParts => write!(f, "more than {MAX_MULTIPART_PARTS} parts"),
            Refused::Incomplete => write!(f, "the multipart body was not read whole"),
        }
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Refused::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<multer::Error> for Refused {
    fn from(err: multer::Error) -> Self {
        Refused::Malformed(err)
    }
}

/// The parts of a multipart body whose `Content-Type` is `content_type`, in order; `Err` when
/// the boundary is missing, the body is malformed, or it has too many parts.
pub fn parts(content_type: &str, body: &[u8]) -> Result<Vec<Part>, Refused> {
    let boundary = multer::parse_boundary(content_type)?;
    let body = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let read = async move {
        let mut out = Vec::new();
        while let Some(field) = form.next_field().await? {
            if out.len() == MAX_MULTIPART_PARTS {
                return Err(Refused::TooManyParts);
            }
            let name = field.name().unwrap_or("").to_string();
            let file_name = field
                .file_name()
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            let data = field.bytes().await?;
            out.push(Part {
                name,
                file_name,
                data,
            });
        }
        Ok(out)
    };
    // the stream is one ready chunk: nothing here can be pending
    read.now_or_never().unwrap_or(Err(Refused::Incomplete))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XX";

    fn form(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut b = String::new();
        for (name, file, content) in parts {
            b.push_str("--XX\r\nContent-Disposition: form-data; name=\"");
            b.push_str(name);
            b.push('"');
            if let Some(f) = file {
                b.push_str("; filename=\"");
                b.push_str(f);
                b.push('"');
            }
            b.push_str("\r\n\r\n");
            b.push_str(content);
            b.push_str("\r\n");
        }
        b.push_str("--XX--\r\n");
        b.into_bytes()
    }

    #[test]
    fn values_and_files_in_order() {
        let body = form(&[
            ("identity", None, "a@b.co"),
            ("f", Some("x.txt"), "bin\r\nary"),
            ("empty", Some(""), "plain"),
        ]);
        let got = parts(CT, &body).unwrap();
        let seen: Vec<_> = got
            .iter()
            .map(|p| (p.name.as_str(), p.file_name.as_deref(), p.text()))
            .collect();
        assert_eq!(
            seen,
            [
                ("identity", None, "a@b.co".to_string()),
                ("f", Some("x.txt"), "bin\r\nary".to_string()),
                // an empty file name is a value, as in Go
                ("empty", None, "plain".to_string()),
            ]
        );
    }

    #[test]
    fn go_part_limit_and_malformed_bodies() {
        let many = |n: usize| form(&vec![("k", None, "v"); n]);
        assert_eq!(parts(CT, &many(1000)).unwrap().len(), 1000);
        assert!(parts(CT, &many(1001)).is_err());
        assert!(
            parts("multipart/form-data", &many(1)).is_err(),
            "no boundary"
        );
        assert!(parts(CT, b"--XX\r\nno headers end").is_err());
    }
}
