//! Baseline diff: what held before and does not now.

use crate::model::{Regression, Report};

/// Regressions of `current` against `baseline`. (Filled in below.)
pub fn compare(_baseline: &Report, _current: &Report) -> Vec<Regression> {
    Vec::new()
}
