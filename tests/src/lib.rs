//! Workspace-level integration and end-to-end tests live in `tests/tests/`.
pub mod control_plane;
pub mod e2e;
pub mod moto;
pub mod prometheus;
