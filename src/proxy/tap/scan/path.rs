//! Where the scanner is in a JSON value (the path of keys and array
//! positions from the root), the scalars it reports, and the `Sink` it
//! reports them to.

/// Longer keys never match a known name.
pub const MAX_KEY: usize = 32;
/// Short string values (`"type":"message_stop"`) are kept to this length.
pub const MAX_SHORT: usize = 48;

/// One step of a path: an object member's key, or an array position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(Key),
    Index(u32),
}

/// A decoded object key, kept if it is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(Capped<MAX_KEY>);

impl Key {
    pub(super) const EMPTY: Key = Key(Capped::EMPTY);

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Appends decoded bytes.
    pub(super) fn push_slice(&mut self, run: &[u8]) {
        self.0.push(run);
    }

    pub fn is(&self, name: &str) -> bool {
        self.0.whole() == Some(name.as_bytes())
    }
}

/// The first `N` bytes of a short token, and how long it really is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capped<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Capped<N> {
    pub const EMPTY: Self = Capped { bytes: [0; N], len: 0 };

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps what fits; counts all of it.
    pub fn push(&mut self, bytes: &[u8]) {
        if let Some(room) = self.bytes.get_mut(self.len..) {
            let kept = bytes.len().min(room.len());
            room[..kept].copy_from_slice(&bytes[..kept]);
        }
        self.len = self.len.saturating_add(bytes.len());
    }

    /// The bytes kept: all of them, or the first `N`.
    pub fn kept(&self) -> &[u8] {
        &self.bytes[..self.len.min(N)]
    }

    /// All of it, if it fits.
    pub fn whole(&self) -> Option<&[u8]> {
        self.bytes.get(..self.len)
    }
}

impl Seg {
    pub fn is(&self, name: &str) -> bool {
        matches!(self, Seg::Key(k) if k.is(name))
    }
}

/// A path pattern step: a key name, or any array position.
#[derive(Clone, Copy)]
pub enum Step {
    K(&'static str),
    Any,
}

/// Whether `path` is exactly `pattern`.
pub fn path_is(path: &[Seg], pattern: &[Step]) -> bool {
    path.len() == pattern.len() && starts_with(path, pattern)
}

/// Whether `path` begins with `pattern`.
pub fn starts_with(path: &[Seg], pattern: &[Step]) -> bool {
    path.len() >= pattern.len()
        && path.iter().zip(pattern).all(|(seg, step)| match step {
            Step::K(name) => seg.is(name),
            Step::Any => matches!(seg, Seg::Index(_)),
        })
}

/// A complete scalar value.
#[derive(Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// A whole number that fits; `None` for fractions, exponents and overlong ones.
    Number(Option<i64>),
    /// A string's first `MAX_SHORT` decoded bytes, and whether that is all of it.
    Str(&'a [u8], bool),
    Bool(bool),
    Null,
}

/// What a scanner reports to.
pub trait Sink {
    /// An object member's key was read; `path` ends with it.
    fn member(&mut self, _path: &[Seg]) {}
    /// A scalar value at `path`.
    fn scalar(&mut self, _path: &[Seg], _value: Scalar<'_>) {}
    /// Whether the decoded text of the string at `path` should go to `text`.
    fn captures(&mut self, _path: &[Seg]) -> bool {
        false
    }
    /// Decoded UTF-8 bytes of a captured string, in pieces as they arrive.
    fn text(&mut self, _bytes: &[u8]) {}
}
