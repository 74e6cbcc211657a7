//! One named operation at a time: a slot that holds the name of what runs (a backup being
//! made or restored) and is free again when its guard drops. Kept in `state::Core`, so each
//! process (and each test's app) has its own.

use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub struct NamedSlot {
    name: Mutex<Option<String>>,
}

/// Holds the slot until dropped.
pub struct SlotGuard<'a>(&'a NamedSlot);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

impl NamedSlot {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.name.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The name of what holds the slot, if anything does.
    pub fn active(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Takes the slot for `name`; `None` when something else holds it.
    pub fn begin(&self, name: &str) -> Option<SlotGuard<'_>> {
        let mut slot = self.lock();
        if slot.is_some() {
            return None;
        }
        *slot = Some(name.to_string());
        Some(SlotGuard(self))
    }
}

#[cfg(test)]
mod tests {
    use super::NamedSlot;

    #[test]
    fn one_operation_at_a_time() {
        let slot = NamedSlot::default();
        let g = slot.begin("a.zip").unwrap();
        assert_eq!(slot.active().as_deref(), Some("a.zip"));
        assert!(slot.begin("b.zip").is_none());
        drop(g);
        assert!(slot.active().is_none());
        assert!(slot.begin("b.zip").is_some());
    }
}
