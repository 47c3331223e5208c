use anyhow::Result;
use clap::{Parser, Subcommand};
use sluice::broker::Broker;
use sluice::config::{BrokerConfig, ServeArgs};
use sluice::server::listener::Listeners;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: sluice::alloc_guard::AllocGuard = sluice::alloc_guard::AllocGuard;

/// sluice: a Kafka-wire-compatible broker.
#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `sluice` with no subcommand is `sluice serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
    /// Prepare a data directory before the broker starts: create its metadata store and seed
    /// SCRAM users, as Kafka's `kafka-storage format --add-scram`. The broker must be stopped.
    Format(FormatArgs),
    /// The client commands (topic, produce, consume, group, cluster, acl, user): they talk the Kafka
    /// protocol to any broker.
    #[command(flatten)]
    Client(sluice::cli::Command),
}

#[derive(clap::Args)]
struct FormatArgs {
    /// A SCRAM user: 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (or SCRAM-SHA-512;
    /// optional iterations=N, 4096 to 16384). Repeatable; an existing user's credential for
    /// that mechanism is replaced.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=..,password=..]")]
    add_scram: Vec<String>,
    /// The broker's settings (--data-dir, --node-id, --config, --set) find the data directory.
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Format(args)) => {
            if let Err(e) = format(args) {
                eprintln!("sluice format: {e:#}");
                std::process::exit(1);
            }
            return;
        }
        Some(Command::Client(command)) => std::process::exit(sluice::cli::run(command)),
        None => cli.serve,
    };
    let config = match BrokerConfig::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            std::process::exit(2);
        }
    };
    sluice::logging::init(&config.log_level, config.log_format);
    sluice::alloc_guard::retain_freed_buffers();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(config)) {
        tracing::error!("{e:#}");
        eprintln!("sluice: {e:#}");
        std::process::exit(1);
    }
}

/// `sluice format`: opens (or creates) the metadata store and adds the SCRAM users.
fn format(args: FormatArgs) -> Result<()> {
    use sluice::metadata::ClusterMetadata;
    let config = BrokerConfig::resolve(&args.serve)?;
    let _lock = sluice::broker::lock_data_dir(&config.data_dir)?;
    let users = args
        .add_scram
        .iter()
        .map(|spec| sluice::security::sasl_scram::parse_add_scram(spec))
        .collect::<Result<Vec<_>>>()?;
    let store = sluice::broker::open_metadata(&config)?;
    let mut credentials = store.scram_credentials();
    for (mechanism, user, credential) in users {
        credentials
            .entry(user.clone())
            .or_default()
            .insert(mechanism.name().to_string(), credential);
        println!("added {} credential for user {user}", mechanism.name());
    }
    store.set_scram_credentials(credentials)?;
    println!(
        "formatted {} (cluster id {})",
        config.data_dir.display(),
        store.cluster_id()
    );
    Ok(())
}

async fn serve(config: BrokerConfig) -> Result<()> {
    let _data_dir_lock = sluice::broker::lock_data_dir(&config.data_dir)?;
    let retention_every = Duration::from_millis(config.retention_check_interval_ms);
    if let Some(admin) = config.admin_listen {
        sluice::admin_http::start(admin).await?;
    }
    let broker = Broker::open(config)?;
    let _ = sluice::admin_http::BROKER.set(Arc::downgrade(&broker));
    let tier_task = match broker.tier.clone() {
        Some(tier) => {
            // Manifests first: the log start of a partition may lie in the tier.
            tier.load(&broker.topics()).await;
            let b = broker.clone();
            Some(tokio::spawn(tier.run(move || b.topics())))
        }
        None => None,
    };
    // Transactions a crash left between Prepare* and Complete*: their markers go out first.
    // Clients touching them meanwhile get CONCURRENT_TRANSACTIONS and retry.
    for job in broker.transactions.unfinished_markers() {
        tracing::info!(transactional_id = %job.transactional_id, result = ?job.result, "finishing a transaction left unfinished");
        broker.finish_transaction(job);
    }
    let listeners = Listeners::start(broker.clone()).await?;
    broker.join_cluster(listeners.endpoints.clone())?;
    sluice::admin_http::READY.store(true, std::sync::atomic::Ordering::Release);
    tracing::info!(cluster_id = %broker.cluster_id, node_id = broker.config.node_id, data_dir = %broker.config.data_dir.display(), "sluice started");

    let retention_broker = broker.clone();
    let retention = tokio::spawn(async move {
        let mut tick = tokio::time::interval(retention_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let b = retention_broker.clone();
            let _ = tokio::task::spawn_blocking(move || b.apply_retention()).await;
        }
    });

    broker.start_cleaner();
    let groups = spawn_group_timers(broker.clone());
    let transactions = spawn_transaction_timers(broker.clone());

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    broker.leave_cluster();
    retention.abort();
    if let Some(task) = tier_task {
        task.abort();
    }
    for task in groups.into_iter().chain(transactions) {
        task.abort();
    }
    listeners.shutdown(Duration::from_secs(10)).await;
    // Joins the cleaner threads (a pass in progress finishes first).
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.stop_cleaner()).await?;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close()).await?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Aborting transactions past their timeout, expiring idle transactional ids, and compacting
/// the transaction log.
fn spawn_transaction_timers(broker: Arc<Broker>) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = broker.transactions.config().clone();
    let aborts = broker.clone();
    let abort_timed_out = tokio::spawn(async move {
        let mut every =
            tokio::time::interval(Duration::from_millis(cfg.abort_timed_out_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            for job in aborts
                .transactions
                .abort_timed_out(sluice::log::now_ms())
                .await
            {
                aborts.finish_transaction(job);
            }
        }
    });
    let expire = tokio::spawn(async move {
        let mut every =
            tokio::time::interval(Duration::from_millis(cfg.remove_expired_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            broker
                .transactions
                .expire_transactional_ids(sluice::log::now_ms())
                .await;
            let b = broker.clone();
            let _ = tokio::task::spawn_blocking(move || b.transactions.compact_if_needed()).await;
        }
    });
    vec![abort_timed_out, expire]
}

/// Group session/rebalance timers (every 100 ms), offset expiry and group-log compaction.
fn spawn_group_timers(broker: Arc<Broker>) -> Vec<tokio::task::JoinHandle<()>> {
    let timers = broker.clone();
    let tick = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            timers.groups.tick();
        }
    });
    let maintenance = tokio::spawn(async move {
        let expiry_every =
            Duration::from_millis(broker.groups.config().offsets_retention_check_interval_ms);
        let mut last_expiry = tokio::time::Instant::now();
        let mut every = tokio::time::interval(Duration::from_secs(10));
        loop {
            every.tick().await;
            let expire = last_expiry.elapsed() >= expiry_every;
            if expire {
                last_expiry = tokio::time::Instant::now();
            }
            let b = broker.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if expire {
                    b.groups.expire_offsets();
                }
                b.groups.compact_if_needed();
            })
            .await;
        }
    });
    vec![tick, maintenance]
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
