//! PATCH (securescore): a safe reader of the parser's events, for a caller that walks a
//! document without keeping it (see PATCHED.md item 4). Each event is a view that lives until
//! the next call; no error detail is kept: a caller that meets an error reads the document
//! again with a full parser, which reports it.

use crate::yaml::{yaml_event_t, yaml_mark_t, yaml_parser_t};
use crate::{
    YAML_ALIAS_EVENT, YAML_DOCUMENT_END_EVENT, YAML_DOCUMENT_START_EVENT, YAML_FLOW_MAPPING_STYLE,
    YAML_FLOW_SEQUENCE_STYLE, YAML_MAPPING_END_EVENT, YAML_MAPPING_START_EVENT,
    YAML_PLAIN_SCALAR_STYLE, YAML_SCALAR_EVENT, YAML_SEQUENCE_END_EVENT,
    YAML_SEQUENCE_START_EVENT, YAML_STREAM_END_EVENT, YAML_STREAM_START_EVENT, YAML_UTF8_ENCODING,
};
use alloc::boxed::Box;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

/// What an event is.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum EventKind {
    StreamStart,
    StreamEnd,
    DocumentStart,
    DocumentEnd,
    Alias,
    Scalar,
    SequenceStart,
    SequenceEnd,
    MappingStart,
    MappingEnd,
}

/// A position in the input: byte index, line and column (from 0).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Position {
    pub index: u64,
    pub line: u64,
    pub column: u64,
}

impl From<yaml_mark_t> for Position {
    fn from(m: yaml_mark_t) -> Position {
        Position {
            index: m.index,
            line: m.line,
            column: m.column,
        }
    }
}

/// One event, borrowed from the reader until its next call.
#[derive(Debug)]
pub struct Event<'e> {
    pub kind: EventKind,
    pub start: Position,
    pub end: Position,
    /// An anchor (`&a`) on a scalar, sequence or mapping.
    pub anchor: bool,
    /// A tag (`!t`) on a scalar, sequence or mapping.
    pub tag: bool,
    /// A scalar's value (after quoting, escapes and folding); empty for other events.
    pub value: &'e [u8],
    /// A plain (unquoted, not block) scalar.
    pub plain: bool,
    /// A sequence or mapping in flow style (`[...]`, `{...}`).
    pub flow: bool,
    /// A document start with a `%YAML` or `%TAG` directive.
    pub directives: bool,
}

/// Reads the events of a UTF-8 text, one at a time.
pub struct EventReader<'input> {
    // Boxed: the parser points at itself (its read handler's data), so it must not move.
    parser: Box<MaybeUninit<yaml_parser_t>>,
    event: Box<MaybeUninit<yaml_event_t>>,
    has_event: bool,
    initialized: bool,
    failed: bool,
    _input: PhantomData<&'input [u8]>,
}

impl<'input> EventReader<'input> {
    pub fn new(input: &'input [u8]) -> EventReader<'input> {
        let mut parser = Box::new(MaybeUninit::<yaml_parser_t>::uninit());
        let p = parser.as_mut_ptr();
        // SAFETY: initialize fills the whole struct; the input outlives the parser ('input).
        let initialized = unsafe {
            if crate::yaml_parser_initialize(p).fail {
                false
            } else {
                crate::yaml_parser_set_encoding(p, YAML_UTF8_ENCODING);
                crate::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
                true
            }
        };
        EventReader {
            parser,
            event: Box::new(MaybeUninit::uninit()),
            has_event: false,
            initialized,
            failed: !initialized,
            _input: PhantomData,
        }
    }

    fn release(&mut self) {
        if self.has_event {
            // SAFETY: has_event says the parser filled it and it was not deleted yet.
            unsafe { crate::yaml_event_delete(self.event.as_mut_ptr()) };
            self.has_event = false;
        }
    }

    /// The next event, or `None` after an error (or once the stream has ended).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Event<'_>> {
        self.release();
        if self.failed {
            return None;
        }
        let p = self.parser.as_mut_ptr();
        let e = self.event.as_mut_ptr();
        // SAFETY: the parser was initialized (failed is false); parse fills the event on
        // success, which is deleted before the next parse or on drop.
        unsafe {
            // After the stream's end the parser answers with no event (handled below).
            if crate::yaml_parser_parse(p, e).fail {
                self.failed = true;
                return None;
            }
            self.has_event = true;
            let ev = &*e;
            let mut out = Event {
                kind: EventKind::StreamStart,
                start: ev.start_mark.into(),
                end: ev.end_mark.into(),
                anchor: false,
                tag: false,
                value: &[],
                plain: false,
                flow: false,
                directives: false,
            };
            out.kind = match ev.type_ {
                YAML_STREAM_START_EVENT => EventKind::StreamStart,
                YAML_STREAM_END_EVENT => EventKind::StreamEnd,
                YAML_DOCUMENT_START_EVENT => {
                    let d = &ev.data.document_start;
                    out.directives = !d.version_directive.is_null()
                        || d.tag_directives.start != d.tag_directives.end;
                    EventKind::DocumentStart
                }
                YAML_DOCUMENT_END_EVENT => EventKind::DocumentEnd,
                YAML_ALIAS_EVENT => EventKind::Alias,
                YAML_SCALAR_EVENT => {
                    let s = &ev.data.scalar;
                    out.anchor = !s.anchor.is_null();
                    out.tag = !s.tag.is_null();
                    out.plain = s.style == YAML_PLAIN_SCALAR_STYLE;
                    if !s.value.is_null() && s.length > 0 {
                        out.value = core::slice::from_raw_parts(s.value, s.length as usize);
                    }
                    EventKind::Scalar
                }
                YAML_SEQUENCE_START_EVENT => {
                    let s = &ev.data.sequence_start;
                    out.anchor = !s.anchor.is_null();
                    out.tag = !s.tag.is_null();
                    out.flow = s.style == YAML_FLOW_SEQUENCE_STYLE;
                    EventKind::SequenceStart
                }
                YAML_SEQUENCE_END_EVENT => EventKind::SequenceEnd,
                YAML_MAPPING_START_EVENT => {
                    let m = &ev.data.mapping_start;
                    out.anchor = !m.anchor.is_null();
                    out.tag = !m.tag.is_null();
                    out.flow = m.style == YAML_FLOW_MAPPING_STYLE;
                    EventKind::MappingStart
                }
                YAML_MAPPING_END_EVENT => EventKind::MappingEnd,
                _ => {
                    self.failed = true;
                    return None;
                }
            };
            Some(out)
        }
    }
}

impl Drop for EventReader<'_> {
    fn drop(&mut self) {
        self.release();
        // SAFETY: deleting an initialized parser once (a failed initialize cleaned up itself).
        if self.initialized {
            unsafe { crate::yaml_parser_delete(self.parser.as_mut_ptr()) };
        }
    }
}
