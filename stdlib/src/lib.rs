//! Caravan's standard library: the modules written in Caravan (embedded
//! here as source, checked with every program for now) and, in
//! [`builtins`], the Rust functions their `external` declarations name.

pub mod builtins;
pub mod http;
pub mod inspect;
pub mod int64;
pub mod printf;
pub mod registry;
pub mod store;
pub mod testing;

/// The standard modules, in initialisation order: `(module name, source)`.
/// `Prelude` is opened in every module; the others are used qualified
/// (`List.map`). A module may use only those before it.
pub const MODULES: &[(&str, &str)] = &[
    ("Prelude", include_str!("cvn/prelude.cvn")),
    ("Either", include_str!("cvn/either.cvn")),
    ("Seq", include_str!("cvn/seq.cvn")),
    ("List", include_str!("cvn/list.cvn")),
    ("Option", include_str!("cvn/option.cvn")),
    ("Result", include_str!("cvn/result.cvn")),
    ("Printexc", include_str!("cvn/printexc.cvn")),
    ("Char", include_str!("cvn/char.cvn")),
    ("String", include_str!("cvn/string.cvn")),
    ("Buffer", include_str!("cvn/buffer.cvn")),
    ("Int", include_str!("cvn/int.cvn")),
    ("Bool", include_str!("cvn/bool.cvn")),
    ("Fun", include_str!("cvn/fun.cvn")),
    ("Float", include_str!("cvn/float.cvn")),
    ("Int64", include_str!("cvn/int64.cvn")),
    ("Printf", include_str!("cvn/printf.cvn")),
    ("Format", include_str!("cvn/format.cvn")),
    ("Map", include_str!("cvn/map.cvn")),
    ("Set", include_str!("cvn/set.cvn")),
    ("Process", include_str!("cvn/process.cvn")),
    ("Tcp", include_str!("cvn/tcp.cvn")),
    ("Sys", include_str!("cvn/sys.cvn")),
    ("File", include_str!("cvn/file.cvn")),
    ("IO", include_str!("cvn/io.cvn")),
    ("Time", include_str!("cvn/time.cvn")),
    ("Random", include_str!("cvn/random.cvn")),
    ("Gc", include_str!("cvn/gc.cvn")),
    ("Timer", include_str!("cvn/timer.cvn")),
    ("Store", include_str!("cvn/store.cvn")),
    ("Registry", include_str!("cvn/registry.cvn")),
    ("Node", include_str!("cvn/node.cvn")),
    ("Server", include_str!("cvn/server.cvn")),
    ("Supervisor", include_str!("cvn/supervisor.cvn")),
    ("Http", include_str!("cvn/http.cvn")),
    ("Assert", include_str!("cvn/assert.cvn")),
    ("Check", include_str!("cvn/check.cvn")),
];

/// The harness of `caravan test` (runs the tests, prints the report):
/// checked only with test programs, after [`MODULES`].
pub const TEST_HARNESS: (&str, &str) = ("Test_harness", include_str!("cvn/test_harness.cvn"));

/// The source file name shown in diagnostics for a standard module.
pub fn file_name(module: &str) -> String {
    format!("<stdlib>/{}.cvn", module.to_lowercase())
}

#[cfg(test)]
mod tests {
    /// Every top-level definition of the standard library (`let`,
    /// `external`, `and`) has a comment right above it: the language
    /// server shows it on hover and in completion.
    #[test]
    fn every_definition_has_a_doc_comment() {
        let mut missing = vec![];
        let all = super::MODULES
            .iter()
            .chain(std::iter::once(&super::TEST_HARNESS));
        for (module, src) in all {
            let lines: Vec<&str> = src.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let def = ["let ", "external ", "and "]
                    .iter()
                    .any(|k| l.starts_with(k));
                if def && !(i > 0 && lines[i - 1].trim_end().ends_with("*)")) {
                    missing.push(format!("{module}: {l}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "without a doc comment:\n{}",
            missing.join("\n")
        );
    }
}
