//! kube-rs errors to [`PortError`]s.

use booster_core::ports::PortError;

/// The HTTP status of an API error, if the apiserver answered.
pub(crate) fn status_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Maps an error; `context` names the call and its object.
pub(crate) fn port_error(context: &str, e: kube::Error) -> PortError {
    let text = format!("{context}: {e}");
    match status_of(&e) {
        Some(429) => PortError::Throttled(text),
        Some(409) => PortError::Conflict(text),
        Some(404) => PortError::NotFound(text),
        Some(401 | 403) => PortError::Forbidden(text),
        Some(400 | 422) => PortError::Rejected(text),
        _ => PortError::Unavailable(text),
    }
}
