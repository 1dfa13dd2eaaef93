//! Replay of a folder of PNG/JPEG/BMP files in name order (or of a single image file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Next, Probe, Source, SourceError, SourceKind, SourceKindEntry};
use crate::frame::{
    BufferPool, Frame, FrameLayout, FrameLimits, FrameMeta, FrameOrigin, LimitError, PixelFormat,
};

pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

pub(super) const KIND: SourceKindEntry = SourceKindEntry {
    kind: SourceKind::Images,
    name: "images",
    open: |plan| {
        Ok(Box::new(ImageFolder::open_with(
            &super::plan_path(plan),
            plan.repeat,
            plan.limits,
        )?))
    },
    probe: |plan| {
        let s = ImageFolder::open_with(&super::plan_path(plan), plan.repeat, plan.limits)?;
        Ok(Probe {
            frame_size: s.first_size(),
            refused: s.refused().collect(),
        })
    },
};

/// Whether `path` names a file an image source reads (by extension, any case).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

pub struct ImageFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
    repeat: u32,
    next: usize,
    max_bytes: usize,
    limits: FrameLimits,
    /// Per file: why its header was refused (an ERROR record instead of a decode).
    refused: Vec<Option<LimitError>>,
    /// Per file: the size its header declares, if it could be read.
    sizes: Vec<Option<(u32, u32)>>,
}

/// Bytes a decoded `w`x`h` image takes as a frame (packed RGB, the larger of RGB and grey).
fn frame_bytes(w: u32, h: u32) -> Option<u64> {
    u64::from(w).checked_mul(u64::from(h))?.checked_mul(3)
}

/// The width and height an image file's header declares, without decoding it.
pub fn header_size(path: &Path) -> Result<(u32, u32), String> {
    image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| e.to_string())
}

impl ImageFolder {
    /// Opens with the default [`FrameLimits`].
    pub fn open(path: &Path, repeat: u32) -> Result<Self, SourceError> {
        Self::open_with(path, repeat, FrameLimits::DEFAULT)
    }

    /// Opens `path`; a file whose header declares a frame beyond `limits` becomes an ERROR
    /// record when its turn comes, the other files play.
    pub fn open_with(path: &Path, repeat: u32, limits: FrameLimits) -> Result<Self, SourceError> {
        let open_err = |reason: String| SourceError::Open {
            path: path.to_path_buf(),
            reason,
        };
        let files = if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| open_err(format!("cannot list folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image_file(p))
                .collect();
            files.sort();
            files
        };
        if files.is_empty() {
            return Err(open_err(
                "no .png, .jpg, .jpeg or .bmp files here; point source.path at a folder of images"
                    .into(),
            ));
        }
        // Size the pool from the headers, without decoding, and only from headers within
        // the limits: a bomb's header must not size a buffer. An unreadable header is left
        // to the decoder, whose error names the problem.
        let mut max_bytes = 0u64;
        let mut refused = Vec::with_capacity(files.len());
        let mut sizes = Vec::with_capacity(files.len());
        for f in &files {
            let header = header_size(f).ok();
            sizes.push(header);
            let verdict = match header {
                Some((w, h)) => {
                    let bytes = frame_bytes(w, h);
                    match limits.check(w, h, bytes) {
                        Ok(()) => {
                            max_bytes = max_bytes.max(bytes.unwrap_or(0));
                            None
                        }
                        Err(e) => Some(e),
                    }
                }
                None => None,
            };
            refused.push(verdict);
        }
        // Within max_bytes, which is a u64 of at most a few GiB; saturate on 32-bit.
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        Ok(ImageFolder {
            root: if path.is_file() {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                path.to_path_buf()
            },
            files,
            repeat: repeat.max(1),
            next: 0,
            max_bytes,
            limits,
            refused,
            sizes,
        })
    }

    /// The files whose headers exceed the limits, with why (`validate` reports them).
    pub fn refused(&self) -> impl Iterator<Item = SourceError> + '_ {
        self.files
            .iter()
            .zip(&self.refused)
            .filter_map(|(path, r)| {
                r.clone().map(|source| SourceError::TooLarge {
                    path: path.clone(),
                    source,
                })
            })
    }

    /// The size the first file's header declares, if readable and within the limits.
    pub fn first_size(&self) -> Option<(u32, u32)> {
        self.sizes
            .iter()
            .zip(&self.refused)
            .find_map(|(s, r)| if r.is_none() { *s } else { None })
    }
}

impl Source for ImageFolder {
    fn next(&mut self, seq: u64, pool: &BufferPool) -> Next {
        if self.next >= self.files.len() * self.repeat as usize {
            return Next::End;
        }
        let item = self.next % self.files.len();
        self.next += 1;
        let path = &self.files[item];
        let origin = FrameOrigin::Item(item);
        if let Some(e) = &self.refused[item] {
            return Next::Skipped {
                origin,
                error: SourceError::TooLarge {
                    path: path.clone(),
                    source: e.clone(),
                },
            };
        }
        match read_frame(
            path,
            &self.limits,
            self.max_bytes as u64,
            pool,
            seq,
            origin.clone(),
        ) {
            Ok(Some(frame)) => Next::Frame(frame),
            Ok(None) => Next::End,
            Err(error) => Next::Skipped { origin, error },
        }
    }

    fn item_names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| {
                f.strip_prefix(&self.root)
                    .unwrap_or(f)
                    .display()
                    .to_string()
            })
            .collect()
    }

    fn max_frame_bytes(&self) -> usize {
        self.max_bytes
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64 * u64::from(self.repeat))
    }

    fn describe(&self) -> String {
        format!("images:{}", self.root.display())
    }
}

/// Decodes the image file `path` into a buffer from `pool`, as frame `seq`: the one decode
/// every image source shares (header limits, strict JPEG check, a frame never larger than
/// `max_bytes`). `Ok(None)`: the pool is closed (the run is ending).
pub(super) fn read_frame(
    path: &Path,
    limits: &FrameLimits,
    max_bytes: u64,
    pool: &BufferPool,
    seq: u64,
    origin: FrameOrigin,
) -> Result<Option<Frame>, SourceError> {
    let img = decode(path, limits).map_err(|reason| SourceError::Decode {
        path: path.to_path_buf(),
        reason,
    })?;
    let (w, h) = (img.width(), img.height());
    // The file may have changed since its header was read: never outgrow the pool.
    if frame_bytes(w, h).is_none_or(|b| b > max_bytes) {
        let e = limits
            .check(w, h, frame_bytes(w, h))
            .err()
            .unwrap_or(LimitError::Bytes {
                width: w,
                height: h,
                bytes: frame_bytes(w, h),
                max: max_bytes,
            });
        return Err(SourceError::TooLarge {
            path: path.to_path_buf(),
            source: e,
        });
    }
    let Some(mut buffer) = pool.take() else {
        return Ok(None);
    };
    let layout = if img.color().has_color() {
        let rgb = img.to_rgb8();
        buffer.fill(rgb.len()).copy_from_slice(rgb.as_raw());
        FrameLayout::packed(w, h, PixelFormat::Rgb24)
    } else {
        let grey = img.to_luma8();
        buffer.fill(grey.len()).copy_from_slice(grey.as_raw());
        FrameLayout::packed(w, h, PixelFormat::Grey)
    };
    Ok(Some(Frame {
        meta: FrameMeta {
            seq,
            captured: Instant::now(),
            origin,
        },
        layout,
        buffer: buffer.into(),
    }))
}

/// Checks an image file's header against `limits` before anything is decoded or
/// allocated; an unreadable header is left to the decoder, whose error names the problem.
pub(super) fn check_header(path: &Path, limits: &FrameLimits) -> Result<(), SourceError> {
    match header_size(path) {
        Ok((w, h)) => {
            limits
                .check(w, h, frame_bytes(w, h))
                .map_err(|source| SourceError::TooLarge {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(_) => Ok(()),
    }
}

/// Decodes `path` with the decoder's own allocation limit set from `limits` (a header
/// can lie about what the data needs).
fn decode(path: &Path, limits: &FrameLimits) -> Result<image::DynamicImage, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&data[..]))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    // The JPEG decoder fills a cut scan with grey and succeeds: refuse a partial file.
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        super::jpeg::check_complete(&data)?;
    }
    let mut l = image::Limits::default();
    // A decoder may hold RGBA16 (8 bytes a pixel) before the conversion to a 3-byte frame.
    l.max_alloc = Some(limits.max_bytes.saturating_mul(3));
    reader.limits(l);
    reader.decode().map_err(|e| e.to_string())
}
