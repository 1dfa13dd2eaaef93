//! Controls the emulated camera offers.

use v4l::v4l_sys::{
    V4L2_CID_AUTO_WHITE_BALANCE, V4L2_CID_EXPOSURE_ABSOLUTE, V4L2_CID_EXPOSURE_AUTO, V4L2_CID_GAIN,
    V4L2_CID_WHITE_BALANCE_TEMPERATURE,
};

use crate::EmuControl;

/// Standard controls of a UVC-like camera.
pub fn uvc_controls() -> Vec<EmuControl> {
    vec![
        EmuControl {
            id: V4L2_CID_AUTO_WHITE_BALANCE,
            name: "White Balance, Automatic",
            min: 0,
            max: 1,
            default: 1,
        },
        EmuControl {
            id: V4L2_CID_GAIN,
            name: "Gain",
            min: 0,
            max: 255,
            default: 32,
        },
        EmuControl {
            id: V4L2_CID_WHITE_BALANCE_TEMPERATURE,
            name: "White Balance Temperature",
            min: 2800,
            max: 6500,
            default: 4600,
        },
        EmuControl {
            id: V4L2_CID_EXPOSURE_AUTO,
            name: "Auto Exposure",
            min: 0,
            max: 3,
            default: 3,
        },
        EmuControl {
            id: V4L2_CID_EXPOSURE_ABSOLUTE,
            name: "Exposure Time, Absolute",
            min: 1,
            max: 5000,
            default: 156,
        },
    ]
}
