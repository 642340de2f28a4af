// Migrations (sqlx::migrate!), templates (askama) and the console's static
// files (include_bytes!) are compiled in; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=static");
}
