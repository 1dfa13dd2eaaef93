//! A fixed set of reusable objects (pixel buffers, result records). A lease goes back to
//! its pool when dropped, so steady state allocates nothing and memory stays bounded: when
//! every object is leased, `take` waits.

use std::ops::{Deref, DerefMut};

use crossbeam_channel::{Receiver, Sender};

pub struct Pool<T> {
    free_tx: Sender<T>,
    free_rx: Receiver<T>,
}

impl<T> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool {
            free_tx: self.free_tx.clone(),
            free_rx: self.free_rx.clone(),
        }
    }
}

impl<T> Pool<T> {
    pub fn new(count: usize, mut make: impl FnMut() -> T) -> Self {
        let (free_tx, free_rx) = crossbeam_channel::bounded(count.max(1));
        for _ in 0..count.max(1) {
            let _ = free_tx.try_send(make());
        }
        Pool { free_tx, free_rx }
    }

    /// Waits for a free object; `None` only if the pool was dropped meanwhile.
    pub fn take(&self) -> Option<Pooled<T>> {
        self.free_rx.recv().ok().map(|v| self.lease(v))
    }

    /// Waits up to `timeout` for a free object.
    pub fn take_timeout(&self, timeout: std::time::Duration) -> Option<Pooled<T>> {
        self.free_rx
            .recv_timeout(timeout)
            .ok()
            .map(|v| self.lease(v))
    }

    pub fn try_take(&self) -> Option<Pooled<T>> {
        self.free_rx.try_recv().ok().map(|v| self.lease(v))
    }

    pub fn available(&self) -> usize {
        self.free_rx.len()
    }

    fn lease(&self, value: T) -> Pooled<T> {
        Pooled {
            value: Some(value),
            home: Some(self.free_tx.clone()),
        }
    }
}

pub struct Pooled<T> {
    value: Option<T>,
    home: Option<Sender<T>>,
}

impl<T> Pooled<T> {
    /// An object that belongs to no pool (tests, one-off frames).
    pub fn detached(value: T) -> Self {
        Pooled {
            value: Some(value),
            home: None,
        }
    }
}

impl<T> Deref for Pooled<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // `value` is only taken in `drop`.
        self.value.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let (Some(v), Some(home)) = (self.value.take(), self.home.take()) {
            // A closed pool simply lets the object go.
            let _ = home.try_send(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_return_home_and_reuse_the_allocation() {
        let pool = Pool::new(2, || vec![0u8; 16]);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(
            pool.try_take().is_none(),
            "bounded: a third lease must wait"
        );
        let ptr = a.as_ptr();
        drop(a);
        let c = pool.take().unwrap();
        assert_eq!(c.as_ptr(), ptr);
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }
}
