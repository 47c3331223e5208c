//! An open topic: its partitions' logs and leadership. Shared by the broker, which opens and
//! registers topics, and the tier, which copies their segments (so neither depends on the other).

use crate::log::Partition;
use crate::metadata::PartitionState;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    /// Leadership of each partition, by index, as the metadata knew it when the topic opened.
    pub states: Vec<PartitionState>,
    /// Topic-level overrides (Kafka names); defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
    /// min.insync.replicas, resolved when the topic registered: acks=all needs an ISR this big.
    pub min_insync_replicas: usize,
}
