//! Replay of raw frame files: each file holds one or more frames back to back (as
//! `v4l2-ctl --stream-to` and `lineside record` write them), described by a JSON sidecar
//! `<file>.json` (or `<stem>.json`): `{"width":1280,"height":720,"fourcc":"YUYV","stride":2560}`.
//! `stride` (bytes per line) defaults to packed rows; `frame_bytes` defaults to what the
//! geometry needs. V4L2's names `pixelformat`, `bytesperline` and `sizeimage` are accepted
//! for `fourcc`, `stride` and `frame_bytes`; other fields are ignored.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Next, Probe, Source, SourceError, SourceKind, SourceKindEntry};
use crate::frame::{
    BufferPool, Frame, FrameBuf, FrameError, FrameLayout, FrameLimits, FrameMeta, FrameOrigin,
    Lease, PixelFormat, SlotOwner,
};

pub(super) const KIND: SourceKindEntry = SourceKindEntry {
    kind: SourceKind::Raw,
    name: "raw",
    open: |plan| {
        Ok(Box::new(RawReplay::open_with(
            &super::plan_path(plan),
            plan.repeat,
            plan.limits,
        )?))
    },
    probe: |plan| {
        Ok(Probe {
            frame_size: RawReplay::open_with(&super::plan_path(plan), plan.repeat, plan.limits)?
                .first_size(),
            refused: Vec::new(),
        })
    },
};

/// What a sidecar says about the frames in its raw file. Written by `lineside record`;
/// read from it and from other tools (V4L2's own names are accepted as aliases).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawSidecar {
    pub width: u32,
    pub height: u32,
    #[serde(alias = "pixelformat")]
    pub fourcc: String,
    #[serde(
        default,
        alias = "bytesperline",
        skip_serializing_if = "Option::is_none"
    )]
    pub stride: Option<usize>,
    #[serde(default, alias = "sizeimage", skip_serializing_if = "Option::is_none")]
    pub frame_bytes: Option<usize>,
}

/// The sidecar as read: the known fields plus whatever else the writing tool put there.
#[derive(Deserialize)]
struct SidecarText {
    #[serde(flatten)]
    known: RawSidecar,
    // A sidecar is data, not configuration: extra fields are noted, not refused.
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, serde_json::Value>,
}

impl RawSidecar {
    /// `<file>.json`, the name `lineside record` writes.
    pub fn sidecar_path(raw: &Path) -> PathBuf {
        let mut s = raw.as_os_str().to_owned();
        s.push(".json");
        PathBuf::from(s)
    }

    /// The sidecar of `raw` that exists: `<file>.json`, else `<stem>.json` (as other
    /// tools name it: `frames.json` beside `frames.raw`).
    pub fn find(raw: &Path) -> Option<PathBuf> {
        let full = Self::sidecar_path(raw);
        if full.is_file() {
            return Some(full);
        }
        raw.extension()?;
        let stem = raw.with_extension("json");
        (stem != raw && stem.is_file()).then_some(stem)
    }

    /// Parses sidecar text; extra fields are logged at debug and ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t: SidecarText = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !t.extra.is_empty() {
            let names: Vec<&str> = t.extra.keys().map(String::as_str).collect();
            tracing::debug!("raw sidecar: ignoring fields {}", names.join(", "));
        }
        Ok(t.known)
    }

    /// The frame layout and bytes per frame, with checked arithmetic (every number here
    /// comes from a file).
    pub fn layout(&self) -> Result<(FrameLayout, usize), String> {
        let format: PixelFormat = self.fourcc.parse()?;
        let layout = FrameLayout {
            width: self.width,
            height: self.height,
            format,
            stride: self.stride.unwrap_or_else(|| format.min_stride(self.width)),
        };
        let need = format
            .checked_frame_len(layout.stride, layout.height)
            .ok_or_else(|| {
                format!(
                    "stride {} x height {} overflows; check the sidecar's stride (bytes per line) and height",
                    layout.stride, layout.height
                )
            })?;
        let bytes = self.frame_bytes.unwrap_or(need);
        layout
            .check(bytes)
            .map_err(|e| format!("sidecar geometry is inconsistent: {e}"))?;
        Ok((layout, bytes))
    }
}

struct RawFile {
    path: PathBuf,
    layout: FrameLayout,
    frame_bytes: usize,
    frames: u64,
}

pub struct RawReplay {
    root: PathBuf,
    files: Vec<RawFile>,
    repeat: u32,
    /// Position: play `pass`, file `file`, frame `index`.
    pass: u32,
    file: usize,
    index: u64,
    /// Each file's mapping, made when its first frame is read: frames are lent from it in
    /// place. Kept for the next pass when the replay repeats, so a loop maps each file
    /// once (and allocates nothing per frame).
    maps: Vec<Option<Arc<MappedFile>>>,
}

/// A raw file mapped read-only. Frames are [`Lease`]s into it, so replay copies nothing
/// (the worker's preprocessing reads the page cache directly); the mapping lives until
/// the last frame lent from it is dropped.
struct MappedFile {
    map: memmap2::Mmap,
}

impl SlotOwner for MappedFile {
    /// Nothing to give back: the file is only read.
    fn release(&self, _slot: u32) {}
}

impl MappedFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        // SAFETY: the map is only read. A recording is replayed, not written: a file
        // truncated by another program while it is mapped would fault on its lost pages
        // (docs: record to a new file, never rewrite one being replayed).
        let map = unsafe { memmap2::MmapOptions::new().map(&file)? };
        // Frames are read front to back, once each.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile { map })
    }
}

impl RawReplay {
    /// Opens with the default [`FrameLimits`].
    pub fn open(path: &Path, repeat: u32) -> Result<Self, SourceError> {
        Self::open_with(path, repeat, FrameLimits::DEFAULT)
    }

    /// Opens `path`, refusing a sidecar that describes a frame beyond `limits`.
    pub fn open_with(path: &Path, repeat: u32, limits: FrameLimits) -> Result<Self, SourceError> {
        let open_err = |p: &Path, reason: String| SourceError::Open {
            path: p.to_path_buf(),
            reason,
        };
        let candidates: Vec<PathBuf> = if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| open_err(path, format!("cannot list folder: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "json"))
                .filter(|p| RawSidecar::find(p).is_some())
                .collect();
            v.sort();
            v
        };
        let mut files = Vec::new();
        for p in candidates {
            let sidecar = RawSidecar::find(&p).unwrap_or_else(|| RawSidecar::sidecar_path(&p));
            let text = std::fs::read_to_string(&sidecar).map_err(|e| {
                open_err(&sidecar, format!(
                    "cannot read the sidecar ({e}); every raw file needs <file>.json (or <stem>.json) with width, height, fourcc and stride"
                ))
            })?;
            let meta = RawSidecar::parse(&text)
                .map_err(|e| open_err(&sidecar, format!("invalid sidecar: {e}")))?;
            let (layout, frame_bytes) = meta.layout().map_err(|e| open_err(&sidecar, e))?;
            limits
                .check(layout.width, layout.height, Some(frame_bytes as u64))
                .map_err(|e| open_err(&sidecar, e.to_string()))?;
            let len = std::fs::metadata(&p)
                .map_err(|e| open_err(&p, e.to_string()))?
                .len();
            files.push(RawFile {
                // layout() refuses frame_bytes = 0 (a frame has at least one row).
                frames: len.div_ceil((frame_bytes as u64).max(1)),
                path: p,
                layout,
                frame_bytes,
            });
        }
        if files.is_empty() {
            return Err(open_err(
                path,
                "no raw frame files with a <file>.json sidecar here".into(),
            ));
        }
        let files_n = files.len();
        Ok(RawReplay {
            root: if path.is_file() {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                path.to_path_buf()
            },
            files,
            repeat: repeat.max(1),
            pass: 0,
            file: 0,
            index: 0,
            maps: vec![None; files_n],
        })
    }

    /// The first file's frame size.
    pub fn first_size(&self) -> Option<(u32, u32)> {
        self.files
            .first()
            .map(|f| (f.layout.width, f.layout.height))
    }

    /// Moves to the next file (or pass); false at the end.
    fn advance_file(&mut self) -> bool {
        if self.repeat == 1 {
            // Not read again: the mapping lives on only in frames still in flight.
            if let Some(m) = self.maps.get_mut(self.file) {
                *m = None;
            }
        }
        self.index = 0;
        self.file += 1;
        if self.file == self.files.len() {
            self.file = 0;
            self.pass += 1;
        }
        self.pass < self.repeat
    }
}

impl Source for RawReplay {
    fn next(&mut self, seq: u64, _pool: &BufferPool) -> Next {
        loop {
            if self.pass >= self.repeat {
                return Next::End;
            }
            let f = &self.files[self.file];
            if self.index >= f.frames {
                if !self.advance_file() {
                    return Next::End;
                }
                continue;
            }
            if self.maps[self.file].is_none() {
                match MappedFile::open(&f.path) {
                    Ok(m) => self.maps[self.file] = Some(Arc::new(m)),
                    Err(source) => {
                        let error = SourceError::Read {
                            path: f.path.clone(),
                            source,
                        };
                        let item = self.file;
                        self.advance_file();
                        return Next::Skipped {
                            origin: FrameOrigin::Item(item),
                            error,
                        };
                    }
                }
            }
            // No pool buffer: the pixels stay in the mapping. Frames in flight are bounded
            // by the pipeline's frame queue and its workers.
            let (layout, frame_bytes, index, item) =
                (f.layout, f.frame_bytes, self.index, self.file);
            self.index += 1;
            let Some(map) = self.maps[self.file].as_ref() else {
                return Next::End;
            };
            let len = map.map.len();
            // Checked: the sidecar's geometry comes from a file.
            let start = usize::try_from(index)
                .ok()
                .and_then(|i| i.checked_mul(frame_bytes))
                .unwrap_or(usize::MAX);
            let have = len.saturating_sub(start).min(frame_bytes);
            if have < frame_bytes {
                return Next::Skipped {
                    origin: FrameOrigin::Item(item),
                    error: SourceError::Frame {
                        path: self.files[item].path.clone(),
                        source: FrameError::Truncated {
                            have,
                            need: frame_bytes,
                        },
                    },
                };
            }
            let owner: Arc<dyn SlotOwner> = Arc::<MappedFile>::clone(map);
            // SAFETY: `start + frame_bytes <= len` (checked above); the lease holds the
            // mapping, which is never written.
            let lease = unsafe {
                Lease::new(
                    owner,
                    u32::try_from(index).unwrap_or(u32::MAX),
                    map.map.as_ptr().add(start),
                    frame_bytes,
                )
            };
            return Next::Frame(Frame {
                meta: FrameMeta {
                    seq,
                    captured: Instant::now(),
                    origin: FrameOrigin::RawFrame { file: item, index },
                },
                layout,
                buffer: FrameBuf::Leased(lease),
            });
        }
    }

    fn item_names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(&self.root)
                    .unwrap_or(&f.path)
                    .display()
                    .to_string()
            })
            .collect()
    }

    fn max_frame_bytes(&self) -> usize {
        // Every frame is lent from the mapping: the pool needs no pixel room.
        0
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.files.iter().map(|f| f.frames).sum::<u64>() * u64::from(self.repeat))
    }

    fn describe(&self) -> String {
        format!("raw:{}", self.root.display())
    }
}
