//! Row locks for read-then-write sequences. On PostgreSQL, `SELECT … FOR UPDATE` makes a second
//! transaction wait for the first before it reads the row, so two changes of one record (two status
//! changes of one case, two sends against one case's caps) apply one after the other. SQLite needs nothing:
//! a write transaction (`BEGIN IMMEDIATE`) already holds the database's one write lock.

use diesel::RunQueryDsl as _;
use diesel::sql_types::Text;

use super::AnyConnection;

/// Tables whose rows may be locked by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Cases,
    Contacts,
    Reports,
}

impl Locked {
    fn query(self) -> &'static str {
        match self {
            Locked::Cases => "SELECT id FROM cases WHERE id = $1 FOR UPDATE",
            Locked::Contacts => "SELECT id FROM contacts WHERE id = $1 FOR UPDATE",
            Locked::Reports => "SELECT id FROM reports WHERE id = $1 FOR UPDATE",
        }
    }
}

/// Locks the row `id` of `table` until the current transaction ends (PostgreSQL); a no-op on SQLite.
pub fn lock_row(conn: &mut AnyConnection, table: Locked, id: &str) -> diesel::QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query(table.query()).bind::<Text, _>(id).execute(pg)?;
    }
    Ok(())
}
