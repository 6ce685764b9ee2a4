//! AWS errors to [`PortError`]s, with messages an SRE can act on.

use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use booster_core::ports::PortError;

/// Classifies an error code and message from the Auto Scaling API.
pub(crate) fn classify(context: &str, code: &str, message: &str) -> PortError {
    let text = if message.is_empty() {
        format!("{context}: {code}")
    } else {
        format!("{context}: {code}: {message}")
    };
    let lower = message.to_ascii_lowercase();
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => PortError::Throttled(text),
        "ScalingActivityInProgress"
        | "ScalingActivityInProgressFault"
        | "ResourceContention"
        | "ResourceContentionFault" => PortError::Busy(text),
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException" => PortError::Forbidden(text),
        "ValidationError" if lower.contains("not found") => PortError::NotFound(text),
        "ValidationError"
        | "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "LimitExceeded"
        | "ServiceLinkedRoleFailure" => PortError::Rejected(text),
        _ => PortError::Unavailable(text),
    }
}

/// Maps an SDK error. `context` names the call and its target, e.g.
/// `SetDesiredCapacity spot-a`.
pub(crate) fn port_error<E, R>(context: &str, err: &SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            classify(
                context,
                e.code().unwrap_or("UnknownError"),
                e.message().unwrap_or(""),
            )
        }
        SdkError::TimeoutError(_) => PortError::Unavailable(format!("{context}: timed out")),
        SdkError::DispatchFailure(d) => {
            PortError::Unavailable(format!("{context}: could not reach the endpoint: {d:?}"))
        }
        // An answer that is not the API's XML, e.g. an HTML error page from a proxy.
        SdkError::ResponseError(_) => {
            PortError::Unavailable(format!("{context}: unreadable response from the endpoint"))
        }
        SdkError::ConstructionFailure(_) => {
            PortError::Rejected(format!("{context}: the request could not be built"))
        }
        other => PortError::Unavailable(format!("{context}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_the_loop_does_next() {
        let c = |code: &str, msg: &str| classify("SetDesiredCapacity g", code, msg);
        assert!(matches!(
            c("Throttling", "Rate exceeded"),
            PortError::Throttled(_)
        ));
        assert!(matches!(
            c("ScalingActivityInProgress", ""),
            PortError::Busy(_)
        ));
        assert!(matches!(c("ResourceContention", ""), PortError::Busy(_)));
        assert!(matches!(c("AccessDenied", ""), PortError::Forbidden(_)));
        assert!(matches!(
            c("ValidationError", "AutoScalingGroup name not found - null"),
            PortError::NotFound(_)
        ));
        assert!(matches!(
            c(
                "ValidationError",
                "New SetDesiredCapacity value 9 is above max value 5"
            ),
            PortError::Rejected(_)
        ));
        assert!(matches!(
            c("InternalFailure", ""),
            PortError::Unavailable(_)
        ));
        let msg = c("Throttling", "Rate exceeded").to_string();
        assert_eq!(
            msg,
            "throttled: SetDesiredCapacity g: Throttling: Rate exceeded"
        );
    }
}
