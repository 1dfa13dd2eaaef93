//! lineside: an on-device vision inspection runtime.
//!
//! The modules follow the data path:
//! [`source`] → [`frame`] → [`preprocess`] → [`engine`] → [`heads`] → [`verdict`] → [`sink`],
//! wired together by [`pipeline`] and configured by [`config`] (scenario files).

pub mod config;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod fit;
pub mod frame;
pub mod heads;
pub mod patchcore;
pub mod pipeline;
pub mod pool;
pub mod preprocess;
pub mod runner;
pub mod sink;
pub mod source;
pub mod verdict;
