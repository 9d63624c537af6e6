//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds `migrations/`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
