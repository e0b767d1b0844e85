//! The engine on every prefix of real programs (what an editor shows while
//! a file is typed): no request may panic. Runs in-process on a thread
//! with a large stack, as the server does.

use caravan_lsp::engine::Engine;
use caravan_lsp::lsp_types::{Position, Range, Url};
use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = vec![];
    for dir in ["lsp/tests/fixtures", "examples"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cvn"))
            .collect();
        files.sort();
        for p in files {
            out.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn every_prefix_answers_without_panicking() {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(|| {
            let dir = std::env::temp_dir().join(format!("caravan-engine-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut e = Engine::new();
            for (name, text) in sources() {
                let path = dir.join(&name);
                let uri = Url::from_file_path(&path).unwrap();
                let step = (text.len() / 25).max(1);
                let mut cut = 0;
                while cut <= text.len() {
                    while !text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    let prefix = &text[..cut];
                    e.set_doc(uri.clone(), prefix.to_string(), 1);
                    let _ = e.diagnostics();
                    let lines = prefix.lines().count() as u32;
                    let end = Position::new(lines, 0);
                    let _ = e.document_symbols(&uri);
                    let _ = e.inlay_hints(&uri, Range::new(Position::new(0, 0), end));
                    let last = prefix.lines().last().unwrap_or("");
                    let tail =
                        Position::new(lines.saturating_sub(1), last.encode_utf16().count() as u32);
                    for p in [tail, Position::new(0, 4), Position::new(lines / 2, 6)] {
                        let _ = e.hover(&uri, p);
                        let _ = e.definition(&uri, p);
                        let _ = e.completion(&uri, p);
                        let _ = e.signature_help(&uri, p);
                        let _ = e.references(&uri, p, true);
                        let _ = e.prepare_rename(&uri, p);
                        let _ = e.rename(&uri, p, "renamed");
                    }
                    cut += step;
                }
                e.close_doc(&uri);
            }
            let _ = e.workspace_symbols("a");
            let _ = std::fs::remove_dir_all(&dir);
        })
        .unwrap()
        .join()
        .expect("a request panicked");
}
