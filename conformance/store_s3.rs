//! The storage suite (`tusgate::storage::suite`) against a real S3-compatible server: the same
//! cases the local store passes in its unit tests. The server comes from the environment
//! (`scripts/with-moto.sh` starts moto and sets it); a missing server is a failure, not a skip.

use tusgate::storage::s3::{S3Config, S3Store};
use tusgate::tokens::Secret;

fn required(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this under scripts/with-moto.sh"))
}

fn config(prefix: &str) -> S3Config {
    S3Config {
        bucket: required("STORAGE_BUCKET"),
        endpoint: Some(required("STORAGE_ENDPOINT_URL")),
        region: "us-east-1".into(),
        access_key: Some(required("STORAGE_ACCESS_KEY")),
        secret_key: Some(Secret::new(required("STORAGE_SECRET_KEY"))),
        use_ssl: false,
        verify_ssl: true,
        prefix: prefix.into(),
        part_size: 5 << 20,
        create_bucket: true,
        // Two parts: less than one upload's pipeline (a part filling, two in flight), so
        // every multi-part write also waits for its own parts to release the budget.
        max_buffer: 10 << 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_passes_the_store_suite() {
    let store = S3Store::connect(&config("suite")).await.expect("connect");
    tusgate::storage::suite::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_startup_error() {
    let mut missing = config("");
    missing.bucket = "no-such-bucket-for-tusgate".into();
    missing.create_bucket = false;
    let err = S3Store::connect(&missing).await.expect_err("must fail");
    assert!(err.contains("does not exist"), "{err}");
}
