//! Peer storage: fixed-size pages so that growing to 100k peers never copies the table
//! and never leaves a doubled Vec's unused half behind (what a `Vec<Peer>` would do).

const PAGE: usize = 1024;

pub struct Slab<T> {
    pages: Vec<Box<[Option<T>]>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Slab<T> {
        Slab { pages: Vec::new(), free: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn insert(&mut self, value: T) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let next = (self.pages.len() * PAGE) as u32;
                self.pages.push((0..PAGE).map(|_| None).collect());
                // Hand out the new page's slots lowest first.
                self.free.extend((next + 1..next + PAGE as u32).rev());
                next
            }
        };
        self.pages[slot as usize / PAGE][slot as usize % PAGE] = Some(value);
        self.len += 1;
        slot
    }

    pub fn get(&self, slot: u32) -> Option<&T> {
        self.pages.get(slot as usize / PAGE)?.get(slot as usize % PAGE)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.pages.get_mut(slot as usize / PAGE)?.get_mut(slot as usize % PAGE)?.as_mut()
    }

    pub fn remove(&mut self, slot: u32) -> Option<T> {
        let value = self.pages.get_mut(slot as usize / PAGE)?.get_mut(slot as usize % PAGE)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(value)
    }

    /// One past the highest slot there can be: `0..slots()` covers every value.
    pub fn slots(&self) -> u32 {
        (self.pages.len() * PAGE) as u32
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter().enumerate().filter_map(move |(i, v)| Some(((p * PAGE + i) as u32, v.as_ref()?)))
        })
    }

    /// Bytes held by the pages and the free list (not by what the values point to).
    pub fn heap_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<Option<T>>()
            + self.free.capacity() * 4
            + self.pages.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_reuse() {
        let mut s = Slab::new();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.insert("c"), a);
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec!["c", "b"]);
        for i in 0..3000 {
            s.insert(if i % 2 == 0 { "x" } else { "y" });
        }
        assert_eq!(s.len(), 3002);
        assert_eq!(s.get(4000), None);
    }
}
