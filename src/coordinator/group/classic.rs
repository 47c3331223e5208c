//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) and Kafka's
//! group state machine: Empty -> PreparingRebalance -> CompletingRebalance -> Stable.
//! Timers are deadlines checked by `tick`; waiting requests hold oneshot receivers.

use super::store::GroupMeta;
use super::{GroupConfig, Reply};
use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::ResponseError as E;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    /// The name Kafka reports in DescribeGroups / ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

pub struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// KIP-814: a rejoining static leader keeps the current assignment.
    pub skip_assignment: bool,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    fn error(error: E, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: error.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

pub struct SyncParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    fn error(error: E) -> SyncOutcome {
        SyncOutcome {
            error: error.code(),
            ..Default::default()
        }
    }
}

/// A member as DescribeGroups shows it.
pub struct MemberSummary {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    session_deadline: Instant,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// group.initial.rebalance.delay.ms: the first rebalance of an empty group waits for more
/// members, extending while new ones arrive, up to the rebalance timeout.
struct InitialDelay {
    until: Instant,
    remaining: Duration,
    new_member_added: bool,
}

pub struct ClassicGroup {
    cfg: Arc<GroupConfig>,
    state: ClassicState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: IndexMap<String, Member>,
    static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pending_members: HashMap<String, Instant>,
    join_deadline: Option<Instant>,
    initial_delay: Option<InitialDelay>,
    /// Members that have joined the current generation but not yet synced.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    empty_since_ms: Option<i64>,
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl ClassicGroup {
    pub fn new(cfg: Arc<GroupConfig>) -> ClassicGroup {
        ClassicGroup {
            cfg,
            state: ClassicState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            join_deadline: None,
            initial_delay: None,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            empty_since_ms: Some(crate::log::now_ms()),
        }
    }

    /// A group loaded from the group log: empty, at its stored generation.
    pub fn restored(cfg: Arc<GroupConfig>, meta: &GroupMeta) -> ClassicGroup {
        let mut g = ClassicGroup::new(cfg);
        g.generation = meta.generation;
        g.protocol_type = Some(meta.protocol_type.clone()).filter(|p| !p.is_empty());
        g.protocol = meta.protocol.clone();
        g.empty_since_ms = meta.empty_since_ms.or(g.empty_since_ms);
        g
    }

    pub fn meta(&self, group: &str) -> GroupMeta {
        GroupMeta {
            group: group.to_string(),
            kind: "classic".into(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            empty_since_ms: self.empty_since_ms,
        }
    }

    pub fn state(&self) -> ClassicState {
        self.state
    }
    pub fn generation(&self) -> i32 {
        self.generation
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    pub fn empty_since_ms(&self) -> Option<i64> {
        self.empty_since_ms
    }
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Members with their metadata and assignment (those only when Stable, as in Kafka).
    pub fn summaries(&self) -> Vec<MemberSummary> {
        let stable = self.state == ClassicState::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| MemberSummary {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }

    /// Subscribed topics per member metadata (protocol type "consumer" only), for OffsetDelete.
    pub fn member_metadata(&self) -> Vec<Bytes> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| m.metadata(&protocol))
            .collect()
    }

    /// Protocols every member supports, in the first member's order of preference.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            candidates.retain(|c| m.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    /// Kafka's vote: each member votes for its most preferred protocol that all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        candidates
            .into_iter()
            .zip(votes)
            .find(|(_, v)| *v == best)
            .map(|(c, _)| c)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Fenced: a static instance id now belongs to another member id.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|owner| owner != member_id)
    }

    pub fn join(&mut self, p: JoinParams, now: Instant) -> Reply<JoinOutcome> {
        if p.session_timeout_ms < self.cfg.min_session_timeout_ms
            || p.session_timeout_ms > self.cfg.max_session_timeout_ms
        {
            return Reply::Now(JoinOutcome::error(E::InvalidSessionTimeout, &p.member_id));
        }
        if self.state == ClassicState::Dead {
            return Reply::Now(JoinOutcome::error(E::CoordinatorNotAvailable, &p.member_id));
        }
        if p.member_id.is_empty() {
            self.join_new(p, now)
        } else {
            self.join_known(p, now)
        }
    }

    fn join_new(&mut self, p: JoinParams, now: Instant) -> Reply<JoinOutcome> {
        if !self.supports(&p.protocol_type, &p.protocols) {
            return Reply::Now(JoinOutcome::error(E::InconsistentGroupProtocol, ""));
        }
        let prefix = p.instance_id.as_deref().unwrap_or(&p.client_id);
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = p.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, new_id, p, now);
            }
        }
        if self.members.len() + self.pending_members.len() >= self.cfg.max_size {
            return Reply::Now(JoinOutcome::error(E::GroupMaxSizeReached, ""));
        }
        if p.require_known_member_id && p.instance_id.is_none() {
            self.pending_members
                .insert(new_id.clone(), now + millis(p.session_timeout_ms));
            return Reply::Now(JoinOutcome::error(E::MemberIdRequired, &new_id));
        }
        self.add_member(new_id, p, now)
    }

    fn join_known(&mut self, p: JoinParams, now: Instant) -> Reply<JoinOutcome> {
        let id = p.member_id.clone();
        if self.pending_members.contains_key(&id) {
            if !self.supports(&p.protocol_type, &p.protocols) {
                return Reply::Now(JoinOutcome::error(E::InconsistentGroupProtocol, &id));
            }
            return self.add_member(id, p, now);
        }
        if self.fenced(&id, p.instance_id.as_deref()) {
            return Reply::Now(JoinOutcome::error(E::FencedInstanceId, &id));
        }
        if !self.members.contains_key(&id) {
            return Reply::Now(JoinOutcome::error(E::UnknownMemberId, &id));
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return Reply::Now(JoinOutcome::error(E::InconsistentGroupProtocol, &id));
        }
        let same = self.members[&id].same_protocols(&p.protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            ClassicState::PreparingRebalance => self.rejoin(&id, p, now),
            ClassicState::CompletingRebalance if same => {
                // The member lost our JoinGroup response: send the current generation again.
                self.touch(&id, now);
                Reply::Now(self.current_join_outcome(&id, false))
            }
            ClassicState::Stable if same && !is_leader => {
                self.touch(&id, now);
                Reply::Now(self.current_join_outcome(&id, false))
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                let reply = self.rejoin(&id, p, now);
                self.prepare_rebalance(now);
                reply
            }
            ClassicState::Empty | ClassicState::Dead => {
                Reply::Now(JoinOutcome::error(E::UnknownMemberId, &id))
            }
        }
    }

    /// The current generation as a JoinGroup response for `id` (members for the leader).
    fn current_join_outcome(&self, id: &str, skip_assignment: bool) -> JoinOutcome {
        let is_leader = self.leader.as_deref() == Some(id);
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinOutcome {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            skip_assignment: is_leader && skip_assignment,
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| JoinedMember {
                        member_id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Refreshes a member's session (heartbeats, and commits in Stable/PreparingRebalance).
    pub fn touch(&mut self, id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(id) {
            m.session_deadline = now + m.session_timeout;
        }
    }

    fn add_member(&mut self, id: String, p: JoinParams, now: Instant) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        self.pending_members.remove(&id);
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        let member = Member {
            id: id.clone(),
            instance_id: p.instance_id,
            client_id: p.client_id,
            client_host: p.client_host,
            session_timeout: millis(p.session_timeout_ms),
            rebalance_timeout: millis(p.rebalance_timeout_ms),
            protocol_type: p.protocol_type,
            protocols: p.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            session_deadline: now + millis(p.session_timeout_ms),
        };
        self.members.insert(id, member);
        if let Some(delay) = &mut self.initial_delay {
            delay.new_member_added = true;
        }
        if matches!(
            self.state,
            ClassicState::Empty | ClassicState::Stable | ClassicState::CompletingRebalance
        ) {
            self.prepare_rebalance(now);
        } else {
            self.try_complete_join(now);
        }
        Reply::Later(rx)
    }

    /// An existing member joins again (its protocols may have changed).
    fn rejoin(&mut self, id: &str, p: JoinParams, now: Instant) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let m = self.members.get_mut(id).expect("caller checked membership");
        if let Some(old) = m.awaiting_join.replace(tx) {
            let _ = old.send(JoinOutcome::error(E::RebalanceInProgress, id));
        }
        m.protocols = p.protocols;
        m.protocol_type = p.protocol_type;
        m.session_timeout = millis(p.session_timeout_ms);
        m.rebalance_timeout = millis(p.rebalance_timeout_ms);
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        m.session_deadline = now + m.session_timeout;
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// KIP-345: a static member rejoining with an unknown member id takes over its old
    /// identity. In a Stable group with unchanged protocols no rebalance happens.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        now: Instant,
    ) -> Reply<JoinOutcome> {
        let Some(index) = self.members.get_index_of(old_id) else {
            return Reply::Now(JoinOutcome::error(E::UnknownMemberId, ""));
        };
        let (_, mut member) = self
            .members
            .shift_remove_index(index)
            .expect("index just looked up");
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinOutcome::error(E::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(SyncOutcome::error(E::FencedInstanceId));
        }
        let keeps_protocol = self
            .protocol
            .as_ref()
            .is_some_and(|sel| p.protocols.iter().any(|(n, _)| n == sel));
        member.id = new_id.clone();
        member.protocols = p.protocols;
        member.protocol_type = p.protocol_type;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.session_timeout = millis(p.session_timeout_ms);
        member.rebalance_timeout = millis(p.rebalance_timeout_ms);
        member.session_deadline = now + member.session_timeout;
        self.members.shift_insert(index, new_id.clone(), member);
        if let Some(instance) = &p.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            ClassicState::Stable if keeps_protocol => {
                Reply::Now(self.current_join_outcome(&new_id, true))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                self.members[&new_id].awaiting_join = Some(tx);
                if self.state == ClassicState::PreparingRebalance {
                    self.try_complete_join(now);
                } else {
                    self.prepare_rebalance(now);
                }
                Reply::Later(rx)
            }
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == ClassicState::CompletingRebalance {
            // Kafka resets assignments and fails waiting SyncGroups with REBALANCE_IN_PROGRESS.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncOutcome::error(E::RebalanceInProgress));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let was_empty = self.state == ClassicState::Empty;
        self.state = ClassicState::PreparingRebalance;
        let rebalance_timeout = self.max_rebalance_timeout();
        let delay = Duration::from_millis(self.cfg.initial_rebalance_delay_ms);
        if was_empty && !delay.is_zero() {
            self.join_deadline = None;
            self.initial_delay = Some(InitialDelay {
                until: now + delay.min(rebalance_timeout),
                remaining: rebalance_timeout.saturating_sub(delay),
                new_member_added: false,
            });
        } else {
            self.join_deadline = Some(now + rebalance_timeout);
            self.try_complete_join(now);
        }
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state == ClassicState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.pending_members.is_empty()
            && self.members.values().all(|m| m.awaiting_join.is_some())
        {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        self.join_deadline = None;
        self.initial_delay = None;
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            self.remove_member(&id, E::UnknownMemberId);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.become_empty();
            return;
        }
        self.protocol = self.select_protocol();
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = ClassicState::CompletingRebalance;
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.current_join_outcome(&id, false);
            let m = &mut self.members[&id];
            m.session_deadline = now + m.session_timeout;
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(outcome);
            }
        }
    }

    fn become_empty(&mut self) {
        self.state = ClassicState::Empty;
        self.pending_sync.clear();
        self.sync_deadline = None;
        self.empty_since_ms = Some(crate::log::now_ms());
    }

    /// Removes a member, answering anything it still waits on with `error`.
    fn remove_member(&mut self, id: &str, error: E) {
        let Some(mut m) = self.members.shift_remove(id) else {
            return;
        };
        if let Some(tx) = m.awaiting_join.take() {
            let _ = tx.send(JoinOutcome::error(error, id));
        }
        if let Some(tx) = m.awaiting_sync.take() {
            let _ = tx.send(SyncOutcome::error(error));
        }
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// After members left or expired: rebalance (or finish the one in progress).
    fn after_removal(&mut self, now: Instant) {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => self.prepare_rebalance(now),
            ClassicState::PreparingRebalance => self.try_complete_join(now),
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    pub fn sync(&mut self, p: SyncParams, now: Instant) -> Reply<SyncOutcome> {
        let id = p.member_id.clone();
        if self.state == ClassicState::Dead {
            return Reply::Now(SyncOutcome::error(E::CoordinatorNotAvailable));
        }
        if self.fenced(&id, p.instance_id.as_deref()) {
            return Reply::Now(SyncOutcome::error(E::FencedInstanceId));
        }
        if !self.members.contains_key(&id) {
            return Reply::Now(SyncOutcome::error(E::UnknownMemberId));
        }
        if p.generation != self.generation {
            return Reply::Now(SyncOutcome::error(E::IllegalGeneration));
        }
        let type_mismatch = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = p
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol.as_ref());
        if type_mismatch || name_mismatch {
            return Reply::Now(SyncOutcome::error(E::InconsistentGroupProtocol));
        }
        match self.state {
            ClassicState::Empty | ClassicState::Dead => {
                Reply::Now(SyncOutcome::error(E::UnknownMemberId))
            }
            ClassicState::PreparingRebalance => {
                Reply::Now(SyncOutcome::error(E::RebalanceInProgress))
            }
            ClassicState::Stable => {
                self.pending_sync.remove(&id);
                self.touch(&id, now);
                Reply::Now(self.sync_outcome(&id))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.pending_sync.remove(&id);
                self.touch(&id, now);
                if let Some(old) = self.members[&id].awaiting_sync.replace(tx) {
                    let _ = old.send(SyncOutcome::error(E::RebalanceInProgress));
                }
                if self.leader.as_deref() == Some(id.as_str()) {
                    let mut given: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        // Members the leader left out get an empty assignment, as in Kafka.
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = ClassicState::Stable;
                    self.empty_since_ms = None;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let outcome = self.sync_outcome(&id);
                        if let Some(tx) = self.members[&id].awaiting_sync.take() {
                            let _ = tx.send(outcome);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    fn sync_outcome(&self, id: &str) -> SyncOutcome {
        SyncOutcome {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members[id].assignment.clone(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == ClassicState::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if self.fenced(member_id, instance_id) {
            return E::FencedInstanceId.code();
        }
        if !self.members.contains_key(member_id) {
            return E::UnknownMemberId.code();
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        self.touch(member_id, now);
        match self.state {
            ClassicState::PreparingRebalance => E::RebalanceInProgress.code(),
            _ => 0,
        }
    }

    /// LeaveGroup for each (member id, instance id); returns one error code per member.
    pub fn leave(&mut self, leaving: &[(String, Option<String>)], now: Instant) -> Vec<i16> {
        let mut removed = false;
        let codes = leaving
            .iter()
            .map(|(member_id, instance_id)| {
                let id = match (member_id.is_empty(), instance_id) {
                    (true, Some(instance)) => match self.static_members.get(instance) {
                        Some(id) => id.clone(),
                        None => return E::UnknownMemberId.code(),
                    },
                    _ => {
                        if self.fenced(member_id, instance_id.as_deref()) {
                            return E::FencedInstanceId.code();
                        }
                        member_id.clone()
                    }
                };
                if self.pending_members.remove(&id).is_some() {
                    removed = true;
                    return 0;
                }
                if !self.members.contains_key(&id) {
                    return E::UnknownMemberId.code();
                }
                self.remove_member(&id, E::UnknownMemberId);
                removed = true;
                0
            })
            .collect();
        if removed {
            self.after_removal(now);
        }
        codes
    }

    /// Whether a member (or a plain committer, for generation < 0 with no member id) may
    /// commit offsets now. Kafka's order of checks.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), E> {
        if self.state == ClassicState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == ClassicState::Empty {
            return Ok(());
        }
        if self.fenced(member_id, instance_id) {
            return Err(E::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(E::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(E::IllegalGeneration);
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(E::RebalanceInProgress);
        }
        Ok(())
    }

    /// Kafka's checks for a TxnOffsetCommit (validateOffsetCommit with isTransactional): the
    /// member and generation only when the request names them (v3+), and no rebalance check.
    /// Before v3 a transactional commit carries neither and is accepted in any state.
    pub fn validate_txn_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), E> {
        if self.state == ClassicState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == ClassicState::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Some(instance) = instance_id {
                match self.static_members.get(instance) {
                    None => return Err(E::UnknownMemberId),
                    Some(owner) if owner != member_id => return Err(E::FencedInstanceId),
                    Some(_) => {}
                }
            }
            if !self.members.contains_key(member_id) {
                return Err(E::UnknownMemberId);
            }
            if generation != self.generation {
                return Err(E::IllegalGeneration);
            }
        }
        Ok(())
    }

    /// Marks the group deleted (DeleteGroups): later requests get COORDINATOR_NOT_AVAILABLE.
    pub fn mark_dead(&mut self) {
        self.state = ClassicState::Dead;
    }

    /// Expires sessions, pending members and the join / sync / initial-delay timers.
    pub fn tick(&mut self, now: Instant) {
        if self.state == ClassicState::Dead {
            return;
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now && m.awaiting_join.is_none() && m.awaiting_sync.is_none()
            })
            .map(|m| m.id.clone())
            .collect();
        let lapsed: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &lapsed {
            self.pending_members.remove(id);
        }
        for id in &expired {
            tracing::info!(member = %id, "group member session expired");
            self.remove_member(id, E::UnknownMemberId);
        }
        if !expired.is_empty() || !lapsed.is_empty() {
            self.after_removal(now);
        }
        if let Some(delay) = &mut self.initial_delay {
            if now >= delay.until {
                let step = Duration::from_millis(self.cfg.initial_rebalance_delay_ms);
                if delay.new_member_added && !delay.remaining.is_zero() {
                    delay.until = now + step.min(delay.remaining);
                    delay.remaining = delay.remaining.saturating_sub(step);
                    delay.new_member_added = false;
                } else {
                    self.complete_join(now);
                }
            }
        }
        if self.join_deadline.is_some_and(|d| d <= now) {
            self.complete_join(now);
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.sync_deadline = None;
            let late: Vec<String> = self.pending_sync.drain().collect();
            if !late.is_empty() {
                for id in &late {
                    tracing::info!(member = %id, "group member did not sync in time");
                    self.remove_member(id, E::UnknownMemberId);
                }
                self.after_removal(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(initial_delay_ms: u64) -> Arc<GroupConfig> {
        Arc::new(GroupConfig {
            initial_rebalance_delay_ms: initial_delay_ms,
            ..GroupConfig::default()
        })
    }

    fn params(member_id: &str, instance: Option<&str>, v4: bool) -> JoinParams {
        JoinParams {
            member_id: member_id.into(),
            instance_id: instance.map(String::from),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: v4,
        }
    }

    fn now_value<T: std::fmt::Debug>(r: Reply<T>) -> T {
        match r {
            Reply::Now(v) => v,
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }

    fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
        match r {
            Reply::Later(rx) => rx,
            Reply::Now(_) => panic!("expected a deferred answer"),
        }
    }

    fn sync_params(id: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncParams {
        SyncParams {
            member_id: id.into(),
            instance_id: None,
            generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
        }
    }

    /// One member joins (two-step) and syncs; the group is Stable at generation 1.
    fn stable_group(now: Instant) -> (ClassicGroup, String) {
        let mut g = ClassicGroup::new(cfg(0));
        let first = now_value(g.join(params("", None, true), now));
        assert_eq!(first.error, E::MemberIdRequired.code());
        let id = first.member_id.clone();
        let mut rx = later(g.join(params(&id, None, true), now));
        let joined = rx.try_recv().unwrap();
        assert_eq!((joined.error, joined.generation), (0, 1));
        assert_eq!(joined.leader, id);
        assert_eq!(joined.members.len(), 1);
        let mut rx = later(g.sync(
            sync_params(&id, 1, vec![(id.clone(), Bytes::from_static(b"a"))]),
            now,
        ));
        assert_eq!(rx.try_recv().unwrap().assignment, Bytes::from_static(b"a"));
        assert_eq!(g.state(), ClassicState::Stable);
        (g, id)
    }

    #[test]
    fn two_step_join_and_sync() {
        stable_group(Instant::now());
    }

    #[test]
    fn join_errors() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(cfg(0));
        let mut p = params("", None, true);
        p.session_timeout_ms = 10;
        assert_eq!(
            now_value(g.join(p, now)).error,
            E::InvalidSessionTimeout.code()
        );
        assert_eq!(
            now_value(g.join(params("nobody", None, true), now)).error,
            E::UnknownMemberId.code()
        );
        let (mut g, _) = stable_group(now);
        let mut other = params("", None, false);
        other.protocol_type = "connect".into();
        assert_eq!(
            now_value(g.join(other, now)).error,
            E::InconsistentGroupProtocol.code()
        );
    }

    #[test]
    fn heartbeat_errors_and_rebalance_in_progress() {
        let now = Instant::now();
        let (mut g, id) = stable_group(now);
        assert_eq!(g.heartbeat(&id, None, 1, now), 0);
        assert_eq!(g.heartbeat(&id, None, 0, now), E::IllegalGeneration.code());
        assert_eq!(g.heartbeat("x", None, 1, now), E::UnknownMemberId.code());
        // A second member joins: the group prepares a rebalance.
        let rx2 = later(g.join(params("", None, false), now));
        assert_eq!(g.state(), ClassicState::PreparingRebalance);
        assert_eq!(
            g.heartbeat(&id, None, 1, now),
            E::RebalanceInProgress.code()
        );
        assert_eq!(
            now_value(g.sync(sync_params(&id, 1, vec![]), now)).error,
            E::RebalanceInProgress.code()
        );
        // The first member rejoins: generation 2 completes for both.
        let mut rx1 = later(g.join(params(&id, None, true), now));
        let j1 = rx1.try_recv().unwrap();
        let mut rx2 = rx2;
        let j2 = rx2.try_recv().unwrap();
        assert_eq!((j1.generation, j2.generation), (2, 2));
        assert_eq!(j1.members.len(), 2, "the leader sees every member");
        assert!(j2.members.is_empty());
        assert_eq!(g.state(), ClassicState::CompletingRebalance);
        assert_eq!(g.validate_commit(&id, None, 2), Err(E::RebalanceInProgress));
        // The follower syncs first and waits for the leader.
        let mut srx2 = later(g.sync(sync_params(&j2.member_id, 2, vec![]), now));
        assert!(srx2.try_recv().is_err());
        let assignments = vec![
            (id.clone(), Bytes::from_static(b"one")),
            (j2.member_id.clone(), Bytes::new()),
        ];
        let mut srx1 = later(g.sync(sync_params(&id, 2, assignments), now));
        assert_eq!(
            srx1.try_recv().unwrap().assignment,
            Bytes::from_static(b"one")
        );
        let follower = srx2.try_recv().unwrap();
        assert_eq!((follower.error, follower.assignment.len()), (0, 0));
        assert_eq!(g.validate_commit(&id, None, 2), Ok(()));
        assert_eq!(g.validate_commit(&id, None, 1), Err(E::IllegalGeneration));
    }

    #[test]
    fn session_expiry_and_leave() {
        let now = Instant::now();
        let (mut g, id) = stable_group(now);
        g.tick(now + Duration::from_secs(11));
        // The only member expired: the rebalance completes at once with nobody left.
        assert_eq!(g.state(), ClassicState::Empty);
        assert_eq!(g.generation(), 2);
        assert_eq!(g.heartbeat(&id, None, 2, now), E::UnknownMemberId.code());
        let (mut g, id) = stable_group(now);
        assert_eq!(
            g.leave(&[(id.clone(), None), ("x".into(), None)], now),
            vec![0, E::UnknownMemberId.code()]
        );
        assert_eq!(g.state(), ClassicState::Empty);
        assert_eq!(g.validate_commit("", None, -1), Ok(()));
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_fences_the_old_id() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(cfg(0));
        let mut rx = later(g.join(params("", Some("i1"), true), now));
        let joined = rx.try_recv().unwrap();
        let old = joined.member_id.clone();
        later(g.sync(
            sync_params(&old, 1, vec![(old.clone(), Bytes::from_static(b"mine"))]),
            now,
        ));
        assert_eq!(g.state(), ClassicState::Stable);
        // Restarted process: same instance id, no member id.
        let again = now_value(g.join(params("", Some("i1"), true), now));
        assert_eq!(again.error, 0);
        assert_eq!(again.generation, 1, "no new generation");
        assert!(
            again.skip_assignment,
            "the leader keeps the current assignment"
        );
        assert_eq!(g.state(), ClassicState::Stable);
        let synced = now_value(g.sync(
            SyncParams {
                instance_id: Some("i1".into()),
                ..sync_params(&again.member_id, 1, vec![])
            },
            now,
        ));
        assert_eq!(synced.assignment, Bytes::from_static(b"mine"));
        assert_eq!(
            g.heartbeat(&old, Some("i1"), 1, now),
            E::FencedInstanceId.code()
        );
        assert_eq!(
            g.leave(&[(old, Some("i1".into()))], now),
            vec![E::FencedInstanceId.code()]
        );
        assert_eq!(g.leave(&[(String::new(), Some("i1".into()))], now), vec![0]);
    }

    #[test]
    fn initial_delay_waits_for_more_members() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(cfg(3000));
        let mut rx1 = later(g.join(params("", None, false), now));
        let mut rx2 = later(g.join(params("", None, false), now + Duration::from_secs(1)));
        g.tick(now + Duration::from_millis(2900));
        assert!(rx1.try_recv().is_err(), "still inside the initial delay");
        // A member arrived during the delay: it is extended once more.
        g.tick(now + Duration::from_millis(3000));
        assert!(rx1.try_recv().is_err());
        g.tick(now + Duration::from_millis(6000));
        let (j1, j2) = (rx1.try_recv().unwrap(), rx2.try_recv().unwrap());
        assert_eq!((j1.generation, j2.generation), (1, 1));
        assert_eq!(j1.leader, j1.member_id);
    }

    #[test]
    fn members_missing_the_rebalance_are_removed_at_its_timeout() {
        let now = Instant::now();
        let (mut g, id) = stable_group(now);
        let mut rx2 = later(g.join(params("", None, false), now));
        // The first member never rejoins; the rebalance timeout (30 s) removes it even though
        // it keeps heartbeating.
        assert_eq!(
            g.heartbeat(&id, None, 1, now + Duration::from_secs(9)),
            E::RebalanceInProgress.code()
        );
        g.tick(now + Duration::from_secs(31));
        let j2 = rx2.try_recv().unwrap();
        assert_eq!(j2.generation, 2);
        assert_eq!(j2.leader, j2.member_id);
        assert_eq!(g.heartbeat(&id, None, 2, now), E::UnknownMemberId.code());
    }

    #[test]
    fn protocol_vote() {
        let now = Instant::now();
        let mut g = ClassicGroup::new(cfg(0));
        let mut a = params("", None, false);
        a.protocols = vec![
            ("cooperative-sticky".into(), Bytes::new()),
            ("range".into(), Bytes::new()),
        ];
        let mut rx = later(g.join(a, now));
        let ja = rx.try_recv().unwrap();
        assert_eq!(ja.protocol_name.as_deref(), Some("cooperative-sticky"));
        let mut b = params("", None, false);
        b.protocols = vec![("range".into(), Bytes::new())];
        let mut rxb = later(g.join(b, now));
        let mut a2 = params(&ja.member_id, None, false);
        a2.protocols = vec![
            ("cooperative-sticky".into(), Bytes::new()),
            ("range".into(), Bytes::new()),
        ];
        later(g.join(a2, now));
        assert_eq!(
            rxb.try_recv().unwrap().protocol_name.as_deref(),
            Some("range")
        );
    }
}
