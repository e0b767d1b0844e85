//! The Caravan language server (tower-lsp over stdio).

/// Serves the Language Server Protocol on stdin/stdout until the client
/// exits.
pub fn run_stdio() {
    eprintln!("caravan lsp: not implemented yet");
}
