//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds `migrations/` and
//! `migrations-postgres/`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-postgres");
}
