//! The plan a running scenario's workers follow, replaceable while it runs (SIGHUP).
//!
//! Capture stamps each frame with the plan generation current when it was grabbed; a
//! worker rebuilds before the first frame stamped newer than its plan. Frames leave the
//! queue in sequence order, so every frame from the swap on is decided under the new plan
//! and every frame before it under the old one: the swap falls on a frame boundary and no
//! sequence number is skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::scenario::ScenarioPlan;

pub struct PlanSlot {
    generation: AtomicU64,
    current: Mutex<Arc<ScenarioPlan>>,
}

impl PlanSlot {
    /// Generation 1 is the plan the scenario started with.
    pub fn new(plan: Arc<ScenarioPlan>) -> Arc<PlanSlot> {
        Arc::new(PlanSlot {
            generation: AtomicU64::new(1),
            current: Mutex::new(plan),
        })
    }

    /// The generation frames captured now are stamped with (one atomic load).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The newest plan and its generation.
    pub fn current(&self) -> (u64, Arc<ScenarioPlan>) {
        let plan = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (self.generation(), Arc::clone(&plan))
    }

    /// Makes `plan` the one frames captured from now on are decided under; returns its
    /// generation.
    pub fn publish(&self, plan: Arc<ScenarioPlan>) -> u64 {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = plan;
        // Under the lock: a reader never pairs a generation with another plan.
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }
}
