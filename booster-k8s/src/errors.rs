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
    // An API error's own Display carries the whole Status in Debug form: a paragraph in
    // /readyz, logs and Events. Its message, reason and code say it all.
    let text = match &e {
        kube::Error::Api(s) => format!(
            "{context}: {} ({}, HTTP {})",
            message_of(&e),
            s.reason,
            s.code
        ),
        other => format!("{context}: {other}"),
    };
    match status_of(&e) {
        Some(429) => PortError::Throttled(text),
        Some(409) => PortError::Conflict(text),
        Some(404) => PortError::NotFound(text),
        Some(401 | 403) => PortError::Forbidden(text),
        Some(400 | 422) => PortError::Rejected(text),
        _ => PortError::Unavailable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_is_one_short_line_with_its_message_reason_and_code() {
        let status = kube::core::Status {
            code: 403,
            message: "configmaps is forbidden: User \"system:serviceaccount:kube-system:aws-spots-booster\" cannot create resource \"configmaps\"".into(),
            reason: "Forbidden".into(),
            ..Default::default()
        };
        let e = port_error(
            "store ledger ConfigMap kube-system/l",
            kube::Error::Api(Box::new(status)),
        );
        let PortError::Forbidden(text) = e else {
            panic!("403 is a refusal: {e:?}");
        };
        assert!(text.ends_with("(Forbidden, HTTP 403)"), "{text}");
        assert!(text.contains("cannot create resource"), "{text}");
        assert!(!text.contains("Status {"), "no Debug dump: {text}");
        assert!(text.len() < 250, "{} chars: {text}", text.len());
    }
}
