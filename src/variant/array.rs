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

/// Moves the nested non-empty containers of `v` onto `stack`, emptying them,
/// so that dropping `v` afterwards does not recurse.
pub(super) fn detach_children(v: &mut Variant, stack: &mut Vec<Variant>) {
    match v {
        Variant::Array(a) => {
            for child in a.items.iter_mut() {
                if child.is_nonempty_container() {
                    stack.push(std::mem::take(child));
                }
            }
        }
        Variant::Dictionary(d) => {
            for (k, mut val) in d.take_entries() {
                if k.is_nonempty_container() {
                    stack.push(k);
                }
                if val.is_nonempty_container() {
                    stack.push(std::mem::take(&mut val));
                }
            }
        }
        _ => {}
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        // Shallow values (the common case: at most two more levels, e.g. an
        // array of flat dictionaries) drop here, allocating nothing: each
        // child container is checked and emptied in one pass.
        let mut deep = false;
        for child in self.items.iter_mut() {
            deep |= child.drop_elements_if_flat();
        }
        if !deep {
            self.items.drain(..).for_each(Variant::release);
            return;
        }
        let mut stack: Vec<Variant> = Vec::new();
        for child in self.items.iter_mut() {
            if child.is_nonempty_container() {
                stack.push(std::mem::take(child));
            }
        }
        while let Some(mut v) = stack.pop() {
            detach_children(&mut v, &mut stack);
        }
    }
}
