//! One sort for the whole device binary.
//!
//! Every `slice::sort*` call compiles its own copy of the standard library's sort for its element
//! type and comparison (about 5 KB each at `opt-level = "z"`). The short lists sorted outside the
//! install hot path (file lists, directories to create, slots, canonical JSON keys) go through
//! [`sort_by`] instead, which sorts *indices* with one shared, non-generic instance and then moves
//! the elements into that order (docs/drivers.md, "Binary size"). Large sorts on the install path
//! (delta chunk lists) keep `slice::sort*`.
//!
//! `collect()` into a `BTreeMap` or `BTreeSet` sorts too (`FromIterator` sorts the items, then
//! bulk-builds the tree): [`collect_map`] and [`collect_set`] insert one by one instead, with
//! the same result.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Sorts `items` by `cmp`, stably: the result is exactly that of `items.sort_by(cmp)`.
pub fn sort_by<T>(items: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    sort_indices(&mut order, &mut |a, b| cmp(&items[a], &items[b]));
    let mut taken: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| taken[i].take()));
}

/// Sorts `items` in ascending order, stably: the result is exactly that of `items.sort()`.
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

/// Sorts `items` by the key `key` gives, stably: the result is exactly that of
/// `items.sort_by_key(key)`.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// The map of `items`; a later value for an equal key replaces the earlier one, as with
/// `collect()`.
pub fn collect_map<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(items);
    map
}

/// The set of `items`, as with `collect()`.
pub fn collect_set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    set.extend(items);
    set
}

/// The one instance of the standard library's stable sort: indices, compared through `cmp`.
#[inline(never)]
fn sort_indices(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|&a, &b| cmp(a, b));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_as_the_standard_stable_sort(items in proptest::collection::vec((0u8..8, any::<u16>()), 0..200)) {
            // Sorting by the first field only: equal keys must keep their order (stability).
            let mut ours = items.clone();
            super::sort_by_key(&mut ours, |x| x.0);
            let mut std = items.clone();
            std.sort_by_key(|x| x.0);
            prop_assert_eq!(&ours, &std);
            let mut ours = items.clone();
            super::sort(&mut ours);
            let mut std = items;
            std.sort();
            prop_assert_eq!(ours, std);
        }
    }

    proptest! {
        #[test]
        fn collect_map_and_set_as_collect(items in proptest::collection::vec((0u8..16, any::<u16>()), 0..100)) {
            let ours = super::collect_map(items.iter().copied());
            let std: std::collections::BTreeMap<u8, u16> = items.iter().copied().collect();
            prop_assert_eq!(ours, std);
            let ours = super::collect_set(items.iter().map(|x| x.0));
            let std: std::collections::BTreeSet<u8> = items.iter().map(|x| x.0).collect();
            prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn empty_and_single() {
        let mut none: Vec<String> = Vec::new();
        super::sort(&mut none);
        assert!(none.is_empty());
        let mut one = vec!["a".to_owned()];
        super::sort(&mut one);
        assert_eq!(one, ["a"]);
    }
}
