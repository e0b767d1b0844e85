//! `caravan new NAME`: a new project that `caravan run main.cvn` and
//! `caravan test` accept at once.
//!
//! ```text
//! NAME/
//!   main.cvn                 the program: uses Greeting.hello
//!   greeting.cvn             a module (`Greeting`)
//!   test/greeting_test.cvn   its tests: `greeting.cvn` is opened there
//!   README.md
//! ```

use std::path::Path;
use std::process::ExitCode;

const MAIN: &str = r#"(* The program: caravan run main.cvn [NAME] *)

let () =
  let name = match Sys.args () with n :: _ -> n | [] -> "world" in
  print_endline (Greeting.hello name)
"#;

const GREETING: &str = r#"(* [hello name]: a greeting for [name]. *)
let hello name = "Hello, " ^ name ^ "!"
"#;

const TEST: &str = r#"(* Tests of greeting.cvn (caravan test): the module a test file is
   named after is opened in it, so [hello] needs no [Greeting.]. *)

let hello_test () = Assert.equal "Hello, world!" (hello "world")

let hello_ends_with_a_bang_test () =
  Check.forall Check.string (fun s -> String.ends_with "!" (hello s))
"#;

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A Caravan program.

```sh
caravan run main.cvn          # Hello, world!
caravan run main.cvn Caravan  # Hello, Caravan!
caravan test                  # runs test/*_test.cvn
```

A test file `test/x_test.cvn` sees the project's modules (`Foo.bar` is
`bar` in `foo.cvn` at the project's root) and has the module it is named
after, `x.cvn`, opened: its definitions are used unqualified. Its tests are
the top-level functions whose names end in `_test`, of type
`unit -> unit`; `Assert` and `Check` are there to write them.
"#
    )
}

/// Creates the project; exit status 1 when NAME exists, 2 when a file
/// cannot be written.
pub fn run(dir: &Path) -> ExitCode {
    if dir.exists() {
        eprintln!("error: {} exists already", dir.display());
        return ExitCode::from(1);
    }
    let name = dir
        .file_name()
        .map_or_else(|| "project".into(), |n| n.to_string_lossy().into_owned());
    let readme = readme(&name);
    let files: [(&str, &str); 4] = [
        ("main.cvn", MAIN),
        ("greeting.cvn", GREETING),
        ("test/greeting_test.cvn", TEST),
        ("README.md", &readme),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        let written = p
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&p, text));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    println!(
        "Created {}: cd {} && caravan run main.cvn && caravan test",
        dir.display(),
        dir.display()
    );
    ExitCode::SUCCESS
}
