//! History checkers (placeholder: see issue 3).
