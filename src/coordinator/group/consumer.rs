//! KIP-848 consumer groups: ConsumerGroupHeartbeat with server-side assignment, member
//! epochs, and reconciliation (a partition is given to its new owner only after the old owner
//! has acknowledged revoking it).

use super::assignor::{self, Assignment, AssignorMember};
use super::store::GroupMeta;
use super::{GroupConfig, TopicInfo, TopicSource};
use kafka_protocol::ResponseError as E;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Member epoch -1: leave the group. -2: a static member leaves for now (keeps its partitions
/// until its session times out).
pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

pub struct HeartbeatParams {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// Partitions the member owns now; None when unchanged since the last heartbeat.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatOutcome {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed since the last response, or when the member asked in full.
    pub assignment: Option<Assignment>,
}

impl HeartbeatOutcome {
    fn error(error: E, message: &str, member_id: &str) -> HeartbeatOutcome {
        HeartbeatOutcome {
            error: error.code(),
            message: Some(message.to_string()),
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reconciliation {
    Stable,
    /// Waiting for the member to confirm it gave up partitions.
    Unrevoked,
    /// Some target partitions are still owned by another member.
    Unreleased,
}

pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    state: Reconciliation,
    pub subscribed_names: BTreeSet<String>,
    pub regex: Option<String>,
    compiled: Option<Regex>,
    server_assignor: Option<String>,
    rebalance_timeout: Duration,
    pub assigned: Assignment,
    pending_revocation: Assignment,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    last_sent: Option<Assignment>,
}

impl ConsumerMember {
    fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_names.contains(topic)
            || self.compiled.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

pub struct ConsumerGroup {
    cfg: Arc<GroupConfig>,
    epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, ConsumerMember>,
    static_members: HashMap<String, String>,
    target: BTreeMap<String, Assignment>,
    /// Partition counts of every subscribed topic, as of the last target computation.
    subscribed: BTreeMap<Uuid, i32>,
    topic_names: BTreeMap<Uuid, String>,
    /// Topic metadata version the subscription snapshot was taken at.
    metadata_version: u64,
    subscriptions_changed: bool,
    empty_since_ms: Option<i64>,
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| b.get(t).is_some_and(|bp| ps.is_subset(bp)))
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bp) => ps.difference(bp).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(bp) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(bp).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

fn union_into(into: &mut Assignment, from: &Assignment) {
    for (t, ps) in from {
        into.entry(*t).or_default().extend(ps.iter().copied());
    }
}

/// Kafka matches a subscription regex against the whole topic name (RE2/J syntax).
pub fn compile_subscription_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

impl ConsumerGroup {
    pub fn new(cfg: Arc<GroupConfig>) -> ConsumerGroup {
        ConsumerGroup {
            cfg,
            epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            topic_names: BTreeMap::new(),
            metadata_version: u64::MAX,
            subscriptions_changed: false,
            empty_since_ms: Some(crate::log::now_ms()),
        }
    }

    pub fn restored(cfg: Arc<GroupConfig>, meta: &GroupMeta) -> ConsumerGroup {
        let mut g = ConsumerGroup::new(cfg);
        g.epoch = meta.generation;
        g.assignment_epoch = meta.generation;
        g.empty_since_ms = meta.empty_since_ms.or(g.empty_since_ms);
        g
    }

    pub fn meta(&self, group: &str) -> GroupMeta {
        GroupMeta {
            group: group.to_string(),
            kind: "consumer".into(),
            protocol_type: "consumer".into(),
            generation: self.epoch,
            protocol: None,
            empty_since_ms: self.empty_since_ms,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    pub fn epoch(&self) -> i32 {
        self.epoch
    }
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }
    pub fn empty_since_ms(&self) -> Option<i64> {
        self.empty_since_ms
    }
    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }
    pub fn target_of(&self, member: &str) -> Assignment {
        self.target.get(member).cloned().unwrap_or_default()
    }
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topic_names.get(id).map(String::as_str)
    }

    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != Reconciliation::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The assignor most members asked for, else the configured default.
    pub fn assignor_name(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| self.cfg.consumer_assignors[0].clone())
    }

    /// Topic names any member subscribes to (names and regex matches), for OffsetDelete.
    pub fn subscribed_topic_names(&self, topics: &[TopicInfo]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(m.subscribed_names.iter().cloned());
            for t in topics {
                if m.compiled.as_ref().is_some_and(|r| r.is_match(&t.name)) {
                    out.insert(t.name.clone());
                }
            }
        }
        out
    }

    pub fn heartbeat(
        &mut self,
        p: HeartbeatParams,
        source: &dyn TopicSource,
        now: Instant,
    ) -> HeartbeatOutcome {
        let interval = self.cfg.consumer_heartbeat_interval_ms;
        if let Some(err) = self.validate(&p) {
            return err;
        }
        let member_id = if p.member_id.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            p.member_id.clone()
        };
        match p.member_epoch {
            LEAVE_EPOCH => {
                let left = self.leave(&member_id, p.instance_id.as_deref());
                if left.error == 0 {
                    // As Kafka: a departure bumps the group epoch and computes a new target.
                    self.refresh_subscriptions(source);
                    if self.epoch > self.assignment_epoch {
                        self.compute_target();
                    }
                }
                return left;
            }
            STATIC_LEAVE_EPOCH => return self.static_leave(&member_id, now),
            0 => {
                if let Err(e) = self.join(&member_id, &p, now) {
                    return e;
                }
            }
            epoch => {
                let Some(m) = self.members.get(&member_id) else {
                    return HeartbeatOutcome::error(
                        E::UnknownMemberId,
                        "unknown member id",
                        &member_id,
                    );
                };
                if p.instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i))
                    .is_some_and(|owner| *owner != member_id)
                {
                    return HeartbeatOutcome::error(
                        E::FencedInstanceId,
                        "the instance id belongs to another member",
                        &member_id,
                    );
                }
                if epoch != m.epoch {
                    let lost_response = epoch == m.previous_epoch
                        && p.owned.as_ref().is_some_and(|o| is_subset(o, &m.assigned));
                    if !lost_response {
                        return HeartbeatOutcome::error(
                            E::FencedMemberEpoch,
                            &format!("member epoch {epoch} is not the current epoch {}", m.epoch),
                            &member_id,
                        );
                    }
                }
            }
        }
        self.update_member(&member_id, &p, now);
        self.refresh_subscriptions(source);
        if self.epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&member_id, p.owned.as_ref(), now);
        let m = self
            .members
            .get_mut(&member_id)
            .expect("the member was just added or found");
        let full_request =
            p.member_epoch == 0 || p.owned.as_ref().is_some_and(|o| *o != m.assigned);
        let assignment = if full_request || m.last_sent.as_ref() != Some(&m.assigned) {
            m.last_sent = Some(m.assigned.clone());
            Some(m.assigned.clone())
        } else {
            None
        };
        HeartbeatOutcome {
            error: 0,
            message: None,
            member_id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: interval,
            assignment,
        }
    }

    fn validate(&self, p: &HeartbeatParams) -> Option<HeartbeatOutcome> {
        let invalid = |msg: &str| {
            Some(HeartbeatOutcome::error(
                E::InvalidRequest,
                msg,
                &p.member_id,
            ))
        };
        if p.member_epoch == 0 {
            if p.subscribed_topic_names.is_none() && p.subscribed_topic_regex.is_none() {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
                );
            }
            if p.rebalance_timeout_ms < 0 {
                return invalid("RebalanceTimeoutMs must be set when joining");
            }
            if p.owned.as_ref().is_some_and(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when joining");
            }
        } else if p.member_id.is_empty() {
            return invalid("MemberId can't be empty");
        } else if p.member_epoch < STATIC_LEAVE_EPOCH {
            return invalid("MemberEpoch is invalid");
        }
        if let Some(a) = &p.server_assignor {
            if !self.cfg.consumer_assignors.iter().any(|n| n == a) {
                return Some(HeartbeatOutcome::error(
                    E::UnsupportedAssignor,
                    &format!(
                        "assignor '{a}' is not one of {:?}",
                        self.cfg.consumer_assignors
                    ),
                    &p.member_id,
                ));
            }
        }
        if let Some(re) = p.subscribed_topic_regex.as_ref().filter(|r| !r.is_empty()) {
            if let Err(e) = compile_subscription_regex(re) {
                return Some(HeartbeatOutcome::error(
                    E::InvalidRegularExpression,
                    &format!("invalid regular expression: {e}"),
                    &p.member_id,
                ));
            }
        }
        None
    }

    fn join(
        &mut self,
        id: &str,
        p: &HeartbeatParams,
        now: Instant,
    ) -> Result<(), HeartbeatOutcome> {
        if let Some(instance) = &p.instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                let old = &self.members[&old_id];
                if old_id != id && old.epoch != STATIC_LEAVE_EPOCH {
                    return Err(HeartbeatOutcome::error(
                        E::UnreleasedInstanceId,
                        "the static member with this instance id has not left yet",
                        id,
                    ));
                }
                // KIP-345 for KIP-848: the new incarnation inherits the old one's partitions,
                // so a restart does not move anything.
                let mut member = self.members.remove(&old_id).expect("static member exists");
                member.id = id.to_string();
                member.epoch = member.previous_epoch.max(0);
                member.last_sent = None;
                member.session_deadline = now + self.cfg.consumer_session_timeout();
                self.target
                    .remove(&old_id)
                    .map(|t| self.target.insert(id.to_string(), t));
                self.static_members.insert(instance.clone(), id.to_string());
                self.members.insert(id.to_string(), member);
                return Ok(());
            }
        }
        if let Some(m) = self.members.get_mut(id) {
            // A known member rejoining (after being fenced): it has released everything.
            m.assigned.clear();
            m.pending_revocation.clear();
            m.state = Reconciliation::Stable;
            m.epoch = 0;
            m.last_sent = None;
            self.subscriptions_changed = true;
            return Ok(());
        }
        if self.members.len() >= self.cfg.consumer_max_size {
            return Err(HeartbeatOutcome::error(
                E::GroupMaxSizeReached,
                "the group is full (group.consumer.max.size)",
                id,
            ));
        }
        self.members.insert(
            id.to_string(),
            ConsumerMember {
                id: id.to_string(),
                instance_id: p.instance_id.clone(),
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                epoch: 0,
                previous_epoch: -1,
                state: Reconciliation::Stable,
                subscribed_names: BTreeSet::new(),
                regex: None,
                compiled: None,
                server_assignor: None,
                rebalance_timeout: Duration::ZERO,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                session_deadline: now,
                revocation_deadline: None,
                last_sent: None,
            },
        );
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), id.to_string());
        }
        self.empty_since_ms = None;
        self.subscriptions_changed = true;
        Ok(())
    }

    fn update_member(&mut self, id: &str, p: &HeartbeatParams, now: Instant) {
        let session = self.cfg.consumer_session_timeout();
        let m = self.members.get_mut(id).expect("member exists");
        m.session_deadline = now + session;
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        if p.rack_id.is_some() {
            m.rack_id = p.rack_id.clone();
        }
        if p.rebalance_timeout_ms > 0 {
            m.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms as u64);
        }
        let mut changed = false;
        if let Some(names) = &p.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            if names != m.subscribed_names {
                m.subscribed_names = names;
                changed = true;
            }
        }
        if let Some(re) = &p.subscribed_topic_regex {
            let re = Some(re.clone()).filter(|r| !r.is_empty());
            if re != m.regex {
                m.compiled = re
                    .as_deref()
                    .and_then(|r| compile_subscription_regex(r).ok());
                m.regex = re;
                changed = true;
            }
        }
        if let Some(a) = &p.server_assignor {
            if m.server_assignor.as_ref() != Some(a) {
                m.server_assignor = Some(a.clone());
                changed = true;
            }
        }
        if changed {
            self.subscriptions_changed = true;
        }
    }

    /// Re-resolves subscriptions against the topics when either changed; a new snapshot
    /// (new topic, more partitions, deleted topic) bumps the group epoch.
    fn refresh_subscriptions(&mut self, source: &dyn TopicSource) {
        let version = source.topics_version();
        if !self.subscriptions_changed && version == self.metadata_version {
            return;
        }
        let topics = source.topics();
        let mut snapshot = BTreeMap::new();
        let mut names = BTreeMap::new();
        for t in &topics {
            if self.members.values().any(|m| m.subscribes_to(&t.name)) {
                snapshot.insert(t.id, t.partitions);
                names.insert(t.id, t.name.clone());
            }
        }
        if snapshot != self.subscribed || self.subscriptions_changed {
            self.subscribed = snapshot;
            self.topic_names = names;
            self.epoch = self.epoch.max(self.assignment_epoch) + 1;
        }
        self.subscriptions_changed = false;
        self.metadata_version = version;
    }

    fn compute_target(&mut self) {
        let assignor = self.assignor_name();
        let members: Vec<AssignorMember> = self
            .members
            .values()
            .map(|m| AssignorMember {
                id: &m.id,
                topics: self
                    .topic_names
                    .iter()
                    .filter(|(_, name)| m.subscribes_to(name))
                    .map(|(id, _)| *id)
                    .collect(),
                current: self.target.get(&m.id).unwrap_or(&m.assigned),
            })
            .collect();
        self.target = assignor::assign(&assignor, &members, &self.subscribed);
        self.assignment_epoch = self.epoch;
    }

    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let mut held_by_others = Assignment::new();
        for (other, m) in &self.members {
            if other != id {
                union_into(&mut held_by_others, &m.assigned);
                union_into(&mut held_by_others, &m.pending_revocation);
            }
        }
        let assignment_epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member exists");
        if m.state == Reconciliation::Unrevoked {
            let released = owned.is_some_and(|o| intersect(o, &m.pending_revocation).is_empty());
            if !released {
                return;
            }
            m.pending_revocation.clear();
            m.revocation_deadline = None;
            m.state = Reconciliation::Stable;
        }
        let revoke = minus(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = intersect(&m.assigned, &target);
            m.pending_revocation = revoke;
            m.state = Reconciliation::Unrevoked;
            m.revocation_deadline = Some(now + m.rebalance_timeout.max(Duration::from_secs(1)));
            return;
        }
        let wanted = minus(&target, &m.assigned);
        let free = minus(&wanted, &held_by_others);
        union_into(&mut m.assigned, &free);
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        m.state = if free == wanted {
            Reconciliation::Stable
        } else {
            Reconciliation::Unreleased
        };
    }

    fn remove_member(&mut self, id: &str) -> bool {
        let Some(m) = self.members.remove(id) else {
            return false;
        };
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.target.remove(id);
        self.subscriptions_changed = true;
        if self.members.is_empty() {
            self.empty_since_ms = Some(crate::log::now_ms());
        }
        true
    }

    fn leave(&mut self, id: &str, instance_id: Option<&str>) -> HeartbeatOutcome {
        let id = match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(owner) if owner != id => {
                return HeartbeatOutcome::error(
                    E::FencedInstanceId,
                    "the instance id belongs to another member",
                    id,
                )
            }
            _ => id.to_string(),
        };
        if !self.remove_member(&id) {
            return HeartbeatOutcome::error(E::UnknownMemberId, "unknown member id", &id);
        }
        HeartbeatOutcome {
            member_id: id,
            member_epoch: LEAVE_EPOCH,
            ..Default::default()
        }
    }

    fn static_leave(&mut self, id: &str, now: Instant) -> HeartbeatOutcome {
        let session = self.cfg.consumer_session_timeout();
        let Some(m) = self.members.get_mut(id) else {
            return HeartbeatOutcome::error(E::UnknownMemberId, "unknown member id", id);
        };
        if m.instance_id.is_none() {
            return HeartbeatOutcome::error(
                E::InvalidRequest,
                "member epoch -2 is for static members only",
                id,
            );
        }
        if m.epoch != STATIC_LEAVE_EPOCH {
            m.previous_epoch = m.epoch;
        }
        m.epoch = STATIC_LEAVE_EPOCH;
        m.session_deadline = now + session;
        HeartbeatOutcome {
            member_id: id.to_string(),
            member_epoch: STATIC_LEAVE_EPOCH,
            ..Default::default()
        }
    }

    /// OffsetCommit by a member (or a plain commit with no member while the group is empty).
    pub fn validate_commit(&self, member_id: &str, epoch: i32, api_version: i16) -> Result<(), E> {
        if member_id.is_empty() && epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(E::UnknownMemberId);
        };
        if epoch != m.epoch {
            // Clients of the classic protocol understand ILLEGAL_GENERATION only.
            return Err(if api_version >= 9 {
                E::StaleMemberEpoch
            } else {
                E::IllegalGeneration
            });
        }
        Ok(())
    }

    /// Kafka's checks for a TxnOffsetCommit: as for OffsetCommit without the version rule, and
    /// a stale epoch is ILLEGAL_GENERATION (what transactional producers understand).
    pub fn validate_txn_commit(&self, member_id: &str, epoch: i32) -> Result<(), E> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(m) = self.members.get(member_id) else {
            return Err(E::UnknownMemberId);
        };
        if epoch != m.epoch {
            return Err(E::IllegalGeneration);
        }
        Ok(())
    }

    /// OffsetFetch v9+ with a member id.
    pub fn validate_fetch(&self, member_id: &str, epoch: i32) -> Result<(), E> {
        let Some(m) = self.members.get(member_id) else {
            return Err(E::UnknownMemberId);
        };
        if epoch >= 0 && epoch != m.epoch {
            return Err(E::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Session timeouts and revocation timeouts (a member that keeps revoked partitions
    /// past its rebalance timeout is removed so the partitions can move).
    pub fn tick(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(member = %id, "consumer group member removed (session or revocation timeout)");
            self.remove_member(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Topics(Vec<TopicInfo>);
    impl TopicSource for Topics {
        fn topics_version(&self) -> u64 {
            self.0.len() as u64 * 1000 + self.0.iter().map(|t| t.partitions as u64).sum::<u64>()
        }
        fn topics(&self) -> Vec<TopicInfo> {
            self.0.clone()
        }
    }

    fn join(id: &str, topics: &[&str]) -> HeartbeatParams {
        HeartbeatParams {
            member_id: id.into(),
            member_epoch: 0,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(topics.iter().map(|s| s.to_string()).collect()),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(Assignment::new()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> HeartbeatParams {
        HeartbeatParams {
            member_epoch: epoch,
            subscribed_topic_names: None,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..join(id, &[])
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|p| p.len()).sum()
    }

    #[test]
    fn two_members_reconcile_with_revocation_first() {
        let now = Instant::now();
        let t = TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: 6,
        };
        let topics = Topics(vec![t.clone()]);
        let mut g = ConsumerGroup::new(Arc::new(GroupConfig::default()));
        let a = g.heartbeat(join("a", &["t"]), &topics, now);
        assert_eq!((a.error, a.member_epoch), (0, 1));
        let a_owned = a.assignment.clone().unwrap();
        assert_eq!(count(&a_owned), 6);
        assert_eq!(g.state_name(), "Stable");

        // b joins: the target splits 3/3, but b gets nothing until a revokes.
        let b = g.heartbeat(join("b", &["t"]), &topics, now);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(count(&b.assignment.clone().unwrap()), 0);
        assert_eq!(g.state_name(), "Reconciling");
        let a2 = g.heartbeat(beat("a", 1, &a_owned), &topics, now);
        assert_eq!(
            a2.member_epoch, 1,
            "epoch held back until the revocation is confirmed"
        );
        let a_kept = a2.assignment.clone().unwrap();
        assert_eq!(count(&a_kept), 3);
        let a3 = g.heartbeat(beat("a", 1, &a_kept), &topics, now);
        assert_eq!(a3.member_epoch, 2);
        let b2 = g.heartbeat(beat("b", 2, &Assignment::new()), &topics, now);
        let b_owned = b2.assignment.unwrap();
        assert_eq!(count(&b_owned), 3);
        assert!(intersect(&b_owned, &a_kept).is_empty());
        assert_eq!(g.state_name(), "Stable");

        // Errors: stale epoch, unknown member.
        assert_eq!(
            g.heartbeat(beat("b", 7, &b_owned), &topics, now).error,
            E::FencedMemberEpoch.code()
        );
        assert_eq!(
            g.heartbeat(beat("zz", 1, &b_owned), &topics, now).error,
            E::UnknownMemberId.code()
        );
        assert_eq!(g.validate_commit("b", 1, 9), Err(E::StaleMemberEpoch));
        assert_eq!(g.validate_commit("b", 2, 9), Ok(()));
        // TxnOffsetCommit: a stale epoch is ILLEGAL_GENERATION; no plain commits while members
        // remain.
        assert_eq!(g.validate_txn_commit("b", 1), Err(E::IllegalGeneration));
        assert_eq!(g.validate_txn_commit("b", 2), Ok(()));
        assert_eq!(g.validate_txn_commit("zz", 2), Err(E::UnknownMemberId));
        assert_eq!(g.validate_txn_commit("", -1), Err(E::UnknownMemberId));

        // b leaves: a takes everything back.
        let left = g.heartbeat(beat("b", LEAVE_EPOCH, &b_owned), &topics, now);
        assert_eq!(left.member_epoch, LEAVE_EPOCH);
        let a4 = g.heartbeat(beat("a", 2, &a_kept), &topics, now);
        assert_eq!(count(&a4.assignment.unwrap()), 6);
    }

    #[test]
    fn new_partitions_trigger_a_new_assignment() {
        let now = Instant::now();
        let id = Uuid::new_v4();
        let mut topics = Topics(vec![TopicInfo {
            name: "orders".into(),
            id,
            partitions: 2,
        }]);
        let mut g = ConsumerGroup::new(Arc::new(GroupConfig::default()));
        let mut p = join("a", &[]);
        p.subscribed_topic_names = None;
        p.subscribed_topic_regex = Some("ord.*".into());
        let a = g.heartbeat(p, &topics, now);
        let owned = a.assignment.unwrap();
        assert_eq!(count(&owned), 2);
        topics.0[0].partitions = 4;
        let a2 = g.heartbeat(beat("a", a.member_epoch, &owned), &topics, now);
        assert!(a2.member_epoch > a.member_epoch);
        assert_eq!(count(&a2.assignment.unwrap()), 4);
    }

    #[test]
    fn session_timeout_removes_and_static_member_keeps_partitions() {
        let now = Instant::now();
        let t = TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: 4,
        };
        let topics = Topics(vec![t]);
        let mut g = ConsumerGroup::new(Arc::new(GroupConfig::default()));
        let mut p = join("a", &["t"]);
        p.instance_id = Some("i".into());
        let a = g.heartbeat(p, &topics, now);
        let owned = a.assignment.unwrap();
        let mut leave = beat("a", STATIC_LEAVE_EPOCH, &owned);
        leave.instance_id = Some("i".into());
        assert_eq!(
            g.heartbeat(leave, &topics, now).member_epoch,
            STATIC_LEAVE_EPOCH
        );
        // Restarted with a new member id: same partitions, same epoch, no rebalance.
        let mut back = join("a2", &["t"]);
        back.instance_id = Some("i".into());
        let epoch_before = g.epoch();
        let a2 = g.heartbeat(back, &topics, now);
        assert_eq!(a2.error, 0);
        assert_eq!(a2.assignment.unwrap(), owned);
        assert_eq!(g.epoch(), epoch_before);
        // Session expiry removes the member.
        g.tick(now + Duration::from_secs(46));
        assert!(g.is_empty());
    }

    #[test]
    fn invalid_requests() {
        let now = Instant::now();
        let topics = Topics(vec![]);
        let mut g = ConsumerGroup::new(Arc::new(GroupConfig::default()));
        let mut p = join("a", &["t"]);
        p.subscribed_topic_names = None;
        assert_eq!(g.heartbeat(p, &topics, now).error, E::InvalidRequest.code());
        let mut p = join("a", &["t"]);
        p.server_assignor = Some("magic".into());
        assert_eq!(
            g.heartbeat(p, &topics, now).error,
            E::UnsupportedAssignor.code()
        );
        let mut p = join("a", &[]);
        p.subscribed_topic_regex = Some("(".into());
        assert_eq!(
            g.heartbeat(p, &topics, now).error,
            E::InvalidRegularExpression.code()
        );
    }
}
