//! Links `caravan` on Linux:
//!
//! * with `link/hot-text.ld`: the functions that `caravan run` executes at
//!   start-up are laid out side by side ahead of `.text`, so the kernel's
//!   fault-around maps them and not the unrelated code between them (hello
//!   world's peak RSS: 12.4 → 9.9 MB). The script and how it is made:
//!   `link/hot-text`.
//! * as a position-dependent executable (`-no-pie`), as Go links its
//!   binaries on linux/amd64: a PIE's ~8,600 relative relocations are
//!   applied by the dynamic loader at every start, and each one writes
//!   into `.data.rel.ro` (180 KB of vtables and static tables), so those
//!   pages are copied on write. Without them, hello world takes ~50 fewer
//!   page faults (551 → 499), 0.16 ms less (4.92 → 4.76 ms, median of 41
//!   interleaved runs) and 1.6 MB less peak RSS. The code stays
//!   position-independent (rustc's default); only the link fixes its
//!   address. Shared libraries, stacks, the heap and generated code are
//!   still placed at random.

fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && script.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
    if linux {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
