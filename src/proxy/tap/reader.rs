//! The reading every family shares: the framer and the scanner in front, the
//! per-event bookkeeping, and a `Dialect` that says which paths carry counts
//! and text and which event ends a response.

use super::scan::{
    path_is, Capped, EventInfo, Events, Framer, Scalar, Scanner, Seg, Sink, Step::K, MAX_SHORT,
};
use super::{Delivered, Reading, UsageParser};

/// One API family's reading of the events.
pub trait Dialect {
    /// An object member's key was read (a top-level `error` is noted already).
    fn member(&self, _path: &[Seg], _event: &mut Event) {}
    /// A scalar value at `path`.
    fn scalar(&self, path: &[Seg], value: Scalar<'_>, event: &mut Event);
    /// Whether the string at `path` is generated text.
    fn captures(&self, path: &[Seg], event: &mut Event) -> bool;
    /// An event ended: what it showed goes into the tally, or not.
    fn event_end(&self, event: Event, info: &EventInfo<'_>, tally: &mut Tally);
}

/// A usage parser for one family: bytes in, a `Reading` out.
pub struct Reader<D> {
    framer: Framer,
    scanner: Scanner,
    state: State<D>,
    /// The response has an end marker, so its absence means it was cut short.
    expects_end: bool,
}

impl<D: Dialect> Reader<D> {
    pub fn new(dialect: D, sse: bool, expects_end: bool) -> Self {
        let state = State { dialect, event: Event::default(), tally: Tally::default() };
        Reader { framer: Framer::new(sse), scanner: Scanner::default(), state, expects_end }
    }

    pub fn expects_end(&self) -> bool {
        self.expects_end
    }
}

impl<D: Dialect> UsageParser for Reader<D> {
    fn feed(&mut self, chunk: &[u8]) {
        self.framer.feed(chunk, &mut self.scanner, &mut self.state);
    }

    fn reading(&self) -> Reading {
        self.state.tally.reading
    }

    fn take_delivered(&mut self) -> Delivered {
        std::mem::take(&mut self.state.tally.delivered)
    }
}

/// What the scanner and the framer report to: the dialect, with the event in
/// progress and the tally.
struct State<D> {
    dialect: D,
    event: Event,
    tally: Tally,
}

impl<D: Dialect> Sink for State<D> {
    fn member(&mut self, path: &[Seg]) {
        if path_is(path, &[K("error")]) {
            self.event.error = true;
        } else {
            self.dialect.member(path, &mut self.event);
        }
    }

    fn scalar(&mut self, path: &[Seg], value: Scalar<'_>) {
        self.dialect.scalar(path, value, &mut self.event);
    }

    fn captures(&mut self, path: &[Seg]) -> bool {
        self.dialect.captures(path, &mut self.event)
    }

    fn text(&mut self, bytes: &[u8]) {
        self.tally.delivered.push(bytes);
    }
}

impl<D: Dialect> Events for State<D> {
    fn event_end(&mut self, info: &EventInfo<'_>) {
        self.tally.reading.units = self.tally.reading.units.saturating_add(1);
        let event = std::mem::replace(&mut self.event, Event::starting(&self.tally.delivered));
        self.dialect.event_end(event, info, &mut self.tally);
    }
}

/// What the dialects have read so far, and the generated text that passed.
#[derive(Default)]
pub struct Tally {
    pub reading: Reading,
    pub delivered: Delivered,
}

impl Tally {
    /// Takes the counts an event reported; the last report wins.
    pub fn count(&mut self, event: &Event) {
        if let Some(n) = event.prompt {
            self.reading.prompt = Some(n);
        }
        if let Some(n) = event.completion {
            self.reading.completion = Some(n);
        }
    }

    /// The family's end of a complete response was seen.
    pub fn complete(&mut self) {
        self.reading.complete = true;
    }

    /// The upstream reported an error in the body.
    pub fn upstream_error(&mut self) {
        self.reading.upstream_error = true;
    }
}

/// What one event has shown so far; the dialects commit it at the event's end.
#[derive(Default)]
pub struct Event {
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    pub done: bool,
    pub error: bool,
    /// The `type` member, if short.
    kind: Option<Capped<MAX_SHORT>>,
    /// The delivered text's length when the event began.
    pub mark: (usize, u64),
    /// Text captured that belongs to the delivered text only for some event types.
    pub conditional: bool,
    /// The event has `choices` entries (so its `usage`, if any, is a placeholder).
    pub has_choices: bool,
}

impl Event {
    fn starting(delivered: &Delivered) -> Self {
        Event { mark: delivered.mark(), ..Event::default() }
    }

    pub fn set_kind(&mut self, value: &[u8], complete: bool) {
        if complete {
            let mut kind = Capped::EMPTY;
            kind.push(value);
            self.kind = Some(kind);
        }
    }

    /// The `type` member, or else the SSE event name.
    pub fn kind<'a>(&'a self, info: &'a EventInfo<'_>) -> &'a [u8] {
        match &self.kind {
            Some(kind) => kind.kept(),
            None => info.name,
        }
    }
}

/// A token count: a whole number that is not negative.
pub fn number(value: &Scalar<'_>) -> Option<i64> {
    match value {
        Scalar::Number(Some(n)) if *n >= 0 => Some(*n),
        _ => None,
    }
}

/// For routes whose responses carry no counts (legacy embeddings, model management).
pub struct NoCounts;

impl Dialect for NoCounts {
    fn scalar(&self, _path: &[Seg], _value: Scalar<'_>, _event: &mut Event) {}

    fn captures(&self, _path: &[Seg], _event: &mut Event) -> bool {
        false
    }

    fn event_end(&self, _event: Event, _info: &EventInfo<'_>, _tally: &mut Tally) {}
}
