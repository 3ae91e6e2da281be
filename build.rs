//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the folder's files, but
//! cargo only notices edits to files it already knows of.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-postgres");
}
