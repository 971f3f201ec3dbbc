//! Known-answer tests (RFC 6962 test data as published in transparency-dev/merkle
//! `testonly/constants.go` and `testdata/{inclusion,consistency}`; values copied) and
//! property tests over random trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use base64::Engine as _;

fn h(hex_str: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).unwrap();
    out
}

fn b(b64: &str) -> Hash {
    let v = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    v.try_into().unwrap()
}

/// transparency-dev/merkle testonly.LeafInputs().
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// testonly.RootHashes(), by tree size 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// testonly.NodeHashes(): level 0 (leaf hashes) and level 1.
const LEAF_HASHES: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];

fn kat_tree() -> MerkleTree {
    let mut t = MerkleTree::new();
    for input in LEAF_INPUTS {
        t.push(leaf_hash(&hex::decode(input).unwrap()));
    }
    t
}

#[test]
fn kat_leaf_hashes_and_roots() {
    let t = kat_tree();
    for (i, want) in LEAF_HASHES.iter().enumerate() {
        assert_eq!(t.leaf(i as u64).unwrap(), h(want), "leaf {i}");
    }
    let mut cr = CompactRange::new();
    let mut leaves = Vec::new();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(t.root(size as u64).unwrap(), h(want), "root of size {size}");
        assert_eq!(cr.root(), h(want), "compact range root of size {size}");
        assert_eq!(root_from_leaf_hashes(&leaves), h(want));
        if size < 8 {
            cr.push(h(LEAF_HASHES[size]));
            leaves.push(h(LEAF_HASHES[size]));
        }
    }
    assert_eq!(
        node_hash(&h(LEAF_HASHES[0]), &h(LEAF_HASHES[1])),
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")
    );
    assert!(t.root(9).is_err());
}

/// testdata/inclusion/{0..4}/happy-path.json: (leafIdx, treeSize, root, leafHash, proof).
fn inclusion_vectors() -> Vec<(u64, u64, &'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            0,
            1,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            vec![],
        ),
        (
            0,
            8,
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            vec![
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            5,
            8,
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=",
            vec![
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (
            2,
            3,
            "rra8/idLcKFPsGel5VeCZNsPqbUa9eC6FZFY8yngbnc=",
            "ApjRIpBtz8EIkstTpzmS/FufST6kybrbJ7eRtBJ6f+c=",
            vec!["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="],
        ),
        (
            1,
            5,
            "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            vec![
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
    ]
}

#[test]
fn kat_inclusion_proofs() {
    let t = kat_tree();
    for (idx, size, root, leaf, proof) in inclusion_vectors() {
        let proof: Vec<Hash> = proof.iter().map(|p| b(p)).collect();
        assert_eq!(t.inclusion_proof(idx, size).unwrap(), proof, "{idx}/{size}");
        verify_inclusion(idx, size, &b(leaf), &proof, &b(root)).unwrap();
    }
    // testdata/inclusion/1 negative cases (the 0/8 proof with one thing changed).
    let (_, _, root, leaf, proof) = inclusion_vectors().swap_remove(1);
    let (root, leaf) = (b(root), b(leaf));
    let proof: Vec<Hash> = proof.iter().map(|p| b(p)).collect();
    assert!(
        verify_inclusion(1, 8, &leaf, &proof, &root).is_err(),
        "leafIdx-plus-@1"
    );
    assert!(
        verify_inclusion(0, 16, &leaf, &proof, &root).is_err(),
        "treeSize-mul-@2"
    );
    assert!(
        verify_inclusion(0, 4, &leaf, &proof, &root).is_err(),
        "treeSize-div-@2"
    );
    assert!(
        verify_inclusion(0, 8, &leaf, &proof[..2], &root).is_err(),
        "removed-component"
    );
    let mut longer = proof.clone();
    longer.push(root);
    assert!(
        verify_inclusion(0, 8, &leaf, &longer, &root).is_err(),
        "trailing-root"
    );
    assert!(
        verify_inclusion(0, 8, &root, &proof, &root).is_err(),
        "wrong-leaf"
    );
    assert!(
        verify_inclusion(8, 8, &leaf, &proof, &root).is_err(),
        "index == size"
    );
}

/// testdata/consistency/{0..4}/happy-path.json: (size1, size2, root1, root2, proof).
fn consistency_vectors() -> Vec<(u64, u64, &'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            1,
            1,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            vec![],
        ),
        (
            1,
            8,
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            vec![
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            6,
            8,
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
            "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
            vec![
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (
            2,
            5,
            "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU=",
            "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=",
            vec![
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
        (
            6,
            7,
            "duZ9rbzfHhDht03cYIq9L5jfsW+851J3tSMqEn8gh+8=",
            "3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=",
            vec![
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
    ]
}

#[test]
fn kat_consistency_proofs() {
    let t = kat_tree();
    for (s1, s2, r1, r2, proof) in consistency_vectors() {
        let proof: Vec<Hash> = proof.iter().map(|p| b(p)).collect();
        assert_eq!(t.consistency_proof(s1, s2).unwrap(), proof, "{s1}->{s2}");
        verify_consistency(s1, s2, &b(r1), &b(r2), &proof).unwrap();
    }
    let (_, _, r1, r2, proof) = consistency_vectors().swap_remove(1);
    let (r1, r2) = (b(r1), b(r2));
    let proof: Vec<Hash> = proof.iter().map(|p| b(p)).collect();
    assert!(
        verify_consistency(1, 4, &r1, &r2, &proof).is_err(),
        "size2-div-@2"
    );
    assert!(
        verify_consistency(2, 8, &r1, &r2, &proof).is_err(),
        "size1-plus-@1"
    );
    assert!(
        verify_consistency(1, 8, &r2, &r1, &proof).is_err(),
        "swapped-roots"
    );
    assert!(
        verify_consistency(1, 8, &r1, &r2, &[]).is_err(),
        "empty-proof"
    );
    assert!(
        verify_consistency(1, 8, &r1, &r2, &proof[..2]).is_err(),
        "truncated-proof"
    );
    // testdata/consistency/additional
    let empty = empty_root();
    assert!(
        verify_consistency(0, 1, &empty, &r1, &[]).is_err(),
        "size1 zero"
    );
    assert!(
        verify_consistency(0, 0, &r1, &r2, &[]).is_err(),
        "equal zero, roots differ"
    );
    verify_consistency(0, 0, &empty, &empty, &[]).unwrap();
    assert!(
        verify_consistency(1, 1, &r1, &r1, &proof[..1]).is_err(),
        "equal, proof"
    );
    assert!(
        verify_consistency(2, 1, &r1, &r1, &[]).is_err(),
        "size1 > size2"
    );
    assert!(t.consistency_proof(0, 3).is_err());
    assert!(t.consistency_proof(4, 3).is_err());
    assert!(t.consistency_proof(3, 9).is_err());
}

/// splitmix64: a tiny deterministic generator for the property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_tree(rng: &mut Rng, n: u64) -> (MerkleTree, Vec<Hash>) {
    let mut t = MerkleTree::new();
    let mut leaves = Vec::new();
    for _ in 0..n {
        let l = leaf_hash(&rng.next().to_le_bytes());
        t.push(l);
        leaves.push(l);
    }
    (t, leaves)
}

fn flip(h: &Hash, bit: u64) -> Hash {
    let mut out = *h;
    out[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
    out
}

#[test]
fn property_inclusion_proofs_verify_and_tampering_fails() {
    let mut rng = Rng(1);
    for _case in 0..300 {
        let n = 1 + rng.below(300);
        let (t, leaves) = random_tree(&mut rng, n);
        let size = 1 + rng.below(n);
        let idx = rng.below(size);
        let root = t.root(size).unwrap();
        assert_eq!(root, root_from_leaf_hashes(&leaves[..size as usize]));
        let leaf = leaves[idx as usize];
        let proof = t.inclusion_proof(idx, size).unwrap();
        verify_inclusion(idx, size, &leaf, &proof, &root).unwrap();

        assert!(verify_inclusion(idx, size, &flip(&leaf, rng.next()), &proof, &root).is_err());
        assert!(verify_inclusion(idx, size, &leaf, &proof, &flip(&root, rng.next())).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = rng.below(bad.len() as u64) as usize;
            bad[i] = flip(&bad[i], rng.next());
            assert!(verify_inclusion(idx, size, &leaf, &bad, &root).is_err());
        }
        let other = rng.below(size);
        if other != idx && leaves[other as usize] != leaf {
            assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
        // A proof for size M is no proof for another size against that size's root (the
        // checkpoint signs size and root together).
        for wrong_size in [size + 1, size.saturating_sub(1), size * 2] {
            if wrong_size != size && wrong_size > idx && wrong_size <= n {
                let wrong_root = t.root(wrong_size).unwrap();
                assert!(
                    verify_inclusion(idx, wrong_size, &leaf, &proof, &wrong_root).is_err(),
                    "idx {idx} size {size} claimed {wrong_size}"
                );
            }
        }
    }
}

#[test]
fn property_consistency_proofs_verify_and_tampering_fails() {
    let mut rng = Rng(2);
    for _case in 0..300 {
        let n = 1 + rng.below(300);
        let (t, leaves) = random_tree(&mut rng, n);
        let new = 1 + rng.below(n);
        let old = 1 + rng.below(new);
        let (r1, r2) = (t.root(old).unwrap(), t.root(new).unwrap());
        let proof = t.consistency_proof(old, new).unwrap();
        verify_consistency(old, new, &r1, &r2, &proof).unwrap();
        if old == new {
            continue;
        }
        assert!(verify_consistency(old, new, &flip(&r1, rng.next()), &r2, &proof).is_err());
        assert!(verify_consistency(old, new, &r1, &flip(&r2, rng.next()), &proof).is_err());
        let mut bad = proof.clone();
        let i = rng.below(bad.len() as u64) as usize;
        bad[i] = flip(&bad[i], rng.next());
        assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
        for (o, nn) in [(old + 1, new), (old, new + 1), (old.saturating_sub(1), new)] {
            if (o, nn) != (old, new) && o <= nn && nn <= n {
                let (w1, w2) = (t.root(o).unwrap(), t.root(nn).unwrap());
                assert!(
                    verify_consistency(o, nn, &w1, &w2, &proof).is_err(),
                    "{old}->{new} claimed {o}->{nn}"
                );
            }
        }
        // A different history (one leaf before `old` changed) is not consistent.
        let mut forged = MerkleTree::new();
        let j = rng.below(old) as usize;
        for (k, l) in leaves.iter().enumerate() {
            forged.push(if k == j { flip(l, 3) } else { *l });
        }
        let forged_root = forged.root(new).unwrap();
        assert!(verify_consistency(old, new, &r1, &forged_root, &proof).is_err());
        let forged_proof = forged.consistency_proof(old, new).unwrap();
        assert!(verify_consistency(old, new, &r1, &forged_root, &forged_proof).is_err());
    }
}

#[test]
fn truncate_undoes_appends() {
    let mut rng = Rng(3);
    for _ in 0..50 {
        let n = 1 + rng.below(200);
        let (mut t, leaves) = random_tree(&mut rng, n);
        let keep = rng.below(n + 1);
        let want = t.root(keep).unwrap();
        t.truncate(keep);
        assert_eq!(t.size(), keep);
        assert_eq!(t.root(keep).unwrap(), want);
        for l in &leaves[keep as usize..] {
            t.push(*l);
        }
        assert_eq!(t.root(n).unwrap(), root_from_leaf_hashes(&leaves));
    }
}
