//! Godot `Array` and the non-recursive drop shared with `Dictionary`.

use std::fmt;

use super::*;

/// Godot `Array`: a list of `Variant`s. Dereferences to `Vec<Variant>`.
///
/// Dropping a deeply nested array does not recurse (a value decoded with a
/// raised [`Limits::max_depth`] can be very deep); `Clone`, `==`, `Hash` and
/// `Debug` do recurse, which the default depth limit keeps cheap.
///
/// ```
/// use lunanet::variant::{Array, Variant};
/// use lunanet::varray;
///
/// let mut a = varray![1, "two"];
/// a.as_array_mut().unwrap().push(3.0.into());
/// assert_eq!(a.at(2), Some(&Variant::Float(3.0)));
/// let plain: Array = vec![Variant::Nil].into();
/// assert_eq!(plain.len(), 1);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Array {
    items: Vec<Variant>,
}

impl Array {
    /// An empty array.
    pub fn new() -> Array {
        Array::default()
    }

    /// An empty array with room for `n` elements.
    pub fn with_capacity(n: usize) -> Array {
        Array {
            items: Vec::with_capacity(n),
        }
    }

    /// The elements, as a `Vec`.
    pub fn into_vec(mut self) -> Vec<Variant> {
        std::mem::take(&mut self.items)
    }
}

impl std::ops::Deref for Array {
    type Target = Vec<Variant>;
    fn deref(&self) -> &Vec<Variant> {
        &self.items
    }
}

impl std::ops::DerefMut for Array {
    fn deref_mut(&mut self) -> &mut Vec<Variant> {
        &mut self.items
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.items).finish()
    }
}

impl From<Vec<Variant>> for Array {
    fn from(items: Vec<Variant>) -> Array {
        Array { items }
    }
}

impl<T: Into<Variant>> FromIterator<T> for Array {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Array {
        Array {
            items: iter.into_iter().map(Into::into).collect(),
        }
    }
}

impl IntoIterator for Array {
    type Item = Variant;
    type IntoIter = std::vec::IntoIter<Variant>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Array {
    type Item = &'a Variant;
    type IntoIter = std::slice::Iter<'a, Variant>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Drops `v` without recursing into nested containers: a container's
/// elements are dropped here and any non-empty container among them is
/// moved onto `stack` (emptied the same way by [`drain_stack`]), so no
/// `Drop` ever goes more than one level deep, whatever the nesting.
///
/// One pass over the elements both checks and drops them: the usual array
/// of flat dictionaries is walked once, and values that own no memory
/// (scalars, inline strings, emptied containers) are forgotten rather than
/// sent through the drop glue (see [`Variant::release`]).
#[inline(always)]
pub(super) fn drop_flat(mut v: Variant, stack: &mut Vec<Variant>) {
    match &mut v {
        Variant::Array(a) => {
            for child in std::mem::take(&mut a.items) {
                child.dispose(stack);
            }
        }
        Variant::Dictionary(d) => {
            for (k, val) in d.take_entries() {
                k.dispose(stack);
                val.dispose(stack);
            }
        }
        _ => {}
    }
    v.release();
}

/// Drops the containers left on `stack` by [`drop_flat`], and theirs.
pub(super) fn drain_stack(stack: &mut Vec<Variant>) {
    while let Some(v) = stack.pop() {
        drop_flat(v, stack);
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // Children are dropped flat (their own elements here, in the same
        // pass); anything deeper waits on `stack`, which allocates only
        // for a tree at least three levels deep.
        let mut stack: Vec<Variant> = Vec::new();
        for child in std::mem::take(&mut self.items) {
            drop_flat(child, &mut stack);
        }
        drain_stack(&mut stack);
    }
}
