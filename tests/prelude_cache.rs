//! The pre-checked prelude in the cache (`src/prelude_cache.rs`): the first
//! run writes it, later runs read it, and a damaged, missing or unwritable
//! cache never changes what a program does.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{stderr, stdout, Run};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("caravan-prelude-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_with_cache(cache: &Path, file: &str) -> Output {
    let dir = cache.to_str().unwrap();
    Run {
        env: &[("CARAVAN_CACHE_DIR", dir)],
        ..Default::default()
    }
    .file(file, Duration::from_secs(60))
}

/// `caravan run FILE` with the cache turned off (`CARAVAN_CACHE_DIR=`).
fn run_without_cache(file: &str) -> Output {
    Run {
        env: &[("CARAVAN_CACHE_DIR", "")],
        ..Default::default()
    }
    .file(file, Duration::from_secs(60))
}

/// Hello world ran as always: its line, exit 0, nothing on stderr.
fn assert_hello(out: &Output) {
    assert_eq!(stdout(out), "Hello, world!\n", "{}", stderr(out));
    assert!(
        out.status.success() && stderr(out).is_empty(),
        "{}",
        stderr(out)
    );
}

/// The files in `dir`, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_first_run_writes_the_prelude_and_later_runs_read_it() {
    let cache = scratch("write");
    let out = run_with_cache(&cache, "examples/hello.cvn");
    assert_eq!(stdout(&out), "Hello, world!\n", "{}", stderr(&out));
    let names = files(&cache);
    assert_eq!(names.len(), 1, "one file, no temporary left: {names:?}");
    assert!(
        names[0].starts_with("prelude-") && names[0].ends_with(".bin"),
        "{names:?}"
    );
    let written = std::fs::read(cache.join(&names[0])).unwrap();
    assert!(written.starts_with(b"CVNPRL01"), "the encoded prelude");
    let out = run_with_cache(&cache, "examples/hello.cvn");
    assert_eq!(stdout(&out), "Hello, world!\n", "{}", stderr(&out));
    assert_eq!(
        files(&cache),
        names,
        "read, not written again under another name"
    );
    assert!(
        std::fs::read(cache.join(&names[0])).unwrap() == written,
        "not written again"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// A build writing its file leaves at most four files of other builds
/// (the most recently written), so rebuilding does not fill the cache
/// directory; a later run of this build reads its file as before.
#[test]
fn a_new_build_keeps_four_files_of_other_builds() {
    let cache = scratch("prune");
    let now = std::time::SystemTime::now();
    for i in 0..6u64 {
        let f = std::fs::File::create(cache.join(format!("prelude-0dd{i}.bin"))).unwrap();
        f.set_modified(now - Duration::from_secs(3600 * (i + 1)))
            .unwrap();
    }
    let out = run_with_cache(&cache, "examples/hello.cvn");
    assert_hello(&out);
    let names = files(&cache);
    let ours: Vec<&String> = names.iter().filter(|n| !n.contains("-0dd")).collect();
    assert_eq!(ours.len(), 1, "{names:?}");
    let others: Vec<&String> = names.iter().filter(|n| n.contains("-0dd")).collect();
    assert_eq!(
        others,
        [
            "prelude-0dd0.bin",
            "prelude-0dd1.bin",
            "prelude-0dd2.bin",
            "prelude-0dd3.bin"
        ],
        "the four newest stay"
    );
    assert_hello(&run_with_cache(&cache, "examples/hello.cvn"));
    assert_eq!(files(&cache), names, "reading prunes nothing");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_damaged_cache_file_is_checked_again_and_replaced() {
    let cache = scratch("damaged");
    run_with_cache(&cache, "examples/hello.cvn");
    let name = files(&cache).pop().unwrap();
    let good = std::fs::read(cache.join(&name)).unwrap();
    // Garbage, a truncated file, one flipped byte, an empty file.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0xff;
    for bad in [
        b"garbage".to_vec(),
        good[..good.len() / 3].to_vec(),
        flipped,
        vec![],
    ] {
        std::fs::write(cache.join(&name), &bad).unwrap();
        let out = run_with_cache(&cache, "examples/hello.cvn");
        assert_hello(&out);
        // Rewritten with the checked prelude (the same length: the
        // encoding differs only in the order of hash-map entries).
        let now = std::fs::read(cache.join(&name)).unwrap();
        assert!(
            now.starts_with(b"CVNPRL01") && now.len() == good.len(),
            "not rewritten: {} bytes",
            now.len()
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn an_unusable_cache_directory_only_costs_the_check() {
    let dir = scratch("unusable");
    // A cache "directory" that is a regular file: nothing can be written
    // under it.
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let out = run_with_cache(&file, "examples/hello.cvn");
    assert_hello(&out);
    // Turned off with an empty CARAVAN_CACHE_DIR.
    let out = run_without_cache("examples/hello.cvn");
    assert_eq!(stdout(&out), "Hello, world!\n", "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `caravan check FILE` with the cache in `cache` (`None`: turned off).
fn check(cache: Option<&Path>, file: &Path) -> Output {
    Command::new(support::caravan())
        .arg("check")
        .arg(file)
        .env(
            "CARAVAN_CACHE_DIR",
            cache.map_or("", |c| c.to_str().unwrap()),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn programs_behave_the_same_with_and_without_the_cached_prelude() {
    let cache = scratch("same");
    // Exceptions of its own (numbered after the prelude's), standard
    // modules on top of the prelude, and the prelude's own exceptions.
    let prog = cache.join("prog.cvn");
    std::fs::write(
        &prog,
        "exception Mine of int\n\
         let f x = if x > 2 then raise (Mine x) else x\n\
         let () =\n  \
           (try ignore (f 5) with Mine n -> Printf.printf \"mine %d\\n\" n);\n  \
           (try ignore (List.assoc 9 [(1, 2)]) with Not_found -> print_endline \"not found\");\n  \
           print_endline (String.concat \",\" (List.map string_of_int [1; 2; 3]))\n",
    )
    .unwrap();
    let with = run_with_cache(&cache, prog.to_str().unwrap());
    let again = run_with_cache(&cache, prog.to_str().unwrap());
    let without = run_without_cache(prog.to_str().unwrap());
    assert_eq!(
        stdout(&without),
        "mine 5\nnot found\n1,2,3\n",
        "{}",
        stderr(&without)
    );
    assert_eq!(stdout(&with), stdout(&without));
    assert_eq!(stdout(&again), stdout(&without));
    // Diagnostics too.
    let bad = cache.join("bad.cvn");
    std::fs::write(
        &bad,
        "let () = print_endline (List.length [1])\nlet y = undefined_name\n",
    )
    .unwrap();
    let a = check(None, &bad);
    let b = check(Some(&cache), &bad);
    assert!(
        !a.status.success() && stderr(&a).contains("undefined_name"),
        "{}",
        stderr(&a)
    );
    assert_eq!(stderr(&a), stderr(&b));
    let _ = std::fs::remove_dir_all(&cache);
}
