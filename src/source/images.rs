//! Replay of a folder of PNG/JPEG/BMP files in name order (or of a single image file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Next, Source, SourceError};
use crate::frame::{BufferPool, Frame, FrameLayout, FrameMeta, FrameOrigin, PixelFormat};

pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

pub struct ImageFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
    repeat: u32,
    next: usize,
    max_bytes: usize,
}

impl ImageFolder {
    pub fn open(path: &Path, repeat: u32) -> Result<Self, SourceError> {
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
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
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
        // Size the pool from the headers, without decoding.
        let max_bytes = files
            .iter()
            .filter_map(|f| image::image_dimensions(f).ok())
            .map(|(w, h)| w as usize * h as usize * 3)
            .max()
            .unwrap_or(0);
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
        })
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
        let img = match image::ImageReader::open(path)
            .map_err(|e| e.to_string())
            .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
            .and_then(|r| r.decode().map_err(|e| e.to_string()))
        {
            Ok(img) => img,
            Err(reason) => {
                return Next::Skipped {
                    item,
                    error: SourceError::Decode {
                        path: path.clone(),
                        reason,
                    },
                }
            }
        };
        let Some(mut buffer) = pool.take() else {
            return Next::End;
        };
        let (w, h) = (img.width(), img.height());
        let layout = if img.color().has_color() {
            let rgb = img.to_rgb8();
            buffer.fill(rgb.len()).copy_from_slice(rgb.as_raw());
            FrameLayout::packed(w, h, PixelFormat::Rgb24)
        } else {
            let grey = img.to_luma8();
            buffer.fill(grey.len()).copy_from_slice(grey.as_raw());
            FrameLayout::packed(w, h, PixelFormat::Grey)
        };
        Next::Frame(Frame {
            meta: FrameMeta {
                seq,
                captured: Instant::now(),
                origin: FrameOrigin::Item(item),
            },
            layout,
            buffer: buffer.into(),
        })
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
