//! Per-layer work done once for both sides of a layer x layer matrix: when B is A (the same
//! slice), B reuses A's.

use crate::error::Result;
use crate::layer::Layer;

/// What `prepare` made of every layer of A and of B.
pub(crate) struct Sides<T> {
    /// A's layers'.
    pub a: Vec<T>,
    /// B's layers', `None` when B is A.
    b: Option<Vec<T>>,
}

impl<T> Sides<T> {
    /// `prepare` on every layer of A and (unless B is the same slice) of B.
    pub fn new(
        layers_a: &[Layer],
        layers_b: &[Layer],
        prepare: impl Fn(&Layer) -> Result<T>,
    ) -> Result<Self> {
        let a = layers_a.iter().map(&prepare).collect::<Result<Vec<_>>>()?;
        let b = if std::ptr::eq(layers_a, layers_b) {
            None
        } else {
            Some(layers_b.iter().map(&prepare).collect::<Result<Vec<_>>>()?)
        };
        Ok(Sides { a, b })
    }

    /// B's layers'.
    pub fn b(&self) -> &[T] {
        self.b.as_deref().unwrap_or(&self.a)
    }
}
