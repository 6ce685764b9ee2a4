//! kube-rs errors to [`PortError`]s.

use booster_core::ports::PortError;

/// The HTTP status of an API error, if the apiserver answered.
pub(crate) fn status_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// The apiserver's message for an API error (an admission webhook's reason, say), cut to a
/// line: it goes into logs and Events.
pub(crate) fn message_of(e: &kube::Error) -> String {
    let m = match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    };
    let line = m.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
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
