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

/// Empties `v` if it is a container, without recursing: its elements are
/// dropped here and any non-empty container among them is moved onto
/// `stack` (emptied the same way by [`drain_stack`]), so no `Drop` ever
/// goes more than one level deep, whatever the nesting. `v` is left an
/// empty container that owns no memory; any other value is left as is.
///
/// One pass over the elements, in place, both checks and drops them: the
/// usual array of flat dictionaries is walked once, only values that own
/// memory are moved out, and the rest (scalars, inline strings, emptied
/// containers) are forgotten with their buffer (see [`forget_all`]).
#[inline(always)]
pub(super) fn empty_in_place(v: &mut Variant, stack: &mut Vec<Variant>) {
    match v {
        Variant::Array(a) => {
            for child in a.items.iter_mut() {
                dispose_in_place(child, stack);
            }
            forget_all(std::mem::take(&mut a.items));
        }
        Variant::Dictionary(d) => {
            let mut entries = d.take_entries();
            for (k, val) in &mut entries {
                dispose_in_place(k, stack);
                dispose_in_place(val, stack);
            }
            forget_all(entries);
        }
        _ => {}
    }
}

/// Drops `v` now if it owns memory, leaving `Nil` (a non-empty container
/// goes onto `stack` instead); a value that owns none is left as is.
#[inline(always)]
pub(super) fn dispose_in_place(v: &mut Variant, stack: &mut Vec<Variant>) {
    if !v.owns_no_memory() {
        let v = std::mem::take(v);
        if v.is_nonempty_container() {
            stack.push(v);
        } else {
            drop(v);
        }
    }
}

/// Frees `items`' buffer without running each element's drop glue (a
/// dispatch on its type): every element owns no memory, so forgetting it
/// is dropping it, and the compiler removes the loop.
#[inline(always)]
pub(super) fn forget_all<T>(items: Vec<T>) {
    items.into_iter().for_each(std::mem::forget);
}

/// Drops the containers left on `stack` by [`empty_in_place`], and theirs.
pub(super) fn drain_stack(stack: &mut Vec<Variant>) {
    while let Some(mut v) = stack.pop() {
        empty_in_place(&mut v, stack);
        v.release();
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // Children are emptied in place (their own elements here, in the
        // same pass); anything deeper waits on `stack`, which allocates
        // only for a tree at least three levels deep.
        let mut stack: Vec<Variant> = Vec::new();
        for child in self.items.iter_mut() {
            empty_in_place(child, &mut stack);
            dispose_in_place(child, &mut stack);
        }
        forget_all(std::mem::take(&mut self.items));
        drain_stack(&mut stack);
    }
}
