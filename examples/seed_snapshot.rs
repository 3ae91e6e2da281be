//! Bench setup for `bench/cli_bench.sh`: fills the state file of a config with the
//! snapshot a converged first pass would have left (every source user, as rosterd
//! would push them to the first provider), so that the next `rosterd sync` is the
//! no-change pass. Nothing is sent anywhere.
//!
//! `cargo run --release --example seed_snapshot -- CONFIG.yaml`

// A benchmark helper, not library code: failing loudly is what it should do.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use rosterd::config::Config;
use rosterd::providers;
use rosterd::store::Store;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: seed_snapshot CONFIG.yaml");
    let config = Config::load(std::path::Path::new(&path)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let loaded = rosterd::source::from_config(&config.source)
            .load()
            .await
            .unwrap();
        let provider = providers::build(&config.providers[0]);
        let store = Store::open(&config.state).await.unwrap();
        support::fill_snapshot(&store, provider.as_ref(), &loaded.users).await;
        store.close().await;
        println!("seeded {} snapshot row(s)", loaded.users.len());
    });
}
