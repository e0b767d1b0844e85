//! The Caravan language server (tower-lsp over stdio).
//!
//! Every request is answered by the compiler itself, used as a library:
//! [`caravan_compiler::driver::analyze`] checks each open file as a
//! program's main file (with the sibling modules it uses, taken from the
//! editor's buffers first and the disk otherwise), and the answers come from
//! the checker's semantic index ([`caravan_compiler::query`],
//! [`caravan_compiler::ide`]). The analyses run on one thread with a large
//! stack ([`engine::Engine`]); the protocol runs on tokio. Diagnostics are
//! published on open and, debounced, after changes (documents are synced
//! incrementally). Formatting is [`caravan_compiler::format`], as `caravan
//! fmt` does it; code actions are the compiler's fixes
//! ([`caravan_compiler::diagnostic::Fix`]). Standard input and output go
//! through [`transport`], which ends the process on `exit` and answers
//! malformed messages.

pub mod client;
pub mod engine;
pub mod text;
pub mod transport;

pub use serde_json;
pub use tower_lsp::lsp_types;

use engine::Engine;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower_lsp::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp::lsp_types::*;
use tower_lsp::{Client, LanguageServer, LspService, Server};

/// How long after the last change diagnostics are recomputed.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// A request whose analysis takes longer than this gets no answer (the
/// server stays responsive).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// The thread that owns the [`Engine`] and runs jobs on it in order.
#[derive(Clone)]
struct Worker {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Worker {
    fn start() -> Worker {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("caravan-analysis".into())
            // The checker recurses on the syntax tree: deep input needs a
            // deep stack (as `caravan check` gives it).
            .stack_size(1 << 30)
            .spawn(move || {
                let mut engine = Engine::new();
                while let Ok(job) = rx.recv() {
                    job(&mut engine);
                }
            })
            .expect("spawn the analysis thread");
        Worker { tx }
    }

    /// Runs `f` on the engine; `None` if it panicked or took too long.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |e: &mut Engine| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(e)));
            if r.is_err() {
                e.invalidate();
            }
            let _ = tx.send(r.ok());
        });
        self.tx.send(job).ok()?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            _ => None,
        }
    }
}

/// The tower-lsp service.
#[derive(Clone)]
struct Backend {
    client: Client,
    worker: Worker,
    /// Bumped on every change; a debounced publication runs only if no
    /// change came after it was scheduled.
    generation: Arc<AtomicU64>,
}

impl Backend {
    async fn publish(&self) {
        let Some(out) = self.worker.call(|e| e.diagnostics()).await else {
            return;
        };
        for (uri, diags, version) in out {
            self.client.publish_diagnostics(uri, diags, version).await;
        }
    }

    /// Publishes diagnostics after `delay` unless another change comes
    /// first. On a task of its own: a handler must not wait on the output
    /// (at the end of input nothing reads it any more).
    fn schedule_publish(&self, delay: Duration) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if me.generation.load(Ordering::SeqCst) == generation {
                me.publish().await;
            }
        });
    }
}

fn failed(message: String) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into(),
        data: None,
    }
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let mut roots: Vec<std::path::PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().ok())
            .collect();
        #[allow(deprecated)]
        if roots.is_empty() {
            if let Some(p) = params.root_uri.and_then(|u| u.to_file_path().ok()) {
                roots.push(p);
            }
        }
        self.worker.call(move |e| e.set_roots(roots)).await;
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..Default::default()
                    },
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into()]),
                    ..Default::default()
                }),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: Default::default(),
                })),
                inlay_hint_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: Engine::semantic_legend(),
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            range: None,
                            work_done_progress_options: Default::default(),
                        },
                    ),
                ),
                signature_help_provider: Some(SignatureHelpOptions {
                    trigger_characters: Some(vec![" ".into(), "(".into()]),
                    retrigger_characters: Some(vec![",".into()]),
                    work_done_progress_options: Default::default(),
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "caravan".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        self.worker
            .call(move |e| e.set_doc(d.uri, d.text, d.version))
            .await;
        self.schedule_publish(Duration::ZERO);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let changes = params.content_changes;
        self.worker
            .call(move |e| e.change_doc(uri, changes, version))
            .await;
        self.schedule_publish(DEBOUNCE);
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        self.worker.call(|e| e.invalidate()).await;
        self.schedule_publish(DEBOUNCE);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let u = uri.clone();
        self.worker.call(move |e| e.close_doc(&u)).await;
        let client = self.client.clone();
        tokio::spawn(async move { client.publish_diagnostics(uri, vec![], None).await });
        self.schedule_publish(DEBOUNCE);
    }

    async fn did_change_watched_files(&self, _: DidChangeWatchedFilesParams) {
        self.worker.call(|e| e.invalidate()).await;
        self.schedule_publish(DEBOUNCE);
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        Ok(self
            .worker
            .call(move |e| e.hover(&p.text_document.uri, p.position))
            .await
            .flatten())
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        Ok(self
            .worker
            .call(move |e| e.definition(&p.text_document.uri, p.position))
            .await
            .flatten()
            .map(GotoDefinitionResponse::Scalar))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        let decl = params.context.include_declaration;
        Ok(self
            .worker
            .call(move |e| e.references(&p.text_document.uri, p.position, decl))
            .await)
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let uri = params.text_document.uri;
        Ok(self
            .worker
            .call(move |e| e.document_symbols(&uri))
            .await
            .map(DocumentSymbolResponse::Nested))
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<Vec<SymbolInformation>>> {
        let q = params.query;
        Ok(self.worker.call(move |e| e.workspace_symbols(&q)).await)
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        Ok(self
            .worker
            .call(move |e| e.completion(&p.text_document.uri, p.position))
            .await
            .map(CompletionResponse::Array))
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let r = self
            .worker
            .call(move |e| e.prepare_rename(&params.text_document.uri, params.position))
            .await;
        match r {
            Some(Ok(range)) => Ok(Some(PrepareRenameResponse::Range(range))),
            Some(Err(m)) => Err(failed(m)),
            None => Ok(None),
        }
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let p = params.text_document_position;
        let new = params.new_name;
        let r = self
            .worker
            .call(move |e| e.rename(&p.text_document.uri, p.position, &new))
            .await;
        match r {
            Some(Ok(edit)) => Ok(Some(edit)),
            Some(Err(m)) => Err(failed(m)),
            None => Ok(None),
        }
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        let uri = params.text_document.uri;
        let range = params.range;
        Ok(self.worker.call(move |e| e.inlay_hints(&uri, range)).await)
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        let uri = params.text_document.uri;
        Ok(self
            .worker
            .call(move |e| e.semantic_tokens(&uri))
            .await
            .flatten()
            .map(SemanticTokensResult::Tokens))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let range = params.range;
        Ok(self.worker.call(move |e| e.code_actions(&uri, range)).await)
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let uri = params.text_document.uri;
        Ok(self
            .worker
            .call(move |e| e.formatting(&uri))
            .await
            .flatten())
    }

    async fn signature_help(&self, params: SignatureHelpParams) -> Result<Option<SignatureHelp>> {
        let p = params.text_document_position_params;
        Ok(self
            .worker
            .call(move |e| e.signature_help(&p.text_document.uri, p.position))
            .await
            .flatten())
    }
}

/// Serves the Language Server Protocol on stdin/stdout until the client
/// sends `exit` (the process ends there: status 0 after `shutdown`, 1
/// without) or closes the connection (the status returned, by the same
/// rule). Frames go through [`transport`], which answers malformed ones.
pub fn run_stdio() -> i32 {
    use tokio::io::AsyncWriteExt;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("caravan lsp: cannot start the runtime: {e}");
            return 1;
        }
    };
    let (out, writer) = transport::writer();
    let (to_server, mut from_client) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (mut server_in_w, server_in_r) = tokio::io::duplex(1 << 16);
    let (server_out_w, server_out_r) = tokio::io::duplex(1 << 16);
    let pump_out = out.clone();
    std::thread::Builder::new()
        .name("caravan-lsp-in".into())
        .spawn(move || transport::pump_stdin(to_server, pump_out))
        .expect("spawn the input thread");
    rt.block_on(async move {
        tokio::spawn(async move {
            while let Some(frame) = from_client.recv().await {
                if server_in_w.write_all(&frame).await.is_err() {
                    break;
                }
            }
            // Dropping the pipe's end is tower-lsp's end of input.
        });
        let forward = tokio::spawn(transport::forward_output(server_out_r, out));
        let worker = Worker::start();
        let (service, socket) = LspService::new(move |client| Backend {
            client,
            worker,
            generation: Arc::new(AtomicU64::new(0)),
        });
        Server::new(server_in_r, server_out_w, socket)
            .serve(service)
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(2), forward).await;
    });
    // A task may still wait on the analysis thread: do not wait for it.
    rt.shutdown_background();
    let _ = writer.join();
    if transport::shut_down() {
        0
    } else {
        1
    }
}
