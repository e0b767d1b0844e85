//! Byte offsets (the compiler's) to LSP positions (lines and UTF-16 code
//! units, the protocol's default encoding) and back.

use tower_lsp::lsp_types::{Position, Range};

/// Line starts of a text, for offset/position conversion.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The position of byte `offset` (clamped to the text, rounded down to
    /// a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let character: usize = self.text[start..offset].chars().map(char::len_utf16).sum();
        Position::new(line as u32, character as u32)
    }

    /// The range of byte span `start..end`.
    pub fn range(&self, start: usize, end: usize) -> Range {
        Range::new(self.position(start), self.position(end.max(start)))
    }

    /// The byte offset of `pos` (a position past the end of a line is the
    /// line's end; past the last line, the text's end).
    pub fn offset(&self, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return self.text.len();
        };
        let end = self
            .starts
            .get(pos.line as usize + 1)
            .map_or(self.text.len(), |&e| e - 1);
        let mut units = 0usize;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_round_trip() {
        let t = "let s = \"h\u{e9}\u{1f600}\" in\nx\r\n";
        let li = LineIndex::new(t);
        let x = t.find('x').unwrap();
        assert_eq!(li.position(x), Position::new(1, 0));
        let quote = t.rfind('"').unwrap();
        // é is one UTF-16 unit, the emoji two.
        assert_eq!(li.position(quote), Position::new(0, 13));
        assert_eq!(li.offset(Position::new(0, 13)), quote);
        // Inside the surrogate pair: the next character.
        assert_eq!(li.offset(Position::new(0, 12)), quote);
        assert_eq!(li.offset(Position::new(0, 99)), t.find('\n').unwrap());
        assert_eq!(li.offset(Position::new(9, 0)), t.len());
        assert_eq!(li.position(t.len() + 5), Position::new(2, 0));
    }
}
