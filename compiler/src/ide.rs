//! Editor features computed from an [`crate::driver::Analysis`] beyond the
//! position queries of [`crate::query`]: document symbols, inlay hints,
//! signature help, rename. (Owned by the language server's work.)
