//! The Merkle root that seals a block: a binary tree over the block's record hashes, interior
//! nodes `SHA-256(0x01 | left | right)`, an odd node carried up unchanged. Record hashes are
//! already SHA-256 of a record, so leaves are used as they are.

use sha2::{Digest, Sha256};

use super::record::Hash;

/// The root of `leaves`; all zeros for an empty block.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return [0; 32];
    }
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    next.push(h.finalize().into());
                }
                [odd] => next.push(*odd),
                _ => {}
            }
        }
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_depends_on_every_leaf_and_order() {
        let leaves: Vec<Hash> = (0..5u8).map(|i| [i; 32]).collect();
        let root = merkle_root(&leaves);
        assert_eq!(merkle_root(&leaves[..1]), leaves[0]);
        for i in 0..leaves.len() {
            let mut changed = leaves.clone();
            changed[i][0] ^= 1;
            assert_ne!(merkle_root(&changed), root, "leaf {i}");
        }
        let mut swapped = leaves.clone();
        swapped.swap(0, 1);
        assert_ne!(merkle_root(&swapped), root);
        assert_ne!(merkle_root(&leaves[..4]), root);
    }
}
