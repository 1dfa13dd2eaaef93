//! Good images for fitting: listing a folder, decoding, and the seeded hold-out split.

use std::path::{Path, PathBuf};

use super::FitError;
use crate::patchcore::SplitMix64;

/// Mixed into the seed so the split and the coreset do not share a stream.
const SPLIT_SALT: u64 = 0x5eed_5011;
const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Image files in `dir` (not recursive), sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, FitError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FitError::ListDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Decodes an image file to packed RGB8.
pub fn load_rgb(path: &Path) -> Result<(Vec<u8>, u32, u32), FitError> {
    let img = image::open(path).map_err(|e| FitError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok((rgb.into_raw(), w, h))
}

/// Splits `n` items into (train, holdout) index lists with a seeded shuffle; both sorted.
pub fn split(n: usize, holdout: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed ^ SPLIT_SALT).shuffle(&mut idx);
    let k = ((n as f32 * holdout).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut hold = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    hold.sort_unstable();
    train.sort_unstable();
    (train, hold)
}
