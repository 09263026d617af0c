//! The storage layer on both backends: per-connection SQLite settings, migrations (same versions in both
//! trees, up → down → up), the hand-kept schema against the real tables, and transactions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use komek::db::schema::*;
use komek::db::{AnyConnection, DbError, migrate};

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

backend_tests!(
    migrations_go_up_down_and_up_again,
    the_schema_module_matches_the_migrated_tables,
    a_failed_write_rolls_back,
    concurrent_writes_all_commit,
    foreign_keys_are_enforced_on_every_connection,
    the_audit_log_refuses_updates_and_deletes,
);

#[derive(QueryableByName)]
struct Pragma {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Text)]
    value: String,
}

fn versions(tree: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(tree);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_migration_trees_hold_the_same_versions() {
    let sqlite = versions("sqlite");
    let postgres = versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must hold the same version names"
    );
    for tree in ["sqlite", "postgres"] {
        for version in &sqlite {
            for file in ["up.sql", "down.sql"] {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(tree)
                    .join(version)
                    .join(file);
                assert!(path.is_file(), "{} is missing", path.display());
            }
        }
    }
}

fn table_names(conn: &mut AnyConnection) -> BTreeSet<String> {
    let query = match conn {
        AnyConnection::Sqlite(_) => {
            "SELECT name AS value FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name != '__diesel_schema_migrations'"
        }
        AnyConnection::Postgresql(_) => {
            "SELECT tablename::text AS value FROM pg_tables WHERE schemaname = 'public' \
             AND tablename != '__diesel_schema_migrations'"
        }
    };
    diesel::sql_query(query)
        .load::<TextValue>(conn)
        .unwrap()
        .into_iter()
        .map(|row| row.value)
        .collect()
}

async fn migrations_go_up_down_and_up_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tables_up, tables_down, tables_again) = app
        .db
        .run(|conn| {
            let up = table_names(conn);
            let reverted = migrate::revert_all(conn)?;
            assert!(!reverted.is_empty());
            let down = table_names(conn);
            let applied = migrate::run_pending(conn)?;
            assert_eq!(applied.len(), reverted.len());
            Ok::<_, DbError>((up, down, table_names(conn)))
        })
        .await
        .unwrap();
    assert!(
        tables_up.contains("cases") && tables_up.contains("audit_log"),
        "{tables_up:?} on {backend:?}"
    );
    assert!(
        tables_down.is_empty(),
        "down.sql must remove every table: {tables_down:?} remain on {backend:?}"
    );
    assert_eq!(tables_up, tables_again);
}

async fn the_schema_module_matches_the_migrated_tables(backend: Backend) {
    let app = spawn_app(backend).await;
    app.db
        .run(|conn| {
            // Selecting every column names each one: a column in schema.rs that the migration lacks fails.
            organizations::table.select(organizations::all_columns).load::<(
                String,
                String,
                String,
                Option<String>,
                String,
                chrono::NaiveDateTime,
                chrono::NaiveDateTime,
            )>(conn)?;
            users::table.select(users::all_columns).limit(1).execute(conn)?;
            channels::table
                .select(channels::all_columns)
                .limit(1)
                .execute(conn)?;
            contacts::table
                .select(contacts::all_columns)
                .limit(1)
                .execute(conn)?;
            cases::table.select(cases::all_columns).limit(1).execute(conn)?;
            reports::table
                .select(reports::all_columns)
                .limit(1)
                .execute(conn)?;
            case_events::table
                .select(case_events::all_columns)
                .limit(1)
                .execute(conn)?;
            consents::table
                .select(consents::all_columns)
                .limit(1)
                .execute(conn)?;
            outbox::table.select(outbox::all_columns).limit(1).execute(conn)?;
            komek::db::schema::notification_recipients::table
                .select(komek::db::schema::notification_recipients::all_columns)
                .limit(1)
                .execute(conn)?;
            audit_log::table
                .select(audit_log::all_columns)
                .limit(1)
                .execute(conn)?;
            sessions::table
                .select(sessions::all_columns)
                .limit(1)
                .execute(conn)?;
            refresh_tokens::table
                .select(refresh_tokens::all_columns)
                .limit(1)
                .execute(conn)?;
            calls::table.select(calls::all_columns).limit(1).execute(conn)?;
            duty_rosters::table
                .select(duty_rosters::all_columns)
                .limit(1)
                .execute(conn)?;
            call_recordings::table
                .select(call_recordings::all_columns)
                .limit(1)
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    let names = app
        .db
        .run(|conn| Ok::<_, DbError>(table_names(conn)))
        .await
        .unwrap();
    let expected: BTreeSet<String> = [
        "organizations",
        "users",
        "channels",
        "contacts",
        "cases",
        "reports",
        "case_events",
        "consents",
        "outbox",
        "audit_log",
        "notification_recipients",
        "sessions",
        "refresh_tokens",
        "calls",
        "duty_rosters",
        "call_recordings",
        "case_profiles",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        names, expected,
        "every migrated table must be declared in src/db/schema.rs"
    );
}

fn insert_org(conn: &mut AnyConnection, slug: &str) -> QueryResult<usize> {
    let now = chrono::Utc::now().naive_utc();
    diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(uuid::Uuid::now_v7().to_string()),
            organizations::slug.eq(slug),
            organizations::name.eq("Test NGO"),
            organizations::created_at.eq(now),
            organizations::updated_at.eq(now),
        ))
        .execute(conn)
}

async fn a_failed_write_rolls_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let result = app
        .db
        .write(|conn| {
            insert_org(conn, "rolled-back")?;
            Err::<(), DbError>(DbError::Task("fail on purpose".to_owned()))
        })
        .await;
    assert!(result.is_err());
    let count: i64 = app
        .db
        .run(|conn| {
            organizations::table
                .filter(organizations::slug.eq("rolled-back"))
                .count()
                .get_result(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 0, "a write whose closure fails must leave nothing behind");
}

async fn concurrent_writes_all_commit(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |conn| {
                // Read, then write, in one transaction: with a deferred BEGIN this is where SQLite fails
                // with SQLITE_BUSY instead of waiting.
                let _: i64 = organizations::table.count().get_result(conn)?;
                insert_org(conn, &format!("org-{i}"))?;
                Ok::<_, DbError>(())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let count: i64 = app
        .db
        .run(|conn| {
            organizations::table
                .count()
                .get_result(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 24);
}

async fn foreign_keys_are_enforced_on_every_connection(backend: Backend) {
    let app = spawn_app(backend).await;
    // Check out several connections at once, so that more than one physical connection is examined.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            db.run(|conn| {
                if let AnyConnection::Sqlite(_) = conn {
                    let fk = diesel::sql_query("SELECT foreign_keys AS value FROM pragma_foreign_keys()")
                        .load::<Pragma>(conn)?;
                    assert_eq!(fk.first().map(|p| p.value), Some(1), "foreign_keys must be ON");
                    let busy = diesel::sql_query("SELECT timeout AS value FROM pragma_busy_timeout()")
                        .load::<Pragma>(conn)?;
                    assert!(
                        busy.first().is_some_and(|p| p.value >= 1000),
                        "busy_timeout must be set"
                    );
                    let sync = diesel::sql_query("SELECT synchronous AS value FROM pragma_synchronous()")
                        .load::<Pragma>(conn)?;
                    assert_eq!(
                        sync.first().map(|p| p.value),
                        Some(2),
                        "synchronous must be FULL (2)"
                    );
                    let mode = diesel::sql_query("SELECT journal_mode AS value FROM pragma_journal_mode()")
                        .load::<TextValue>(conn)?;
                    assert_eq!(mode.first().map(|m| m.value.as_str()), Some("wal"));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                let now = chrono::Utc::now().naive_utc();
                let orphan = diesel::insert_into(channels::table)
                    .values((
                        channels::id.eq(uuid::Uuid::new_v4().to_string()),
                        channels::organization_id.eq("no-such-organization"),
                        channels::provider.eq("twilio"),
                        channels::created_at.eq(now),
                        channels::updated_at.eq(now),
                    ))
                    .execute(conn);
                assert!(
                    matches!(
                        orphan,
                        Err(diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                            _
                        ))
                    ),
                    "a row pointing at a missing organization must be refused: {orphan:?}"
                );
                Ok::<_, DbError>(())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

async fn the_audit_log_refuses_updates_and_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.db
        .write(|conn| {
            diesel::insert_into(audit_log::table)
                .values((
                    audit_log::seq.eq(1_i64),
                    audit_log::at.eq(chrono::Utc::now().naive_utc()),
                    audit_log::actor_kind.eq("system"),
                    audit_log::action.eq("test"),
                    audit_log::outcome.eq("ok"),
                    audit_log::prev_hash.eq(""),
                    audit_log::hash.eq("h"),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    let update = app
        .db
        .write(|conn| {
            diesel::update(audit_log::table)
                .set(audit_log::action.eq("changed"))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    assert!(update.is_err(), "audit_log must be append-only (update)");
    let delete = app
        .db
        .write(|conn| {
            diesel::delete(audit_log::table)
                .execute(conn)
                .map_err(DbError::from)
        })
        .await;
    assert!(delete.is_err(), "audit_log must be append-only (delete)");
}
