//! The group coordinator: every consumer group of this broker, their committed offsets, and
//! the group log that makes both durable. Handlers in api/ translate wire messages to the
//! calls here; timers run from `tick`, driven by a background task.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod store;

use crate::log::flush::Flusher;
use bytes::Bytes;
use classic::{ClassicGroup, ClassicState};
use consumer::ConsumerGroup;
use dashmap::DashMap;
use kafka_protocol::ResponseError as E;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::{GroupMeta, GroupRecord, GroupStore};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Group settings under Kafka's names. Declared (names, defaults, ranges) in config/registry.rs;
/// `Default` is implemented in config/ from the registry.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// group.max.size
    pub max_size: usize,
    /// offsets.retention.minutes (in ms)
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_interval_ms: u64,
    /// offset.metadata.max.bytes
    pub offset_metadata_max_bytes: usize,
    /// offsets.topic.segment.bytes
    pub offsets_segment_bytes: u64,
    /// group.consumer.session.timeout.ms
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms
    pub consumer_heartbeat_interval_ms: i32,
    /// group.consumer.max.size
    pub consumer_max_size: usize,
    /// group.consumer.assignors (the first is the default)
    pub consumer_assignors: Vec<String>,
    /// group.coordinator.rebalance.protocols includes "consumer"
    pub consumer_protocol_enabled: bool,
}

impl GroupConfig {
    pub fn consumer_session_timeout(&self) -> Duration {
        Duration::from_millis(self.consumer_session_timeout_ms.max(0) as u64)
    }
}

/// An answer now, or one that arrives when the group's state moves on (rebalances).
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
}

/// The broker's topics as the coordinator needs them (KIP-848 assignment, OffsetDelete).
pub trait TopicSource {
    /// Changes whenever a topic is created, deleted or grows.
    fn topics_version(&self) -> u64;
    fn topics(&self) -> Vec<TopicInfo>;
}

pub enum GroupKind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ms: i64,
}

pub struct Group {
    pub id: String,
    pub kind: GroupKind,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    persisted: Option<GroupMeta>,
    /// Deleted (DeleteGroups or expiry) while someone else held a handle to it.
    removed: bool,
}

impl Group {
    fn new(id: &str, kind: GroupKind) -> Group {
        Group {
            id: id.to_string(),
            kind,
            offsets: BTreeMap::new(),
            persisted: None,
            removed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.is_empty(),
            GroupKind::Consumer(g) => g.is_empty(),
        }
    }

    fn meta(&self) -> GroupMeta {
        match &self.kind {
            GroupKind::Classic(g) => g.meta(&self.id),
            GroupKind::Consumer(g) => g.meta(&self.id),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state().name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    pub fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type().unwrap_or_default().to_string(),
            GroupKind::Consumer(_) => "consumer".to_string(),
        }
    }

    fn empty_since_ms(&self) -> Option<i64> {
        match &self.kind {
            GroupKind::Classic(g) => g.empty_since_ms(),
            GroupKind::Consumer(g) => g.empty_since_ms(),
        }
    }

    /// Topics the group's members consume, when known (OffsetDelete refuses those).
    fn subscribed_topics(&self, topics: &[TopicInfo]) -> Option<BTreeSet<String>> {
        match &self.kind {
            GroupKind::Consumer(g) => Some(g.subscribed_topic_names(topics)),
            GroupKind::Classic(g) if g.is_empty() => Some(BTreeSet::new()),
            GroupKind::Classic(g) if g.protocol_type() == Some("consumer") => Some(
                g.member_metadata()
                    .iter()
                    .flat_map(subscription_topics)
                    .collect(),
            ),
            GroupKind::Classic(_) => None,
        }
    }
}

/// Topic names in a ConsumerProtocolSubscription (the classic consumer's member metadata).
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if metadata.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]).clamp(0, 3);
    let mut body = metadata.slice(2..);
    ConsumerProtocolSubscription::decode(&mut body, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The (topic, partition) and offset an Offset record commits.
fn committed_offset(r: GroupRecord) -> Option<((String, i32), CommittedOffset)> {
    match r {
        GroupRecord::Offset {
            topic,
            partition,
            offset,
            leader_epoch,
            metadata,
            commit_ms,
            ..
        } => Some((
            (topic, partition),
            CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_ms,
            },
        )),
        _ => None,
    }
}

/// One offset to commit.
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

pub struct CommitRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_or_epoch: i32,
    pub api_version: i16,
    pub offsets: Vec<OffsetToCommit>,
}

/// Per-offset error codes (in request order) and the group-log offset to wait for.
pub struct CommitOutcome {
    pub errors: Vec<i16>,
    pub durable_end: Option<i64>,
}

pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    pub group_type: &'static str,
}

pub struct GroupCoordinator {
    cfg: Arc<GroupConfig>,
    groups: DashMap<String, Arc<Mutex<Group>>>,
    store: GroupStore,
}

fn lock(g: &Mutex<Group>) -> MutexGuard<'_, Group> {
    g.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCoordinator {
    /// Opens the group log in `dir` and rebuilds every group and committed offset from it.
    pub fn open(cfg: GroupConfig, dir: PathBuf, flusher: Flusher) -> std::io::Result<Self> {
        let cfg = Arc::new(cfg);
        let store = GroupStore::open(
            "__consumer_offsets",
            dir,
            cfg.offsets_segment_bytes,
            flusher,
        )?;
        let coordinator = GroupCoordinator {
            cfg: cfg.clone(),
            groups: DashMap::new(),
            store,
        };
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let classic = |id: &str| Group::new(id, GroupKind::Classic(ClassicGroup::new(cfg.clone())));
        let records = coordinator.store.replay()?;
        let count = records.len();
        for r in records {
            match r {
                GroupRecord::Offset { ref group, .. } => {
                    let g = groups
                        .entry(group.clone())
                        .or_insert_with(|| classic(group));
                    g.offsets.extend(committed_offset(r));
                }
                GroupRecord::OffsetRemoved {
                    group,
                    topic,
                    partition,
                } => {
                    if let Some(g) = groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
                GroupRecord::Group(meta) => {
                    let kind = if meta.kind == "consumer" {
                        GroupKind::Consumer(ConsumerGroup::restored(cfg.clone(), &meta))
                    } else {
                        GroupKind::Classic(ClassicGroup::restored(cfg.clone(), &meta))
                    };
                    let g = groups
                        .entry(meta.group.clone())
                        .or_insert_with(|| classic(&meta.group));
                    g.kind = kind;
                    g.persisted = Some(meta);
                }
                GroupRecord::GroupRemoved { group } => {
                    groups.remove(&group);
                }
            }
        }
        tracing::info!(
            groups = groups.len(),
            records = count,
            "loaded consumer groups"
        );
        for (id, g) in groups {
            coordinator.groups.insert(id, Arc::new(Mutex::new(g)));
        }
        Ok(coordinator)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.cfg
    }

    /// The group, created with `create` when missing (None: don't create).
    fn handle(
        &self,
        id: &str,
        create: Option<fn(Arc<GroupConfig>) -> GroupKind>,
    ) -> Option<Arc<Mutex<Group>>> {
        if let Some(g) = self.groups.get(id) {
            return Some(g.clone());
        }
        let make = create?;
        Some(
            self.groups
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Group::new(id, make(self.cfg.clone())))))
                .clone(),
        )
    }

    /// Runs `f` on the locked group (retrying if it was deleted meanwhile).
    fn with_group<T>(
        &self,
        id: &str,
        create: Option<fn(Arc<GroupConfig>) -> GroupKind>,
        mut f: impl FnMut(&mut Group) -> T,
    ) -> Option<T> {
        loop {
            let handle = self.handle(id, create)?;
            let mut g = lock(&handle);
            if g.removed {
                continue;
            }
            let out = f(&mut g);
            self.persist_meta(&mut g);
            return Some(out);
        }
    }

    /// Writes the group's metadata record when it changed (generation, state, protocol).
    fn persist_meta(&self, g: &mut Group) {
        if g.removed {
            return;
        }
        let meta = g.meta();
        if g.persisted.as_ref() == Some(&meta) {
            return;
        }
        match self.store.append(&[GroupRecord::Group(meta.clone())]) {
            Ok(_) => g.persisted = Some(meta),
            Err(e) => tracing::error!(group = %g.id, error = %e.0, "persisting group metadata"),
        }
    }

    fn new_classic(cfg: Arc<GroupConfig>) -> GroupKind {
        GroupKind::Classic(ClassicGroup::new(cfg))
    }

    fn new_consumer(cfg: Arc<GroupConfig>) -> GroupKind {
        GroupKind::Consumer(ConsumerGroup::new(cfg))
    }

    pub fn join(&self, group_id: &str, p: classic::JoinParams) -> Reply<classic::JoinOutcome> {
        let now = Instant::now();
        let member_id = p.member_id.clone();
        let error = |e: E| {
            Reply::Now(classic::JoinOutcome {
                error: e.code(),
                generation: -1,
                member_id: member_id.clone(),
                ..Default::default()
            })
        };
        if group_id.is_empty() {
            return error(E::InvalidGroupId);
        }
        let mut p = Some(p);
        self.with_group(group_id, Some(Self::new_classic), |g| {
            if let GroupKind::Consumer(c) = &g.kind {
                if !c.is_empty() {
                    return error(E::InconsistentGroupProtocol);
                }
                // An empty consumer group converts to classic (Kafka's downgrade rule).
                g.kind = Self::new_classic(self.cfg.clone());
            }
            let GroupKind::Classic(c) = &mut g.kind else {
                unreachable!("converted above")
            };
            c.join(p.take().expect("runs once"), now)
        })
        .expect("created when missing")
    }

    pub fn sync(&self, group_id: &str, p: classic::SyncParams) -> Reply<classic::SyncOutcome> {
        let now = Instant::now();
        let unknown = || {
            Reply::Now(classic::SyncOutcome {
                error: E::UnknownMemberId.code(),
                ..Default::default()
            })
        };
        if group_id.is_empty() {
            return Reply::Now(classic::SyncOutcome {
                error: E::InvalidGroupId.code(),
                ..Default::default()
            });
        }
        let mut p = Some(p);
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => c.sync(p.take().expect("runs once"), now),
            GroupKind::Consumer(_) => unknown(),
        })
        .unwrap_or_else(unknown)
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if group_id.is_empty() {
            return E::InvalidGroupId.code();
        }
        let now = Instant::now();
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => c.heartbeat(member_id, instance_id, generation, now),
            GroupKind::Consumer(_) => E::UnknownMemberId.code(),
        })
        .unwrap_or(E::UnknownMemberId.code())
    }

    /// LeaveGroup: a group-level error, or one code per member.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, E> {
        if group_id.is_empty() {
            return Err(E::InvalidGroupId);
        }
        let now = Instant::now();
        self.with_group(group_id, None, |g| match &mut g.kind {
            GroupKind::Classic(c) => Ok(c.leave(members, now)),
            GroupKind::Consumer(_) => Ok(vec![E::UnknownMemberId.code(); members.len()]),
        })
        .unwrap_or_else(|| Ok(vec![E::UnknownMemberId.code(); members.len()]))
    }

    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        p: consumer::HeartbeatParams,
        source: &dyn TopicSource,
    ) -> consumer::HeartbeatOutcome {
        let error = |e: E, msg: String, member_id: &str| consumer::HeartbeatOutcome {
            error: e.code(),
            message: Some(msg),
            member_id: member_id.to_string(),
            ..Default::default()
        };
        if !self.cfg.consumer_protocol_enabled {
            return error(
                E::UnsupportedVersion,
                "the consumer group protocol is disabled (group.coordinator.rebalance.protocols)"
                    .into(),
                &p.member_id,
            );
        }
        if group_id.is_empty() {
            return error(
                E::InvalidRequest,
                "GroupId can't be empty".into(),
                &p.member_id,
            );
        }
        let now = Instant::now();
        let member_id = p.member_id.clone();
        let create = (p.member_epoch == 0).then_some(Self::new_consumer as fn(_) -> _);
        let mut p = Some(p);
        self.with_group(group_id, create, |g| {
            if let GroupKind::Classic(c) = &g.kind {
                if !c.is_empty() {
                    return error(
                        E::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group"),
                        &member_id,
                    );
                }
                // An empty classic group (e.g. only committed offsets) converts (Kafka's upgrade rule).
                g.kind = Self::new_consumer(self.cfg.clone());
            }
            let GroupKind::Consumer(c) = &mut g.kind else {
                unreachable!("converted above")
            };
            c.heartbeat(p.take().expect("runs once"), source, now)
        })
        .unwrap_or_else(|| error(E::UnknownMemberId, "unknown member id".into(), &member_id))
    }

    pub fn commit_offsets(&self, group_id: &str, req: CommitRequest) -> CommitOutcome {
        let all = |e: E| CommitOutcome {
            errors: vec![e.code(); req.offsets.len()],
            durable_end: None,
        };
        // Like Kafka, offsets may be committed under the empty group id (backwards
        // compatibility); only the membership APIs refuse it.
        let simple = req.generation_or_epoch < 0 && req.member_id.is_empty();
        let create = simple.then_some(Self::new_classic as fn(_) -> _);
        let outcome = self.with_group(group_id, create, |g| {
            let valid = match &g.kind {
                GroupKind::Classic(c) => c.validate_commit(
                    &req.member_id,
                    req.instance_id.as_deref(),
                    req.generation_or_epoch,
                ),
                GroupKind::Consumer(c) => {
                    c.validate_commit(&req.member_id, req.generation_or_epoch, req.api_version)
                }
            };
            if let Err(e) = valid {
                return all(e);
            }
            if let GroupKind::Classic(c) = &mut g.kind {
                // As in Kafka, a member's commit also keeps its session alive.
                if matches!(
                    c.state(),
                    ClassicState::Stable | ClassicState::PreparingRebalance
                ) {
                    c.touch(&req.member_id, Instant::now());
                }
            }
            let now = crate::log::now_ms();
            let mut records = Vec::new();
            let errors = req
                .offsets
                .iter()
                .map(|o| {
                    if o.metadata
                        .as_ref()
                        .is_some_and(|m| m.len() > self.cfg.offset_metadata_max_bytes)
                    {
                        return E::OffsetMetadataTooLarge.code();
                    }
                    records.push(GroupRecord::Offset {
                        group: g.id.clone(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: now,
                    });
                    0
                })
                .collect::<Vec<i16>>();
            if records.is_empty() {
                return CommitOutcome {
                    errors,
                    durable_end: None,
                };
            }
            match self.store.append(&records) {
                Ok(end) => {
                    g.offsets
                        .extend(records.into_iter().filter_map(committed_offset));
                    CommitOutcome {
                        errors,
                        durable_end: Some(end),
                    }
                }
                Err(e) => {
                    tracing::error!(group = group_id, error = %e.0, "offset commit not stored");
                    all(E::CoordinatorNotAvailable)
                }
            }
        });
        outcome.unwrap_or_else(|| {
            // No such group and not a simple commit.
            all(if req.api_version >= 9 {
                E::GroupIdNotFound
            } else {
                E::IllegalGeneration
            })
        })
    }

    pub async fn wait_durable(&self, end: i64) -> Result<(), String> {
        self.store.wait_durable(end).await.map_err(|e| e.0)
    }

    /// The transaction of `producer_id` ended: its pending TxnOffsetCommit offsets, in every
    /// group, become committed (`commit`) or are dropped. Some(end): the group-log position
    /// to wait for (`wait_durable`); None: nothing was pending.
    pub fn end_txn_offsets(&self, _producer_id: i64, _commit: bool) -> Result<Option<i64>, String> {
        // TxnOffsetCommit is not served yet, so no offsets are ever pending.
        Ok(None)
    }

    /// Committed offsets of a group: the asked partitions (None: all committed ones).
    /// `member` (OffsetFetch v9) is checked against a consumer group's members.
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(String, i32)>,
    ) -> Result<Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>, E> {
        let read = |g: Option<&Group>| -> Vec<(String, Vec<(i32, Option<CommittedOffset>)>)> {
            match &partitions {
                Some(asked) => asked
                    .iter()
                    .map(|(topic, parts)| {
                        let found = parts
                            .iter()
                            .map(|p| {
                                let o =
                                    g.and_then(|g| g.offsets.get(&(topic.clone(), *p)).cloned());
                                (*p, o)
                            })
                            .collect();
                        (topic.clone(), found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                        BTreeMap::new();
                    if let Some(g) = g {
                        for ((t, p), o) in &g.offsets {
                            by_topic
                                .entry(t.clone())
                                .or_default()
                                .push((*p, Some(o.clone())));
                        }
                    }
                    by_topic.into_iter().collect()
                }
            }
        };
        let Some(handle) = self.handle(group_id, None) else {
            return Ok(read(None));
        };
        let g = lock(&handle);
        if g.removed {
            return Ok(read(None));
        }
        if let (Some((member_id, epoch)), GroupKind::Consumer(c)) = (&member, &g.kind) {
            c.validate_fetch(member_id, *epoch)?;
        }
        Ok(read(Some(&g)))
    }

    /// OffsetDelete: per-partition errors, and the group-log offset to wait for.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, Vec<i32>)],
        topics: &[TopicInfo],
    ) -> Result<(Vec<(String, Vec<(i32, i16)>)>, Option<i64>), E> {
        let result = self.with_group(group_id, None, |g| {
            let Some(subscribed) = g.subscribed_topics(topics) else {
                return Err(E::NonEmptyGroup);
            };
            let mut records = Vec::new();
            let out = partitions
                .iter()
                .map(|(topic, parts)| {
                    let codes = parts
                        .iter()
                        .map(|p| {
                            if subscribed.contains(topic) {
                                return (*p, E::GroupSubscribedToTopic.code());
                            }
                            if g.offsets.remove(&(topic.clone(), *p)).is_some() {
                                records.push(GroupRecord::OffsetRemoved {
                                    group: g.id.clone(),
                                    topic: topic.clone(),
                                    partition: *p,
                                });
                            }
                            (*p, 0)
                        })
                        .collect();
                    (topic.clone(), codes)
                })
                .collect();
            let end = if records.is_empty() {
                None
            } else {
                Some(self.store.append(&records).map_err(|e| {
                    tracing::error!(group = %g.id, error = %e.0, "offset delete not stored");
                    E::CoordinatorNotAvailable
                })?)
            };
            Ok((out, end))
        });
        result.unwrap_or(Err(E::GroupIdNotFound))
    }

    /// Removes a group and its offsets if it has no members. Returns the group-log offset
    /// to wait for.
    fn remove_group(&self, g: &mut Group) -> Result<Option<i64>, E> {
        let mut records: Vec<GroupRecord> = g
            .offsets
            .keys()
            .map(|(topic, partition)| GroupRecord::OffsetRemoved {
                group: g.id.clone(),
                topic: topic.clone(),
                partition: *partition,
            })
            .collect();
        records.push(GroupRecord::GroupRemoved {
            group: g.id.clone(),
        });
        let end = self.store.append(&records).map_err(|e| {
            tracing::error!(group = %g.id, error = %e.0, "group delete not stored");
            E::CoordinatorNotAvailable
        })?;
        g.offsets.clear();
        g.removed = true;
        if let GroupKind::Classic(c) = &mut g.kind {
            c.mark_dead();
        }
        self.groups.remove(&g.id);
        Ok(Some(end))
    }

    /// DeleteGroups for one group.
    pub fn delete_group(&self, group_id: &str) -> Result<Option<i64>, E> {
        self.with_group(group_id, None, |g| {
            if !g.is_empty() {
                return Err(E::NonEmptyGroup);
            }
            self.remove_group(g)
        })
        .unwrap_or(Err(E::GroupIdNotFound))
    }

    /// ListGroups with Kafka's (case-insensitive) state and type filters.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        // Handles first, locks after: remove_group takes a map shard while holding a group
        // lock, so locking a group while iterating the map could deadlock with it.
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        let mut out: Vec<GroupListing> = handles
            .iter()
            .filter_map(|handle| {
                let g = lock(handle);
                if g.removed {
                    return None;
                }
                let listing = GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type(),
                    state: g.state_name(),
                    group_type: g.type_name(),
                };
                let state_ok = states.is_empty()
                    || states.iter().any(|s| s.eq_ignore_ascii_case(listing.state));
                let type_ok = types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(listing.group_type));
                (state_ok && type_ok).then_some(listing)
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Runs `f` on a group for reading (DescribeGroups, ConsumerGroupDescribe).
    pub fn inspect<T>(&self, group_id: &str, f: impl FnOnce(&Group) -> T) -> Option<T> {
        let handle = self.handle(group_id, None)?;
        let g = lock(&handle);
        (!g.removed).then(|| f(&g))
    }

    /// Timers of every group: sessions, rebalances, pending syncs.
    pub fn tick(&self) {
        let now = Instant::now();
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        for handle in handles {
            let mut g = lock(&handle);
            if g.removed {
                continue;
            }
            match &mut g.kind {
                GroupKind::Classic(c) => c.tick(now),
                GroupKind::Consumer(c) => c.tick(now),
            }
            self.persist_meta(&mut g);
        }
    }

    /// offsets.retention.minutes: offsets of a group that has been empty that long (counted
    /// from the later of the commit and the group becoming empty) are removed; an empty group
    /// left with no offsets is removed too.
    pub fn expire_offsets(&self) {
        let now = crate::log::now_ms();
        let retention = self.cfg.offsets_retention_ms;
        let handles: Vec<Arc<Mutex<Group>>> =
            self.groups.iter().map(|e| e.value().clone()).collect();
        for handle in handles {
            let mut g = lock(&handle);
            if g.removed || !g.is_empty() {
                continue;
            }
            let empty_since = g.empty_since_ms().unwrap_or(0);
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, o)| now - o.commit_ms.max(empty_since) > retention)
                .map(|(k, _)| k.clone())
                .collect();
            if !expired.is_empty() {
                let records: Vec<GroupRecord> = expired
                    .iter()
                    .map(|(topic, partition)| GroupRecord::OffsetRemoved {
                        group: g.id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .collect();
                if self.store.append(&records).is_ok() {
                    for k in &expired {
                        g.offsets.remove(k);
                    }
                    tracing::info!(group = %g.id, offsets = expired.len(), "expired committed offsets");
                }
            }
            if g.offsets.is_empty() && now - empty_since > retention {
                let _ = self.remove_group(&mut g);
            }
        }
    }

    /// Rewrites the group log once superseded records outweigh the live ones. Blocking.
    pub fn compact_if_needed(&self) {
        if self
            .store
            .wants_compaction(self.cfg.offsets_segment_bytes / 4)
        {
            if let Err(e) = self.store.compact() {
                tracing::error!(error = %e.0, "group log compaction failed");
            }
        }
    }

    pub fn close(&self) {
        self.store.close();
    }
}

#[cfg(test)]
mod tests {
    use super::classic::{JoinParams, SyncParams};
    use super::*;

    fn open(dir: &std::path::Path) -> GroupCoordinator {
        let cfg = GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        };
        GroupCoordinator::open(cfg, dir.join("groups"), Flusher::start()).unwrap()
    }

    fn subscription(topics: &[&str]) -> Bytes {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let s = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.to_string()))
                .collect(),
        );
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        s.encode(&mut buf, 1).unwrap();
        buf.freeze()
    }

    /// One classic member, Stable at generation 1, subscribed to "t".
    fn join_one(c: &GroupCoordinator, group: &str) -> String {
        let params = JoinParams {
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&["t"]))],
            require_known_member_id: false,
        };
        let Reply::Later(mut rx) = c.join(group, params) else {
            panic!("a join waits for the rebalance");
        };
        let joined = rx.try_recv().unwrap();
        let sync = SyncParams {
            member_id: joined.member_id.clone(),
            instance_id: None,
            generation: joined.generation,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        };
        assert!(matches!(c.sync(group, sync), Reply::Later(_)));
        joined.member_id
    }

    fn commit(
        c: &GroupCoordinator,
        group: &str,
        member: &str,
        generation: i32,
        offset: i64,
    ) -> i16 {
        let out = c.commit_offsets(
            group,
            CommitRequest {
                member_id: member.into(),
                instance_id: None,
                generation_or_epoch: generation,
                api_version: 8,
                offsets: vec![OffsetToCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset,
                    leader_epoch: -1,
                    metadata: Some("meta".into()),
                }],
            },
        );
        out.errors[0]
    }

    fn committed(c: &GroupCoordinator, group: &str) -> Option<CommittedOffset> {
        let fetched = c
            .fetch_offsets(group, Some(vec![("t".into(), vec![0])]), None)
            .unwrap();
        fetched[0].1[0].1.clone()
    }

    #[test]
    fn commit_rules_for_members_and_plain_committers() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        // No such group: a plain commit (generation -1) creates it; a member commit can't.
        assert_eq!(commit(&c, "plain", "", -1, 5), 0);
        assert_eq!(commit(&c, "nope", "m", 3, 5), E::IllegalGeneration.code());
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 1, 10), 0);
        assert_eq!(commit(&c, "g", &member, 2, 10), E::IllegalGeneration.code());
        assert_eq!(
            commit(&c, "g", "stranger", 1, 10),
            E::UnknownMemberId.code()
        );
        // A plain commit into a group with members is refused, as in Kafka.
        assert_eq!(commit(&c, "g", "", -1, 10), E::UnknownMemberId.code());
        assert_eq!(committed(&c, "g").unwrap().offset, 10);
        assert_eq!(
            committed(&c, "g").unwrap().metadata.as_deref(),
            Some("meta")
        );
        assert_eq!(committed(&c, "unknown-group"), None);
    }

    #[test]
    fn delete_rules() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 1, 10), 0);
        let topics = vec![TopicInfo {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: 1,
        }];
        let (out, _) = c
            .delete_offsets("g", &[("t".into(), vec![0])], &topics)
            .unwrap();
        assert_eq!(out[0].1[0].1, E::GroupSubscribedToTopic.code());
        assert_eq!(c.delete_group("g"), Err(E::NonEmptyGroup));
        assert_eq!(c.delete_group("missing"), Err(E::GroupIdNotFound));
        assert_eq!(c.leave("g", &[(member, None)]).unwrap(), vec![0]);
        let (out, end) = c
            .delete_offsets("g", &[("t".into(), vec![0])], &topics)
            .unwrap();
        assert_eq!(out[0].1[0].1, 0);
        assert!(end.is_some());
        assert_eq!(committed(&c, "g"), None);
        assert!(c.delete_group("g").unwrap().is_some());
        assert!(c.list_groups(&[], &[]).is_empty());
    }

    #[test]
    fn offsets_and_groups_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = open(dir.path());
            let member = join_one(&c, "g");
            assert_eq!(commit(&c, "g", &member, 1, 42), 0);
            assert_eq!(commit(&c, "plain", "", -1, 7), 0);
            assert_eq!(commit(&c, "gone", "", -1, 7), 0);
            assert!(c.delete_group("gone").is_ok());
            c.close();
        }
        let c = open(dir.path());
        assert_eq!(committed(&c, "g").unwrap().offset, 42);
        assert_eq!(committed(&c, "plain").unwrap().offset, 7);
        assert_eq!(committed(&c, "gone"), None);
        let listed = c.list_groups(&[], &[]);
        let names: Vec<&str> = listed.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(names, vec!["g", "plain"]);
        // Members rejoin after a restart; the generation carries on.
        assert_eq!(listed[0].state, "Empty");
        assert_eq!(listed[0].protocol_type, "consumer");
        let member = join_one(&c, "g");
        assert_eq!(commit(&c, "g", &member, 2, 43), 0);
    }

    #[test]
    fn list_filters_and_group_types() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        join_one(&c, "classic-g");
        assert_eq!(commit(&c, "empty-g", "", -1, 1), 0);
        let stable = c.list_groups(&["STABLE".into()], &[]);
        assert_eq!(stable.len(), 1);
        assert_eq!(stable[0].group_id, "classic-g");
        assert_eq!(c.list_groups(&[], &["consumer".into()]).len(), 0);
        assert_eq!(c.list_groups(&[], &["Classic".into()]).len(), 2);
    }
}
