//! End-to-end test in a real editor: headless Neovim with its built-in LSP
//! client pointed at `caravan lsp` (the script is
//! `lsp/tests/nvim/e2e.lua`), and the Neovim configuration of
//! `lsp/editors/nvim/caravan.lua` (`lsp/tests/nvim/config.lua`). Skipped
//! when `nvim` is not on `PATH`, unless `CARAVAN_REQUIRE_NVIM=1`, which
//! makes a missing `nvim` a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have_nvim() -> bool {
    let found = Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CARAVAN_REQUIRE_NVIM").as_deref() != Ok("1"),
            "CARAVAN_REQUIRE_NVIM=1 but nvim is not on PATH"
        );
        eprintln!("skipped: nvim is not on PATH");
    }
    found
}

/// Runs headless Neovim with `init` (`NONE` or a file) on `script` over a
/// copy of the fixtures; returns its report, failing on a non-zero status,
/// a report without `PASS` or a run longer than two minutes.
fn run_nvim(name: &str, init: &str, script: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::env::temp_dir().join(format!("caravan-nvim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let ws = base.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    for f in ["main.cvn", "geometry.cvn", "broken.cvn"] {
        std::fs::copy(root.join("lsp/tests/fixtures").join(f), ws.join(f)).unwrap();
    }
    let out = base.join("result.txt");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_caravan"));
    let path = std::env::join_paths(std::iter::once(bin.parent().unwrap().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let init = if init == "NONE" {
        "NONE".to_string()
    } else {
        root.join(init).display().to_string()
    };
    let mut child = Command::new("nvim")
        .args(["--headless", "-u", &init, "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", root.join(script).display()))
        .env("PATH", path)
        .env("CARAVAN_BIN", &bin)
        .env("CARAVAN_WS", &ws)
        .env("CARAVAN_NVIM_OUT", &out)
        .env("XDG_CACHE_HOME", base.join("cache"))
        .env("XDG_STATE_HOME", base.join("state"))
        .env("XDG_DATA_HOME", base.join("data"))
        .env("XDG_CONFIG_HOME", base.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nvim");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&base);
    let status = status.unwrap_or_else(|| panic!("nvim timed out\n{report}"));
    assert!(
        status.success() && report.ends_with("PASS\n"),
        "nvim: {status}\n{report}"
    );
    report
}

#[test]
fn neovim_shows_diagnostics_hover_and_jumps_to_definitions() {
    if have_nvim() {
        println!("{}", run_nvim("e2e", "NONE", "lsp/tests/nvim/e2e.lua"));
    }
}

#[test]
fn the_neovim_configuration_attaches_the_server() {
    if have_nvim() {
        let report = run_nvim(
            "config",
            "lsp/editors/nvim/caravan.lua",
            "lsp/tests/nvim/config.lua",
        );
        println!("{report}");
    }
}

#[test]
fn stopping_the_client_leaves_no_server_behind() {
    if have_nvim() {
        println!("{}", run_nvim("stop", "NONE", "lsp/tests/nvim/stop.lua"));
    }
}
