//! A response the filter sends itself instead of forwarding the request.

use crate::problem::{self, Problem};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalResponse {
    /// A problem+json response carrying the request id.
    pub fn problem(problem: &Problem, request_id: Option<&str>) -> Self {
        Self {
            status: problem.status.as_u16(),
            headers: vec![("content-type".into(), problem::CONTENT_TYPE.into())],
            body: problem.to_json(request_id),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
