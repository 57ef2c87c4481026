//! A response rewritten while it streams past (in place forwarding only):
//! the hook through which a filter turns its platform's streaming framing
//! into the client's bytes (Lambda's `InvokeWithResponseStream`
//! eventstream). Plain data in and out; [`crate::stream`] moves it between
//! Envoy's response callbacks and the rewrite.

use crate::headers::HeaderList;
use crate::response::ErrorReply;

/// Changes to the response's head: a status, headers to remove (every
/// value of each name), then headers to add (repeats kept: `set-cookie`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub status: Option<u16>,
    pub remove: Vec<String>,
    pub add: HeaderList,
}

/// What to do with the response's headers when they arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Apply the changes and send the headers on at once.
    Pass(Head),
    /// Apply the changes and hold the headers until the body gives its
    /// first bytes (or a [`Piece::head`]): an error before then can still
    /// be a JSON answer. Only offered when the route's layout has Envoy's
    /// `allow_on_headers_stop_iteration` (a paused response would hang
    /// without it).
    Hold(Head),
}

/// What one piece of the upstream body becomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Piece {
    /// Head changes learnt from the body (a held head only).
    pub head: Option<Head>,
    /// The client's bytes for this piece (may be empty).
    pub bytes: Vec<u8>,
    /// The stream failed here: a JSON answer if nothing went to the client
    /// yet, else the client's stream is reset. The bytes are not sent.
    pub failure: Option<ErrorReply>,
}

pub trait ResponseRewrite {
    /// The upstream's `status` and headers. An error is the client's
    /// answer instead (the platform refused the call before streaming).
    /// `can_hold`: whether [`Start::Hold`] is allowed.
    fn start(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        can_hold: bool,
    ) -> Result<Start, ErrorReply>;

    /// The next piece of the upstream body; `end`: the last one.
    fn piece(&mut self, bytes: &[u8], end: bool) -> Piece;
}
