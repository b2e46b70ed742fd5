//! Topic names and topic filters, MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7–4.8.
//!
//! A [`TopicName`] is what a PUBLISH carries; it never contains a wildcard. A [`TopicFilter`] is
//! what a SUBSCRIBE carries; it may contain `+` (one level) and `#` (this level and all below),
//! and in MQTT 5.0 may be a shared subscription `$share/<ShareName>/<filter>` (§4.8.2).
//! Both are checked once, when parsed; afterwards matching cannot fail.

use std::fmt;

/// The longest topic a UTF-8 Encoded String can carry (§1.5.4: a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The prefix of a shared subscription (MQTT 5.0 §4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter was refused. `position` is a byte offset into the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// §4.7.3: topic names and filters are at least one character long.
    #[error("topic is empty")]
    Empty,
    /// §1.5.4: at most 65,535 bytes.
    #[error("topic is {len} bytes, longer than {MAX_TOPIC_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// §1.5.4: the bytes are not well-formed UTF-8.
    #[error("topic is not UTF-8 (error at byte {position})")]
    NotUtf8 {
        /// Offset of the first bad byte.
        position: usize,
    },
    /// §4.7.3: U+0000 is not allowed.
    #[error("topic contains U+0000 at byte {position}")]
    Nul {
        /// Offset of the NUL.
        position: usize,
    },
    /// §4.7.1: a topic name (PUBLISH) must not contain `+` or `#`.
    #[error("topic name contains the wildcard {wildcard:?} at byte {position}")]
    WildcardInName {
        /// The wildcard found.
        wildcard: char,
        /// Its offset.
        position: usize,
    },
    /// §4.7.1.2/§4.7.1.3: `+` and `#` must occupy a whole level, and `#` must be the last level.
    #[error("wildcard {wildcard:?} at byte {position} is not a whole level or not last")]
    MisplacedWildcard {
        /// The wildcard found.
        wildcard: char,
        /// Its offset.
        position: usize,
    },
    /// MQTT 5.0 §4.8.2: `$share/` needs a non-empty ShareName without `/`, `+`, `#`, then a filter.
    #[error("shared subscription is malformed at byte {position}")]
    BadShare {
        /// Offset where the shared-subscription syntax broke.
        position: usize,
    },
}

/// Checks the rules common to names and filters: length, UTF-8, no NUL.
fn check_common(bytes: &[u8]) -> Result<&str, TopicError> {
    if bytes.is_empty() {
        return Err(TopicError::Empty);
    }
    if bytes.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| TopicError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    if let Some(position) = text.find('\0') {
        return Err(TopicError::Nul { position });
    }
    Ok(text)
}

/// A PUBLISH topic name: non-empty, at most 65,535 bytes, UTF-8, no NUL, no wildcards.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    /// Parses a topic name from UTF-8 text.
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        Self::from_bytes(text.as_bytes())
    }

    /// Parses a topic name from the bytes of an MQTT UTF-8 Encoded String.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TopicError> {
        let text = check_common(bytes)?;
        if let Some((position, wildcard)) =
            text.char_indices().find(|(_, c)| matches!(c, '+' | '#'))
        {
            return Err(TopicError::WildcardInName { wildcard, position });
        }
        Ok(Self(text.to_owned()))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic levels, split on `/` (§4.7.1.1); `a//b` has an empty middle level.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// §4.7.2: topics starting with `$` are not matched by a leading wildcard.
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicName({:?})", self.0)
    }
}

impl std::str::FromStr for TopicName {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One level of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLevel<'a> {
    /// A literal level, matched exactly (case-sensitive, §4.7.3).
    Literal(&'a str),
    /// `+`: exactly one level, any content.
    Plus,
    /// `#`: this level and every level below it, including none (§4.7.1.2).
    Hash,
}

/// A SUBSCRIBE topic filter, possibly a shared subscription.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    raw: String,
    /// Byte offset where the filter proper starts (0 unless shared).
    filter_start: usize,
}

impl TopicFilter {
    /// Parses a topic filter from UTF-8 text.
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        Self::from_bytes(text.as_bytes())
    }

    /// Parses a topic filter from the bytes of an MQTT UTF-8 Encoded String.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TopicError> {
        let text = check_common(bytes)?;
        let filter_start = match text.strip_prefix(SHARE_PREFIX) {
            None => 0,
            Some(rest) => {
                let name_len = rest.find('/').ok_or(TopicError::BadShare {
                    position: text.len(),
                })?;
                let name = rest.get(..name_len).unwrap_or_default();
                if name.is_empty() {
                    return Err(TopicError::BadShare {
                        position: SHARE_PREFIX.len(),
                    });
                }
                if let Some(i) = name.find(['+', '#']) {
                    return Err(TopicError::BadShare {
                        position: SHARE_PREFIX.len() + i,
                    });
                }
                let start = SHARE_PREFIX.len() + name_len + 1;
                if start >= text.len() {
                    return Err(TopicError::BadShare { position: start });
                }
                start
            }
        };
        let filter = text.get(filter_start..).unwrap_or_default();
        check_wildcards(filter, filter_start)?;
        Ok(Self {
            raw: text.to_owned(),
            filter_start,
        })
    }

    /// The whole filter as received, `$share/...` prefix included.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The filter that selects topics: without the `$share/<ShareName>/` prefix.
    pub fn filter(&self) -> &str {
        self.raw.get(self.filter_start..).unwrap_or_default()
    }

    /// The ShareName of a shared subscription.
    pub fn share_name(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        self.raw.get(SHARE_PREFIX.len()..self.filter_start - 1)
    }

    /// The levels of [`Self::filter`].
    pub fn levels(&self) -> impl Iterator<Item = FilterLevel<'_>> + Clone {
        self.filter().split('/').map(|level| match level {
            "+" => FilterLevel::Plus,
            "#" => FilterLevel::Hash,
            other => FilterLevel::Literal(other),
        })
    }

    /// True when the filter has no `+` or `#`, so it selects exactly one topic.
    pub fn is_literal(&self) -> bool {
        !self.filter().contains(['+', '#'])
    }

    /// §4.7.2: a filter whose first level is a wildcard does not select `$` topics.
    fn starts_with_wildcard(&self) -> bool {
        matches!(
            self.levels().next(),
            Some(FilterLevel::Plus | FilterLevel::Hash)
        )
    }
}

/// §4.7.1.2/§4.7.1.3: each `+` and `#` is a whole level; `#` only as the last level.
fn check_wildcards(filter: &str, offset: usize) -> Result<(), TopicError> {
    let mut position = offset;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        for (i, c) in level.char_indices() {
            if matches!(c, '+' | '#') {
                let whole = level.len() == 1;
                if !whole || (c == '#' && !last) {
                    return Err(TopicError::MisplacedWildcard {
                        wildcard: c,
                        position: position + i,
                    });
                }
            }
        }
        position += level.len() + 1;
    }
    Ok(())
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicFilter({:?})", self.raw)
    }
}

impl std::str::FromStr for TopicFilter {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True when `filter` selects `name` (§4.7). A shared subscription matches as its inner filter.
pub fn matches(filter: &TopicFilter, name: &TopicName) -> bool {
    if name.is_dollar() && filter.starts_with_wildcard() {
        return false;
    }
    let mut topic = name.levels();
    for level in filter.levels() {
        match level {
            // `#` also matches the parent level: `sport/#` matches `sport` (§4.7.1.2).
            FilterLevel::Hash => return true,
            FilterLevel::Plus => {
                if topic.next().is_none() {
                    return false;
                }
            }
            FilterLevel::Literal(want) => {
                if topic.next() != Some(want) {
                    return false;
                }
            }
        }
    }
    topic.next().is_none()
}

/// What a filter allows at one position of a topic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LevelSet<'a> {
    Exactly(&'a str),
    /// Any level; `no_dollar` when §4.7.2 excludes `$…` (first level of a wildcard-led filter).
    Any {
        no_dollar: bool,
    },
}

impl LevelSet<'_> {
    fn subset_of(self, outer: Self) -> bool {
        match (self, outer) {
            (_, LevelSet::Any { no_dollar: false }) => true,
            (LevelSet::Exactly(s), LevelSet::Any { no_dollar: true }) => !s.starts_with('$'),
            (LevelSet::Any { no_dollar: true }, LevelSet::Any { no_dollar: true }) => true,
            (LevelSet::Exactly(a), LevelSet::Exactly(b)) => a == b,
            (LevelSet::Any { .. }, _) => false,
        }
    }

    fn intersects(self, other: Self) -> bool {
        match (self, other) {
            (LevelSet::Exactly(a), LevelSet::Exactly(b)) => a == b,
            (LevelSet::Exactly(s), LevelSet::Any { no_dollar })
            | (LevelSet::Any { no_dollar }, LevelSet::Exactly(s)) => {
                !(no_dollar && s.starts_with('$'))
            }
            // Both contain e.g. "x".
            (LevelSet::Any { .. }, LevelSet::Any { .. }) => true,
        }
    }
}

/// A filter seen as a language: the set of allowed levels at each position and the allowed
/// topic lengths (in levels). Topics always have at least one level. Read from the filter on
/// the fly: decisions call this per candidate rule, so it allocates nothing.
struct Shape<'a> {
    filter: &'a TopicFilter,
    /// Levels before a trailing `#`.
    len: usize,
    /// Trailing `#`: any number of further levels, including none.
    open: bool,
    /// §4.7.2: the first level is a wildcard, so `$…` is excluded there.
    no_dollar: bool,
    /// The levels before `#` are exactly one empty level (`/#`).
    only_empty: bool,
}

impl<'a> Shape<'a> {
    fn of(filter: &'a TopicFilter) -> Self {
        let mut len = 0;
        let mut open = false;
        let mut first_empty = false;
        for level in filter.levels() {
            match level {
                FilterLevel::Literal(s) => {
                    first_empty |= len == 0 && s.is_empty();
                    len += 1;
                }
                FilterLevel::Plus => len += 1,
                FilterLevel::Hash => open = true,
            }
        }
        Self {
            filter,
            len,
            open,
            no_dollar: filter.starts_with_wildcard(),
            only_empty: len == 1 && first_empty,
        }
    }

    /// The set at each position from 0 on, `None` where no topic of this shape has a level.
    fn sets(&self) -> impl Iterator<Item = Option<LevelSet<'a>>> + use<'a> {
        let (no_dollar, open) = (self.no_dollar, self.open);
        let prefix = self
            .filter
            .levels()
            .take(self.len)
            .enumerate()
            .map(move |(i, level)| {
                Some(match level {
                    FilterLevel::Literal(s) => LevelSet::Exactly(s),
                    FilterLevel::Plus | FilterLevel::Hash => LevelSet::Any {
                        no_dollar: i == 0 && no_dollar,
                    },
                })
            });
        // Past the prefix: a bare `#` excludes `$` at the first level, like a leading `+`.
        let tail = (self.len..).map(move |p| open.then_some(LevelSet::Any { no_dollar: p == 0 }));
        prefix.chain(tail)
    }

    /// Fewest levels a matching topic has. A topic has at least one level, and a one-level
    /// topic has a non-empty level (§4.7.3: the empty string is not a topic), so `/#` selects
    /// nothing shorter than `/x`.
    fn min_len(&self) -> usize {
        if self.open && self.only_empty {
            return 2;
        }
        self.len.max(1)
    }
}

/// True when every topic that `inner` can select is also selected by `outer`: the check a
/// SUBSCRIBE needs, since a subscription receives all of them. Shared-subscription prefixes are
/// ignored (a share group changes who receives a message, not which topics match).
pub fn includes(outer: &TopicFilter, inner: &TopicFilter) -> bool {
    let (o, i) = (Shape::of(outer), Shape::of(inner));
    // Lengths: inner's set of topic lengths must lie within outer's.
    let lengths_ok = match (o.open, i.open) {
        (false, false) => o.len == i.len,
        (false, true) => false,
        (true, _) => i.min_len() >= o.min_len(),
    };
    if !lengths_ok {
        return false;
    }
    // Positions: beyond both prefixes both sides allow any level, so checking up to the longer
    // prefix covers every position.
    let span = o.len.max(i.len);
    i.sets().zip(o.sets()).take(span).all(|pair| match pair {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.subset_of(b),
    })
}

/// True when some topic is selected by both filters: the check a SUBSCRIBE needs against a
/// forbidding rule, since receiving any forbidden topic is too much.
pub fn overlaps(a: &TopicFilter, b: &TopicFilter) -> bool {
    let (x, y) = (Shape::of(a), Shape::of(b));
    // Some common length must exist.
    let lengths_ok = match (x.open, y.open) {
        (false, false) => x.len == y.len,
        (true, false) => y.len >= x.min_len(),
        (false, true) => x.len >= y.min_len(),
        (true, true) => true,
    };
    if !lengths_ok {
        return false;
    }
    // Level sets are independent per position, so a common topic exists when every position
    // of the shortest common length has a common level.
    let span = x.len.max(y.len).max(1);
    x.sets().zip(y.sets()).take(span).all(|pair| match pair {
        (Some(s), Some(t)) => s.intersects(t),
        _ => true,
    })
}

#[cfg(test)]
mod tests;
