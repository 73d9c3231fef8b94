//! `varray!` and `vdict!`, exported at the crate root.

/// Builds a `Variant::Array` from values that convert into `Variant`.
///
/// ```
/// use lunanet::varray;
/// use lunanet::variant::Variant;
/// let a = varray![1, "x", 2.5, varray![]];
/// assert_eq!(a.at(1), Some(&Variant::from("x")));
/// ```
#[macro_export]
macro_rules! varray {
    ($($v:expr),* $(,)?) => {
        $crate::variant::Variant::Array($crate::variant::Array::from(
            ::std::vec![$($crate::variant::Variant::from($v)),*]
        ))
    };
}

/// Builds a `Variant::Dictionary` from `key => value` pairs (any types that
/// convert into `Variant`), in order.
///
/// ```
/// use lunanet::vdict;
/// let d = vdict! { "id" => 7, "name" => "ada" };
/// assert_eq!(d.get("id").and_then(|v| v.as_int()), Some(7));
/// ```
#[macro_export]
macro_rules! vdict {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut d = $crate::variant::Dictionary::new();
        $(d.insert($crate::variant::Variant::from($k), $crate::variant::Variant::from($v));)*
        $crate::variant::Variant::Dictionary(d)
    }};
}
