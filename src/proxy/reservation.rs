//! How many tokens a request reserves, and how far its output may go.
//!
//! A request reserves its estimated prompt plus the most output it can
//! produce. When a key counts tokens, that maximum is always written into the
//! forwarded body, so the upstream cannot generate more than was reserved.
//! A request that asks for more output than the key has left (coding agents
//! ask for 32k to 128k tokens) is not refused while most of the quota is
//! unused: its maximum is lowered to what remains. Only when the prompt alone
//! leaves no room is it refused, with a message that says so.

use crate::domain::limits::{LimitKind, Limits, Usage};
use crate::domain::people::{self, Scope};

/// The output a request may have, given what the key has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Serve it with this output maximum (the request's own, or lower).
    Output(i64),
    /// Even one output token would pass this limit.
    None(LimitKind, i64),
}

/// What each token limit still allows one request to reserve. Quotas (day,
/// month, lifetime) give what is left of them; a per-minute limit gives its
/// whole size, since that is what an empty minute holds (a minute that is
/// merely busy is a rate limit to wait out, not a reason to cut the answer).
fn token_room(limits: &Limits, usage: &Usage) -> Vec<(LimitKind, i64)> {
    let left = |limit: Option<i64>, used: i64| limit.map(|l| l.saturating_sub(used));
    [
        (LimitKind::TokensPerMinute, limits.tokens_per_minute),
        (LimitKind::DailyTokens, left(limits.daily_tokens, usage.day.tokens)),
        (LimitKind::MonthlyTokens, left(limits.monthly_tokens, usage.month.tokens)),
        (LimitKind::TotalTokens, left(limits.total_tokens, usage.total.tokens)),
    ]
    .into_iter()
    .filter_map(|(kind, room)| room.map(|r| (kind, r)))
    .collect()
}

/// The output maximum for a request that wants `wanted` tokens of output
/// after a prompt of about `prompt` tokens.
pub fn output_room(limits: &Limits, usage: &Usage, prompt: i64, wanted: i64) -> Room {
    let tightest = token_room(limits, usage).into_iter().min_by_key(|(_, room)| *room);
    match tightest {
        None => Room::Output(wanted),
        Some((kind, room)) => {
            let for_output = room.saturating_sub(prompt);
            if for_output < 1 {
                Room::None(kind, room.max(0))
            } else {
                Room::Output(wanted.min(for_output))
            }
        }
    }
}

/// `output_room` across every level a request is measured against, with
/// each level's room turned from weighted tokens into the model's raw
/// tokens (`weight` in millionths). With `Room::None`, the index of the
/// level whose limit leaves no room.
pub fn output_room_in(scopes: &[Scope<'_>], prompt: i64, wanted: i64, weight: i64) -> (usize, Room) {
    let tightest = scopes
        .iter()
        .enumerate()
        .flat_map(|(n, s)| {
            token_room(&s.limits, &s.usage).into_iter().map(move |(kind, room)| (n, kind, room))
        })
        .map(|(n, kind, room)| (n, kind, room, people::raw_room(room, weight)))
        .min_by_key(|(_, _, _, raw)| *raw);
    match tightest {
        None => (0, Room::Output(wanted)),
        Some((n, kind, room, raw)) => {
            let for_output = raw.saturating_sub(prompt);
            if for_output < 1 {
                (n, Room::None(kind, room.max(0)))
            } else {
                (n, Room::Output(wanted.min(for_output)))
            }
        }
    }
}

/// What a request reserves against every token limit: never less than one,
/// so that a limit of zero refuses the first request.
pub fn tokens(prompt: i64, output: i64) -> i64 {
    prompt.max(0).saturating_add(output.max(0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_day(tokens: i64) -> Usage {
        let mut usage = Usage::default();
        usage.day.tokens = tokens;
        usage.month.tokens = tokens;
        usage.total.tokens = tokens;
        usage
    }

    #[test]
    fn output_is_lowered_to_what_the_quota_has_left() {
        let limits = Limits { daily_tokens: Some(100_000), ..Limits::default() };
        assert_eq!(output_room(&limits, &usage_day(10_000), 500, 128_000), Room::Output(89_500));
        assert_eq!(output_room(&limits, &usage_day(0), 500, 1_000), Room::Output(1_000));
    }

    #[test]
    fn a_prompt_that_fills_what_is_left_leaves_no_room() {
        let limits = Limits { daily_tokens: Some(1_000), monthly_tokens: Some(50_000), ..Limits::default() };
        assert_eq!(output_room(&limits, &usage_day(900), 100, 10), Room::None(LimitKind::DailyTokens, 100));
        assert_eq!(output_room(&limits, &usage_day(1_200), 0, 10), Room::None(LimitKind::DailyTokens, 0));
    }

    #[test]
    fn a_per_minute_limit_lowers_to_its_size_not_to_what_this_minute_has_left() {
        let limits = Limits { tokens_per_minute: Some(4_000), ..Limits::default() };
        let mut busy = Usage::default();
        busy.minute.tokens = 3_900;
        assert_eq!(output_room(&limits, &busy, 1_000, 32_000), Room::Output(3_000));
    }

    #[test]
    fn reservations_saturate_instead_of_wrapping() {
        assert_eq!(tokens(i64::MAX, i64::MAX), i64::MAX);
        assert_eq!(tokens(0, 0), 1);
        assert_eq!(tokens(-5, -5), 1);
        let limits = Limits { daily_tokens: Some(10), ..Limits::default() };
        assert_eq!(
            output_room(&limits, &usage_day(0), i64::MAX, i64::MAX),
            Room::None(LimitKind::DailyTokens, 10)
        );
        assert_eq!(output_room(&limits, &usage_day(i64::MAX), 0, 5), Room::None(LimitKind::DailyTokens, 0));
    }
}
