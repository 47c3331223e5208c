//! Group commit: one flusher thread fsyncs partitions that have unflushed appends and then
//! publishes their new durable offset. Appends arriving during an fsync ride on the next one.

use super::partition::Partition;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

#[derive(Clone)]
pub struct Flusher {
    tx: Sender<Arc<Partition>>,
}

impl Flusher {
    pub fn start() -> Flusher {
        let (tx, rx) = channel::<Arc<Partition>>();
        std::thread::Builder::new()
            .name("sluice-flusher".into())
            .spawn(move || run(rx))
            .expect("spawn flusher thread");
        Flusher { tx }
    }

    /// Asks for `partition` to be fsynced soon. Callers send at most once per flush cycle.
    pub fn request(&self, partition: Arc<Partition>) {
        // The flusher only stops when every sender is gone, so this cannot fail while we hold one.
        let _ = self.tx.send(partition);
    }
}

fn run(rx: Receiver<Arc<Partition>>) {
    let mut pending: Vec<Arc<Partition>> = Vec::new();
    while let Ok(first) = rx.recv() {
        pending.push(first);
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        for partition in pending.drain(..) {
            // A bug in one partition must not stop group commit for all the others.
            let flushed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| partition.flush_now()));
            if flushed.is_err() {
                tracing::error!(topic = %partition.topic, partition = partition.index, "flush panicked");
            }
        }
    }
}
