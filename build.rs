//! Links `caravan` on Linux:
//!
//! * with `link/hot-text.ld`: the functions that `caravan run` executes at
//!   start-up are laid out side by side ahead of `.text`, so the kernel's
//!   fault-around maps them and not the unrelated code between them (hello
//!   world's peak RSS: 12.4 → 9.9 MB). The script and how it is made:
//!   `link/hot-text`.
//! * as a position-dependent executable (`-no-pie`) with the GNU
//!   toolchain, as Go links its binaries on linux/amd64: a PIE's ~8,800
//!   dynamic relocations (8,647 relative) are applied by the dynamic
//!   loader at every start, and each relative one writes into
//!   `.data.rel.ro` (180 KB of vtables and static tables), so those pages
//!   are copied on write. Without them (about 200 relocations left),
//!   hello world takes ~50 fewer page faults (551 → 499), 0.16 ms less
//!   (4.92 → 4.76 ms, median of 41 interleaved runs) and 1.6 MB less
//!   peak RSS (release build). The code stays position-independent
//!   (rustc's default); only the link fixes its address. The price: the
//!   executable's own code and data are at a fixed address, so ASLR no
//!   longer hides them from an attacker who finds a memory bug (shared
//!   libraries, stacks, the heap and generated code are still placed at
//!   random), as for Go's and most OCaml binaries.
//! * with GCC's unwinder linked in statically (`libgcc_eh.a`) rather than
//!   loaded as `libgcc_s.so.1`, GNU toolchain only. Loading that library
//!   costs the dynamic loader an open, its mappings and relocations, and
//!   runs its constructor (`__cpu_indicator_init`), which executes `cpuid`
//!   13 times; in a virtual machine each `cpuid` traps to the hypervisor
//!   (6.4 µs apiece on the benchmark VM). Hello world: 545 → 495 page
//!   faults, 3.41 → 3.01 ms of CPU (`perf stat`, 30 runs), median wall
//!   4.60 → 4.34 ms (61 interleaved runs, release build). Panics unwind
//!   and backtraces print as before: it is the same unwinder.

fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && script.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu");
    if linux && gnu {
        println!("cargo:rustc-link-arg-bins=-no-pie");
        static_unwinder();
    }
}

/// Makes `-lgcc_s`, which std's `unwind` crate asks for, find GCC's static
/// unwinder for the binaries: a `libgcc_s.a` link to `libgcc_eh.a` in a
/// directory searched before the compiler's own (the linker takes the
/// first directory holding either form of the library). Does nothing if
/// `gcc` does not name an existing `libgcc_eh.a`; the shared library is
/// then linked as before.
fn static_unwinder() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("static-gcc");
    let Ok(found) = std::process::Command::new("gcc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let eh = std::path::PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    if !eh.is_absolute() || !eh.exists() {
        return;
    }
    let _ = std::fs::create_dir_all(&out);
    let link = out.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    if std::os::unix::fs::symlink(&eh, &link).is_ok() {
        println!("cargo:rustc-link-arg-bins=-L{}", out.display());
    }
}
