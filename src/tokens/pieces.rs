//! Cuts text into pieces the tokenizer can count one at a time.
//!
//! Counting is spread over pieces for two reasons: a pool thread can switch to
//! another request between pieces, so one huge body never holds the tokenizer
//! for seconds; and byte-pair encoding is quadratic in the length of one
//! pre-token, so a body of 32 MiB of spaces or of one letter (a single
//! pre-token) would take minutes whole but takes milliseconds in pieces.
//!
//! A piece ends, where it can, just before a space that comes before something
//! other than white space: cl100k's pre-tokenizer always starts a new pre-token
//! there (` word`, ` 42`, ` (`), its matches before it end the same with or
//! without what follows, and nothing in its pattern looks behind, so the pieces
//! count exactly what the whole text counts. Where a run has no such place within `MAX_PIECE` bytes,
//! it is cut at a character boundary: the count may then differ from the
//! whole-text count by a token or so at each cut, which an estimate can bear.

/// The longest piece, in bytes. A piece of one repeated character this long
/// encodes in about a millisecond.
pub const MAX_PIECE: usize = 8 * 1024;

/// The end of the piece that starts at `start`: the whole rest if it is short,
/// else the last exact cut within `MAX_PIECE` bytes, else a character boundary.
pub fn piece_end(text: &str, start: usize) -> usize {
    let rest = &text.as_bytes()[start..];
    if rest.len() <= MAX_PIECE {
        return text.len();
    }
    let window = &rest[..=MAX_PIECE];
    // A space, then no white space: look back from the window's end, keeping
    // the piece non-empty.
    for at in (1..MAX_PIECE).rev() {
        if window[at] == b' ' && starts_visible(&rest[at + 1..]) {
            return start + at;
        }
    }
    let mut end = start + MAX_PIECE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Whether the text starts with a character that is not white space (the
/// pattern's `\S`).
fn starts_visible(bytes: &[u8]) -> bool {
    // The first character is at most four bytes.
    let head = &bytes[..bytes.len().min(4)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    text.chars().next().is_some_and(|c| !c.is_whitespace())
}

/// Every piece of `text`, in order.
pub fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    std::iter::from_fn(move || {
        (start < text.len()).then(|| {
            let end = piece_end(text, start);
            let piece = &text[start..end];
            start = end;
            piece
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> i64 {
        tiktoken_rs::cl100k_base_singleton().count_ordinary(text) as i64
    }

    fn by_pieces(text: &str) -> i64 {
        pieces(text).map(whole).sum()
    }

    #[test]
    fn pieces_cover_the_text_in_order_and_are_bounded() {
        let text = "Grüße, 漢字 and words ".repeat(3000) + &"x".repeat(20_000) + &" ".repeat(20_000);
        let joined: String = pieces(&text).collect();
        assert_eq!(joined, text);
        assert!(pieces(&text).all(|p| !p.is_empty() && p.len() <= MAX_PIECE));
    }

    #[test]
    fn cuts_before_a_spaced_word_count_exactly_what_the_whole_counts() {
        let samples = [
            "The quick brown fox jumps over the lazy dog. ".repeat(2000),
            "Zeile eins\n  eingerückt: Größe 12345, 'quoted' it's\t\tdone!\r\n".repeat(1500),
            "def f(x):\n    return x  *  2   # note\n\n".repeat(2000),
            "über ärger öl ".repeat(5000),
            "1 22 333 4444 (x) [y] {z} ?! ".repeat(3000),
        ];
        for text in samples {
            assert!(text.len() > 4 * MAX_PIECE);
            assert_eq!(by_pieces(&text), whole(&text), "on {:?}…", &text[..40]);
        }
    }

    #[test]
    fn runs_without_a_cut_are_cut_anyway_and_stay_close() {
        for text in ["a".repeat(100_000), " ".repeat(100_000), "\n".repeat(100_000), "é".repeat(50_000)] {
            let (pieced, exact) = (by_pieces(&text), whole(&text));
            let cuts = pieces(&text).count() as i64;
            assert!((pieced - exact).abs() <= cuts, "{pieced} vs {exact} over {cuts} cuts");
        }
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(pieces("hello world").collect::<Vec<_>>(), ["hello world"]);
        assert_eq!(pieces("").count(), 0);
    }
}
