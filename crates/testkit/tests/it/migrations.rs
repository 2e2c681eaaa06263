//! Migrations: idempotent, safe to run concurrently, and refusing a tampered history.

use ehrshare_store::{StoreError, migrations_for};
use ehrshare_testkit::TestDb;

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = TestDb::empty().await;
    let pool = db.connect().await;
    let all: Vec<i64> = migrations_for(pool.backend())
        .iter()
        .map(|m| m.version)
        .collect();

    let first = pool.migrate().await.unwrap();
    assert_eq!(first.applied, all);
    assert_eq!(first.already_applied, 0);

    let id = pool.instance_id().await.unwrap();
    assert_eq!(id.len(), 32, "{id}");

    let second = pool.migrate().await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, all.len());
    // The first migration's data was not applied twice.
    assert_eq!(pool.instance_id().await.unwrap(), id);
}

#[tokio::test]
async fn concurrent_migrations_apply_each_version_once() {
    let db = TestDb::empty().await;
    let a = db.connect().await;
    let b = db.connect().await;
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let total = migrations_for(a.backend()).len();
    assert_eq!(ra.applied.len() + rb.applied.len(), total);
    assert!(ra.applied.is_empty() || rb.applied.is_empty());
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let db = TestDb::empty().await;
    let pool = db.migrated().await;
    ehrshare_store::on_pool!(&pool, p => {
        sqlx::query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
            .execute(p)
            .await
            .unwrap();
    });
    let err = pool.migrate().await.unwrap_err();
    match err {
        StoreError::Migration {
            version, problem, ..
        } => {
            assert_eq!(version, 1);
            assert!(problem.contains("changed"), "{problem}");
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let db = TestDb::empty().await;
    let pool = db.migrated().await;
    ehrshare_store::on_pool!(&pool, p => {
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
             VALUES (9999, 'from_the_future', 'x', '2099-01-01T00:00:00Z')",
        )
        .execute(p)
        .await
        .unwrap();
    });
    let err = pool.migrate().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 9999, .. }),
        "{err:?}"
    );
}
