//! lineside: an on-device vision inspection runtime.
//!
//! Frames follow one path:
//! [`source`] → [`frame`] → [`preprocess`] → [`engine`] → [`heads`] → [`verdict`] →
//! [`sink`]s, wired together by [`pipeline`] from a [`scenario`] plan.
//!
//! # Layers
//!
//! A module may import modules above it in this list, never one below it, and never in a
//! circle (`tests/layers.rs` checks every `use crate::` line against it):
//!
//! ```text
//! pool, verdict, engine, geometry, status   ground floor: no crate imports
//! frame         frames, pixel formats, buffer owners (no camera types)
//! preprocess    frame -> tensor in one pass
//! patchcore     memory bank, k-NN, coreset (shared by fit and the head)
//! config        file loading, located diagnostics, common sections, the key table
//! plc           [trigger] and [plc]: what makes a part, the Modbus TCP link to a PLC
//! heads         one folder per head kind: its keys, checks, runtime; one registry
//! source        one file or folder per source kind, its `[source]` spec beside it
//! evidence      evidence images: capture on the worker, overlays, the background writer
//! outcome       the ordered-verdict contract between pipeline and consumers
//! sink          defect log, summary, ...: each a consumer; one registry
//! scenario      file + model -> checked plan (common sections, source, head, sinks)
//! pipeline      threads, queues, ordering, drain
//! service       health/metrics endpoint, metrics of the outcome stream, systemd notify
//! dataset       MVTec-layout listing for fit and eval
//! fit, eval, report, calibrate   commands built on the above
//! runner        several scenarios in one process
//! bench         `lineside bench`: ORT alone against the whole pipeline, per core count
//! ```
//!
//! `config` sits below the heads and sources (not beside `scenario`) because each head
//! and source reads its own section through it; `scenario` is the part that needs them all.

pub mod bench;
pub mod calibrate;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod evidence;
pub mod fit;
pub mod frame;
pub mod geometry;
pub mod heads;
pub mod outcome;
pub mod patchcore;
pub mod pipeline;
pub mod plc;
pub mod pool;
pub mod preprocess;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod service;
pub mod sink;
pub mod source;
pub mod status;
pub mod verdict;
