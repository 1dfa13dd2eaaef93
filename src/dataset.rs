//! Image data sets on disk, for `fit` and `eval`: a folder of images, labelled folders in the
//! MVTec AD layout (`good/`, `<defect>/`, masks at `ground_truth/<defect>/<stem>_mask.png`),
//! and defect masks.

use std::path::{Path, PathBuf};

use crate::source::IMAGE_EXTENSIONS;

/// The folder name of defect-free images in the MVTec AD layout.
pub const GOOD: &str = "good";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot list {dir}: {source}")]
    ListDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read image {path}: {reason}\nFix: remove or replace the file (fitting uses every image in the folder)")]
    Unreadable { path: PathBuf, reason: String },
}

/// One image of a labelled data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    /// The defect type, or [`GOOD`].
    pub kind: String,
    pub image: PathBuf,
    /// Where the defect mask would be (`None` for good images); the file may be missing.
    pub mask: Option<PathBuf>,
}

impl LabelledImage {
    pub fn is_good(&self) -> bool {
        self.kind == GOOD
    }
}

/// Image files in `dir` (not recursive), sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::ListDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Decodes an image file to packed RGB8: (pixels, width, height).
pub fn load_rgb(path: &Path) -> Result<(Vec<u8>, u32, u32), DatasetError> {
    let img = image::open(path).map_err(|e| DatasetError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok((rgb.into_raw(), w, h))
}

/// Labelled images: `images/good/*`, `images/<defect>/*` (a folder named `ground_truth`
/// is skipped, so masks may sit inside `images`), masks at `masks/<defect>/<stem>_mask.png`.
/// Sorted by type, then file.
pub fn labelled_images(images: &Path, masks: &Path) -> Result<Vec<LabelledImage>, DatasetError> {
    let mut kinds: Vec<String> = std::fs::read_dir(images)
        .map_err(|source| DatasetError::ListDir {
            dir: images.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|k| k != "ground_truth")
        .collect();
    kinds.sort();
    let mut items = Vec::new();
    for kind in kinds {
        for image in list_images(&images.join(&kind))? {
            let mask = (kind != GOOD).then(|| {
                let stem = image.file_stem().map(|s| s.to_string_lossy().into_owned());
                masks
                    .join(&kind)
                    .join(format!("{}_mask.png", stem.unwrap_or_default()))
            });
            items.push(LabelledImage {
                kind: kind.clone(),
                image,
                mask,
            });
        }
    }
    Ok(items)
}

/// A mask resampled (nearest) to `w` x `h`, `true` where it is brighter than mid-grey;
/// no path or a missing file means "no defect pixels".
pub fn load_mask(path: Option<&Path>, w: usize, h: usize) -> Result<Vec<bool>, DatasetError> {
    let Some(path) = path.filter(|p| p.is_file()) else {
        return Ok(vec![false; w * h]);
    };
    let img = image::open(path)
        .map_err(|e| DatasetError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .to_luma8();
    let (mw, mh) = (img.width() as usize, img.height() as usize);
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let sx = (x * mw / w).min(mw - 1);
            let sy = (y * mh / h).min(mh - 1);
            out[y * w + x] = img.get_pixel(sx as u32, sy as u32)[0] > 127;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_png(path: &Path, w: u32, h: u32, on: impl Fn(u32, u32) -> bool) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([if on(x, y) { 255 } else { 0 }]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn lists_images_by_extension_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.PNG", "a.jpg", "c.bmp", "notes.txt", "d.png.bak"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.png")).unwrap();
        let names: Vec<String> = list_images(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.jpg", "b.PNG", "c.bmp"]);
        assert!(matches!(
            list_images(&dir.path().join("missing")),
            Err(DatasetError::ListDir { .. })
        ));
    }

    #[test]
    fn labels_the_mvtec_layout_and_names_each_mask() {
        let dir = tempfile::tempdir().unwrap();
        let test = dir.path().join("test");
        let gt = dir.path().join("ground_truth");
        touch_png(&test.join("good/000.png"), 4, 4, |_, _| false);
        touch_png(&test.join("scratch/001.png"), 4, 4, |_, _| false);
        touch_png(&test.join("crack/000.png"), 4, 4, |_, _| false);
        // A ground_truth folder beside the types (as in `validation/`) is not a type.
        touch_png(
            &test.join("ground_truth/crack/000_mask.png"),
            4,
            4,
            |_, _| true,
        );
        let items = labelled_images(&test, &gt).unwrap();
        let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(kinds, ["crack", "good", "scratch"]);
        assert_eq!(items[0].mask, Some(gt.join("crack/000_mask.png")));
        assert!(items[1].is_good() && items[1].mask.is_none());
        assert_eq!(items[2].mask, Some(gt.join("scratch/001_mask.png")));
    }

    #[test]
    fn masks_resample_nearest_and_missing_ones_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mask = dir.path().join("m.png");
        // Left half set, at 8x4; read at 4x2.
        touch_png(&mask, 8, 4, |x, _| x < 4);
        let m = load_mask(Some(&mask), 4, 2).unwrap();
        assert_eq!(m, [true, true, false, false, true, true, false, false]);
        assert_eq!(load_mask(None, 2, 2).unwrap(), [false; 4]);
        assert_eq!(
            load_mask(Some(&dir.path().join("none.png")), 1, 1).unwrap(),
            [false]
        );
        std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        assert!(matches!(
            load_mask(Some(&dir.path().join("bad.png")), 1, 1),
            Err(DatasetError::Unreadable { .. })
        ));
    }
}
