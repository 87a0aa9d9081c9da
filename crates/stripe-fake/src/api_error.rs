//! Stripe's error responses: `{"error":{"type","message","param"?,"code"?}}` with its status.

use bytes::Bytes;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub(crate) fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub(crate) fn status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    pub(crate) fn unknown_parameter(name: &str) -> ApiError {
        ApiError::invalid(format!("Received unknown parameter: {name}"))
            .param(name)
            .code("parameter_unknown")
    }

    pub(crate) fn invalid_integer(name: &str, value: &str) -> ApiError {
        ApiError::invalid(format!("Invalid integer: {value}"))
            .param(name)
            .code("parameter_invalid_integer")
    }

    /// A missing object named by a parameter (400) or by the URL (`.status(404)`).
    pub(crate) fn no_such(object: &str, id: &str) -> ApiError {
        ApiError::invalid(format!("No such {object}: '{id}'"))
            .code("resource_missing")
            .status(404)
    }

    pub(crate) fn unrecognized(method: &str, path: &str) -> ApiError {
        ApiError::invalid(format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ))
        .status(404)
    }

    pub(crate) fn server_error() -> ApiError {
        ApiError {
            status: 500,
            kind: "api_error",
            message: "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, you can reach us at https://support.stripe.com/contact.".into(),
            param: None,
            code: None,
        }
    }

    pub(crate) fn rate_limited() -> ApiError {
        ApiError {
            status: 429,
            kind: "invalid_request_error",
            message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.".into(),
            param: None,
            code: Some("rate_limit"),
        }
    }

    pub(crate) fn body(&self) -> Bytes {
        let mut error = json!({"type": self.kind, "message": self.message});
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        Bytes::from(json!({ "error": error }).to_string())
    }
}
