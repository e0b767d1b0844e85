//! The pre-checked prelude in the user's cache: `caravan run` and `caravan
//! check` start from the checker's state after the prelude
//! ([`caravan_compiler::prelude::Prelude`]) instead of parsing and checking
//! it on every start, as Go keeps compiled packages in `GOCACHE`.
//!
//! The file is `$CARAVAN_CACHE_DIR/prelude-<build id>.bin`; without that
//! variable the directory is `caravan` in the platform's cache directory
//! (`$XDG_CACHE_HOME`, else `~/.cache`, on Linux). The build id is the
//! GNU build id the linker put in this executable (a hash of its
//! contents), so a rebuilt or another `caravan` never reads a state it did
//! not write. The first run of a build checks the prelude from source and
//! writes the file (to a temporary name, then renamed: concurrent runs
//! each write a whole file, and readers see one or none). A missing,
//! unreadable, unwritable or damaged file is never an error: the prelude
//! is then checked from source, as before. `CARAVAN_CACHE_DIR=` (empty)
//! turns the cache off.
//!
//! Each build writes its own file, so a developer who rebuilds often would
//! collect one 16 KB file per build (47 in a day on the machine where this
//! was noticed). A build that writes its file also removes all but the
//! [`KEEP_OTHERS`] most recently used files of other builds ([`prune`]),
//! as Go trims `GOCACHE`: a build whose file was removed checks the
//! prelude once more on its next run and writes it again. A read marks a
//! file as used (its modification time, refreshed at most once a day, as
//! Go refreshes its cache entries' times at most once an hour).

use caravan_compiler::prelude::Prelude;
use std::path::PathBuf;

/// The checked prelude: read from the cache, or checked now and written
/// to it. `None` when there is no build id or no cache directory (the
/// caller checks the prelude from source).
pub fn load() -> Option<Prelude> {
    let id = build_id()?;
    let dir = cache_dir()?;
    let path = dir.join(format!("prelude-{id}.bin"));
    if let Some(p) = read_and_keep(&path).and_then(|b| Prelude::from_bytes(&b)) {
        return Some(p);
    }
    let p = Prelude::check()?;
    if store(&dir, &path, &p.to_bytes()) {
        prune(&dir, &path);
    }
    Some(p)
}

/// Files of other builds kept when a build writes its own.
pub const KEEP_OTHERS: usize = 4;

/// A file whose modification time is older than this (s) gets it set to
/// now when it is read, so that [`prune`], which keeps the most recently
/// modified files, keeps the builds in use.
const TOUCH_AFTER_S: u64 = 24 * 3600;

/// The bytes of `path`; its modification time is set to now if it was
/// more than [`TOUCH_AFTER_S`] ago (one `fstat` per read, a `futimens` at
/// most once a day).
fn read_and_keep(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let now = std::time::SystemTime::now();
    let stale = f.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
        now.duration_since(t)
            .is_ok_and(|d| d.as_secs() > TOUCH_AFTER_S)
    });
    if stale {
        // Opened read-only: set the time through a path-based open for
        // writing; a read-only file or directory only costs the refresh.
        if let Ok(w) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = w.set_modified(now);
        }
    }
    Some(bytes)
}

/// True for `prelude-<hex>.bin`, the name of a build's file.
fn is_prelude_file(name: &str) -> bool {
    name.strip_prefix("prelude-")
        .and_then(|r| r.strip_suffix(".bin"))
        .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Removes from `dir` the prelude files (`prelude-<hex>.bin`) of other
/// builds than `ours` except the [`KEEP_OTHERS`] most recently modified
/// (written, or read on a later day), and temporary files of
/// writers that died more than an hour ago. Errors are ignored (another
/// run may be pruning too).
fn prune(dir: &std::path::Path, ours: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut others = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path == ours {
            continue;
        }
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(modified) = e.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if is_prelude_file(&name) {
            others.push((modified, path));
        } else if name.starts_with(".prelude-")
            && name.ends_with(".tmp")
            && now
                .duration_since(modified)
                .is_ok_and(|d| d.as_secs() > 3600)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (_, path) in others.into_iter().skip(KEEP_OTHERS) {
        let _ = std::fs::remove_file(path);
    }
}

/// Writes `bytes` to `path` through a temporary file in `dir` and a
/// rename; true if it was written. Errors are ignored: the next run tries
/// again.
fn store(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let tmp = dir.join(format!(
        ".prelude-{}-{}.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_ok() {
        return true;
    }
    let _ = std::fs::remove_file(&tmp);
    false
}

/// `$CARAVAN_CACHE_DIR` (empty: no cache), else `caravan` in the
/// platform's cache directory.
fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("CARAVAN_CACHE_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => dirs::cache_dir().map(|d| d.join("caravan")),
    }
}

/// This executable's GNU build id (`.note.gnu.build-id`), in hex: read
/// from the note in the program headers the loader mapped, found with
/// `dl_iterate_phdr` (its first object is the executable). `None` if the
/// executable has none (linked without `--build-id`) or off Linux.
#[cfg(target_os = "linux")]
pub fn build_id() -> Option<String> {
    use std::ffi::{c_int, c_void};

    /// `NT_GNU_BUILD_ID`, the note type of a build id (owner "GNU").
    const NT_GNU_BUILD_ID: u32 = 3;

    unsafe extern "C" fn first_object(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` for the duration
        // of the call, and `data` is the `Option<Vec<u8>>` `build_id` lent.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Option<Vec<u8>>>()) };
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_NOTE {
                continue;
            }
            let start = (info.dlpi_addr + ph.p_vaddr) as *const u8;
            // SAFETY: a PT_NOTE segment lies inside a loaded segment of the
            // object (the loader mapped it, readable, for its lifetime).
            let notes = unsafe { std::slice::from_raw_parts(start, ph.p_memsz as usize) };
            if let Some(id) = find_build_id(notes) {
                *out = Some(id.to_vec());
                break;
            }
        }
        1 // stop after the first object: the executable
    }

    /// The build id among `notes` (ELF note entries: name size, descriptor
    /// size and type as 4-byte words, then the name and the descriptor,
    /// each padded to 4 bytes).
    fn find_build_id(mut notes: &[u8]) -> Option<&[u8]> {
        let word = |b: &[u8], i: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        let pad = |n: usize| n.checked_add(3).map(|n| n & !3);
        while notes.len() >= 12 {
            let namesz = word(notes, 0)? as usize;
            let descsz = word(notes, 4)? as usize;
            let kind = word(notes, 8)?;
            let name_end = 12usize.checked_add(pad(namesz)?)?;
            let desc_end = name_end.checked_add(pad(descsz)?)?;
            let name = notes.get(12..12 + namesz)?;
            let desc = notes.get(name_end..name_end.checked_add(descsz)?)?;
            if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && !desc.is_empty() {
                return Some(desc);
            }
            notes = notes.get(desc_end..)?;
        }
        None
    }

    let mut id: Option<Vec<u8>> = None;
    // SAFETY: the callback only reads what the loader hands it and writes
    // `id`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(first_object), (&mut id as *mut Option<Vec<u8>>).cast());
    }
    let id = id?;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(not(target_os = "linux"))]
pub fn build_id() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("caravan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `bytes` to `path`, then sets its modification time.
    fn write_at(path: &std::path::Path, bytes: &[u8], modified: std::time::SystemTime) {
        std::fs::write(path, bytes).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|f| f.set_modified(modified))
            .unwrap();
    }

    /// Writing a build's file keeps it and the [`KEEP_OTHERS`] newest files
    /// of other builds; older ones, and temporary files of writers that
    /// died long ago, go. Other files in the directory stay.
    #[test]
    fn writing_a_builds_file_prunes_old_builds() {
        let dir = scratch("prune");
        let now = std::time::SystemTime::now();
        let age = |secs: u64| now - std::time::Duration::from_secs(secs);
        let make = |name: &str, modified| write_at(&dir.join(name), b"", modified);
        // Seven other builds, b0 the newest; ours is the oldest of all.
        for i in 0..7u64 {
            make(&format!("prelude-b{i}.bin"), age(100 * (i + 1)));
        }
        make("prelude-ours.bin", age(10_000));
        make("prelude-not-a-build.bin", age(20_000));
        make(".prelude-1-2.tmp", age(7200));
        make(".prelude-3-4.tmp", age(10));
        make("notes.txt", age(10_000));
        let ours = dir.join("prelude-ours.bin");
        prune(&dir, &ours);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".prelude-3-4.tmp",
                "notes.txt",
                "prelude-b0.bin",
                "prelude-b1.bin",
                "prelude-b2.bin",
                "prelude-b3.bin",
                "prelude-not-a-build.bin",
                "prelude-ours.bin",
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Reading a build's file marks it as used when its time is over a day
    /// old (so that other builds' pruning keeps it), and leaves a recent
    /// time alone (no write on every start).
    #[test]
    fn reading_a_file_written_days_ago_marks_it_used() {
        let dir = scratch("touch");
        let now = std::time::SystemTime::now();
        let old = now - std::time::Duration::from_secs(3 * 24 * 3600);
        let recent = now - std::time::Duration::from_secs(3600);
        for (name, t) in [("old", old), ("recent", recent)] {
            write_at(&dir.join(name), b"bytes", t);
        }
        let modified = |name: &str| {
            std::fs::metadata(dir.join(name))
                .unwrap()
                .modified()
                .unwrap()
        };
        assert_eq!(
            read_and_keep(&dir.join("old")).as_deref(),
            Some(&b"bytes"[..])
        );
        assert_eq!(
            read_and_keep(&dir.join("recent")).as_deref(),
            Some(&b"bytes"[..])
        );
        assert!(modified("old") >= now, "refreshed");
        assert_eq!(modified("recent"), recent, "left alone");
        assert_eq!(read_and_keep(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_build_id_is_the_one_the_linker_wrote() {
        let id = build_id().expect("Rust's linker invocation passes --build-id");
        assert!(
            id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(build_id().as_deref(), Some(&*id), "the same on every call");
        // The same id readelf finds in the file.
        let exe = std::env::current_exe().unwrap();
        if let Ok(out) = std::process::Command::new("readelf")
            .arg("-n")
            .arg(&exe)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(&format!("Build ID: {id}")), "{text}");
        }
    }
}
