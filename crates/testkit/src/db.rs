//! Per-test databases.

use ehrshare_store::{Backend, Db, DbOptions};
use sqlx::Connection;

/// Names a PostgreSQL server (any database on it) to run the tests on; unset means SQLite.
pub const TEST_DATABASE_URL_VAR: &str = "EHRSHARE_TEST_DATABASE_URL";

/// A fresh, migrated database that disappears when the test ends.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
    /// For SQLite: the folder holding the file. Removed on drop.
    dir: Option<tempfile::TempDir>,
    /// For PostgreSQL: the server URL to reconnect to for dropping the database.
    admin_url: Option<String>,
    name: Option<String>,
}

impl TestDb {
    /// The backend the tests are configured for.
    pub fn configured_backend() -> Backend {
        match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(url) if !url.is_empty() => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// An empty database (no migrations applied) on the configured backend.
    pub async fn empty() -> TestDb {
        match std::env::var(TEST_DATABASE_URL_VAR) {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("ehrshare_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach {TEST_DATABASE_URL_VAR}: {e}"));
                // `name` is made here of a fixed prefix and hex digits: nothing to inject.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                TestDb {
                    url: with_database(&admin_url, &name),
                    backend: Backend::Postgres,
                    dir: None,
                    admin_url: Some(admin_url),
                    name: Some(name),
                }
            }
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb {
                    url,
                    backend: Backend::Sqlite,
                    dir: Some(dir),
                    admin_url: None,
                    name: None,
                }
            }
        }
    }

    /// A SQLite database file in `dir` (a folder the caller keeps, such as a [`crate::tmpfs`]
    /// mount), not removed on drop.
    pub fn sqlite_in(dir: &std::path::Path) -> TestDb {
        TestDb {
            url: format!("sqlite://{}", dir.join("test.db").display()),
            backend: Backend::Sqlite,
            dir: None,
            admin_url: None,
            name: None,
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A folder that lives as long as this database (for data-directory files).
    pub fn scratch_dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// A copy of this database as it is now (as a backup would be), as a new test database.
    /// On PostgreSQL the copy needs the source to be idle for a moment: other sessions on it
    /// are ended (pools reconnect on their next use).
    pub async fn snapshot(&self) -> TestDb {
        match (&self.admin_url, &self.name) {
            (Some(admin_url), Some(source)) => {
                let name = format!("ehrshare_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
                let mut last_error = None;
                for _ in 0..20 {
                    // Both names are made here of a fixed prefix and hex digits.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{source}' AND pid <> pg_backend_pid()"
                    )))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                    match sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE DATABASE {name} TEMPLATE {source}"
                    )))
                    .execute(&mut admin)
                    .await
                    {
                        Ok(_) => {
                            last_error = None;
                            break;
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                if let Some(e) = last_error {
                    panic!("cannot copy the database: {e}");
                }
                admin.close().await.unwrap();
                TestDb {
                    url: with_database(admin_url, &name),
                    backend: Backend::Postgres,
                    dir: None,
                    admin_url: Some(admin_url.clone()),
                    name: Some(name),
                }
            }
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("test.db");
                let db = self.connect().await;
                ehrshare_store::on_pool!(&db, p => {
                    // The path is a temporary folder's: no quotes in it.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", path.display())))
                        .execute(p)
                        .await
                        .unwrap();
                });
                db.close().await;
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    backend: Backend::Sqlite,
                    dir: Some(dir),
                    admin_url: None,
                    name: None,
                }
            }
        }
    }

    /// Opens a pool on this database.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url, DbOptions::default()).await.unwrap()
    }

    /// Opens a pool and applies every migration.
    pub async fn migrated(&self) -> Db {
        let db = self.connect().await;
        db.migrate().await.unwrap();
        db
    }
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin_url), Some(name)) = (self.admin_url.take(), self.name.take()) else {
            return;
        };
        // Drop runs outside any async context we could borrow; use a private runtime on a
        // thread of its own. FORCE ends connections a test left open.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
