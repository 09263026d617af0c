//! `embed_migrations!` cannot watch the migration folders itself; tell cargo to rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
