//! What preprocessing is asked to do (the settings from `[preprocess]` and the model),
//! where the result lands on the frame, and what can go wrong.

use serde::{Deserialize, Serialize};

use super::Interpolation;
use crate::frame::FrameError;

/// How the region of interest is fitted to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Resize to the input size, ignoring aspect ratio.
    #[default]
    Stretch,
    /// Keep aspect: take the centred region with the input's aspect ratio, scaled by
    /// `crop_fraction` (ImageNet's "resize 256, crop 224" is 0.875).
    CenterCrop,
    /// Keep aspect: fit inside the input and pad (Ultralytics YOLO).
    Letterbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ColorOrder {
    #[default]
    Rgb,
    Bgr,
    Gray,
}

impl ColorOrder {
    pub fn channels(self) -> usize {
        if self == ColorOrder::Gray {
            1
        } else {
            3
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    #[default]
    Nchw,
    Nhwc,
}

/// A rectangle in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Everything preprocessing needs, resolved from the scenario and the model.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessSpec {
    pub roi: Option<Rect>,
    pub fit: Fit,
    pub crop_fraction: f32,
    pub pad_value: u8,
    pub interpolation: Interpolation,
    pub color: ColorOrder,
    /// Multiplies 8-bit values before `mean`/`std` (1/255 for [0,1] input).
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub layout: Layout,
    pub width: usize,
    pub height: usize,
}

impl PreprocessSpec {
    pub fn tensor_shape(&self) -> [usize; 4] {
        let c = self.color.channels();
        match self.layout {
            Layout::Nchw => [1, c, self.height, self.width],
            Layout::Nhwc => [1, self.height, self.width, c],
        }
    }
}

/// Maps model-input coordinates back to frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform {
    /// Frame position of the resampled region's top-left corner.
    pub origin: (f32, f32),
    /// Frame pixels per model pixel.
    pub scale: (f32, f32),
    /// Model-input position where the resampled region starts (letterbox padding).
    pub pad: (f32, f32),
}

impl Transform {
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.origin.0 + (x - self.pad.0) * self.scale.0,
            self.origin.1 + (y - self.pad.1) * self.scale.1,
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error(
        "roi {roi:?} lies outside the {width}x{height} frame; \
         fix [preprocess].roi so x+width <= {width} and y+height <= {height}"
    )]
    RoiOutside { roi: Rect, width: u32, height: u32 },
    #[error("output buffer holds {have} floats, the model input needs {need}")]
    OutputSize { have: usize, need: usize },
}
