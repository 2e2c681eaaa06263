//! Contention is waited out, not passed on (ADR 0012): units of work that meet SQLITE_BUSY, a
//! deadlock (40P01) or a serialization failure (40001) are run again by `store::with_retry`.
//! Each test provokes the contention for real, and would fail without the retry.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ehrshare_store::outbox::NewMessage;
use ehrshare_store::{
    AuditLog, AuditOptions, Backend, ChangeFuture, Conn, Db, DbOptions, Pool, RetryPolicy,
    StoreError, change, with_retry,
};
use ehrshare_testkit::TestDb;
use ehrshare_testkit::audit::sample_entry;

use sqlx::Connection;

/// A migrated database, opened again with a busy timeout far shorter than the lock the tests
/// hold, so that a statement meets SQLITE_BUSY at once.
async fn impatient(db: &TestDb) -> Db {
    db.migrated().await.close().await;
    let options = DbOptions {
        sqlite_busy_timeout: Duration::from_millis(10),
        ..DbOptions::default()
    };
    Db::connect(db.url(), options).await.unwrap()
}

#[tokio::test]
async fn the_audit_writer_waits_out_a_held_sqlite_write_lock() {
    let test_db = TestDb::empty().await;
    if test_db.backend() != Backend::Sqlite {
        return; // SQLITE_BUSY is SQLite's; PostgreSQL's contention has its own tests below.
    }
    let db = impatient(&test_db).await;
    let log = AuditLog::open(db.clone(), AuditOptions::default())
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    // Both entries to the writer: an entry alone (tried in place, then handed to the pool path)
    // and one with a change (the pool path).
    for with_change in [false, true] {
        let mut holder = sqlx::SqliteConnection::connect(test_db.url())
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
        });
        let entry = sample_entry(now, u64::from(with_change));
        let appended = if with_change {
            let key = "retry-test";
            log.append_with(
                entry,
                change(move |conn: Conn<'_>| -> ChangeFuture<'_> {
                    Box::pin(async move { ehrshare_store::put_meta(conn, key, "written").await })
                }),
            )
            .await
        } else {
            log.append(entry).await
        };
        release.await.unwrap();
        let appended = appended.unwrap_or_else(|e| panic!("change {with_change}: {e}"));
        assert_eq!(appended.seq, u64::from(with_change));
    }
    assert_eq!(db.audit_size().await.unwrap(), 2);
    assert_eq!(
        db.meta("retry-test").await.unwrap().as_deref(),
        Some("written")
    );
    // Held for longer than every attempt together: passed on as contention, nothing kept.
    let mut holder = sqlx::SqliteConnection::connect(test_db.url())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let err = log.append(sample_entry(now, 9)).await.unwrap_err();
    assert!(err.is_contention() && err.is_unavailable(), "{err:?}");
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(db.audit_size().await.unwrap(), 2);
}

fn message(n: u128, now: time::OffsetDateTime) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::from_u128(n),
        created_at: now,
        recipient: None,
        address: format!("+8529000000{n}"),
        channel: "sms".to_owned(),
        template: "access-key".to_owned(),
        params: serde_json::json!({}),
        locale: "en".to_owned(),
    }
}

async fn deadlocks(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_outbox_claim_chosen_as_a_deadlock_victim_is_run_again() {
    let test_db = TestDb::empty().await;
    if test_db.backend() != Backend::Postgres {
        return; // SQLite has no row locks and no deadlock.
    }
    let db = test_db.migrated().await;
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let mut writer = sqlx::PgConnection::connect(test_db.url()).await.unwrap();
    ehrshare_store::outbox::enqueue(
        Conn::Postgres(&mut writer),
        &[message(1, now), message(2, now)],
    )
    .await
    .unwrap();
    let (first, second) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    let before = deadlocks(&mut writer).await;
    // Another transaction holds the second message; the claim takes the first, then waits.
    let mut other = sqlx::PgConnection::connect(test_db.url()).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
    let lock = "UPDATE outbox_message SET attempts = attempts WHERE id = $1";
    sqlx::query(lock)
        .bind(second)
        .execute(&mut other)
        .await
        .unwrap();
    let claimer = db.clone();
    let claim = tokio::spawn(async move {
        let at = time::OffsetDateTime::now_utc();
        claimer
            .outbox_claim_due(at, at + time::Duration::minutes(5), 10)
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Now the other transaction waits for the first message: a deadlock. The claim has waited
    // longer, so its check runs first and it is the victim (40P01).
    sqlx::query(lock)
        .bind(first)
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    let claimed = claim.await.unwrap().expect("the claim was run again");
    assert_eq!(
        claimed.len(),
        2,
        "both messages claimed by the second attempt"
    );
    assert!(claimed.iter().all(|m| m.attempts == 1));
    assert_eq!(
        deadlocks(&mut writer).await,
        before + 1,
        "a deadlock happened (and was waited out)"
    );
}

#[tokio::test]
async fn a_serialization_failure_is_run_again() {
    let test_db = TestDb::empty().await;
    if test_db.backend() != Backend::Postgres {
        return; // SQLite serialises writers with its lock: SQLITE_BUSY, tested above.
    }
    let db = test_db.migrated().await;
    let Pool::Postgres(pool) = db.pool() else {
        unreachable!()
    };
    sqlx::query("INSERT INTO ehrshare_meta (key, value) VALUES ('counter', '0')")
        .execute(pool)
        .await
        .unwrap();
    let other = sqlx::PgConnection::connect(test_db.url()).await.unwrap();
    let attempts = AtomicU32::new(0);
    let other = tokio::sync::Mutex::new(other);
    let result = with_retry(RetryPolicy::default(), || async {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        let mut tx = pool.begin().await?;
        sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        let value: String =
            sqlx::query_scalar("SELECT value FROM ehrshare_meta WHERE key = 'counter'")
                .fetch_one(&mut *tx)
                .await?;
        if n == 0 {
            // Another transaction changes the row after this one's snapshot was taken.
            sqlx::query("UPDATE ehrshare_meta SET value = '10' WHERE key = 'counter'")
                .execute(&mut *other.lock().await)
                .await?;
        }
        let next = value.parse::<i64>().unwrap_or(0) + 1;
        sqlx::query("UPDATE ehrshare_meta SET value = $1 WHERE key = 'counter'")
            .bind(next.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(next)
    })
    .await;
    assert_eq!(
        result.unwrap(),
        11,
        "the second attempt read the other's value"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

/// Two handles on one SQLite file that give up on a lock at once, and a connection that holds
/// the write lock until told to let go.
async fn contended() -> (tempfile::TempDir, Db, sqlx::SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let options = DbOptions {
        sqlite_busy_timeout: Duration::ZERO,
        ..DbOptions::default()
    };
    let db = Db::connect(&url, options).await.unwrap();
    ehrshare_store::on_pool!(&db, p => {
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(p).await.unwrap();
    });
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    (dir, db, holder)
}

#[tokio::test]
async fn with_retry_runs_a_unit_of_work_again_until_the_lock_is_released() {
    let (_dir, db, holder) = contended().await;
    let holder = tokio::sync::Mutex::new(Some(holder));
    let attempts = AtomicU32::new(0);
    let Pool::Sqlite(pool) = db.pool() else {
        unreachable!()
    };
    with_retry(RetryPolicy::default(), || async {
        let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let result = sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(pool)
            .await
            .map_err(StoreError::from);
        if n == 2 {
            // Let go of the lock after the second failure: the third attempt succeeds.
            if let Some(mut h) = holder.lock().await.take() {
                sqlx::raw_sql("COMMIT").execute(&mut h).await.unwrap();
            }
        }
        result
    })
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn with_retry_gives_up_after_the_bounded_attempts() {
    let (_dir, db, _holder) = contended().await;
    let Pool::Sqlite(pool) = db.pool() else {
        unreachable!()
    };
    let attempts = AtomicU32::new(0);
    let policy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(1),
    };
    let err = with_retry(policy, || async {
        attempts.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(pool)
            .await
            .map_err(StoreError::from)
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn with_retry_does_not_run_again_on_other_errors() {
    let (_dir, db, _holder) = contended().await;
    let Pool::Sqlite(pool) = db.pool() else {
        unreachable!()
    };
    let attempts = AtomicU32::new(0);
    let err = with_retry(RetryPolicy::default(), || async {
        attempts.fetch_add(1, Ordering::SeqCst);
        sqlx::query("SELECT * FROM no_such_table")
            .execute(pool)
            .await
            .map_err(StoreError::from)
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
