//! KIP-848 server-side assignors: "uniform" (balanced and sticky) and "range".

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

pub struct AssignorMember<'a> {
    pub id: &'a str,
    pub topics: BTreeSet<Uuid>,
    /// What the member is assigned now (for stickiness).
    pub current: &'a Assignment,
}

/// Computes the target assignment. `topics` maps each subscribed topic to its partition count.
pub fn assign(
    assignor: &str,
    members: &[AssignorMember],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

/// Per topic, the subscribed members (sorted by id) take contiguous ranges; the first
/// `partitions % members` get one extra.
fn range(members: &[AssignorMember], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    for (topic, &count) in topics {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        subscribed.sort_unstable();
        let n = subscribed.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribed.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0 {
                out.get_mut(*id)
                    .expect("every member has an entry")
                    .entry(*topic)
                    .or_default()
                    .extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Keeps every partition where it is when its owner is still subscribed, hands out the rest
/// to the least loaded eligible member, then moves partitions from the most to the least
/// loaded eligible member until no move narrows the spread.
fn uniform(
    members: &[AssignorMember],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let index: BTreeMap<&str, usize> = members.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; members.len()];
    for (i, m) in members.iter().enumerate() {
        for (topic, parts) in m.current {
            let Some(&count) = topics.get(topic) else {
                continue;
            };
            if !m.topics.contains(topic) {
                continue;
            }
            for &p in parts {
                if p < count && !owner.contains_key(&(*topic, p)) {
                    owner.insert((*topic, p), i);
                    load[i] += 1;
                }
            }
        }
    }
    let eligible = |topic: &Uuid| -> Vec<usize> {
        members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.topics.contains(topic))
            .map(|(i, _)| i)
            .collect()
    };
    for (topic, &count) in topics {
        let candidates = eligible(topic);
        if candidates.is_empty() {
            continue;
        }
        for p in 0..count {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            let best = *candidates
                .iter()
                .min_by_key(|&&i| (load[i], members[i].id))
                .expect("candidates is not empty");
            owner.insert((*topic, p), best);
            load[best] += 1;
        }
    }
    // Balance: bounded, every move strictly narrows the gap between two members.
    let mut moved = true;
    let mut rounds = 0;
    while moved && rounds < 10_000 {
        moved = false;
        rounds += 1;
        let keys: Vec<(Uuid, i32)> = owner.keys().copied().collect();
        for key in keys {
            let from = owner[&key];
            let candidates = eligible(&key.0);
            let Some(&to) = candidates.iter().min_by_key(|&&i| (load[i], members[i].id)) else {
                continue;
            };
            if load[to] + 1 < load[from] {
                owner.insert(key, to);
                load[from] -= 1;
                load[to] += 1;
                moved = true;
            }
        }
    }
    let mut out: BTreeMap<String, Assignment> = index
        .keys()
        .map(|id| (id.to_string(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        out.get_mut(members[i].id)
            .expect("every member has an entry")
            .entry(topic)
            .or_default()
            .insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: &Assignment) -> usize {
        a.values().map(|p| p.len()).sum()
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let t = Uuid::new_v4();
        let topics = BTreeMap::from([(t, 12)]);
        let empty = Assignment::new();
        let subs = BTreeSet::from([t]);
        let m = |id| AssignorMember {
            id,
            topics: subs.clone(),
            current: &empty,
        };
        let first = assign("uniform", &[m("a"), m("b"), m("c")], &topics);
        assert!(first.values().all(|a| count(a) == 4));
        // A fourth member: each old member gives up exactly one partition.
        let (a, b, c) = (&first["a"], &first["b"], &first["c"]);
        let members = [
            AssignorMember {
                id: "a",
                topics: subs.clone(),
                current: a,
            },
            AssignorMember {
                id: "b",
                topics: subs.clone(),
                current: b,
            },
            AssignorMember {
                id: "c",
                topics: subs.clone(),
                current: c,
            },
            m("d"),
        ];
        let second = assign("uniform", &members, &topics);
        assert!(second.values().all(|x| count(x) == 3));
        for id in ["a", "b", "c"] {
            let kept = second[id][&t].intersection(&first[id][&t]).count();
            assert_eq!(kept, 3, "member {id} keeps 3 of its 4 partitions");
        }
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let topics = BTreeMap::from([(t1, 4), (t2, 2)]);
        let empty = Assignment::new();
        let members = [
            AssignorMember {
                id: "a",
                topics: BTreeSet::from([t1]),
                current: &empty,
            },
            AssignorMember {
                id: "b",
                topics: BTreeSet::from([t1, t2]),
                current: &empty,
            },
        ];
        let out = assign("uniform", &members, &topics);
        assert!(!out["a"].contains_key(&t2));
        assert_eq!(count(&out["a"]) + count(&out["b"]), 6);
        assert_eq!(count(&out["a"]), 3);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let t = Uuid::new_v4();
        let topics = BTreeMap::from([(t, 5)]);
        let empty = Assignment::new();
        let subs = BTreeSet::from([t]);
        let members = [
            AssignorMember {
                id: "b",
                topics: subs.clone(),
                current: &empty,
            },
            AssignorMember {
                id: "a",
                topics: subs.clone(),
                current: &empty,
            },
        ];
        let out = assign("range", &members, &topics);
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
    }
}
