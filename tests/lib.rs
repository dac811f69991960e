//! Placeholder crate root: the e2e tests live in e2e/.
