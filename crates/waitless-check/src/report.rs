//! Check results: [`NonLinearizable`] explanations and [`CheckOutcome`].

use std::fmt;

/// One operation as it appears in a failure report (already rendered with
/// `Debug`, so reports need no type parameters).
#[derive(Clone, PartialEq, Eq)]
pub struct OpReport {
    /// The thread label.
    pub thread: usize,
    /// The operation, `Debug`-rendered.
    pub input: String,
    /// The answer, `Debug`-rendered; `None` if pending.
    pub output: Option<String>,
    /// Call time (ns since the recorder started).
    pub call: u64,
    /// Return time; `None` if pending.
    pub ret: Option<u64>,
    /// Why it could not come next, for operations in
    /// [`NonLinearizable::stuck`]; empty elsewhere.
    pub why: String,
}

impl fmt::Debug for OpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for OpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[thread {}] {} -> ", self.thread, self.input)?;
        match (&self.output, self.ret) {
            (Some(o), Some(r)) => write!(f, "{o}   (called {} ns, returned {r} ns)", self.call)?,
            _ => write!(f, "(pending)   (called {} ns, never returned)", self.call)?,
        }
        if !self.why.is_empty() {
            write!(f, "\n        {}", self.why)?;
        }
        Ok(())
    }
}

/// Why a history is not linearizable: the part of the history that failed,
/// the longest prefix of it that has a legal linearization, and the
/// operations that could not be linearized after that prefix.
///
/// `Display` prints a readable explanation.
#[derive(Clone, PartialEq, Eq)]
pub struct NonLinearizable {
    pub(crate) partition: String,
    pub(crate) partition_len: usize,
    pub(crate) prefix_len: usize,
    pub(crate) prefix_tail: Vec<OpReport>,
    pub(crate) state: Option<String>,
    pub(crate) stuck: Vec<OpReport>,
}

/// How many operations of the linearized prefix a report keeps.
pub(crate) const PREFIX_TAIL: usize = 8;

impl NonLinearizable {
    /// The part of the history that failed: `whole history`, or the label
    /// of a [`Partition`](crate::Partition) such as `key 7`.
    #[must_use]
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// Number of operations in the failing part.
    #[must_use]
    pub fn partition_len(&self) -> usize {
        self.partition_len
    }

    /// Length of the longest linearizable prefix the search found.
    #[must_use]
    pub fn prefix_len(&self) -> usize {
        self.prefix_len
    }

    /// The last (at most 8) operations of that prefix, in linearization
    /// order.
    #[must_use]
    pub fn prefix_tail(&self) -> &[OpReport] {
        &self.prefix_tail
    }

    /// The model's state after the prefix, if the model can describe it.
    #[must_use]
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The operations that could have come next after the prefix (invoked
    /// before the earliest return among the rest), none of which leads to a
    /// linearization, each with the reason.
    #[must_use]
    pub fn stuck(&self) -> &[OpReport] {
        &self.stuck
    }
}

impl fmt::Debug for NonLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for NonLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "history is not linearizable ({}, {} operations)",
            self.partition, self.partition_len
        )?;
        writeln!(
            f,
            "  longest linearizable prefix: {} operations{}",
            self.prefix_len,
            if self.prefix_len > self.prefix_tail.len() {
                format!(", the last {}:", self.prefix_tail.len())
            } else if self.prefix_len > 0 {
                ":".to_string()
            } else {
                String::new()
            }
        )?;
        for op in &self.prefix_tail {
            writeln!(f, "    {op}")?;
        }
        if let Some(s) = &self.state {
            writeln!(f, "  state after the prefix: {s}")?;
        }
        writeln!(f, "  none of these can be linearized next:")?;
        for op in &self.stuck {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NonLinearizable {}

/// The result of [`check_with_limit`](crate::check_with_limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// A linearization exists for every part.
    Linearizable,
    /// Some part has no linearization.
    NonLinearizable(NonLinearizable),
    /// The step budget ran out before the search decided.
    Unknown {
        /// The part being searched when the budget ran out.
        partition: String,
        /// Model steps taken in all.
        steps: u64,
    },
}

impl CheckOutcome {
    /// Whether the history was shown linearizable.
    #[must_use]
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckOutcome::Linearizable)
    }
}
