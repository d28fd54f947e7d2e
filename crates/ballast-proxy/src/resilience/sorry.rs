//! The sorry page: a static page served by the gateway itself, from memory, with
//! `Retry-After`, when the upstream fails or no healthy server exists. Users' refresh storms
//! then land on the gateway instead of the broken fleet.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use ballast_config::model::SorryPage;

use crate::http::body::ProxyBody;

/// The page as a 503 response.
pub fn response(page: &SorryPage) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(page.body.clone()));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let secs = page.retry_after.as_secs().max(1);
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}
