//! `caravan lsp` as a child process, driven over stdio with JSON-RPC: every
//! feature on the multi-file example of `lsp/tests/fixtures` (a main file
//! using `Geometry`, and a file with errors). Each wait is bounded.

use caravan_lsp::client::LspClient;
use caravan_lsp::lsp_types::Url;
use caravan_lsp::serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the fixtures in a fresh directory, with its own cache dir.
struct Ws {
    dir: PathBuf,
    cache: PathBuf,
}

impl Ws {
    fn new(name: &str) -> Ws {
        let base = std::env::temp_dir().join(format!("caravan-lsp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("ws");
        let cache = base.join("cache");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("lsp/tests/fixtures");
        for e in std::fs::read_dir(fixtures).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "cvn") {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
        Ws { dir, cache }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    fn uri(&self, f: &str) -> String {
        Url::from_file_path(self.path(f)).unwrap().to_string()
    }

    fn text(&self, f: &str) -> String {
        std::fs::read_to_string(self.path(f)).unwrap()
    }

    fn start(&self) -> LspClient {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_caravan"));
        cmd.arg("lsp").env("XDG_CACHE_HOME", &self.cache);
        let mut c = LspClient::spawn(&mut cmd).expect("start caravan lsp");
        let root = Url::from_file_path(&self.dir).unwrap().to_string();
        let caps = c.initialize(&root).expect("initialize");
        for cap in [
            "hoverProvider",
            "definitionProvider",
            "referencesProvider",
            "documentSymbolProvider",
            "workspaceSymbolProvider",
            "completionProvider",
            "renameProvider",
            "inlayHintProvider",
            "signatureHelpProvider",
            "documentFormattingProvider",
        ] {
            assert!(!caps[cap].is_null(), "capability {cap} missing: {caps}");
        }
        c
    }

    fn open(&self, c: &mut LspClient, f: &str) {
        self.open_text(c, f, &self.text(f));
    }

    fn open_text(&self, c: &mut LspClient, f: &str, text: &str) {
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": self.uri(f), "languageId": "caravan", "version": 1, "text": text}}),
        )
        .unwrap();
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// The LSP position of the `nth` occurrence of `needle` in `text`, moved
/// `delta` bytes to the right (the fixtures are ASCII).
fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let off = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth} not in text"))
        .0
        + delta;
    let line = text[..off].matches('\n').count();
    let col = off - text[..off].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": col})
}

fn at(ws: &Ws, f: &str, p: Value) -> Value {
    json!({"textDocument": {"uri": ws.uri(f)}, "position": p})
}

fn hover_text(c: &mut LspClient, ws: &Ws, f: &str, p: Value) -> String {
    let r = c.request("textDocument/hover", at(ws, f, p)).unwrap();
    r["contents"]["value"].as_str().unwrap_or("").to_string()
}

fn diagnostics_for(c: &mut LspClient, uri: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let p = c
        .wait_for("textDocument/publishDiagnostics", |p| {
            p["uri"] == uri && pred(p["diagnostics"].as_array().unwrap())
        })
        .unwrap();
    p["diagnostics"].as_array().unwrap().clone()
}

#[test]
fn diagnostics_on_open_and_change_for_every_file() {
    let ws = Ws::new("diag");
    let mut c = ws.start();
    ws.open(&mut c, "main.cvn");
    ws.open(&mut c, "broken.cvn");
    let main = diagnostics_for(&mut c, &ws.uri("main.cvn"), |_| true);
    assert!(main.is_empty(), "{main:?}");
    let ds = diagnostics_for(&mut c, &ws.uri("broken.cvn"), |d| !d.is_empty());
    let codes: Vec<&str> = ds.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["E0002", "E0100", "E0100", "E0117"], "{ds:#?}");
    // The same messages as the CLI: summary, label, hints.
    assert_eq!(
        ds[0]["message"],
        "syntax error: unexpected `=`\nunexpected here"
    );
    assert_eq!(ds[0]["range"]["start"], json!({"line": 2, "character": 10}));
    assert_eq!(ds[0]["severity"], 1);
    assert_eq!(ds[0]["source"], "caravan");
    let m1 = ds[1]["message"].as_str().unwrap();
    assert!(
        m1.starts_with("Type mismatch\nexpected `int`, found `float`\nhelp: "),
        "{m1}"
    );
    // A secondary label is related information.
    let rel = &ds[3]["relatedInformation"][0];
    assert_eq!(rel["message"], "this has type `int -> int`");
    assert_eq!(rel["location"]["uri"], ws.uri("broken.cvn"));
    assert_eq!(rel["location"]["range"]["start"]["line"], 8);

    // Fixing the file clears them (after the debounce).
    let fixed = ws
        .text("broken.cvn")
        .replace("let bad = = 3", "let bad = 3");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": ws.uri("broken.cvn"), "version": 2}, "contentChanges": [{"text": fixed}]}),
    )
    .unwrap();
    let ds = diagnostics_for(&mut c, &ws.uri("broken.cvn"), |d| d.len() == 3);
    assert!(ds.iter().all(|d| d["code"] != "E0002"));

    // An error in a sibling module that is not open is published for it.
    std::fs::write(ws.path("util.cvn"), "let half x = x / 2.0\n").unwrap();
    ws.open_text(
        &mut c,
        "uses_util.cvn",
        "let () = print_int (Util.half 4)\n",
    );
    let util = diagnostics_for(&mut c, &ws.uri("util.cvn"), |d| !d.is_empty());
    assert_eq!(util[0]["code"], "E0100");
    // Once open and fixed there, its own analysis answers.
    ws.open_text(&mut c, "util.cvn", "let half x = x / 2\n");
    diagnostics_for(&mut c, &ws.uri("util.cvn"), |d| d.is_empty());
    assert!(c.shutdown().unwrap(), "the server did not exit");
}

#[test]
fn hover_shows_inferred_types_and_docs() {
    let ws = Ws::new("hover");
    let mut c = ws.start();
    ws.open(&mut c, "main.cvn");
    ws.open(&mut c, "geometry.cvn");
    ws.open(&mut c, "broken.cvn");
    let main = ws.text("main.cvn");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "total", 0, 1));
    assert!(h.contains("total : Geometry.shape list -> float"), "{h}");
    assert!(h.contains("Sums the areas of a list of shapes."), "{h}");
    // A parameter of a lambda, a let-bound local, a use across files.
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "acc", 0, 0));
    assert!(h.contains("acc : float"), "{h}");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "big", 0, 1));
    assert!(h.contains("big : Geometry.shape list"), "{h}");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "Geometry.area", 0, 10));
    assert!(h.contains("area : Geometry.shape -> float"), "{h}");
    assert!(h.contains("The area of a shape."), "{h}");
    let h = hover_text(
        &mut c,
        &ws,
        "main.cvn",
        pos(&main, "Geometry.Circle", 0, 10),
    );
    assert!(h.contains("Circle : float -> Geometry.shape"), "{h}");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "Geometry.area", 0, 2));
    assert!(h.contains("module Geometry"), "{h}");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "p.x", 0, 2));
    assert!(h.contains("x : int"), "{h}");
    // Inside the module itself, its types are unqualified; pattern
    // variables and parameters have types too.
    let geo = ws.text("geometry.cvn");
    let h = hover_text(&mut c, &ws, "geometry.cvn", pos(&geo, "Circle r", 0, 7));
    assert!(h.contains("r : float"), "{h}");
    let h = hover_text(&mut c, &ws, "geometry.cvn", pos(&geo, "scale k", 0, 6));
    assert!(h.contains("k : float"), "{h}");
    let h = hover_text(&mut c, &ws, "geometry.cvn", pos(&geo, "area s", 0, 0));
    assert!(h.contains("area : shape -> float"), "{h}");
    // The file with errors still answers for what parses.
    let broken = ws.text("broken.cvn");
    let h = hover_text(&mut c, &ws, "broken.cvn", pos(&broken, "good y", 0, 1));
    assert!(h.contains("good : int -> int"), "{h}");
    let r = c
        .request(
            "textDocument/hover",
            at(&ws, "main.cvn", json!({"line": 1, "character": 0})),
        )
        .unwrap();
    assert!(r.is_null(), "{r}");
}

#[test]
fn definition_across_files_and_into_the_stdlib() {
    let ws = Ws::new("def");
    let mut c = ws.start();
    ws.open(&mut c, "main.cvn");
    let main = ws.text("main.cvn");
    let r = c
        .request(
            "textDocument/definition",
            at(&ws, "main.cvn", pos(&main, "Geometry.area", 0, 10)),
        )
        .unwrap();
    assert_eq!(r["uri"], ws.uri("geometry.cvn"));
    assert_eq!(r["range"]["start"], json!({"line": 8, "character": 4}));
    assert_eq!(r["range"]["end"], json!({"line": 8, "character": 8}));
    // A local.
    let r = c
        .request(
            "textDocument/definition",
            at(&ws, "main.cvn", pos(&main, "shapes in", 0, 1)),
        )
        .unwrap();
    assert_eq!(r["range"]["start"], pos(&main, "shapes = [", 0, 0));
    // The module part of a qualified name: its file.
    let r = c
        .request(
            "textDocument/definition",
            at(&ws, "main.cvn", pos(&main, "Geometry.scale", 0, 1)),
        )
        .unwrap();
    assert_eq!(r["uri"], ws.uri("geometry.cvn"));
    // Into the standard library, written to the cache directory.
    let r = c
        .request(
            "textDocument/definition",
            at(&ws, "main.cvn", pos(&main, "List.map", 0, 6)),
        )
        .unwrap();
    let uri = r["uri"].as_str().unwrap().to_string();
    let path = Url::parse(&uri).unwrap().to_file_path().unwrap();
    assert_eq!(path, ws.cache.join("caravan/stdlib/list.cvn"));
    let list = std::fs::read_to_string(&path).unwrap();
    let line = r["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert!(
        list.lines().nth(line).unwrap().starts_with("let map "),
        "{r}"
    );
    // The stdlib file answers hover and definition once open.
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "caravan", "version": 1, "text": list}}),
    )
    .unwrap();
    let p = pos(&list, "rev acc", 0, 1);
    let r = c
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": p}),
        )
        .unwrap();
    assert!(
        r["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("rev : 'a list -> 'a list"),
        "{r}"
    );
    let r = c
        .request(
            "textDocument/definition",
            json!({"textDocument": {"uri": uri}, "position": p}),
        )
        .unwrap();
    assert_eq!(r["uri"], uri.as_str());
}

#[test]
fn references_and_rename_across_files() {
    let ws = Ws::new("refs");
    let mut c = ws.start();
    ws.open(&mut c, "geometry.cvn");
    let geo = ws.text("geometry.cvn");
    let p = pos(&geo, "area s", 0, 1);
    let refs = c
        .request(
            "textDocument/references",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}, "position": p, "context": {"includeDeclaration": true}}),
        )
        .unwrap();
    let mut files: Vec<String> = refs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["uri"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["broken.cvn", "geometry.cvn", "main.cvn"], "{refs}");
    let without = c
        .request(
            "textDocument/references",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}, "position": p, "context": {"includeDeclaration": false}}),
        )
        .unwrap();
    assert_eq!(without.as_array().unwrap().len(), 2);

    // Rename a top-level name across files.
    let r = c
        .request(
            "textDocument/prepareRename",
            at(&ws, "geometry.cvn", p.clone()),
        )
        .unwrap();
    assert_eq!(r["start"], json!({"line": 8, "character": 4}));
    let edit = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}, "position": p, "newName": "surface"}),
        )
        .unwrap();
    let changes = edit["changes"].as_object().unwrap();
    assert_eq!(changes.len(), 3, "{edit}");
    let main_edits = changes[&ws.uri("main.cvn")].as_array().unwrap();
    assert_eq!(main_edits.len(), 1);
    assert_eq!(main_edits[0]["newText"], "surface");
    let main = ws.text("main.cvn");
    // Only `area` of `Geometry.area` is replaced.
    assert_eq!(
        main_edits[0]["range"]["start"],
        pos(&main, "Geometry.area", 0, 9)
    );
    assert_eq!(
        main_edits[0]["range"]["end"],
        pos(&main, "Geometry.area", 0, 13)
    );
    // Names that clash or are not names are refused.
    let err = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}, "position": p, "newName": "scale"}),
        )
        .unwrap_err();
    assert!(err.contains("already defined"), "{err}");
    let err = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}, "position": p, "newName": "let"}),
        )
        .unwrap_err();
    assert!(err.contains("not a valid"), "{err}");
    // A local: only its own uses; capture by another local is refused.
    ws.open(&mut c, "main.cvn");
    let acc = pos(&main, "acc", 0, 1);
    let edit = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("main.cvn")}, "position": acc, "newName": "sum"}),
        )
        .unwrap();
    let changes = edit["changes"].as_object().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[&ws.uri("main.cvn")].as_array().unwrap().len(), 2);
    let err = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("main.cvn")}, "position": acc, "newName": "s"}),
        )
        .unwrap_err();
    assert!(err.contains("cannot rename"), "{err}");
    // Standard library names are not renamed.
    let err = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": ws.uri("main.cvn")}, "position": pos(&main, "List.map", 0, 6), "newName": "mapp"}),
        )
        .unwrap_err();
    assert!(err.contains("standard library"), "{err}");
}

#[test]
fn document_and_workspace_symbols() {
    let ws = Ws::new("syms");
    let mut c = ws.start();
    ws.open(&mut c, "geometry.cvn");
    let r = c
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": ws.uri("geometry.cvn")}}),
        )
        .unwrap();
    let syms = r.as_array().unwrap();
    let names: Vec<&str> = syms.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shape", "point", "area", "origin", "scale"]);
    let kids: Vec<&str> = syms[0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["Circle", "Rect"]);
    assert_eq!(syms[2]["detail"], "shape -> float");
    assert_eq!(syms[2]["kind"], 12); // Function
    assert_eq!(
        syms[2]["selectionRange"]["start"],
        json!({"line": 8, "character": 4})
    );

    let r = c
        .request("workspace/symbol", json!({"query": "area"}))
        .unwrap();
    let hits = r.as_array().unwrap();
    assert!(
        hits.iter().any(|s| s["name"] == "area"
            && s["location"]["uri"] == ws.uri("geometry.cvn")
            && s["containerName"] == "Geometry"),
        "{r}"
    );
    let r = c
        .request("workspace/symbol", json!({"query": "fold_left"}))
        .unwrap();
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .any(|s| s["containerName"] == "List"),
        "{r}"
    );
}

fn completion_labels(c: &mut LspClient, ws: &Ws, f: &str, p: Value) -> Vec<(String, String)> {
    let r = c.request("textDocument/completion", at(ws, f, p)).unwrap();
    r.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap().to_string(),
                i["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn change(c: &mut LspClient, ws: &Ws, f: &str, version: i32, text: &str) {
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": ws.uri(f), "version": version}, "contentChanges": [{"text": text}]}),
    )
    .unwrap();
}

#[test]
fn completion_of_scope_modules_constructors_and_fields() {
    let ws = Ws::new("compl");
    let mut c = ws.start();
    let main = ws.text("main.cvn");
    ws.open(&mut c, "main.cvn");
    // Names in scope, with their types.
    let items = completion_labels(&mut c, &ws, "main.cvn", pos(&main, "(total big)", 0, 1));
    let has = |items: &[(String, String)], n: &str, d: &str| {
        items
            .iter()
            .any(|(l, t)| l == n && (d.is_empty() || t == d))
    };
    assert!(has(&items, "big", "Geometry.shape list"), "{items:?}");
    assert!(has(&items, "shapes", "Geometry.shape list"));
    assert!(has(&items, "total", "Geometry.shape list -> float"));
    assert!(has(&items, "print_endline", "string -> unit"));
    assert!(has(&items, "Some", ""));
    assert!(has(&items, "Geometry", "module"));

    // Half-typed code: `List.`, `Geometry.`, `p.` at the end of the file.
    let v = main.clone() + "\nlet more = List.";
    change(&mut c, &ws, "main.cvn", 2, &v);
    let items = completion_labels(&mut c, &ws, "main.cvn", pos(&v, "List.", 1, 5));
    assert!(
        has(&items, "map", "('a -> 'b) -> 'a list -> 'b list"),
        "{items:?}"
    );
    assert!(has(&items, "fold_left", ""));
    let v = main.clone() + "\nlet more = Geometry.ar";
    change(&mut c, &ws, "main.cvn", 3, &v);
    let items = completion_labels(&mut c, &ws, "main.cvn", pos(&v, "Geometry.ar", 1, 11));
    assert!(has(&items, "area", "Geometry.shape -> float"), "{items:?}");
    assert!(has(&items, "Circle", "Geometry.shape"));
    let v = main.clone() + "\nlet norm (p : Geometry.point) = p.";
    change(&mut c, &ws, "main.cvn", 4, &v);
    let end = pos(&v, "p.", 2, 2);
    let items = completion_labels(&mut c, &ws, "main.cvn", end);
    assert_eq!(
        items,
        [("x".into(), "int".into()), ("y".into(), "int".into())]
    );
    // Locals of a definition that does not parse yet.
    let v = main.clone() + "\nlet f count =\n  let twice = count * 2 in\n  print_int (tw";
    change(&mut c, &ws, "main.cvn", 5, &v);
    let items = completion_labels(&mut c, &ws, "main.cvn", pos(&v, "(tw", 0, 3));
    assert!(has(&items, "twice", "int"), "{items:?}");
    assert!(has(&items, "count", "int"), "{items:?}");
}

/// A module in a file named as the module is written (`Palette.cvn`, as
/// OCaml's `Palette.ml`) completes in a file that does not parse yet, as
/// `palette.cvn` would.
#[test]
fn completion_from_a_capitalised_sibling_file() {
    let ws = Ws::new("capsib");
    std::fs::write(
        ws.path("Palette.cvn"),
        "let crimson = 1\nlet cyan = \"c\"\n",
    )
    .unwrap();
    let mut c = ws.start();
    // A syntax error before the use: the compiler loads no module for
    // this file, so the server looks for the sibling itself.
    let v = "let broken = (\nlet more = Palette.c".to_string();
    std::fs::write(ws.path("main.cvn"), &v).unwrap();
    ws.open(&mut c, "main.cvn");
    let items = completion_labels(&mut c, &ws, "main.cvn", pos(&v, "Palette.c", 0, 9));
    assert!(
        items.iter().any(|(l, t)| l == "crimson" && t == "int"),
        "{items:?}"
    );
    assert!(items.iter().any(|(l, t)| l == "cyan" && t == "string"));
}

#[test]
fn inlay_hints_and_signature_help() {
    let ws = Ws::new("hints");
    let mut c = ws.start();
    let main = ws.text("main.cvn");
    ws.open(&mut c, "main.cvn");
    let r = c
        .request(
            "textDocument/inlayHint",
            json!({"textDocument": {"uri": ws.uri("main.cvn")}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 100, "character": 0}}}),
        )
        .unwrap();
    let hints: Vec<(Value, String)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["position"].clone(),
                h["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |p: Value, l: &str| {
        assert!(
            hints.contains(&(p.clone(), l.to_string())),
            "{l} at {p} not in {hints:?}"
        );
    };
    expect(pos(&main, "total shapes", 0, 12), ": Geometry.shape list");
    expect(pos(&main, "acc s", 0, 3), ": float");
    expect(pos(&main, "acc s", 0, 5), ": Geometry.shape");
    expect(pos(&main, "describe p", 0, 10), ": Geometry.point");
    expect(pos(&main, "big =", 0, 3), ": Geometry.shape list");
    // No hint on functions' own names.
    assert!(!hints
        .iter()
        .any(|(p, _)| *p == pos(&main, "total shapes", 0, 5)));

    let sig = |c: &mut LspClient, f: &str, p: Value| {
        c.request("textDocument/signatureHelp", at(&ws, f, p))
            .unwrap()
    };
    let r = sig(&mut c, "main.cvn", pos(&main, "shapes in\n  print", 0, 0));
    let s = &r["signatures"][0];
    assert_eq!(
        s["label"],
        "List.map : (Geometry.shape -> Geometry.shape) -> Geometry.shape list -> Geometry.shape list"
    );
    assert_eq!(r["activeParameter"], 1);
    assert_eq!(s["parameters"][1]["label"], json!([49, 68]));
    let r = sig(&mut c, "main.cvn", pos(&main, "Geometry.area s", 0, 14));
    assert_eq!(
        r["signatures"][0]["label"],
        "Geometry.area : Geometry.shape -> float"
    );
    assert_eq!(r["activeParameter"], 0);
    assert!(r["signatures"][0]["documentation"]["value"]
        .as_str()
        .unwrap()
        .contains("The area of a shape."));
    // While typing, in a file that does not parse: `f (g ` and `g 2.0 `.
    let v = main.clone() + "\nlet more = Geometry.area (Geometry.scale ";
    change(&mut c, &ws, "main.cvn", 2, &v);
    let end = pos(&v, "(Geometry.scale ", 0, 16);
    let r = sig(&mut c, "main.cvn", end);
    assert_eq!(
        r["signatures"][0]["label"],
        "Geometry.scale : float -> Geometry.shape -> Geometry.shape"
    );
    assert_eq!(r["activeParameter"], 0);
    let v = main.clone() + "\nlet more = Geometry.area (Geometry.scale 2.0 ";
    change(&mut c, &ws, "main.cvn", 3, &v);
    let r = sig(&mut c, "main.cvn", pos(&v, "scale 2.0 ", 0, 10));
    assert_eq!(r["activeParameter"], 1, "{r}");
}

#[test]
fn never_crashes_or_hangs_on_broken_input() {
    let ws = Ws::new("robust");
    let mut c = ws.start();
    let deep = "let x = ".to_string() + &"(".repeat(3000) + "1" + &")".repeat(3000) + "\n";
    let inputs = [
        String::new(),
        "let".into(),
        "let f x = match x with | ".into(),
        "type t = | A of".into(),
        "\"unterminated".into(),
        "(* unterminated comment".into(),
        "let s = \"h\u{e9}\u{1f600}\" in\u{0}\u{7f} ~ @@ $ \n let".into(),
        "let rec f x = f in let".into(),
        "Geometry.".into(),
        ".".into(),
        "let r = { x = 1; y = } .".into(),
        deep.clone(),
        "let x = ".to_string() + &"[".repeat(2000),
        "let a = Missing.value\nlet b = a.".into(),
    ];
    for (i, text) in inputs.iter().enumerate() {
        let f = format!("junk{i}.cvn");
        ws.open_text(&mut c, &f, text);
        let lines = text.lines().count().max(1);
        for line in 0..=lines + 1 {
            for ch in [0usize, 1, 3, 8, 40, 10_000] {
                let p = json!({"line": line, "character": ch});
                for m in [
                    "textDocument/hover",
                    "textDocument/definition",
                    "textDocument/completion",
                    "textDocument/signatureHelp",
                ] {
                    c.request(m, at(&ws, &f, p.clone()))
                        .unwrap_or_else(|e| panic!("{m} on {text:?} at {p}: {e}"));
                }
                let _ = c.request(
                    "textDocument/rename",
                    json!({"textDocument": {"uri": ws.uri(&f)}, "position": p, "newName": "zz"}),
                );
            }
        }
        for m in ["textDocument/documentSymbol", "textDocument/inlayHint"] {
            c.request(
                m,
                json!({"textDocument": {"uri": ws.uri(&f)}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 999, "character": 0}}}),
            )
            .unwrap_or_else(|e| panic!("{m} on {text:?}: {e}"));
        }
    }
    // A document the server never saw, and one that is not a file.
    c.request(
        "textDocument/hover",
        at(&ws, "nowhere.cvn", json!({"line": 0, "character": 0})),
    )
    .unwrap();
    c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": "untitled:Untitled-1"}, "position": {"line": 0, "character": 0}}),
    )
    .unwrap();
    // Still alive and answering.
    ws.open(&mut c, "main.cvn");
    let main = ws.text("main.cvn");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "total", 0, 1));
    assert!(h.contains("total :"), "{h}");
    // The server ends when its input closes, without `exit`.
    assert!(c.close_input(), "the server did not exit on end of input");
}

#[test]
fn formatting_replaces_the_whole_document() {
    let ws = Ws::new("format");
    let mut c = ws.start();
    let messy = "let f x=x+1\n(* kept *)\nlet  g = [1;2]\n";
    ws.open_text(&mut c, "messy.cvn", messy);
    let opts = json!({"tabSize": 2, "insertSpaces": true});
    let edits = c
        .request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": ws.uri("messy.cvn")}, "options": opts}),
        )
        .unwrap();
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1, "{edits:?}");
    assert_eq!(
        edits[0]["newText"],
        "let f x = x + 1\n(* kept *)\nlet g = [1; 2]\n"
    );
    assert_eq!(
        edits[0]["range"]["start"],
        json!({"line": 0, "character": 0})
    );
    assert_eq!(edits[0]["range"]["end"], json!({"line": 3, "character": 0}));
    // The same text as `caravan fmt`.
    assert_eq!(
        edits[0]["newText"].as_str().unwrap(),
        caravan_compiler::format::format_source(messy).unwrap()
    );
    // Already formatted: no edit. Not parseable: nothing to format.
    ws.open_text(&mut c, "tidy.cvn", "let x = 1\n");
    let edits = c
        .request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": ws.uri("tidy.cvn")}, "options": opts}),
        )
        .unwrap();
    assert_eq!(edits, json!([]));
    ws.open(&mut c, "broken.cvn");
    let edits = c
        .request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": ws.uri("broken.cvn")}, "options": opts}),
        )
        .unwrap();
    assert!(edits.is_null(), "{edits}");
    assert!(c.shutdown().unwrap(), "the server did not exit");
}

#[test]
fn exit_ends_the_server_with_the_status_the_specification_gives() {
    let ws = Ws::new("exit");
    // After shutdown: status 0, with the input still open.
    let mut c = ws.start();
    c.request("shutdown", Value::Null).unwrap();
    c.notify("exit", Value::Null).unwrap();
    let s = c
        .exit_status(std::time::Duration::from_secs(10))
        .expect("exit after shutdown ends the server (input still open)");
    assert_eq!(s.code(), Some(0));
    // Without shutdown: status 1.
    let mut c = ws.start();
    c.notify("exit", Value::Null).unwrap();
    let s = c
        .exit_status(std::time::Duration::from_secs(10))
        .expect("exit without shutdown ends the server");
    assert_eq!(s.code(), Some(1));
    // A request right behind `exit` does not keep it alive.
    let mut c = ws.start();
    c.request("shutdown", Value::Null).unwrap();
    c.notify("exit", Value::Null).unwrap();
    let _ = c.send(&json!({"jsonrpc": "2.0", "id": 99, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": ws.uri("main.cvn")}, "position": {"line": 0, "character": 0}}}));
    let s = c
        .exit_status(std::time::Duration::from_secs(10))
        .expect("a request after exit does not hang the server");
    assert_eq!(s.code(), Some(0));
}

#[test]
fn malformed_messages_get_json_rpc_errors() {
    let ws = Ws::new("malformed");
    let mut c = ws.start();
    let frame = |body: &[u8]| {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body);
        f
    };
    for (body, code) in [
        (
            &b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": "[..],
            -32700,
        ),
        (&b"\xff\xfe\xfd"[..], -32700),
        (&b"{\"jsonrpc\": \"2.0\", \"id\": 7}"[..], -32600),
    ] {
        c.send_raw(&frame(body)).unwrap();
        let r = c.next_message().unwrap();
        assert_eq!(r["error"]["code"], json!(code), "{r}");
    }
    c.send_raw(b"Content-Length: zero\r\n\r\n").unwrap();
    let r = c.next_message().unwrap();
    assert_eq!(r["error"]["code"], json!(-32700), "{r}");
    // Still serving.
    ws.open(&mut c, "main.cvn");
    let main = ws.text("main.cvn");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "total", 0, 1));
    assert!(h.contains("total :"), "{h}");
    // A frame cut short by the end of input ends the server (logged).
    c.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"")
        .unwrap();
    assert!(
        c.close_input(),
        "the server did not end on a truncated frame"
    );
}

#[test]
fn incremental_changes_edit_ranges_of_the_document() {
    let ws = Ws::new("incr");
    let mut c = ws.start();
    let caps = {
        let root = Url::from_file_path(&ws.dir).unwrap().to_string();
        let mut c2 = {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_caravan"));
            cmd.arg("lsp").env("XDG_CACHE_HOME", &ws.cache);
            LspClient::spawn(&mut cmd).unwrap()
        };
        c2.initialize(&root).unwrap()
    };
    // Incremental: TextDocumentSyncKind 2.
    assert_eq!(caps["textDocumentSync"]["change"], json!(2), "{caps}");
    ws.open(&mut c, "main.cvn");
    let uri = ws.uri("main.cvn");
    diagnostics_for(&mut c, &uri, |d| d.is_empty());
    let range = |l0: u32, c0: u32, l1: u32, c1: u32| json!({"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}});
    // Two edits in one change, the second in the text the first left:
    // insert a binding at the top, then make it ill-typed.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
            {"range": range(0, 0, 0, 0), "text": "let s = \"\u{e9}\u{1f600}\" let bad : int = 1\n"},
            {"range": range(0, 30, 0, 31), "text": "\"no\""}
        ]}),
    )
    .unwrap();
    let d = diagnostics_for(&mut c, &uri, |d| !d.is_empty());
    assert!(
        d.iter()
            .any(|d| d["code"] == json!("E0100") && d["range"]["start"]["line"] == json!(0)),
        "{d:?}"
    );
    // Delete the inserted line: no error again.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [
            {"range": range(0, 0, 1, 0), "text": ""}
        ]}),
    )
    .unwrap();
    diagnostics_for(&mut c, &uri, |d| d.is_empty());
    let main = ws.text("main.cvn");
    let h = hover_text(&mut c, &ws, "main.cvn", pos(&main, "total", 0, 1));
    assert!(h.contains("total :"), "{h}");
}

/// Applies one text edit (LSP positions, ASCII text) to `text`.
fn apply_edit(text: &str, edit: &Value) -> String {
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let col = p["character"].as_u64().unwrap() as usize;
        text.split_inclusive('\n')
            .take(line)
            .map(str::len)
            .sum::<usize>()
            + col
    };
    let (a, b) = (
        offset(&edit["range"]["start"]),
        offset(&edit["range"]["end"]),
    );
    format!(
        "{}{}{}",
        &text[..a],
        edit["newText"].as_str().unwrap(),
        &text[b..]
    )
}

#[test]
fn code_actions_fix_names_and_add_missing_cases() {
    let ws = Ws::new("actions");
    let mut c = ws.start();
    let text = "type shape = Circle of float | Rect of float * float | Tri\n\
                \n\
                let area s =\n  match s with\n  | Circle r -> 3. *. r *. r\n  | Rect (w, h) -> w *. h\n\
                \n\
                let sizes = Lsit.map area [Tri]\n\
                let total = List.fold_lft (+.) 0. sizes\n";
    ws.open_text(&mut c, "shapes.cvn", text);
    let uri = ws.uri("shapes.cvn");
    let d = diagnostics_for(&mut c, &uri, |d| d.len() == 3);
    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 99, "character": 0}});
    let r = c
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": whole, "context": {"diagnostics": []}}),
        )
        .unwrap();
    let actions = r.as_array().unwrap().clone();
    let titles: Vec<&str> = actions
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Add the missing case `Tri`"), "{titles:?}");
    assert!(titles.contains(&"Replace with `List`"), "{titles:?}");
    // Applying every fix, bottom-up, gives a program without errors.
    let mut edits: Vec<Value> = actions
        .iter()
        .map(|a| a["edit"]["changes"][&uri][0].clone())
        .collect();
    assert_eq!(edits.len(), 3, "{actions:?}");
    edits.sort_by_key(|e| {
        std::cmp::Reverse((
            e["range"]["start"]["line"].as_u64(),
            e["range"]["start"]["character"].as_u64(),
        ))
    });
    let mut fixed = text.to_string();
    for e in &edits {
        fixed = apply_edit(&fixed, e);
    }
    assert!(
        fixed.contains("  | Rect (w, h) -> w *. h\n  | Tri -> failwith \"TODO\"\n"),
        "{fixed}"
    );
    assert!(fixed.contains("List.map area"), "{fixed}");
    assert!(fixed.contains("List.fold_left (+.)"), "{fixed}");
    // A range on one diagnostic gets that diagnostic's fix only.
    let e0102 = d
        .iter()
        .find(|d| d["code"] == json!("E0102"))
        .unwrap()
        .clone();
    let r = c
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": e0102["range"], "context": {"diagnostics": [e0102]}}),
        )
        .unwrap();
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r[0]["title"], json!("Replace with `fold_left`"));
    change(&mut c, &ws, "shapes.cvn", 2, &fixed);
    diagnostics_for(&mut c, &uri, |d| d.is_empty());
}

#[test]
fn hover_on_type_names_and_updated_fields() {
    let ws = Ws::new("hovertypes");
    let mut c = ws.start();
    let text = "(** A point on the grid. *)\n\
                type point = { x : int; y : int }\n\
                \n\
                type 'a tree = Leaf | Node of 'a tree * 'a * 'a tree\n\
                \n\
                let moved (p : point) = { p with x = p.x + 1 }\n\
                let size (t : int tree) = match t with Leaf -> 0 | Node _ -> 1\n\
                let far : Geometry.point = Geometry.origin\n";
    ws.open_text(&mut c, "types.cvn", text);
    // A type name where it is used, and where it is defined.
    let h = hover_text(&mut c, &ws, "types.cvn", pos(text, "point)", 0, 1));
    assert!(h.contains("type point = { x : int; y : int }"), "{h}");
    assert!(h.contains("A point on the grid."), "{h}");
    let h = hover_text(&mut c, &ws, "types.cvn", pos(text, "point =", 0, 1));
    assert!(h.contains("type point = { x : int; y : int }"), "{h}");
    let h = hover_text(&mut c, &ws, "types.cvn", pos(text, "int tree", 0, 5));
    assert!(h.contains("type 'a tree = Leaf | Node of"), "{h}");
    // A type of another module.
    let h = hover_text(&mut c, &ws, "types.cvn", pos(text, "Geometry.point", 0, 10));
    assert!(h.contains("type point = { x : int; y : int }"), "{h}");
    // A field in `{ r with f = e }`.
    let h = hover_text(&mut c, &ws, "types.cvn", pos(text, "x = p.x", 0, 0));
    assert!(h.contains("x : int"), "{h}");
}

#[test]
fn semantic_tokens_classify_every_token() {
    let ws = Ws::new("semtok");
    let mut c = ws.start();
    let text = "(* A comment\n   on two lines. *)\n\
                type shape = Circle of float\n\
                let area s = match s with Circle r -> 3.5 *. r\n\
                let n = List.length [\"h\u{e9}\"] + 1\n";
    ws.open_text(&mut c, "tok.cvn", text);
    let r = c
        .request(
            "textDocument/semanticTokens/full",
            json!({"textDocument": {"uri": ws.uri("tok.cvn")}}),
        )
        .unwrap();
    let legend = [
        "keyword",
        "comment",
        "string",
        "number",
        "operator",
        "function",
        "variable",
        "enumMember",
        "property",
        "type",
        "namespace",
        "typeParameter",
    ];
    // Decode: (line, start, length) -> the token's text and type.
    let data: Vec<u64> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let lines: Vec<Vec<u16>> = text.lines().map(|l| l.encode_utf16().collect()).collect();
    let (mut line, mut start) = (0usize, 0usize);
    let mut got = vec![];
    for t in data.chunks(5) {
        if t[0] > 0 {
            line += t[0] as usize;
            start = 0;
        }
        start += t[1] as usize;
        let s = String::from_utf16(&lines[line][start..start + t[2] as usize]).unwrap();
        got.push((s, legend[t[3] as usize]));
    }
    let has = |s: &str, k: &str| got.iter().any(|(a, b)| a == s && *b == k);
    for (s, k) in [
        ("(* A comment", "comment"),
        ("   on two lines. *)", "comment"),
        ("type", "keyword"),
        ("shape", "type"),
        ("Circle", "enumMember"),
        ("area", "function"),
        ("s", "variable"),
        ("3.5", "number"),
        ("*.", "operator"),
        ("List", "namespace"),
        ("length", "function"),
        ("\"h\u{e9}\"", "string"),
        ("n", "variable"),
    ] {
        assert!(has(s, k), "{s:?} as {k}: {got:?}");
    }
}

#[test]
fn stdlib_docs_in_hover_and_completion() {
    let ws = Ws::new("docs");
    let mut c = ws.start();
    let text = "let xs = List.map succ [1; 2]\nlet m = Map.add 1 \"a\" Map.empty\nlet more = List.";
    ws.open_text(&mut c, "docs.cvn", text);
    let h = hover_text(&mut c, &ws, "docs.cvn", pos(text, "List.map", 0, 6));
    // The type at this use, and the doc comment of the definition.
    assert!(
        h.contains("map : (int -> int) -> int list -> int list"),
        "{h}"
    );
    assert!(h.contains("tail-recursive"), "{h}");
    let h = hover_text(&mut c, &ws, "docs.cvn", pos(text, "Map.add", 0, 5));
    assert!(h.contains("replacing a previous binding"), "{h}");
    let r = c
        .request(
            "textDocument/completion",
            at(&ws, "docs.cvn", pos(text, "List.", 1, 5)),
        )
        .unwrap();
    let items = r.as_array().unwrap();
    let doc = |label: &str| {
        items
            .iter()
            .find(|i| i["label"] == label)
            .map(|i| {
                i["documentation"]["value"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    assert!(doc("sort").contains("stable"), "{items:?}");
    assert!(doc("hd").contains("raises [Failure"), "{}", doc("hd"));
}
