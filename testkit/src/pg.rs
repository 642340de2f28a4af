//! PostgreSQL for tests: the cluster from `TEST_DATABASE_URL` (see
//! scripts/test-postgres.sh), a fresh database per test.

/// The cluster's URL. In CI (`CI=true`) its absence fails the test; elsewhere
/// the test is skipped with a printed reason.
pub fn require_postgres(test: &str) -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{test} needs PostgreSQL: set TEST_DATABASE_URL (eval \"$(scripts/test-postgres.sh start)\")"
            )
        }
        _ => {
            eprintln!("skipped {test}: no TEST_DATABASE_URL (eval \"$(scripts/test-postgres.sh start)\")");
            None
        }
    }
}

/// A new, empty database in the cluster, so tests never see each other's rows.
pub async fn fresh_postgres_database(cluster: &str) -> String {
    use sqlx::Connection;
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let name = format!("og_test_{:016x}", h.finish());
    let mut conn = sqlx::PgConnection::connect(cluster).await.expect("the test cluster answers");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let mut url = url::Url::parse(cluster).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
