//! The manager's channels, keyed by id, with the two indexes that let a poll visit only the
//! channels that need it instead of every channel the key holds.
//!
//! A poll signs the next proofs of every paying channel and snapshots every channel whose
//! state changed. Over a plain map both were a pass over all channels, so each payment round
//! of one channel cost time in proportion to the channels that merely exist. Here the map is
//! private and every mutable borrow goes through [`Slots`], which records the id it lends:
//! - `touched`: every channel lent mutably since the last [`Slots::take_touched`]. A channel's
//!   state can change only through a mutable borrow, so this is a superset of the channels that
//!   need a snapshot; the group commit checks only these.
//! - `paying`: every channel lent mutably since the caller last said it has no payment job
//!   ([`Slots::not_paying`]); a superset of the channels with a job, for the same reason.
//!
//! Both are ordered sets, so a pass over them visits channels in id order, as a pass over the
//! map did: the simulation's runs replay from their seed.
//!
//! Each slot is boxed: a slot is about 2.4 KB, and a map of inline slots leaves its nodes about
//! half empty when channels arrive in id order (a restart), which doubled the memory per
//! channel.

use std::collections::{BTreeMap, BTreeSet};

use paychan_protocol::channel::ChannelId;

/// Channels by id, each lent mutably only through methods that record the loan.
#[derive(Debug)]
pub(crate) struct Slots<S> {
    map: BTreeMap<ChannelId, Box<S>>,
    touched: BTreeSet<ChannelId>,
    paying: BTreeSet<ChannelId>,
}

impl<S> Default for Slots<S> {
    fn default() -> Self {
        Slots {
            map: BTreeMap::new(),
            touched: BTreeSet::new(),
            paying: BTreeSet::new(),
        }
    }
}

impl<S> Slots<S> {
    fn mark(&mut self, id: ChannelId) {
        self.touched.insert(id);
        self.paying.insert(id);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains_key(&self, id: &ChannelId) -> bool {
        self.map.contains_key(id)
    }

    pub fn get(&self, id: &ChannelId) -> Option<&S> {
        self.map.get(id).map(|s| &**s)
    }

    /// The slot of `id`, recorded as touched and possibly paying.
    pub fn get_mut(&mut self, id: &ChannelId) -> Option<&mut S> {
        if self.map.contains_key(id) {
            self.mark(*id);
        }
        self.map.get_mut(id).map(|s| &mut **s)
    }

    /// The slot of `id`, not recorded: only for the group commit, which marks a slot in
    /// flight and reads its snapshot (changes that themselves need no snapshot).
    pub fn get_mut_unrecorded(&mut self, id: &ChannelId) -> Option<&mut S> {
        self.map.get_mut(id).map(|s| &mut **s)
    }

    /// Adds (or replaces) the slot of `id`, recorded as touched and possibly paying.
    pub fn insert(&mut self, id: ChannelId, slot: S) {
        self.mark(id);
        self.map.insert(id, Box::new(slot));
    }

    pub fn remove(&mut self, id: &ChannelId) -> Option<Box<S>> {
        self.touched.remove(id);
        self.paying.remove(id);
        self.map.remove(id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &ChannelId> {
        self.map.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &S> {
        self.map.values().map(|s| &**s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ChannelId, &S)> {
        self.map.iter().map(|(id, s)| (id, &**s))
    }

    /// Every slot for which `pick` holds, in id order, each recorded as touched and possibly
    /// paying (the others are not lent).
    pub fn iter_mut_where<'a>(
        &'a mut self,
        mut pick: impl FnMut(&ChannelId, &S) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a ChannelId, &'a mut S)> + 'a {
        let Slots { map, touched, paying } = self;
        map.iter_mut().filter_map(move |(id, s)| {
            if !pick(id, s) {
                return None;
            }
            touched.insert(*id);
            paying.insert(*id);
            Some((id, &mut **s))
        })
    }

    /// The channels lent mutably since the last call, in id order; the record starts empty.
    pub fn take_touched(&mut self) -> BTreeSet<ChannelId> {
        std::mem::take(&mut self.touched)
    }

    /// The channels that may have a payment job, in id order.
    pub fn paying(&self) -> impl Iterator<Item = &ChannelId> {
        self.paying.iter()
    }

    /// The caller saw that `id` has no payment job to sign for; it is listed again when it is
    /// next lent mutably.
    pub fn not_paying(&mut self, id: &ChannelId) {
        self.paying.remove(id);
    }
}

impl<S> FromIterator<(ChannelId, S)> for Slots<S> {
    /// Every slot starts touched and possibly paying: a restored channel is looked at once.
    fn from_iter<I: IntoIterator<Item = (ChannelId, S)>>(iter: I) -> Self {
        let mut slots = Slots::default();
        for (id, slot) in iter {
            slots.insert(id, slot);
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paychan_protocol::hash::Hash32;

    fn id(n: u8) -> ChannelId {
        ChannelId(Hash32([n; 32]))
    }

    #[test]
    fn every_mutable_loan_is_recorded_and_reads_are_not() {
        let mut s: Slots<u32> = (0..5).map(|n| (id(n), u32::from(n))).collect();
        assert_eq!(s.take_touched().len(), 5);
        for n in 0..5 {
            s.not_paying(&id(n));
        }
        assert_eq!(s.get(&id(1)), Some(&1));
        assert_eq!(s.values().count(), 5);
        assert!(s.take_touched().is_empty());
        assert_eq!(s.paying().count(), 0);

        *s.get_mut(&id(3)).unwrap() += 10;
        assert!(s.get_mut(&id(9)).is_none());
        for (_, v) in s.iter_mut_where(|_, v| *v == 2) {
            *v += 1;
        }
        let touched: Vec<_> = s.take_touched().into_iter().collect();
        assert_eq!(touched, vec![id(2), id(3)]);
        assert_eq!(s.paying().copied().collect::<Vec<_>>(), vec![id(2), id(3)]);
        assert_eq!(s.get(&id(3)), Some(&13));

        s.remove(&id(2));
        assert_eq!(s.paying().copied().collect::<Vec<_>>(), vec![id(3)]);
        s.insert(id(7), 7);
        assert_eq!(s.take_touched().into_iter().collect::<Vec<_>>(), vec![id(7)]);
        assert_eq!(s.len(), 5);
    }
}
