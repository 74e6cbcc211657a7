//! `?thumb=` thumbnails: the sizes PocketBase accepts, the resize itself (decoded with the
//! `image` crate, resized with `fast_image_resize`, encoded back in the original's format as
//! PocketBase picks it), and the one-generation-per-thumb guarantee across all workers.
//!
//! Sizes: `WxH` (fill the box, crop from the center), `WxHt` / `WxHb` (crop from the top /
//! bottom), `WxHf` (fit inside the box, never enlarged), `0xH` / `Wx0` (one side given, the
//! other keeps the aspect ratio).

use crate::offload::CpuPool;
use fast_image_resize as fr;
use image::{DynamicImage, ImageFormat, RgbaImage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Sizes every file field allows besides its own `thumbs` list.
pub const DEFAULT_SIZES: &[&str] = &["100x100"];

/// Stored content types PocketBase makes thumbs of.
pub const IMAGE_TYPES: &[&str] = &[
    "image/png",
    "image/jpg",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

/// Largest thumb made, in pixels (a bigger one is refused and the original served).
const MAX_PIXELS: u64 = 50_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Center,
    Top,
    Bottom,
    Fit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
    pub mode: Mode,
}

/// Parses `WxH[t|b|f]`.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let invalid = || "thumb size must be in WxH, WxHt, WxHb or WxHf format".to_string();
    let (dims, mode) = match s.as_bytes().last() {
        Some(b't') => (&s[..s.len() - 1], Mode::Top),
        Some(b'b') => (&s[..s.len() - 1], Mode::Bottom),
        Some(b'f') => (&s[..s.len() - 1], Mode::Fit),
        _ => (s, Mode::Center),
    };
    let (w, h) = dims.split_once('x').ok_or_else(invalid)?;
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(w) || !digits(h) {
        return Err(invalid());
    }
    let (width, height) = match (w.parse::<u32>(), h.parse::<u32>()) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err("thumb size is too large".into()),
    };
    if width == 0 && height == 0 {
        return Err("thumb width and height cannot be zero at the same time".into());
    }
    Ok(Size {
        width,
        height,
        mode,
    })
}

/// Whether a file field with `field_thumbs` serves `size` as a thumb.
pub fn allowed(size: &str, field_thumbs: Option<&[String]>) -> bool {
    DEFAULT_SIZES.contains(&size) || field_thumbs.is_some_and(|l| l.iter().any(|t| t == size))
}

/// The source rectangle and target size of a resize: `(x, y, w, h)` of the source, then the
/// destination width and height.
type Geometry = ((u32, u32, u32, u32), (u32, u32));

/// The resize PocketBase's imaging calls make for an image of `sw`×`sh`.
fn geometry(sw: u32, sh: u32, size: Size) -> Geometry {
    let whole = (0, 0, sw, sh);
    let (w, h) = (size.width, size.height);
    // one side free: keep the aspect ratio (at least one pixel)
    let keep_aspect = |w: u32, h: u32| -> (u32, u32) {
        if w == 0 {
            let tw = (h as f64 * sw as f64 / sh as f64 + 0.5).floor().max(1.0);
            (tw as u32, h)
        } else if h == 0 {
            let th = (w as f64 * sh as f64 / sw as f64 + 0.5).floor().max(1.0);
            (w, th as u32)
        } else {
            (w, h)
        }
    };
    if w == 0 || h == 0 {
        return (whole, keep_aspect(w, h));
    }
    match size.mode {
        Mode::Fit => {
            if sw <= w && sh <= h {
                return (whole, (sw, sh));
            }
            let src_ratio = sw as f64 / sh as f64;
            let box_ratio = w as f64 / h as f64;
            let (nw, nh) = if src_ratio > box_ratio {
                (w, (w as f64 / src_ratio) as u32)
            } else {
                ((h as f64 * src_ratio) as u32, h)
            };
            (whole, keep_aspect(nw, nh))
        }
        mode => {
            // crop the source to the box's aspect ratio at the anchor, then resize
            let src_ratio = sw as f64 / sh as f64;
            let dst_ratio = w as f64 / h as f64;
            let (cw, ch) = if src_ratio < dst_ratio {
                let ch = (sw as f64 * h as f64 / w as f64).max(1.0) + 0.5;
                (sw, (ch as u32).min(sh))
            } else {
                let cw = (sh as f64 * w as f64 / h as f64).max(1.0) + 0.5;
                ((cw as u32).min(sw), sh)
            };
            let x = (sw - cw) / 2;
            let y = match mode {
                Mode::Top => 0,
                Mode::Bottom => sh - ch,
                _ => (sh - ch) / 2,
            };
            ((x, y, cw, ch), (w, h))
        }
    }
}

/// The stored format and content type of a thumb of an original of `content_type`.
fn output_format(content_type: &str) -> (ImageFormat, &'static str) {
    match content_type {
        "image/jpeg" => (ImageFormat::Jpeg, "image/jpeg"),
        "image/gif" => (ImageFormat::Gif, "image/gif"),
        // PNG for everything else, webp included
        _ => (ImageFormat::Png, "image/png"),
    }
}

/// Decodes `bytes` (format sniffed from the content; JPEG EXIF orientation applied).
fn decode(bytes: &[u8]) -> Result<RgbaImage, String> {
    use image::ImageDecoder as _;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let is_jpeg = reader.format() == Some(ImageFormat::Jpeg);
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = if is_jpeg {
        decoder.orientation().ok()
    } else {
        None
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.into_rgba8())
}

/// Resizes `src` as `size` asks.
fn resize(src: RgbaImage, size: Size) -> Result<RgbaImage, String> {
    let (sw, sh) = src.dimensions();
    if sw == 0 || sh == 0 {
        return Err("empty image".into());
    }
    let ((x, y, cw, ch), (dw, dh)) = geometry(sw, sh, size);
    if dw as u64 * dh as u64 > MAX_PIXELS {
        return Err("thumb size is too large".into());
    }
    if (x, y, cw, ch) == (0, 0, sw, sh) && (dw, dh) == (sw, sh) {
        return Ok(src);
    }
    let src = fr::images::Image::from_vec_u8(sw, sh, src.into_raw(), fr::PixelType::U8x4)
        .map_err(|e| e.to_string())?;
    let mut dst = fr::images::Image::new(dw, dh, fr::PixelType::U8x4);
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
        .crop(x as f64, y as f64, cw as f64, ch as f64);
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| e.to_string())?;
    RgbaImage::from_raw(dw, dh, dst.into_vec()).ok_or_else(|| "resize failed".to_string())
}

/// Encodes `img` as `format`, the way Go's encoders see the NRGBA image imaging returns:
/// PNG as RGB when fully opaque, JPEG (quality 95) over black, GIF paletted.
fn encode(img: RgbaImage, format: ImageFormat) -> Result<Vec<u8>, String> {
    let mut out = std::io::Cursor::new(Vec::new());
    let (w, h) = img.dimensions();
    match format {
        ImageFormat::Jpeg => {
            let mut rgb = Vec::with_capacity((w * h * 3) as usize);
            for p in img.pixels() {
                let a = p[3] as u32;
                for c in &p.0[..3] {
                    rgb.push(((*c as u32 * a + 127) / 255) as u8);
                }
            }
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
                .encode(&rgb, w, h, image::ExtendedColorType::Rgb8)
                .map_err(|e| e.to_string())?;
        }
        ImageFormat::Gif => {
            let frame = image::Frame::new(img);
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.encode_frame(frame).map_err(|e| e.to_string())?;
        }
        _ => {
            let opaque = img.pixels().all(|p| p[3] == 255);
            let dynamic = DynamicImage::ImageRgba8(img);
            let img = if opaque {
                DynamicImage::ImageRgb8(dynamic.into_rgb8())
            } else {
                dynamic
            };
            img.write_to(&mut out, ImageFormat::Png)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out.into_inner())
}

/// Makes the thumb of `original` (stored as `content_type`) at `thumb`, with its sidecar.
/// CPU-heavy: run it on the CPU pool.
pub fn create(original: &Path, thumb: &Path, size: &str, content_type: &str) -> Result<(), String> {
    let bytes = std::fs::read(original).map_err(|e| e.to_string())?;
    let (encoded, stored_type) = render(&bytes, size, content_type)?;
    super::write_with_attrs(thumb, &encoded, stored_type).map_err(|e| e.to_string())
}

/// The thumb of the image `bytes` (stored as `content_type`) at `size`, encoded, with the
/// content type to store it as. CPU-heavy: run it on the CPU pool.
pub fn render(
    bytes: &[u8],
    size: &str,
    content_type: &str,
) -> Result<(Vec<u8>, &'static str), String> {
    let size = parse_size(size)?;
    let img = resize(decode(bytes)?, size)?;
    let (format, stored_type) = output_format(content_type);
    Ok((encode(img, format)?, stored_type))
}

type Waiters = Vec<futures_channel::oneshot::Sender<Result<(), String>>>;

/// Thumbs being made right now, with the requests waiting for each (one per process, in
/// `files::Files`: requests of every worker share a run).
#[derive(Default, Clone)]
pub struct Pending(Arc<Mutex<HashMap<PathBuf, Waiters>>>);

/// Hands the outcome to everyone waiting on `key` when dropped: after the work ran, or when
/// the task never ran or panicked (then as an error), so no waiter is left hanging.
struct Release {
    pending: Pending,
    key: PathBuf,
    outcome: Result<(), String>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let waiters = (self.pending.0)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key)
            .unwrap_or_default();
        for w in waiters {
            let _ = w.send(self.outcome.clone());
        }
    }
}

/// Runs `work` on the CPU pool once per `key` at a time: requests arriving while it runs
/// (from any worker) wait for that run's outcome instead of starting their own.
pub async fn once<F>(cpu: &CpuPool, pending: &Pending, key: PathBuf, work: F) -> Result<(), String>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let Some(mut release) = lead(pending, key).await? else {
        return Ok(());
    };
    let ran = cpu
        .run(move || {
            release.outcome = work();
            let outcome = release.outcome.clone();
            drop(release);
            outcome
        })
        .await;
    ran.unwrap_or_else(|_| Err("thumb generation was cancelled".into()))
}

/// Either waits for the run already making `key` (`Ok(None)` when it succeeded) or takes the
/// lead: the returned guard hands its outcome to those who come later.
async fn lead(pending: &Pending, key: PathBuf) -> Result<Option<Release>, String> {
    let waiting = {
        let mut map = pending.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some(waiters) => {
                let (tx, rx) = futures_channel::oneshot::channel();
                waiters.push(tx);
                Some(rx)
            }
            None => {
                map.insert(key.clone(), Vec::new());
                None
            }
        }
    };
    if let Some(rx) = waiting {
        return rx
            .await
            .unwrap_or_else(|_| Err("thumb generation was cancelled".into()))
            .map(|()| None);
    }
    Ok(Some(Release {
        pending: pending.clone(),
        key,
        outcome: Err("thumb generation was cancelled".into()),
    }))
}

/// Makes sure the thumb object `thumb_key` of the S3 object `original_key` exists: the
/// original is read from the bucket, resized on the CPU pool and the thumb stored back under
/// PocketBase's key, once however many requests ask at the same time.
pub async fn ensure_s3(
    cpu: &CpuPool,
    pending: &Pending,
    fs: pocketbun_storage::files::S3Fs,
    original_key: String,
    thumb_key: String,
    size: String,
    content_type: String,
) -> Result<(), String> {
    let Some(mut release) = lead(
        pending,
        PathBuf::from(format!("s3://{}/{thumb_key}", fs.bucket())),
    )
    .await?
    else {
        return Ok(());
    };
    release.outcome = async {
        if fs.exists(&thumb_key).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        let original = fs
            .read(&original_key, None)
            .await
            .map_err(|e| e.to_string())?;
        let (encoded, stored_type) = cpu
            .run(move || render(&original, &size, &content_type))
            .await
            // no cause: the CPU pool's `Canceled` only says the task never ran
            .map_err(|_| "thumb generation was cancelled".to_string())??;
        fs.put(&thumb_key, encoded, stored_type, &[])
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    release.outcome.clone()
}

/// Makes sure the thumb exists: generated on the CPU pool unless it already is (or another
/// request is making it right now).
pub async fn ensure(
    cpu: &CpuPool,
    pending: &Pending,
    original: PathBuf,
    thumb: PathBuf,
    size: String,
    content_type: String,
) -> Result<(), String> {
    let key = thumb.clone();
    once(cpu, pending, key, move || {
        if thumb.exists() {
            return Ok(());
        }
        create(&original, &thumb, &size, &content_type)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn size(s: &str) -> Size {
        parse_size(s).unwrap()
    }

    #[test]
    fn sizes() {
        assert_eq!(
            size("70x50t"),
            Size {
                width: 70,
                height: 50,
                mode: Mode::Top
            }
        );
        assert_eq!(size("0x50").mode, Mode::Center);
        for bad in [
            "",
            "x",
            "0x0",
            "70x",
            "x50",
            "70x50z",
            "-1x5",
            "7 x5",
            "99999999999x1",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(allowed("100x100", None));
        assert!(!allowed("70x50", None));
        assert!(allowed("70x50", Some(&["70x50".to_string()])));
    }

    #[test]
    fn geometry_as_imaging() {
        // fill: crop to the box's ratio at the anchor
        assert_eq!(
            geometry(300, 300, size("70x50")),
            ((0, 43, 300, 214), (70, 50))
        );
        assert_eq!(
            geometry(300, 300, size("70x50t")),
            ((0, 0, 300, 214), (70, 50))
        );
        assert_eq!(
            geometry(300, 300, size("70x50b")),
            ((0, 86, 300, 214), (70, 50))
        );
        assert_eq!(
            geometry(300, 100, size("50x50")),
            ((100, 0, 100, 100), (50, 50))
        );
        // fit: inside the box, never enlarged
        assert_eq!(
            geometry(300, 300, size("70x50f")),
            ((0, 0, 300, 300), (50, 50))
        );
        assert_eq!(
            geometry(300, 150, size("70x50f")),
            ((0, 0, 300, 150), (70, 35))
        );
        assert_eq!(geometry(20, 10, size("70x50f")), ((0, 0, 20, 10), (20, 10)));
        // one side free
        assert_eq!(
            geometry(300, 300, size("0x50")),
            ((0, 0, 300, 300), (50, 50))
        );
        assert_eq!(
            geometry(300, 200, size("70x0")),
            ((0, 0, 300, 200), (70, 47))
        );
        assert_eq!(geometry(1000, 1, size("10x0")), ((0, 0, 1000, 1), (10, 1)));
    }

    #[test]
    fn makes_thumbs_in_the_original_format() {
        let dir = crate::files::tests::scratch_dir("thumbs");
        let mut img = RgbaImage::new(120, 80);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgba([x as u8, y as u8, 100, 255]);
        }
        for (ext, fmt, ctype, want_type) in [
            ("png", ImageFormat::Png, "image/png", "image/png"),
            ("jpg", ImageFormat::Jpeg, "image/jpeg", "image/jpeg"),
            ("gif", ImageFormat::Gif, "image/gif", "image/gif"),
            ("webp", ImageFormat::WebP, "image/webp", "image/png"),
        ] {
            let original = dir.join(format!("o.{ext}"));
            let data = if fmt == ImageFormat::Jpeg {
                encode(img.clone(), fmt).unwrap()
            } else {
                let mut c = std::io::Cursor::new(Vec::new());
                DynamicImage::ImageRgba8(img.clone())
                    .write_to(&mut c, fmt)
                    .unwrap();
                c.into_inner()
            };
            std::fs::write(&original, data).unwrap();
            let thumb = dir.join(format!("thumbs_o.{ext}/30x20t_o.{ext}"));
            create(&original, &thumb, "30x20t", ctype).unwrap();
            let out = std::fs::read(&thumb).unwrap();
            let want_fmt = if want_type == "image/png" {
                ImageFormat::Png
            } else {
                fmt
            };
            assert_eq!(image::guess_format(&out).unwrap(), want_fmt, "{ext}");
            let back = image::load_from_memory(&out).unwrap();
            assert_eq!((back.width(), back.height()), (30, 20), "{ext}");
            assert_eq!(crate::files::content_type(&thumb).unwrap(), want_type);
        }
        // not an image: an error, nothing written
        let bogus = dir.join("bogus.png");
        std::fs::write(&bogus, b"not an image").unwrap();
        let thumb = dir.join("thumbs_bogus.png/10x10_bogus.png");
        assert!(create(&bogus, &thumb, "10x10", "image/png").is_err());
        assert!(!thumb.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_requests_run_the_work_once() {
        let pool = CpuPool::new(4).unwrap();
        let pending = Pending::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let key = PathBuf::from(format!("/nonexistent/once-test-{}", std::process::id()));
        // several threads (workers) and several tasks per thread ask at once
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (pool, runs, key) = (pool.clone(), runs.clone(), key.clone());
                let pending = pending.clone();
                std::thread::spawn(move || {
                    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        let tasks: Vec<_> = (0..4)
                            .map(|_| {
                                let (pool, runs, key) = (pool.clone(), runs.clone(), key.clone());
                                let pending = pending.clone();
                                monoio::spawn(async move {
                                    once(&pool, &pending, key, move || {
                                        runs.fetch_add(1, Ordering::SeqCst);
                                        std::thread::sleep(std::time::Duration::from_millis(300));
                                        Ok(())
                                    })
                                    .await
                                })
                            })
                            .collect();
                        for t in tasks {
                            assert_eq!(t.await, Ok(()));
                        }
                    });
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // a panicking run releases its waiters with an error, and the key is free again
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let failed = once(&pool, &pending, key.clone(), || {
                panic!("thumb panic on purpose")
            })
            .await;
            assert!(failed.is_err());
            assert_eq!(once(&pool, &pending, key.clone(), || Ok(())).await, Ok(()));
        });
    }
}
