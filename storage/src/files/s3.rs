//! Objects in an S3-compatible bucket through `aws-sdk-s3`.
//!
//! The SDK is async on tokio, PocketBun's request workers are monoio: every call is spawned
//! onto one shared current-thread tokio runtime (its own thread, started on first use) and
//! its outcome comes back through a oneshot channel, which any executor can await. The
//! `*_blocking` forms wait on the same reply and are for threads that may block (the CPU
//! pool, backup jobs), never for a request worker.
//!
//! Key layout and headers follow PocketBase's S3 blob store: the object key is the blob key
//! as is, the content type goes in `Content-Type`, extra metadata in `x-amz-meta-*`.

use super::{Attributes, Entry, Range, DEFAULT_CONTENT_TYPE};
use crate::{ErrorKind, Result, StorageError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// A bucket's settings, as PocketBase's `s3` / `backups.s3` settings hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// With or without the scheme (`https://` when there is none).
    pub endpoint: String,
    pub access_key: String,
    pub secret: String,
    pub force_path_style: bool,
}

/// The chunks of a streamed read, in order; an error item ends it.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Vec<u8>>>;

/// A bucket; cheap to clone.
#[derive(Clone)]
pub struct S3Fs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// The shared runtime every S3 call runs on.
fn runtime() -> &'static tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("pocketbun-s3".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the S3 runtime starts");
                let _ = tx.send(rt.handle().clone());
                // the runtime lives as long as the process: it only drives spawned calls
                rt.block_on(std::future::pending::<()>());
            })
            .expect("the S3 thread starts");
        rx.recv().expect("the S3 runtime starts")
    })
}

fn closed() -> StorageError {
    StorageError::new(ErrorKind::Closed, "the S3 runtime is gone")
}

/// Runs `fut` on the S3 runtime; the returned future only waits for the reply.
fn call<T, F>(fut: F) -> tokio::sync::oneshot::Receiver<Result<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx
}

async fn reply<T>(rx: tokio::sync::oneshot::Receiver<Result<T>>) -> Result<T> {
    rx.await.unwrap_or_else(|_| Err(closed()))
}

fn wait<T>(rx: tokio::sync::oneshot::Receiver<Result<T>>) -> Result<T> {
    rx.blocking_recv().unwrap_or_else(|_| Err(closed()))
}

/// An SDK error as a storage error: 404s are `NotFound`, the rest keep S3's code and message.
fn sdk_err<E>(key: &str, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = match err.as_service_error() {
        Some(e) => format!(
            "{} {}",
            e.code().unwrap_or("S3Error"),
            e.message().unwrap_or_default()
        ),
        None => {
            // the innermost cause says what happened (refused connection, bad TLS, ...)
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                text = s.to_string();
                source = s.source();
            }
            text
        }
    };
    let not_found = status == Some(404)
        || matches!(
            err.as_service_error().and_then(|e| e.code()),
            Some("NoSuchKey" | "NotFound")
        );
    let kind = if not_found {
        ErrorKind::NotFound
    } else {
        ErrorKind::Io
    };
    StorageError::new(kind, format!("{key}: {}", detail.trim()))
}

fn to_millis(t: Option<&aws_sdk_s3::primitives::DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or(0)
}

impl S3Fs {
    /// A client for `cfg` (no request is made yet).
    pub fn new(cfg: &S3Config) -> Result<Self> {
        use aws_sdk_s3::config::{
            BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
            ResponseChecksumValidation,
        };
        use aws_smithy_http_client::tls;
        let endpoint = cfg.endpoint.trim().trim_end_matches('/');
        if endpoint.is_empty() {
            return Err(StorageError::new(ErrorKind::Invalid, "missing S3 endpoint"));
        }
        let endpoint = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint.to_string()
        } else {
            format!("https://{endpoint}")
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build();
        let region = if cfg.region.is_empty() {
            "us-east-1".to_string()
        } else {
            cfg.region.clone()
        };
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .endpoint_url(endpoint)
            .force_path_style(cfg.force_path_style)
            .credentials_provider(Credentials::new(
                cfg.access_key.clone(),
                cfg.secret.clone(),
                None,
                None,
                "pocketbun-settings",
            ))
            .http_client(http)
            .timeout_config(timeouts)
            // many S3-compatible stores reject the SDK's newer default checksum headers
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores `bytes` at `key` with a content type and `x-amz-meta-*` metadata.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<()> {
        reply(self.put_call(key, bytes, content_type, metadata)).await
    }

    pub fn put_blocking(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<()> {
        wait(self.put_call(key, bytes, content_type, metadata))
    }

    fn put_call(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> tokio::sync::oneshot::Receiver<Result<()>> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        for (k, v) in metadata {
            req = req.metadata(*k, *v);
        }
        let key = key.to_string();
        call(async move {
            req.send().await.map_err(|e| sdk_err(&key, e))?;
            Ok(())
        })
    }

    /// Stores the file at `path` (streamed from disk) at `key`.
    pub fn put_file_blocking(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<()> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type);
        let key = key.to_string();
        let path = path.to_path_buf();
        wait(call(async move {
            let body = ByteStream::from_path(&path)
                .await
                .map_err(|e| StorageError::new(ErrorKind::Io, format!("{key}: {e}")))?;
            req.body(body).send().await.map_err(|e| sdk_err(&key, e))?;
            Ok(())
        }))
    }

    /// The whole object (or `range` of it).
    pub async fn read(&self, key: &str, range: Option<Range>) -> Result<Vec<u8>> {
        reply(self.read_call(key, range)).await
    }

    pub fn read_blocking(&self, key: &str, range: Option<Range>) -> Result<Vec<u8>> {
        wait(self.read_call(key, range))
    }

    fn read_call(
        &self,
        key: &str,
        range: Option<Range>,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<u8>>> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.start + r.len.max(1) - 1));
        }
        let key = key.to_string();
        call(async move {
            let out = req.send().await.map_err(|e| sdk_err(&key, e))?;
            let data = out
                .body
                .collect()
                .await
                .map_err(|e| StorageError::new(ErrorKind::Io, format!("{key}: {e}")))?;
            Ok(data.into_bytes().to_vec())
        })
    }

    /// Streams `range` of the object (the whole object without one) in the chunks the
    /// connection delivers; at most a few chunks are buffered ahead of the reader. A failure
    /// midway ends the stream with an error item.
    pub fn stream(&self, key: &str, range: Option<Range>) -> Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            if r.len == 0 {
                return rx; // nothing to send: the closed channel ends the stream
            }
            req = req.range(format!("bytes={}-{}", r.start, r.start + r.len - 1));
        }
        let key = key.to_string();
        runtime().spawn(async move {
            let mut out = match req.send().await {
                Ok(o) => o,
                Err(e) => {
                    let _ = tx.send(Err(sdk_err(&key, e))).await;
                    return;
                }
            };
            loop {
                match out.body.next().await {
                    None => return,
                    Some(Ok(chunk)) => {
                        if tx.send(Ok(chunk.to_vec())).await.is_err() {
                            return; // the reader went away
                        }
                    }
                    Some(Err(e)) => {
                        let err = StorageError::new(ErrorKind::Io, format!("{key}: {e}"));
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                }
            }
        });
        rx
    }

    /// Size, modification time and content type (`NotFound` when there is no such object).
    pub async fn attributes(&self, key: &str) -> Result<Attributes> {
        let req = self.client.head_object().bucket(&self.bucket).key(key);
        let key = key.to_string();
        reply(call(async move {
            let out = req.send().await.map_err(|e| sdk_err(&key, e))?;
            Ok(Attributes {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                modified_ms: to_millis(out.last_modified()),
                content_type: out
                    .content_type()
                    .filter(|t| !t.is_empty())
                    .unwrap_or(DEFAULT_CONTENT_TYPE)
                    .to_string(),
            })
        }))
        .await
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.attributes(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        reply(self.delete_call(key)).await
    }

    pub fn delete_blocking(&self, key: &str) -> Result<()> {
        wait(self.delete_call(key))
    }

    fn delete_call(&self, key: &str) -> tokio::sync::oneshot::Receiver<Result<()>> {
        let req = self.client.delete_object().bucket(&self.bucket).key(key);
        let key = key.to_string();
        call(async move {
            req.send().await.map_err(|e| sdk_err(&key, e))?;
            Ok(())
        })
    }

    /// Every object whose key starts with `prefix` ("" for all), by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        reply(self.list_call(prefix)).await
    }

    pub fn list_blocking(&self, prefix: &str) -> Result<Vec<Entry>> {
        wait(self.list_call(prefix))
    }

    fn list_call(&self, prefix: &str) -> tokio::sync::oneshot::Receiver<Result<Vec<Entry>>> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let prefix = prefix.to_string();
        call(async move { list_all(&client, &bucket, &prefix).await })
    }

    /// Deletes every object under `prefix` (PocketBase's `DeletePrefix`); the errors of the
    /// objects that could not be deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Vec<StorageError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let prefix = prefix.to_string();
        let rx = call(async move {
            if prefix.is_empty() {
                return Ok(vec![StorageError::new(
                    ErrorKind::Invalid,
                    "prefix mustn't be empty",
                )]);
            }
            let mut failed = Vec::new();
            let entries = match list_all(&client, &bucket, &prefix).await {
                Ok(e) => e,
                Err(e) => return Ok(vec![e]),
            };
            for e in entries {
                let sent = client
                    .delete_object()
                    .bucket(&bucket)
                    .key(&e.key)
                    .send()
                    .await;
                if let Err(err) = sent {
                    failed.push(sdk_err(&e.key, err));
                }
            }
            Ok(failed)
        });
        reply(rx).await.unwrap_or_else(|e| vec![e])
    }
}

async fn list_all(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client.list_objects_v2().bucket(bucket);
        if !prefix.is_empty() {
            req = req.prefix(prefix);
        }
        if let Some(t) = token.take() {
            req = req.continuation_token(t);
        }
        let page = req.send().await.map_err(|e| sdk_err(prefix, e))?;
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            out.push(Entry {
                key: key.to_string(),
                size: obj.size().unwrap_or(0).max(0) as u64,
                modified_ms: to_millis(obj.last_modified()),
            });
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
